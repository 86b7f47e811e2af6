"""Postgres connection pools (asyncpg) with JSON codecs."""

from __future__ import annotations

import asyncpg
import msgspec


def _encode_json(value: object) -> str:
    return msgspec.json.encode(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=_encode_json, decoder=msgspec.json.decode, schema="pg_catalog")


async def create_pool(database_url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(database_url, min_size=min_size, max_size=max_size, init=_init_connection)
