"""The fax job as its owner submits, reads, changes and removes it: behind the API's three dialects and the SMTP
gateway alike, so a job is made one way whoever accepts it.

Nothing accepted is lost, nothing refused is kept: uploaded documents are in S3 before the job row and its
``fax.job.submitted`` event commit (together, in one transaction), and a failed commit removes the objects again.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import asyncpg

from fax_contracts import JobSubmitted, encode_event, routing_key
from fax_jobs.events import new_event
from fax_jobs.lifecycle import TRANSITION, may
from fax_jobs.objects import is_shared_upload, job_object_keys, upload_keys
from fax_jobs.rows import FaxJob, JobSummary
from fax_runtime.blobs import BlobNotFound, BlobStore, delete_quietly, fax_render_keys
from fax_runtime.outbox import NOTIFY_CHANNEL, enqueue
from fax_runtime.sql import load_queries, row_as
from fax_runtime.telemetry import current_trace_headers

Q = load_queries("fax_jobs", "sql/jobs.sql")

Documents = Sequence[tuple[bytes, str]]  # (body, content type), in order


class JobNotChangeable(Exception):
    """The job exists but is already being sent or finished: it may no longer be changed or removed."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class DocumentsGone(Exception):
    """A finished job's uploaded documents were removed, so it cannot be sent again."""


async def _insert_job(
    executor: asyncpg.Pool | asyncpg.Connection,
    account_id: str,
    job_id: uuid.UUID,
    request: dict[str, Any],
    uploads: Sequence[str],
) -> FaxJob:
    """The job row and its ``fax.job.submitted`` event, in one statement, for documents already in S3."""
    if uploads:
        request = {**request, "document": {**request["document"], "uploads": list(uploads)}}
    event = new_event(JobSubmitted, job_id=job_id, account_id=account_id)
    row = await executor.fetchrow(
        Q["submit_job"],
        job_id,
        account_id,
        request,
        request["to_number"],
        request.get("from_number", ""),
        request["retries"],
        event.event_id,
        routing_key(JobSubmitted),
        encode_event(event),
        current_trace_headers(),
        NOTIFY_CHANNEL,
    )
    return row_as(FaxJob, row)


class Submission:
    """Jobs submitted in one transaction with whatever else the caller writes on ``connection`` (a charge, an smtplog
    entry): all of it commits, or none does and the uploads are removed."""

    def __init__(self, connection: asyncpg.Connection, uploads: Sequence[str]) -> None:
        self.connection = connection
        self._uploads = uploads

    async def add(self, account_id: str, request: dict[str, Any], *, job_id: uuid.UUID | None = None) -> FaxJob:
        """A job sending the submission's uploads (all of them, in order) as ``request`` asks."""
        return await _insert_job(self.connection, account_id, job_id or uuid.uuid4(), request, self._uploads)


class JobStore:
    def __init__(self, pool: asyncpg.Pool, blobs: BlobStore) -> None:
        self._pool = pool
        self._blobs = blobs

    # Submission (fax_jobs.lifecycle: submit) ---------------------------------------------------------------------

    async def submit_job(
        self, account_id: str, request: dict[str, Any], documents: Documents = (), *, job_id: uuid.UUID | None = None
    ) -> FaxJob:
        """Store a new job and its event in one statement; ``documents`` go to S3 first, under the job's own keys."""
        job_id = job_id or uuid.uuid4()
        async with self._uploaded(upload_keys(job_id, len(documents)), documents) as uploads:
            return await _insert_job(self._pool, account_id, job_id, request, uploads)

    @contextlib.asynccontextmanager
    async def submitting(self, keys: Sequence[str], documents: Documents) -> AsyncIterator[Submission]:
        """Store ``documents`` under ``keys``, then open the transaction the jobs sending them are added in.

        The documents go to S3 before the transaction starts, so no row lock the caller takes in it (a balance) is
        held while they upload.
        """
        async with self._uploaded(keys, documents) as uploads, self._pool.acquire() as conn, conn.transaction():
            yield Submission(conn, uploads)

    @contextlib.asynccontextmanager
    async def _uploaded(self, keys: Sequence[str], documents: Documents) -> AsyncIterator[list[str]]:
        """``documents`` stored under ``keys`` while the block runs; all removed again if storing or the block fails."""
        stored: list[str] = []
        try:
            for key, (body, content_type) in zip(keys, documents, strict=True):
                await self._blobs.put_bytes(key, body, content_type)
                stored.append(key)
            yield stored
        except BaseException:
            await delete_quietly(self._blobs, stored)
            raise

    # Reading ------------------------------------------------------------------------------------------------------

    async def get_job(self, account_id: str, job_id: uuid.UUID, states: Sequence[str]) -> FaxJob | None:
        row = await self._pool.fetchrow(Q["get_job"], account_id, job_id, list(states))
        return row_as(FaxJob, row) if row else None

    async def page_jobs(
        self, account_id: str, states: Sequence[str], start: uuid.UUID | None, limit: int
    ) -> list[JobSummary]:
        rows = await self._pool.fetch(Q["page_jobs"], account_id, list(states), start, limit)
        return [row_as(JobSummary, row) for row in rows]

    # Changes while queued (change, delete_queued) -----------------------------------------------------------------

    async def change_queued_job(
        self, account_id: str, job_id: uuid.UUID, revise: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> FaxJob | None:
        """Put ``revise(current request)`` on a job still waiting (attaching_files/pending): it is prepared again.

        The job is locked from the read of its request to the write of the new one. None when there is no such job;
        JobNotChangeable when it is already processing or finished; what ``revise`` raises (nothing changes then).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            current = await conn.fetchrow(Q["lock_job"], account_id, job_id)
            if current is None:
                return None
            if not may("change", current["status"]):
                raise JobNotChangeable(current["status"])
            request = revise(current["request"])
            row = await conn.fetchrow(
                Q["change_queued_job"],
                account_id,
                job_id,
                request,
                request["to_number"],
                request.get("from_number", ""),
                request["retries"],
            )
            await enqueue(conn, new_event(JobSubmitted, job_id=job_id, account_id=account_id))
        # The replaced request's render is never sent now, and its row no longer names it.
        if current["tiff_key"]:
            await delete_quietly(self._blobs, fax_render_keys(current["tiff_key"], current["pages"]))
        return row_as(FaxJob, row)

    async def delete_queued_job(self, account_id: str, job_id: uuid.UUID) -> FaxJob | None:
        """Withdraw a job the transmitter has not claimed, then remove its objects; JobNotChangeable once it has."""
        return await self._delete("delete_queued_job", account_id, job_id)

    # A finished job (resubmit, remove_attachment, delete_finished) ----------------------------------------------

    async def resubmit(self, account_id: str, job_id: uuid.UUID) -> FaxJob | None:
        """A new job with a finished job's request (uploaded documents copied to the new job): attempts start at 0."""
        job = await self.get_job(account_id, job_id, tuple(TRANSITION["resubmit"].sources))
        if job is None:
            return None
        request = dict(job.request)
        document = dict(request.get("document") or {})
        uploads = document.pop("uploads", None) or []
        request["document"] = document
        documents = []
        for key in uploads:
            try:
                documents.append((await self._blobs.get_bytes(key), "application/octet-stream"))
            except BlobNotFound:
                raise DocumentsGone(key) from None
        return await self.submit_job(account_id, request, documents)

    async def remove_job_attachment(self, account_id: str, job_id: uuid.UUID) -> FaxJob | None:
        """Delete a finished job's documents from S3; the record stays, without its ``tiff_key``."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["lock_finished_job"], account_id, job_id)
            if row is None:
                return None
            # Objects first: should a delete fail, the record still names the document and the call can be repeated.
            for key in await self._unshared(conn, row_as(FaxJob, row)):
                await self._blobs.delete(key)
            row = await conn.fetchrow(Q["forget_job_attachment"], job_id)
        return row_as(FaxJob, row)

    async def delete_finished_job(self, account_id: str, job_id: uuid.UUID) -> FaxJob | None:
        """Remove a sent or failed job and then its objects; JobNotChangeable if it is still queued."""
        return await self._delete("delete_finished_job", account_id, job_id)

    async def _delete(self, query: str, account_id: str, job_id: uuid.UUID) -> FaxJob | None:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q[query], account_id, job_id)
            if row is None:
                status = await conn.fetchval(Q["job_status"], account_id, job_id)
                if status is not None:
                    raise JobNotChangeable(status)
                return None
        job = row_as(FaxJob, row)
        await delete_quietly(self._blobs, await self._unshared(self._pool, job))
        return job

    @staticmethod
    async def _unshared(conn: asyncpg.Pool | asyncpg.Connection, job: FaxJob) -> list[str]:
        """The job's objects less the shared uploads another job still names (a VoipNow fax's other recipients).

        Asked after the job's own delete committed, so of two siblings deleted at once the later one removes them.
        """
        keys = []
        for key in job_object_keys(job):
            used_elsewhere = is_shared_upload(key) and await conn.fetchval(
                Q["upload_used_elsewhere"], job.account_id, job.id, key
            )
            if not used_elsewhere:
                keys.append(key)
        return keys
