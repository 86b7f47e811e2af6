"""A job's document, as the fetcher prepares it (fax_jobs.lifecycle: document_ready, document_failed,
redrive_document)."""

from __future__ import annotations

import uuid
from typing import Protocol

import asyncpg

from fax_contracts import DocumentFailed, DocumentReady
from fax_jobs.events import new_event
from fax_jobs.rows import JobToPrepare, RecordedRender, StalledDocument
from fax_runtime.outbox import enqueue
from fax_runtime.sql import load_queries, row_as

Q = load_queries("fax_jobs", "sql/documents.sql")


class DocumentJobs(Protocol):
    """What preparing a job's document needs of the job."""

    async def job_to_prepare(self, job_id: uuid.UUID) -> JobToPrepare | None:
        """The job if its document still has to be prepared; None if that already happened (a redelivery)."""
        ...

    async def document_ready(self, job_id: uuid.UUID, tiff_key: str, pages: int, request_revision: int) -> bool:
        """Record the prepared document and queue DocumentReady; False if the job was no longer waiting for it: its
        request was changed since ``request_revision`` was read, another render of it was recorded, or it is gone.

        The PDF copy and the previews need no columns: they are stored beside the TIFF, one per page
        (`fax_runtime.blobs.fax_pdf_key`, `fax_preview_key`), after the document is recorded ready.
        """
        ...

    async def recorded_render(self, job_id: uuid.UUID) -> RecordedRender | None:
        """The render the job's row names, whatever the job's state; None if none (not prepared yet, changed since,
        its attachment removed) or the job is gone. A change or delete in flight is waited for: what this answers
        is what the row says once it committed, and whoever replaced a render removes its objects after that."""
        ...

    async def document_failed(self, job_id: uuid.UUID, error: str, request_revision: int) -> bool:
        """End the job failed with ``error`` and queue DocumentFailed; False if it was no longer waiting."""
        ...

    async def stalled_documents(self, after_s: int, limit: int = 100) -> list[StalledDocument]:
        """Take queued jobs whose document nobody prepared ``after_s`` seconds after they were submitted, changed or
        last taken here: their ``fax.job.submitted`` was lost. Each is taken by one caller, and not again for
        ``after_s`` seconds."""
        ...


class DocumentJobStore:
    """DocumentJobs in Postgres."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def job_to_prepare(self, job_id: uuid.UUID) -> JobToPrepare | None:
        row = await self._pool.fetchrow(Q["job_to_prepare"], job_id)
        return row_as(JobToPrepare, row) if row else None

    async def document_ready(self, job_id: uuid.UUID, tiff_key: str, pages: int, request_revision: int) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            account_id = await conn.fetchval(Q["document_ready"], job_id, tiff_key, pages, request_revision)
            if account_id is None:
                return False
            await enqueue(
                conn,
                new_event(DocumentReady, job_id=job_id, account_id=account_id, tiff_key=tiff_key, pages=pages),
            )
        return True

    async def recorded_render(self, job_id: uuid.UUID) -> RecordedRender | None:
        row = await self._pool.fetchrow(Q["recorded_render"], job_id)
        return row_as(RecordedRender, row) if row else None

    async def document_failed(self, job_id: uuid.UUID, error: str, request_revision: int) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            account_id = await conn.fetchval(Q["document_failed"], job_id, error, request_revision)
            if account_id is None:
                return False
            await enqueue(conn, new_event(DocumentFailed, job_id=job_id, account_id=account_id, error=error))
        return True

    async def stalled_documents(self, after_s: int, limit: int = 100) -> list[StalledDocument]:
        return [row_as(StalledDocument, row) for row in await self._pool.fetch(Q["stalled_documents"], after_s, limit)]
