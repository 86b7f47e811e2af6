"""The API's access to Postgres: the only module here that speaks SQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import asyncpg

from fax_contracts import JobSubmitted
from fax_runtime.outbox import enqueue
from fax_runtime.sql import load_queries

Q = load_queries("fax_api")


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class ApiStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ping(self) -> bool:
        return await self._pool.fetchval("SELECT true")

    async def account_for_token(self, token: str) -> str | None:
        return await self._pool.fetchval(Q["account_for_token"], token_digest(token))

    async def account_exists(self, account_id: str) -> bool:
        return await self._pool.fetchval(Q["account_exists"], account_id)

    async def submit_job(self, account_id: str, request: dict[str, Any], status: str = "pending") -> dict[str, Any]:
        """Store a new job and its ``fax.job.submitted`` event in one transaction."""
        job_id = uuid.uuid4()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                Q["insert_job"],
                job_id,
                account_id,
                status,
                request,
                request["to_number"],
                request.get("from_number", ""),
                request["retries"],
            )
            await enqueue(
                conn,
                JobSubmitted(
                    event_id=uuid.uuid4(), occurred_at=dt.datetime.now(dt.UTC), job_id=job_id, account_id=account_id
                ),
            )
        return dict(row)

    async def get_job(self, account_id: str, job_id: uuid.UUID, states: tuple[str, ...]) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(Q["get_job"], account_id, job_id, list(states))
        return dict(row) if row else None

    async def list_jobs(self, account_id: str, states: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._pool.fetch(Q["list_jobs"], account_id, list(states), limit)]


class DemoSeedStore:
    """Creates the embedded default's demo tenant once and returns the same values on every later start."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self, keys: tuple[str, ...]) -> dict[str, str] | None:
        values = {k: await self._pool.fetchval(Q["seed_get"], k) for k in keys}
        return None if None in values.values() else values  # type: ignore[return-value]

    async def create(
        self,
        *,
        account_id: str,
        token: str,
        faxbox_id: str,
        faxbox_email: str,
        inbound_number: str,
        faxbox_settings: dict[str, Any],
        seed: dict[str, str],
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            # Serialise concurrent first starts; the loser sees the winner's seed and stops.
            await conn.execute("LOCK TABLE devstack_seed IN EXCLUSIVE MODE")
            if await conn.fetchval(Q["seed_get"], "account_id"):
                return
            await conn.execute(Q["insert_account"], account_id, "Demo account")
            await conn.execute(Q["insert_token"], token_digest(token), account_id)
            await conn.execute(Q["insert_faxbox"], faxbox_id, account_id, "Demo faxbox", faxbox_email, faxbox_settings)
            await conn.execute(Q["insert_number"], inbound_number, account_id, faxbox_id)
            for key, value in seed.items():
                await conn.execute(Q["seed_put"], key, value)
