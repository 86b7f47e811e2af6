"""Postgres and S3 behind the Kazoo faxes API: jobs with their uploads and events, inbound faxes, the smtplog.

Nothing accepted is lost: uploaded documents are in S3 before the job row and its ``fax.job.submitted`` event
commit (together, in one transaction), and a failed commit removes the objects again.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from fax_api.faxes import CHANGEABLE_STATES, job_object_keys
from fax_contracts import JobSubmitted, encode_event, routing_key
from fax_runtime.blobs import BlobNotFound, BlobStore, fax_render_keys
from fax_runtime.outbox import NOTIFY_CHANNEL, enqueue
from fax_runtime.sql import load_queries
from fax_runtime.telemetry import current_trace_headers

Q = load_queries("fax_api")
log = logging.getLogger(__name__)


class JobNotChangeable(Exception):
    """The job exists but is already being sent or finished: it may no longer be changed or removed."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class DocumentsGone(Exception):
    """A finished job's uploaded documents were removed, so it cannot be sent again."""


def upload_key(job_id: uuid.UUID, index: int) -> str:
    return f"jobs/{job_id}/upload-{index}"


def shared_upload_key(account_id: str, batch_id: uuid.UUID, index: int) -> str:
    """An upload several jobs of one account send (one VoipNow request to many recipients)."""
    return f"shared/{account_id}/{batch_id}/upload-{index}"


def is_shared_upload(key: str) -> bool:
    return key.startswith("shared/")


async def _submitted(conn: asyncpg.Connection, job_id: uuid.UUID, account_id: str) -> None:
    await enqueue(
        conn,
        JobSubmitted(event_id=uuid.uuid4(), occurred_at=dt.datetime.now(dt.UTC), job_id=job_id, account_id=account_id),
    )


class ApiStore:
    def __init__(self, pool: asyncpg.Pool | asyncpg.Connection, blobs: BlobStore | None = None) -> None:
        # A Connection works too: submit_job then runs inside the caller's transaction (billing dialects do this).
        self._pool = pool
        self._blobs = blobs

    @property
    def pool(self) -> asyncpg.Pool:
        assert isinstance(self._pool, asyncpg.Pool), "ApiStore was built on a connection"
        return self._pool

    @property
    def blobs(self) -> BlobStore:
        assert self._blobs is not None, "ApiStore was built without a BlobStore"
        return self._blobs

    async def ping(self) -> bool:
        return await self._pool.fetchval("SELECT true")

    async def job_counts(self) -> tuple[dict[str, int], int]:
        """Jobs by state and outbox rows not yet published (for /metrics)."""
        rows = await self._pool.fetch(Q["jobs_by_state"])
        return {row["status"]: row["jobs"] for row in rows}, await self._pool.fetchval(Q["outbox_unsent"])

    # Outbound jobs ---------------------------------------------------------------------------------------------

    async def submit_job(
        self,
        account_id: str,
        request: dict[str, Any],
        documents: Sequence[tuple[bytes, str]] = (),
        *,
        job_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        """Store a new job and its event in one statement; ``documents`` ((bytes, content type)) go to S3 first.

        A job with uploaded documents starts ``attaching_files`` (the fetcher makes it ``pending`` once its fax is
        rendered), one with a document URL starts ``pending``, as in Kazoo.
        """
        job_id = job_id or uuid.uuid4()
        keys = await self.put_uploads([upload_key(job_id, index) for index in range(len(documents))], documents)
        try:
            return await self.insert_job(account_id, job_id, request, keys)
        except BaseException:
            await self.remove_objects(keys)
            raise

    async def put_uploads(self, keys: Sequence[str], documents: Sequence[tuple[bytes, str]]) -> list[str]:
        """Store ``documents`` under ``keys``; all or none (what was stored is removed again on failure)."""
        stored: list[str] = []
        try:
            for key, (body, content_type) in zip(keys, documents, strict=True):
                await self.blobs.put_bytes(key, body, content_type)
                stored.append(key)
        except BaseException:
            await self.remove_objects(stored)
            raise
        return stored

    async def insert_job(
        self, account_id: str, job_id: uuid.UUID, request: dict[str, Any], uploads: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The job row and its ``fax.job.submitted`` event, in one statement, for documents already in S3."""
        if uploads:
            request = {**request, "document": {**request["document"], "uploads": list(uploads)}}
        event = JobSubmitted(
            event_id=uuid.uuid4(), occurred_at=dt.datetime.now(dt.UTC), job_id=job_id, account_id=account_id
        )
        row = await self._pool.fetchrow(
            Q["submit_job"],
            job_id,
            account_id,
            "attaching_files" if uploads else "pending",
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
        return dict(row)

    async def get_job(self, account_id: str, job_id: uuid.UUID, states: Sequence[str]) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(Q["get_job"], account_id, job_id, list(states))
        return dict(row) if row else None

    async def page_jobs(
        self, account_id: str, states: Sequence[str], start: uuid.UUID | None, limit: int
    ) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._pool.fetch(Q["page_jobs"], account_id, list(states), start, limit)]

    async def replace_queued_job(
        self, account_id: str, job_id: uuid.UUID, revise: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Put ``revise(current request)`` on a job still waiting (attaching_files/pending): it is prepared again.

        The job is locked from the read of its request to the write of the new one. None when there is no such job;
        JobNotChangeable when it is already processing or finished; what ``revise`` raises (nothing changes then).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            current = await conn.fetchrow(Q["lock_job"], account_id, job_id)
            if current is None:
                return None
            if current["status"] not in CHANGEABLE_STATES:
                raise JobNotChangeable(current["status"])
            request = revise(current["request"])
            status = "attaching_files" if request["document"].get("uploads") else "pending"
            row = await conn.fetchrow(
                Q["replace_queued_job"],
                account_id,
                job_id,
                request,
                request["to_number"],
                request.get("from_number", ""),
                request["retries"],
                status,
            )
            await _submitted(conn, job_id, account_id)
        # The replaced request's render is never sent now, and its row no longer names it.
        if current["tiff_key"]:
            await self.remove_objects(fax_render_keys(current["tiff_key"], current["pages"]))
        return dict(row)

    async def delete_job(self, account_id: str, job_id: uuid.UUID, states: Sequence[str]) -> dict[str, Any] | None:
        """Remove a job in one of ``states`` and then its objects; JobNotChangeable if it is in another state."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["delete_job"], account_id, job_id, list(states))
            if row is None:
                await self._explain_missing(conn, account_id, job_id)
                return None
        job = dict(row)
        await self.remove_objects(await self._unshared(self._pool, job))
        return job

    async def remove_job_attachment(self, account_id: str, job_id: uuid.UUID) -> dict[str, Any] | None:
        """Delete a finished job's documents from S3; the record stays, without its ``tiff_key``."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["lock_finished_job"], account_id, job_id)
            if row is None:
                return None
            # Objects first: should a delete fail, the record still names the document and the call can be repeated.
            for key in await self._unshared(conn, dict(row)):
                await self.blobs.delete(key)
            row = await conn.fetchrow(Q["forget_job_attachment"], job_id)
        return dict(row)

    async def resubmit(self, account_id: str, job_id: uuid.UUID) -> dict[str, Any] | None:
        """A new job with a finished job's request (uploaded documents copied to the new job): attempts start at 0."""
        job = await self.get_job(account_id, job_id, ("completed", "failed"))
        if job is None:
            return None
        request = dict(job["request"])
        document = dict(request.get("document") or {})
        uploads = document.pop("uploads", None) or []
        request["document"] = document
        documents = []
        for key in uploads:
            try:
                documents.append((await self.blobs.get_bytes(key), "application/octet-stream"))
            except BlobNotFound:
                raise DocumentsGone(key) from None
        return await self.submit_job(account_id, request, documents)

    async def read_object(self, key: str) -> bytes | None:
        try:
            return await self.blobs.get_bytes(key)
        except BlobNotFound:
            return None

    @staticmethod
    async def _explain_missing(conn: asyncpg.Connection, account_id: str, job_id: uuid.UUID) -> None:
        status = await conn.fetchval(Q["job_status"], account_id, job_id)
        if status is not None:
            raise JobNotChangeable(status)

    @staticmethod
    async def _unshared(conn: asyncpg.Pool | asyncpg.Connection, job: dict[str, Any]) -> list[str]:
        """The job's objects less the shared uploads another job still names (a VoipNow fax's other recipients).

        Asked after the job's own delete committed, so of two siblings deleted at once the later one removes them.
        """
        keys = []
        for key in job_object_keys(job):
            used_elsewhere = is_shared_upload(key) and await conn.fetchval(
                Q["upload_used_elsewhere"], job["account_id"], job["id"], key
            )
            if not used_elsewhere:
                keys.append(key)
        return keys

    async def remove_objects(self, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                await self.blobs.delete(key)
            except Exception:  # the record is what matters; an orphaned object is logged for the operator
                log.warning("could not delete object %s", key, exc_info=True)

    # Inbound faxes (inbox: received/failed, incoming: receiving) -------------------------------------------------

    async def page_inbound(
        self, account_id: str, states: Sequence[str], start: uuid.UUID | None, limit: int
    ) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._pool.fetch(Q["page_inbound"], account_id, list(states), start, limit)]

    async def get_inbound(self, account_id: str, fax_id: uuid.UUID, states: Sequence[str]) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(Q["get_inbound"], account_id, fax_id, list(states))
        return dict(row) if row else None

    async def delete_inbound(self, account_id: str, fax_id: uuid.UUID, states: Sequence[str]) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(Q["delete_inbound"], account_id, fax_id, list(states))
        if row is None:
            return None
        fax = dict(row)
        await self.remove_objects([k for k in (fax["tiff_key"], fax["pdf_key"]) if k])
        return fax

    async def remove_inbound_attachment(
        self, account_id: str, fax_id: uuid.UUID, states: Sequence[str]
    ) -> dict[str, Any] | None:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["lock_inbound"], account_id, fax_id, list(states))
            if row is None:
                return None
            for key in (row["tiff_key"], row["pdf_key"]):
                if key:
                    await self.blobs.delete(key)
            row = await conn.fetchrow(Q["forget_inbound_attachment"], fax_id)
        return dict(row)

    # SMTP log ----------------------------------------------------------------------------------------------------

    async def page_smtplog(self, account_id: str, start: uuid.UUID | None, limit: int) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._pool.fetch(Q["page_smtplog"], account_id, start, limit)]

    async def get_smtplog(self, account_id: str, entry_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(Q["get_smtplog"], account_id, entry_id)
        return dict(row) if row else None
