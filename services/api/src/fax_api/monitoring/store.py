"""What the API's health and metrics read from Postgres (SQL in ``monitoring/queries.sql``)."""

from __future__ import annotations

import asyncpg

from fax_runtime.sql import load_queries

Q = load_queries("fax_api.monitoring", "queries.sql")


class MonitoringStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ping(self) -> bool:
        return await self._pool.fetchval(Q["ping"])

    async def job_counts(self) -> tuple[dict[str, int], int]:
        """Jobs by state, and outbox rows not yet published."""
        rows = await self._pool.fetch(Q["jobs_by_state"])
        return {row["status"]: row["jobs"] for row in rows}, await self._pool.fetchval(Q["outbox_unsent"])
