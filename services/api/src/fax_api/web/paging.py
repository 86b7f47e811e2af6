"""Paging, one helper per contract: Kazoo's keyset pages (every ``/v2`` listing) and Fax.to's numbered pages.

Kazoo pages by key: ``page_size`` rows from ``start_key`` (the first row's id), newest or lowest first as the listing
orders, each page saying where the next one starts. The store fetches one row more than a page; that row, if it
comes, is the next page's start. Fax.to pages by number: ``page`` of ``per_page`` rows, and a count of them all.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import msgspec
from litestar import Request, Response
from litestar.params import Parameter

from fax_api.web.faxto import FaxtoError
from fax_api.web.kazoo import KazooError, envelope
from fax_api.web.openapi import INTEGER, query_parameter

MAX_PAGE_SIZE = 500


class KeyedRow(Protocol):
    """A row of a Kazoo listing: its id is its key (a fax's UUID, shown as 32 hex digits, or a text id)."""

    @property
    def id(self) -> uuid.UUID | str: ...


RowT = TypeVar("RowT", bound=KeyedRow)


def row_key(row: KeyedRow) -> str:
    return row.id.hex if isinstance(row.id, uuid.UUID) else row.id


def requested_start_key(raw: str) -> str:
    """The key a listing was asked to start at: a ``next_start_key`` as given, or a page's ``start_key`` array sent
    back JSON-encoded (``["<key>"]``)."""
    if raw.startswith("["):
        try:
            decoded = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return raw
        if isinstance(decoded, list) and len(decoded) == 1 and isinstance(decoded[0], str):
            return decoded[0]
    return raw


@dataclass(frozen=True)
class KeysetPage:
    """The page of a Kazoo listing a request asks for."""

    size: int
    start_key: str  # as sent: a next_start_key, a start_key array, or "" for the first page

    @property
    def limit(self) -> int:
        """Rows to fetch: one more than a page says whether another page follows."""
        return self.size + 1

    @property
    def start(self) -> str:
        """The key to start at ("" for the first page)."""
        return requested_start_key(self.start_key)

    def start_text_id(self) -> str:
        """The id to start at as text, for listings keyed by text ids (users, faxboxes); "" for the first page."""
        start = self.start_id()
        return start.hex if start else ""

    def start_id(self) -> uuid.UUID | None:
        """The id to start at, for listings keyed by fax id; None for the first page."""
        if not self.start_key:
            return None
        try:
            return uuid.UUID(hex=self.start)
        except ValueError:
            raise KazooError(
                400,
                "invalid data",
                {
                    "start_key": {
                        "type": {
                            "message": "Value is not an id (next_start_key of a listing)",
                            "cause": self.start_key,
                        }
                    }
                },
            ) from None


def keyset_page(
    page_size: int = Parameter(default=50, ge=1, le=MAX_PAGE_SIZE),
    start_key: str = Parameter(default="", description="next_start_key of the previous page (the id of its first row)"),
) -> KeysetPage:
    """The ``page`` dependency of every Kazoo listing."""
    return KeysetPage(page_size, start_key)


def keyset_listing(request: Request, page: KeysetPage, rows: Sequence[RowT], view: Callable[[RowT], Any]) -> Response:
    """A listing in Kazoo's envelope from ``rows`` fetched with ``page.limit``.

    Every page, the first too, says where it starts: ``start_key``, an array as in Kazoo's listings (the first row's
    key; the requested one, or none, on an empty page); ``next_start_key`` when another page follows; and the
    ``revision`` of what the page holds.
    """
    shown, following = rows[: page.size], rows[page.size :]
    data = [view(row) for row in shown]
    first = row_key(shown[0]) if shown else page.start
    extra: dict[str, Any] = {"page_size": len(shown), "start_key": [first] if first else []}
    if following:
        extra["next_start_key"] = row_key(following[0])
    digest = hashlib.md5(msgspec.json.encode(data), usedforsecurity=False).hexdigest()
    return envelope(request, data, revision=digest, **extra)


def positive(params: Mapping[str, Any], name: str, default: int, maximum: int) -> int:
    """A Fax.to number parameter between 1 and ``maximum``."""
    raw = params.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise FaxtoError(400, f"{name} must be a positive number") from None
    if not 1 <= value <= maximum:
        raise FaxtoError(400, f"{name} must be between 1 and {maximum}")
    return value


# Fax.to's paging, as the OpenAPI document shows it (the handlers read it from the call's parameters).
NUMBERED_PAGE_QUERY = (
    query_parameter("page", INTEGER, description="the page, from 1"),
    query_parameter("per_page", INTEGER, description="rows a page, 1 to 100 (default 20)"),
)


@dataclass(frozen=True)
class NumberedPage:
    """The page of a Fax.to listing a request asks for: ``page`` (from 1) of ``per_page`` rows."""

    number: int
    per_page: int

    @classmethod
    def asked(cls, params: Mapping[str, Any]) -> NumberedPage:
        return cls(positive(params, "page", 1, 1_000_000), positive(params, "per_page", 20, 100))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page

    def meta(self, request: Request, total: int, count: int) -> dict[str, Any]:
        """Fax.to's ``meta.pagination`` of this page of ``total`` rows, ``count`` of them on it."""
        listing = f"{str(request.base_url).rstrip('/')}{request.url.path}"
        total_pages = max(1, math.ceil(total / self.per_page))
        links = {}
        if self.number > 1:
            links["previous"] = f"{listing}?page={self.number - 1}"
        if self.number < total_pages:
            links["next"] = f"{listing}?page={self.number + 1}"
        return {
            "total": total,
            "count": count,
            "per_page": self.per_page,
            "current_page": self.number,
            "total_pages": total_pages,
            "links": links,
        }
