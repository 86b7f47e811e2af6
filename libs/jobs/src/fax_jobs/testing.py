"""In-memory stand-ins for the job stores and S3, for the fast unit tests of the workers' handlers.

``MemoryJobs`` keeps jobs as plain records and moves them only as ``fax_jobs.lifecycle``'s table allows, with the
guards the SQL blocks have (request_revision, tiff_key, the current attempt, call limits, leases); the events a
transition queues land in ``outbox``. ``MemoryBlobs`` is a bucket in a dict.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import msgspec

from fax_contracts import DocumentFailed, DocumentReady, Event
from fax_jobs.attempts import ABANDONED, attempt_failed, attempt_progress, attempt_succeeded
from fax_jobs.events import new_event
from fax_jobs.lifecycle import ATTACHING_FILES, COMPLETED, FAILED, PENDING, PROCESSING, TRANSITION, JobState, may
from fax_jobs.rows import AbandonedAttempt, ClaimedAttempt, JobToPrepare, RecordedRender, StalledDocument
from fax_runtime.blobs import BlobNotFound

CallT = TypeVar("CallT")


@dataclass
class JobRecord:
    """A row of ``fax_jobs``, the columns the transitions read and write."""

    id: uuid.UUID
    account_id: str
    status: JobState
    request: dict[str, Any]
    to_number: str
    from_number: str = ""
    retries: int = 1
    attempts: int = 0
    request_revision: int = 1
    tiff_key: str | None = None
    pages: int | None = None
    tx_result: dict[str, Any] = field(default_factory=dict)
    error_message: str = ""
    lease_expires_at: float | None = None
    next_attempt_at: float | None = None
    sip_call: tuple[int, Any] | None = None  # (attempt, call)
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    updated_at: float = 0.0


class MemoryJobs(Generic[CallT]):
    """DocumentJobs and AttemptJobs in memory. ``clock`` (seconds) decides leases and retry times."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.jobs: dict[uuid.UUID, JobRecord] = {}
        self.outbox: list[Event] = []
        self._clock = clock

    def _move(self, job: JobRecord, event: str, to: JobState | None = None) -> None:
        """Make ``event`` happen to ``job``: only from the states, and into the states, the life cycle allows."""
        transition = TRANSITION[event]
        assert may(event, job.status), f"{event} in {job.status}"
        if to is not None:
            assert transition.targets is not None and to in transition.targets, f"{event} into {to}"
            job.status = to
        job.updated_at = self._clock()

    # Submission and changes (what the API does), to set up a test -----------------------------------------------

    def submit(
        self, account_id: str, request: dict[str, Any], *, retries: int = 1, job_id: uuid.UUID | None = None
    ) -> uuid.UUID:
        uploads = (request.get("document") or {}).get("uploads")
        job = JobRecord(
            id=job_id or uuid.uuid4(),
            account_id=account_id,
            status=ATTACHING_FILES if uploads else PENDING,
            request=request,
            to_number=request["to_number"],
            from_number=request.get("from_number", ""),
            retries=retries,
            updated_at=self._clock(),
        )
        assert job.status in (TRANSITION["submit"].targets or ())
        self.jobs[job.id] = job
        return job.id

    def change(self, job_id: uuid.UUID, request: dict[str, Any]) -> None:
        """A queued job's new request (PUT/POST/PATCH): its document is prepared again."""
        job = self.jobs[job_id]
        self._move(job, "change", ATTACHING_FILES if (request.get("document") or {}).get("uploads") else PENDING)
        job.request, job.request_revision = request, job.request_revision + 1
        job.tiff_key, job.pages, job.attempts = None, None, 0

    # DocumentJobs -------------------------------------------------------------------------------------------------

    async def job_to_prepare(self, job_id: uuid.UUID) -> JobToPrepare | None:
        job = self.jobs.get(job_id)
        if job is None or not may("document_ready", job.status) or job.tiff_key is not None:
            return None
        return msgspec.convert(job, JobToPrepare, from_attributes=True)

    def _waiting_for(self, job_id: uuid.UUID, request_revision: int) -> JobRecord | None:
        job = self.jobs.get(job_id)
        prepared = job is None or job.tiff_key is not None or job.request_revision != request_revision
        return None if prepared or not may("document_ready", job.status) else job

    async def document_ready(self, job_id: uuid.UUID, tiff_key: str, pages: int, request_revision: int) -> bool:
        job = self._waiting_for(job_id, request_revision)
        if job is None:
            return False
        self._move(job, "document_ready", PENDING)
        job.tiff_key, job.pages = tiff_key, pages
        self.outbox.append(
            new_event(DocumentReady, job_id=job_id, account_id=job.account_id, tiff_key=tiff_key, pages=pages)
        )
        return True

    async def recorded_render(self, job_id: uuid.UUID) -> RecordedRender | None:
        job = self.jobs.get(job_id)
        if job is None or job.tiff_key is None:
            return None
        return RecordedRender(tiff_key=job.tiff_key, pages=job.pages)

    async def document_failed(self, job_id: uuid.UUID, error: str, request_revision: int) -> bool:
        job = self._waiting_for(job_id, request_revision)
        if job is None:
            return False
        self._move(job, "document_failed", FAILED)
        job.error_message = error
        job.tx_result = {**job.tx_result, "success": False, "error_message": error}
        self.outbox.append(new_event(DocumentFailed, job_id=job_id, account_id=job.account_id, error=error))
        return True

    async def stalled_documents(self, after_s: int, limit: int = 100) -> list[StalledDocument]:
        now = self._clock()
        stalled = [
            job
            for job in self.jobs.values()
            if may("redrive_document", job.status) and job.tiff_key is None and job.updated_at < now - after_s
        ]
        taken = sorted(stalled, key=lambda job: job.updated_at)[:limit]
        for job in taken:
            self._move(job, "redrive_document")  # stamped: not taken again for after_s
        return [StalledDocument(id=job.id, account_id=job.account_id) for job in taken]

    # AttemptJobs --------------------------------------------------------------------------------------------------

    def _attempt(self, job_id: uuid.UUID, attempt: int) -> JobRecord | None:
        """The job if ``attempt`` is still its current one, on the line."""
        job = self.jobs.get(job_id)
        return job if job is not None and job.status == PROCESSING and job.attempts == attempt else None

    async def claim_attempt(
        self, job_id: uuid.UUID, *, max_calls_per_account: int, lease_s: int
    ) -> ClaimedAttempt | None:
        job = self.jobs.get(job_id)
        if job is None or not may("claim", job.status) or job.tiff_key is None or job.attempts >= job.retries:
            return None
        on_line = [other for other in self.jobs.values() if other.status == PROCESSING]
        if sum(other.account_id == job.account_id for other in on_line) >= max_calls_per_account or any(
            other.to_number == job.to_number for other in on_line
        ):
            return None
        self._move(job, "claim", PROCESSING)
        job.attempts += 1
        job.lease_expires_at = self._clock() + lease_s
        job.tx_result = {**job.tx_result, "pages_sent": 0}
        return msgspec.convert(job, ClaimedAttempt, from_attributes=True)

    async def renew_lease(self, job_id: uuid.UUID, attempt: int, lease_s: int) -> None:
        if job := self._attempt(job_id, attempt):
            job.lease_expires_at = self._clock() + lease_s

    async def record_progress(self, job_id: uuid.UUID, attempt: int, pages_sent: int) -> None:
        if job := self._attempt(job_id, attempt):
            self._move(job, "progress")
            job.tx_result = {**job.tx_result, "pages_sent": pages_sent}
            self.outbox.append(attempt_progress(job_id, job.account_id, attempt, pages_sent, job.pages))

    async def record_answered_call(self, job_id: uuid.UUID, attempt: int, call: CallT) -> None:
        if job := self._attempt(job_id, attempt):
            job.sip_call = (attempt, call)

    async def reap_abandoned_attempts(
        self, *, predecessor: str | None = None, running: Collection[uuid.UUID] = ()
    ) -> list[AbandonedAttempt[CallT]]:
        reaped: list[AbandonedAttempt[CallT]] = []
        for job in self.jobs.values():
            call = job.sip_call[1] if job.sip_call and job.sip_call[0] == job.attempts else None
            ours = call is not None and _contact(call) == predecessor
            lease_over = job.lease_expires_at is not None and job.lease_expires_at < self._clock()
            if job.status != PROCESSING or not (lease_over or ours) or job.id in running:
                continue
            if job.pages and job.tx_result.get("pages_sent", 0) >= job.pages:  # the far end confirmed every page
                self._move(job, "abandoned", COMPLETED)
                job.tx_result = {**job.tx_result, "success": True, "error_message": ""}
                job.error_message, job.lease_expires_at = "", None
                self.outbox.append(attempt_succeeded(job.id, job.account_id, job.attempts, job.tx_result))
                reaped.append(AbandonedAttempt(job_id=job.id, retried=False, call=call, completed=True))
                continue
            self._end_attempt(job, "abandoned", {**job.tx_result, "success": False, "error_message": ABANDONED})
            retried = job.status == PENDING
            self.outbox.append(
                attempt_failed(job.id, job.account_id, job.attempts, {"error_message": ABANDONED}, retried)
            )
            reaped.append(AbandonedAttempt(job_id=job.id, retried=retried, call=call))
        return reaped

    def _end_attempt(self, job: JobRecord, event: str, tx_result: dict[str, Any], retry: bool | None = None) -> None:
        if retry is None:
            retry = job.attempts < job.retries
        self._move(job, event, PENDING if retry else FAILED)
        job.tx_result, job.error_message, job.lease_expires_at = tx_result, tx_result["error_message"], None

    async def record_success(self, job_id: uuid.UUID, attempt: int, tx_result: dict[str, Any]) -> None:
        if job := self._attempt(job_id, attempt):
            self._move(job, "succeeded", COMPLETED)
            job.tx_result, job.error_message, job.lease_expires_at = tx_result, "", None
            self.outbox.append(attempt_succeeded(job_id, job.account_id, attempt, tx_result))

    async def record_failure(
        self, job_id: uuid.UUID, attempt: int, tx_result: dict[str, Any], retry: bool, retry_delay_s: int = 0
    ) -> None:
        if job := self._attempt(job_id, attempt):
            self._end_attempt(job, "failed", tx_result, retry)
            job.next_attempt_at = self._clock() + retry_delay_s if retry else None
            self.outbox.append(attempt_failed(job_id, job.account_id, attempt, tx_result, retry))

    async def due_jobs(self, retry_delay_s: int, held_back_s: int) -> list[uuid.UUID]:
        now = self._clock()

        def due(job: JobRecord) -> bool:
            if job.attempts > 0:
                return (job.next_attempt_at or job.updated_at + retry_delay_s) <= now
            return job.updated_at <= now - held_back_s

        ready = [j for j in self.jobs.values() if may("claim", j.status) and j.tiff_key and j.attempts < j.retries]
        return [job.id for job in sorted(ready, key=lambda job: job.updated_at) if due(job)][:100]


def _contact(call: Any) -> str | None:
    """The SIP contact an answered call was made from (``call.dialog.contact``), as the SQL reads it from the JSON."""
    return (msgspec.to_builtins(call).get("dialog") or {}).get("contact")


class MemoryBlobs:
    """A BlobStore in a dict: ``objects`` maps keys to bytes."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def ensure_bucket(self) -> None:
        pass

    async def ping(self) -> bool:
        return True

    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = bytes(data)

    async def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = await asyncio.to_thread(path.read_bytes)

    async def get_bytes(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise BlobNotFound(key) from None

    async def download(self, key: str, path: Path) -> None:
        await asyncio.to_thread(path.write_bytes, await self.get_bytes(key))

    async def size(self, key: str) -> int | None:
        body = self.objects.get(key)
        return None if body is None else len(body)

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)
