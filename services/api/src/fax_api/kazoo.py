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
