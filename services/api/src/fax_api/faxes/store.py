"""Postgres and S3 behind the Kazoo faxes API's inbound side (inbox, incoming, the smtplog), the documents it
serves, and its metrics. Outbound jobs are ``fax_jobs``' (``JobStore``), the home of the job's life cycle."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from fax_runtime.blobs import BlobNotFound, BlobStore, delete_quietly
from fax_runtime.sql import load_queries

Q = load_queries("fax_api.faxes", "queries.sql")


class ApiStore:
    def __init__(self, pool: asyncpg.Pool, blobs: BlobStore) -> None:
        self._pool = pool
        self.blobs = blobs

    async def ping(self) -> bool:
        return await self._pool.fetchval("SELECT true")

    async def job_counts(self) -> tuple[dict[str, int], int]:
        """Jobs by state and outbox rows not yet published (for /metrics)."""
        rows = await self._pool.fetch(Q["jobs_by_state"])
        return {row["status"]: row["jobs"] for row in rows}, await self._pool.fetchval(Q["outbox_unsent"])

    async def read_object(self, key: str) -> bytes | None:
        try:
            return await self.blobs.get_bytes(key)
        except BlobNotFound:
            return None

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
        await delete_quietly(self.blobs, [k for k in (fax["tiff_key"], fax["pdf_key"]) if k])
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
