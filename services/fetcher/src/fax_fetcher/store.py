"""The fetcher's access to job state: the only module here that speaks SQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from fax_contracts import DocumentFailed, DocumentReady
from fax_runtime.outbox import enqueue
from fax_runtime.sql import load_queries

Q = load_queries("fax_fetcher")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FetcherStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def job_to_prepare(self, job_id: uuid.UUID) -> dict[str, Any] | None:
        """The job if its document still has to be prepared; None if that already happened (a redelivery)."""
        row = await self._pool.fetchrow(Q["job_to_prepare"], job_id)
        return dict(row) if row else None

    async def mark_ready(self, job_id: uuid.UUID, tiff_key: str, pages: int, request_revision: int) -> bool:
        """Record the prepared document and queue DocumentReady; False if the job was no longer waiting for it: its
        request was changed since ``request_revision`` was read, another render of it was recorded, or it is gone.

        The PDF copy and the previews need no columns: they are stored beside the TIFF, one per page
        (`fax_runtime.blobs.fax_pdf_key`, `fax_preview_key`).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            account_id = await conn.fetchval(Q["document_ready"], job_id, tiff_key, pages, request_revision)
            if account_id is None:
                return False
            await enqueue(
                conn,
                DocumentReady(
                    event_id=uuid.uuid4(),
                    occurred_at=_now(),
                    job_id=job_id,
                    account_id=account_id,
                    tiff_key=tiff_key,
                    pages=pages,
                ),
            )
        return True

    async def mark_failed(self, job_id: uuid.UUID, error: str, request_revision: int) -> bool:
        """End the job failed with `error` and queue DocumentFailed; False if it was no longer waiting."""
        async with self._pool.acquire() as conn, conn.transaction():
            account_id = await conn.fetchval(Q["document_failed"], job_id, error, request_revision)
            if account_id is None:
                return False
            await enqueue(
                conn,
                DocumentFailed(
                    event_id=uuid.uuid4(), occurred_at=_now(), job_id=job_id, account_id=account_id, error=error
                ),
            )
        return True

    # Stored documents (Fax.to files) -------------------------------------------------------------------------

    async def preview_pending(self, document_id: int) -> bool:
        return await self._pool.fetchval(Q["preview_pending"], document_id)

    async def preview_ready(self, document_id: int, pages: int) -> bool:
        """Record the drawn previews; False if the document was deleted meanwhile."""
        return await self._pool.fetchval(Q["preview_ready"], document_id, pages) is not None

    async def preview_failed(self, document_id: int, error: str) -> None:
        await self._pool.execute(Q["preview_failed"], document_id, error)
