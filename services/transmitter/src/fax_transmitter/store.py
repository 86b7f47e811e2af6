"""The transmitter's access to job state: the only module here that speaks SQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import msgspec

from fax_contracts import TransmissionCompleted, TransmissionFailed, TransmissionProgress
from fax_runtime.outbox import enqueue
from fax_runtime.sql import load_queries
from fax_transmitter.lines import AnsweredCall

Q = load_queries("fax_transmitter")


class AbandonedAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """An attempt ended because its transmitter is gone; its call, when it was answered, may still be up."""

    job_id: uuid.UUID
    retried: bool
    call: AnsweredCall | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TransmitterStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim_attempt(
        self, job_id: uuid.UUID, *, max_calls_per_account: int, lease_s: int
    ) -> dict[str, Any] | None:
        """Start the next attempt; None when the job is not waiting to be sent (e.g. a redelivered event) or a call
        limit holds it back for now (the account's calls, or a call already up to the same number)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["lock_call_slots"], job_id)
            row = await conn.fetchrow(Q["claim_attempt"], job_id, max_calls_per_account, lease_s)
        return dict(row) if row else None

    async def renew_lease(self, job_id: uuid.UUID, attempt: int, lease_s: int) -> None:
        await self._pool.execute(Q["renew_lease"], job_id, attempt, lease_s)

    async def record_progress(self, job_id: uuid.UUID, attempt: int, pages_sent: int) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["attempt_progress"], job_id, attempt, pages_sent)
            if row is not None:
                await enqueue(
                    conn,
                    TransmissionProgress(
                        event_id=uuid.uuid4(),
                        occurred_at=_now(),
                        job_id=job_id,
                        account_id=row["account_id"],
                        attempt=attempt,
                        pages_sent=pages_sent,
                        pages_total=row["pages"] or 0,
                    ),
                )

    async def record_answered_call(self, job_id: uuid.UUID, attempt: int, call: AnsweredCall) -> None:
        await self._pool.execute(Q["attempt_answered"], job_id, attempt, call)

    async def reap_abandoned_attempts(self, *, predecessor: str | None = None) -> list[AbandonedAttempt]:
        """End the attempts of transmitters that died mid-call: those whose lease ran out and, given
        ``predecessor`` (our line's owner, at start and before we place any call), those its calls belong to."""
        reaped: list[AbandonedAttempt] = []
        async with self._pool.acquire() as conn, conn.transaction():
            for row in await conn.fetch(Q["reap_abandoned_attempts"], predecessor):
                await enqueue(
                    conn,
                    TransmissionFailed(
                        event_id=uuid.uuid4(),
                        occurred_at=_now(),
                        job_id=row["id"],
                        account_id=row["account_id"],
                        attempt=row["attempts"],
                        final=row["status"] == "failed",
                        error="call interrupted: transmitter stopped",
                    ),
                )
                call = msgspec.convert(row["sip_call"], AnsweredCall) if row["sip_call"] is not None else None
                reaped.append(AbandonedAttempt(job_id=row["id"], retried=row["status"] == "pending", call=call))
        return reaped

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

    async def record_failure(
        self, job_id: uuid.UUID, attempt: int, tx_result: dict[str, Any], retry: bool, retry_delay_s: int = 0
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            account_id = await conn.fetchval(Q["attempt_failed"], job_id, attempt, tx_result, retry, retry_delay_s)
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

    async def due_jobs(self, retry_delay_s: int, held_back_s: int) -> list[uuid.UUID]:
        return [r["id"] for r in await self._pool.fetch(Q["due_jobs"], retry_delay_s, held_back_s)]
