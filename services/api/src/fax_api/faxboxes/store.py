"""Faxboxes in Postgres (SQL in ``sql/faxboxes.sql``)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from fax_api.faxboxes.rows import FaxboxRecord
from fax_runtime.sql import load_queries, row_as

Q = load_queries("fax_api.faxboxes", "queries.sql")

# (name, custom_smtp_email_address, settings), as fax_api.faxboxes.rules.validate_faxbox returns them.
FaxboxFields = tuple[str, str | None, dict[str, Any]]


class AddressTaken(Exception):
    """The custom SMTP address belongs to another faxbox (of any account)."""

    def __init__(self, address: str | None) -> None:
        super().__init__(address)
        self.address = address


class FaxboxStore:
    def __init__(self, pool: asyncpg.Pool, smtp_domain: str) -> None:
        self._pool = pool
        self._smtp_domain = smtp_domain

    async def create(
        self,
        account_id: str,
        name: str,
        custom_address: str | None,
        settings: dict[str, Any],
        conn: asyncpg.Connection | None = None,
    ) -> FaxboxRecord:
        """A new faxbox with its generated address ``<id>.<smtp domain>``; inside ``conn``'s transaction if given."""
        faxbox_id = uuid.uuid4().hex
        async with self._pool.acquire() if conn is None else contextlib.nullcontext(conn) as db, db.transaction():
            await self._claim(db, faxbox_id, custom_address)
            row = await self._unique(
                custom_address,
                db.fetchrow(
                    Q["insert_faxbox"],
                    faxbox_id,
                    account_id,
                    name,
                    f"{faxbox_id}.{self._smtp_domain}",
                    custom_address,
                    settings,
                ),
            )
        return row_as(FaxboxRecord, row)

    async def get(self, account_id: str, faxbox_id: str) -> FaxboxRecord | None:
        row = await self._pool.fetchrow(Q["get_faxbox"], account_id, faxbox_id)
        return row_as(FaxboxRecord, row) if row else None

    async def page(self, account_id: str, start_key: str, limit: int) -> list[FaxboxRecord]:
        rows = await self._pool.fetch(Q["list_faxboxes"], account_id, start_key, limit)
        return [row_as(FaxboxRecord, row) for row in rows]

    async def update(
        self, account_id: str, faxbox_id: str, build: Callable[[FaxboxRecord], FaxboxFields]
    ) -> FaxboxRecord | None:
        """Replace a faxbox with ``build(current)`` under a row lock, so concurrent PATCHes do not lose fields.

        ``build`` may raise (a validation error): nothing is changed then.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            current = await conn.fetchrow(Q["get_faxbox_for_update"], account_id, faxbox_id)
            if current is None:
                return None
            name, custom_address, settings = build(row_as(FaxboxRecord, current))
            await self._claim(conn, faxbox_id, custom_address)
            row = await self._unique(
                custom_address,
                conn.fetchrow(Q["replace_faxbox"], account_id, faxbox_id, name, custom_address, settings),
            )
        return row_as(FaxboxRecord, row)

    async def delete(self, account_id: str, faxbox_id: str) -> FaxboxRecord | None:
        """Remove a faxbox; its numbers stay with the account, unassigned.

        Jobs keep the faxbox id in their request as history; from then on they get no faxbox notifications.
        Inbound faxes and smtplog rows keep their row with ``faxbox_id`` cleared (ON DELETE SET NULL).
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["unassign_faxbox_numbers"], account_id, faxbox_id)
            row = await conn.fetchrow(Q["delete_faxbox"], account_id, faxbox_id)
        return row_as(FaxboxRecord, row) if row else None

    @staticmethod
    async def _claim(conn: asyncpg.Connection, faxbox_id: str, custom_address: str | None) -> None:
        if custom_address is not None and await conn.fetchval(Q["address_taken"], faxbox_id, custom_address):
            raise AddressTaken(custom_address)

    @staticmethod
    async def _unique(custom_address: str | None, query: Any) -> Any:
        # Two accounts claiming the same address at once: the unique index decides, the loser gets AddressTaken.
        try:
            return await query
        except asyncpg.UniqueViolationError:
            raise AddressTaken(custom_address) from None
