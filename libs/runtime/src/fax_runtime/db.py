"""Postgres connection pools (asyncpg) with JSON codecs, and what Postgres cannot hold (NUL in text, integers
beyond bigint)."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec


def _encode_json(value: object) -> str:
    return msgspec.json.encode(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=_encode_json, decoder=msgspec.json.decode, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo: asyncpg has already rolled back an open transaction and dropped the connection's listeners."""


async def create_pool(
    database_url: str, *, min_size: int = 1, max_size: int = 10, reset_sessions: bool = True
) -> asyncpg.Pool:
    """A pool of ``database_url`` connections.

    ``reset_sessions=False`` skips the round trip asyncpg makes on every release to reset the session (advisory
    locks, cursors, LISTEN, settings): only for code that leaves none of these on a connection it gives back.
    """
    return await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=None if reset_sessions else _keep_session,
    )


# The largest bigint (bigserial ids): a larger integer names no row, and asyncpg refuses to send it.
BIGINT_MAX = 2**63 - 1


def holds_nul(value: Any) -> bool:
    """Whether ``value`` (text, or decoded JSON: its keys and strings at any depth) holds a NUL character, which
    Postgres's text and jsonb cannot store: such input can only be refused, before it reaches a query."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(item) for item in value)
    return False
