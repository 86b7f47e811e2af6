"""Postgres and S3 behind the Kazoo faxes API's inbound side (inbox, incoming, the smtplog) and the documents it
serves. Outbound jobs are ``fax_jobs``' (``JobStore``), the home of the job's life cycle."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from fax_api.faxes.rows import InboundFax, InboundSummary, SmtpLogEntry
from fax_runtime.blobs import BlobStore, delete_quietly, read_if_present
from fax_runtime.sql import load_queries, row_as

Q = load_queries("fax_api.faxes", "queries.sql")


class FaxStore:
    def __init__(self, pool: asyncpg.Pool, blobs: BlobStore) -> None:
        self._pool = pool
        self._blobs = blobs

    async def read_document(self, key: str) -> bytes | None:
        """A fax's stored document (TIFF or PDF); None if it is gone."""
        return await read_if_present(self._blobs, key)

    async def has_document(self, key: str) -> bool:
        return await self._blobs.size(key) is not None

    # Inbound faxes (inbox: received/failed, incoming: receiving) -------------------------------------------------

    async def page_inbound(
        self, account_id: str, states: Sequence[str], start: uuid.UUID | None, limit: int
    ) -> list[InboundSummary]:
        rows = await self._pool.fetch(Q["page_inbound"], account_id, list(states), start, limit)
        return [row_as(InboundSummary, row) for row in rows]

    async def get_inbound(self, account_id: str, fax_id: uuid.UUID, states: Sequence[str]) -> InboundFax | None:
        row = await self._pool.fetchrow(Q["get_inbound"], account_id, fax_id, list(states))
        return row_as(InboundFax, row) if row else None

    async def delete_inbound(self, account_id: str, fax_id: uuid.UUID, states: Sequence[str]) -> InboundFax | None:
        row = await self._pool.fetchrow(Q["delete_inbound"], account_id, fax_id, list(states))
        if row is None:
            return None
        fax = row_as(InboundFax, row)
        await delete_quietly(self._blobs, [k for k in (fax.tiff_key, fax.pdf_key) if k])
        return fax

    async def remove_inbound_attachment(
        self, account_id: str, fax_id: uuid.UUID, states: Sequence[str]
    ) -> InboundFax | None:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["lock_inbound"], account_id, fax_id, list(states))
            if row is None:
                return None
            for key in (row["tiff_key"], row["pdf_key"]):
                if key:
                    await self._blobs.delete(key)
            row = await conn.fetchrow(Q["forget_inbound_attachment"], fax_id)
        return row_as(InboundFax, row)

    # SMTP log ----------------------------------------------------------------------------------------------------

    async def page_smtplog(self, account_id: str, start: uuid.UUID | None, limit: int) -> list[SmtpLogEntry]:
        rows = await self._pool.fetch(Q["page_smtplog"], account_id, start, limit)
        return [row_as(SmtpLogEntry, row) for row in rows]

    async def get_smtplog(self, account_id: str, entry_id: uuid.UUID) -> SmtpLogEntry | None:
        row = await self._pool.fetchrow(Q["get_smtplog"], account_id, entry_id)
        return row_as(SmtpLogEntry, row) if row else None
