"""Named SQL blocks: a ``.sql`` file holds queries, each introduced by a ``-- name: <query_name>`` line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from typing import Any, TypeVar

import msgspec

RowT = TypeVar("RowT", bound=msgspec.Struct)

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip()
    return queries


def load_queries(package: str, filename: str = "sql/queries.sql") -> dict[str, str]:
    """The named queries of ``package``'s SQL file."""
    return parse_queries(resources.files(package).joinpath(filename).read_text(encoding="utf-8"))


def row_as(row_type: type[RowT], record: Mapping[str, Any]) -> RowT:
    """``record`` (an asyncpg row) as ``row_type``, its columns checked against the fields: stores hand back typed
    rows, never the driver's records."""
    return msgspec.convert(dict(record), row_type)
