"""The attempts to send a job, as the transmitter makes them (fax_jobs.lifecycle: claim, renew_lease, progress,
answered, succeeded, failed, abandoned).

An attempt's answered call is kept as data (``CallT``, a msgspec Struct of the transmitter's: its SIP dialog and
media ports), so that whoever finds the attempt abandoned can hang the call up; this library only stores it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
import msgspec

from fax_contracts import Event, TransmissionCompleted, TransmissionFailed, TransmissionProgress
from fax_jobs.events import new_event
from fax_jobs.lifecycle import COMPLETED, PENDING
from fax_jobs.rows import AbandonedAttempt, ClaimedAttempt
from fax_runtime.outbox import enqueue
from fax_runtime.sql import load_queries, row_as

Q = load_queries("fax_jobs", "sql/attempts.sql")

CallT = TypeVar("CallT")

ABANDONED = "call interrupted: transmitter stopped"  # the error reap_abandoned_attempts records


class AttemptJobs(Protocol[CallT]):
    """What sending a job needs of it."""

    async def claim_attempt(
        self, job_id: uuid.UUID, *, max_calls_per_account: int, lease_s: int
    ) -> ClaimedAttempt | None:
        """Start the next attempt; None when the job is not waiting to be sent (e.g. a redelivered event) or a call
        limit holds it back for now (the account's calls, or a call already up to the same number)."""
        ...

    async def renew_lease(self, job_id: uuid.UUID, attempt: int, lease_s: int) -> None: ...

    async def record_progress(self, job_id: uuid.UUID, attempt: int, pages_sent: int) -> None:
        """The pages the far end confirmed so far, with a TransmissionProgress event."""
        ...

    async def record_answered_call(self, job_id: uuid.UUID, attempt: int, call: CallT) -> None: ...

    async def reap_abandoned_attempts(
        self, *, predecessor: str | None = None, running: Collection[uuid.UUID] = ()
    ) -> list[AbandonedAttempt[CallT]]:
        """End the attempts of transmitters that died mid-call: those whose lease ran out and, given
        ``predecessor`` (our line's owner, at start and before we place any call), those its calls belong to; never
        those of the jobs in ``running`` (the caller's own calls). An attempt whose every page the far end confirmed
        ends the job completed; any other is a failed attempt, retried if attempts remain."""
        ...

    async def record_success(self, job_id: uuid.UUID, attempt: int, tx_result: dict[str, Any]) -> None: ...

    async def record_failure(
        self, job_id: uuid.UUID, attempt: int, tx_result: dict[str, Any], retry: bool, retry_delay_s: int = 0
    ) -> None:
        """End the attempt failed: back to pending after ``retry_delay_s`` when ``retry``, else the job fails."""
        ...

    async def due_jobs(self, retry_delay_s: int, held_back_s: int) -> list[uuid.UUID]:
        """Jobs whose retry time has come, and ready jobs a call limit held back ``held_back_s`` ago."""
        ...


class AttemptJobStore(Generic[CallT]):
    """AttemptJobs in Postgres; answered calls are ``call_type``."""

    def __init__(self, pool: asyncpg.Pool, call_type: type[CallT]) -> None:
        self._pool = pool
        self._call_type = call_type

    async def claim_attempt(
        self, job_id: uuid.UUID, *, max_calls_per_account: int, lease_s: int
    ) -> ClaimedAttempt | None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["lock_call_slots"], job_id)
            row = await conn.fetchrow(Q["claim_attempt"], job_id, max_calls_per_account, lease_s)
        return row_as(ClaimedAttempt, row) if row else None

    async def renew_lease(self, job_id: uuid.UUID, attempt: int, lease_s: int) -> None:
        await self._pool.execute(Q["renew_lease"], job_id, attempt, lease_s)

    async def record_progress(self, job_id: uuid.UUID, attempt: int, pages_sent: int) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["attempt_progress"], job_id, attempt, pages_sent)
            if row is not None:
                await enqueue(conn, attempt_progress(job_id, row["account_id"], attempt, pages_sent, row["pages"]))

    async def record_answered_call(self, job_id: uuid.UUID, attempt: int, call: CallT) -> None:
        await self._pool.execute(Q["attempt_answered"], job_id, attempt, call)

    async def reap_abandoned_attempts(
        self, *, predecessor: str | None = None, running: Collection[uuid.UUID] = ()
    ) -> list[AbandonedAttempt[CallT]]:
        reaped: list[AbandonedAttempt[CallT]] = []
        async with self._pool.acquire() as conn, conn.transaction():
            for row in await conn.fetch(Q["reap_abandoned_attempts"], predecessor, list(running)):
                job_id, account_id, attempt = row["id"], row["account_id"], row["attempts"]
                completed, retried = row["status"] == COMPLETED, row["status"] == PENDING
                if completed:
                    event: Event = attempt_succeeded(job_id, account_id, attempt, row["tx_result"])
                else:
                    event = attempt_failed(job_id, account_id, attempt, {"error_message": ABANDONED}, retried)
                await enqueue(conn, event)
                call = msgspec.convert(row["sip_call"], self._call_type) if row["sip_call"] is not None else None
                reaped.append(AbandonedAttempt(job_id=job_id, retried=retried, call=call, completed=completed))
        return reaped

    async def record_success(self, job_id: uuid.UUID, attempt: int, tx_result: dict[str, Any]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            account_id = await conn.fetchval(Q["attempt_succeeded"], job_id, attempt, tx_result)
            if account_id is not None:
                await enqueue(conn, attempt_succeeded(job_id, account_id, attempt, tx_result))

    async def record_failure(
        self, job_id: uuid.UUID, attempt: int, tx_result: dict[str, Any], retry: bool, retry_delay_s: int = 0
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            account_id = await conn.fetchval(Q["attempt_failed"], job_id, attempt, tx_result, retry, retry_delay_s)
            if account_id is not None:
                await enqueue(conn, attempt_failed(job_id, account_id, attempt, tx_result, retry))

    async def due_jobs(self, retry_delay_s: int, held_back_s: int) -> list[uuid.UUID]:
        return [r["id"] for r in await self._pool.fetch(Q["due_jobs"], retry_delay_s, held_back_s)]


# The events an attempt's transitions queue (the in-memory store of fax_jobs.testing queues the same).


def attempt_progress(
    job_id: uuid.UUID, account_id: str, attempt: int, pages_sent: int, pages: int | None
) -> TransmissionProgress:
    return new_event(
        TransmissionProgress,
        job_id=job_id,
        account_id=account_id,
        attempt=attempt,
        pages_sent=pages_sent,
        pages_total=pages or 0,
    )


def attempt_succeeded(
    job_id: uuid.UUID, account_id: str, attempt: int, tx_result: dict[str, Any]
) -> TransmissionCompleted:
    return new_event(
        TransmissionCompleted, job_id=job_id, account_id=account_id, attempt=attempt, pages_sent=tx_result["pages_sent"]
    )


def attempt_failed(
    job_id: uuid.UUID, account_id: str, attempt: int, tx_result: dict[str, Any], retry: bool
) -> TransmissionFailed:
    """The event of a failed attempt; ``final`` unless it is retried."""
    return new_event(
        TransmissionFailed,
        job_id=job_id,
        account_id=account_id,
        attempt=attempt,
        final=not retry,
        error=tx_result["error_message"],
        result_code=tx_result.get("result_code", 0),
    )
