"""The fetcher's own SQL: the previews of stored documents (Fax.to files). A job's document is recorded through
``fax_jobs`` (``DocumentJobStore``), the home of the job's life cycle."""

from __future__ import annotations

import asyncpg

from fax_runtime.sql import load_queries

Q = load_queries("fax_fetcher")


class FetcherStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def preview_pending(self, document_id: int) -> bool:
        return await self._pool.fetchval(Q["preview_pending"], document_id)

    async def preview_ready(self, document_id: int, pages: int) -> bool:
        """Record the drawn previews; False if the document was deleted meanwhile."""
        return await self._pool.fetchval(Q["preview_ready"], document_id, pages) is not None

    async def preview_failed(self, document_id: int, error: str) -> None:
        await self._pool.execute(Q["preview_failed"], document_id, error)
