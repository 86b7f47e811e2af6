"""Kazoo's response envelope and error envelope."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import msgspec
from litestar import Request, Response

# Erlang's calendar counts seconds from year 0; Kazoo timestamps ("created": 63626410973) use it.
GREGORIAN_UNIX_OFFSET = 62_167_219_200


class KazooError(Exception):
    """An error answered in Kazoo's envelope: ``{"data": ..., "error": "404", "message": ..., "status": "error"}``."""

    def __init__(self, status_code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.data = data if data is not None else {"message": message}


def bad_identifier(identifier: str) -> KazooError:
    return KazooError(404, "bad_identifier", {"cause": identifier, "message": "bad identifier"})


def request_id(request: Request) -> str:
    rid = request.scope.setdefault("state", {}).get("request_id")
    if rid is None:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.scope["state"]["request_id"] = rid
    return rid


def revision_of(counter: int, data: Any) -> str:
    """Kazoo-style ``"<n>-<md5>"`` revision: changes whenever the document changes."""
    digest = hashlib.md5(msgspec.json.encode(data), usedforsecurity=False).hexdigest()
    return f"{counter}-{digest}"


def envelope(
    request: Request, data: Any, *, revision: str | None = None, status_code: int = 200, **extra: Any
) -> Response:
    body: dict[str, Any] = {"data": data, "request_id": request_id(request), "status": "success"}
    if revision is not None:
        body["revision"] = revision
    token = request.headers.get("x-auth-token")
    if token:
        body["auth_token"] = token
    body.update(extra)
    return Response(content=body, status_code=status_code, headers={"X-Request-ID": request_id(request)})


def paged(request: Request, rows: list[dict[str, Any]], page_size: int, start_key: str, view: Any) -> Response:
    """A listing in Kazoo's envelope, ``rows`` holding one row more than a page when another page follows, as asked
    with ``start_key``.

    Every page, the first too, says where it starts: ``start_key``, an array as in Kazoo's listings (the first row's
    key; the requested one, or none, on an empty page); ``next_start_key`` when another page follows; and the
    ``revision`` of what the page holds.
    """
    page, following = rows[:page_size], rows[page_size:]
    data = [view(row) for row in page]
    first = page[0]["id"] if page else requested_start_key(start_key)
    extra: dict[str, Any] = {"page_size": len(page), "start_key": [first] if first else []}
    if following:
        extra["next_start_key"] = following[0]["id"]
    digest = hashlib.md5(msgspec.json.encode(data), usedforsecurity=False).hexdigest()
    return envelope(request, data, revision=digest, **extra)


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


def error_response(request: Request, error: KazooError) -> Response:
    body: dict[str, Any] = {
        "data": error.data,
        "error": str(error.status_code),
        "message": error.message,
        "status": "error",
        "request_id": request_id(request),
    }
    token = request.headers.get("x-auth-token")
    if token:
        body["auth_token"] = token
    return Response(content=body, status_code=error.status_code, headers={"X-Request-ID": request_id(request)})
