"""Named SQL blocks: a ``.sql`` file holds queries, each introduced by a ``-- name: <query_name>`` line."""

from __future__ import annotations

import re
from importlib import resources

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
