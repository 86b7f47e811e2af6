"""Kazoo's envelopes: reading a request's ``{"data": ...}``, answering in ``{"data": ..., "status": "success"}`` and
failing in Kazoo's error envelope; Kazoo's ids, revisions and timestamps.

Kazoo clients (its own curl examples) send JSON without a JSON content type, so handlers read the raw body as JSON
whatever the header says (``read_kazoo_envelope``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any, Literal

import msgspec
from litestar import Request, Response

from fax_runtime.db import holds_nul

# Erlang's calendar counts seconds from year 0; Kazoo timestamps ("created": 63626410973) use it.
GREGORIAN_UNIX_OFFSET = 62_167_219_200


class KazooError(Exception):
    """An error answered in Kazoo's envelope: ``{"data": ..., "error": "404", "message": ..., "status": "error"}``."""

    def __init__(self, status_code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.data = data if data is not None else {"message": message}


class KazooErrorEnvelope(msgspec.Struct, omit_defaults=True):
    """The body of every Kazoo error: ``data`` says what was wrong (each failing field, for ``invalid data``)."""

    data: Any
    error: str  # the HTTP status, as a string
    message: str
    status: Literal["error"]
    request_id: str
    auth_token: str | None = None  # the request's X-Auth-Token, echoed as Kazoo does (omitted without one)


def bad_identifier(identifier: str) -> KazooError:
    return KazooError(404, "bad_identifier", {"cause": identifier, "message": "bad identifier"})


def parse_id(raw: str) -> uuid.UUID:
    """Kazoo ids of faxes are 32 hex digits (dashed UUIDs are accepted too); anything else is an unknown id."""
    try:
        return uuid.UUID(hex=raw)
    except ValueError:
        raise bad_identifier(raw) from None


def parse_text_id(raw: str) -> str:
    """A user's or faxbox's id, kept as text: 32 hex digits as parse_id reads them; anything else is an unknown id."""
    return parse_id(raw).hex


def gregorian_seconds(moment: dt.datetime) -> int:
    return int(moment.timestamp()) + GREGORIAN_UNIX_OFFSET


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


def error_response(request: Request, error: KazooError) -> Response:
    body = KazooErrorEnvelope(
        data=error.data,
        error=str(error.status_code),
        message=error.message,
        status="error",
        request_id=request_id(request),
        auth_token=request.headers.get("x-auth-token") or None,
    )
    return Response(content=body, status_code=error.status_code, headers={"X-Request-ID": request_id(request)})


def merge_patch(current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Kazoo's PATCH: ``current`` with ``patch`` merged in, objects recursively; ``null`` removes a key (RFC 7396)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


async def read_kazoo_envelope(request: Request, *, data_required: bool = True) -> dict[str, Any]:
    """The request body's JSON object, decoded once: every route reads its body through here.

    An empty body is an empty envelope, ``{"data": {}}`` (Kazoo's own curl examples send no body: validation then
    names each required field). Anything else must be a JSON object whose ``data``, when present (or required), is an
    object, and that holds no NUL character (documents are stored as jsonb, which cannot hold one).
    """
    body = await request.body()
    if not body.strip():
        return {"data": {}}
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise KazooError(400, "invalid request body", {"message": "malformed JSON"}) from None
    data = decoded.get("data", None if data_required else {}) if isinstance(decoded, dict) else None
    if not isinstance(data, dict):
        raise KazooError(
            400, "invalid request body", {"message": "the request must be a JSON object with a data object"}
        )
    if holds_nul(decoded):
        raise KazooError(400, "invalid request body", {"message": "the request cannot contain NUL characters"})
    return {**decoded, "data": data}


async def read_kazoo_data(request: Request) -> dict[str, Any]:
    """The ``data`` object of a ``{"data": {...}}`` request body; an empty body is an empty document."""
    return (await read_kazoo_envelope(request))["data"]
