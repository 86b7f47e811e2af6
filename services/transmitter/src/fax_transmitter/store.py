"""The transmitter's access to job state: the only module here that speaks SQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg

from fax_contracts import TransmissionCompleted, TransmissionFailed
from fax_runtime.outbox import enqueue
from fax_runtime.sql import load_queries

Q = load_queries("fax_transmitter")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TransmitterStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim_attempt(self, job_id: uuid.UUID) -> dict[str, Any] | None:
        """Start the next attempt; None when the job is not waiting to be sent (e.g. a redelivered event)."""
        row = await self._pool.fetchrow(Q["claim_attempt"], job_id)
        return dict(row) if row else None

    async def record_success(self, job_id: uuid.UUID, attempt: int, tx_result: dict[str, Any]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            account_id = await conn.fetchval(Q["attempt_succeeded"], job_id, attempt, tx_result)
            if account_id is not None:
                await enqueue(
                    conn,
                    TransmissionCompleted(
                        event_id=uuid.uuid4(),
                        occurred_at=_now(),
                        job_id=job_id,
                        account_id=account_id,
                        attempt=attempt,
                        pages_sent=tx_result["pages_sent"],
                    ),
                )

    async def record_failure(self, job_id: uuid.UUID, attempt: int, tx_result: dict[str, Any], retry: bool) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            account_id = await conn.fetchval(Q["attempt_failed"], job_id, attempt, tx_result, retry)
            if account_id is not None:
                await enqueue(
                    conn,
                    TransmissionFailed(
                        event_id=uuid.uuid4(),
                        occurred_at=_now(),
                        job_id=job_id,
                        account_id=account_id,
                        attempt=attempt,
                        final=not retry,
                        error=tx_result["error_message"],
                        result_code=tx_result.get("result_code", 0),
                    ),
                )

    async def due_retries(self, retry_delay_s: int) -> list[uuid.UUID]:
        return [r["id"] for r in await self._pool.fetch(Q["due_retries"], retry_delay_s)]
