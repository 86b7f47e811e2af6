"""Fax.to's error envelope: ``{"status": "failed", "message": ...}`` with an HTTP status that says what went wrong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec
from litestar import Request, Response


class FaxtoError(Exception):
    """Answered in Fax.to's error envelope, wherever it is raised on a Fax.to path."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class FaxtoFailure(msgspec.Struct):
    """The body of every Fax.to error."""

    message: str
    status: Literal["failed"] = "failed"


def faxto_failure(status_code: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(FaxtoFailure(message=message), status_code=status_code, headers=headers)


def faxto_error_response(_: Request, exc: FaxtoError) -> Response:
    return faxto_failure(exc.status_code, exc.message)
