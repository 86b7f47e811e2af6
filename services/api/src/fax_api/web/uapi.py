"""VoipNow UAPI's error envelope: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from litestar import Request, Response


class UapiError(Exception):
    """Answered in UAPI's error envelope; ``code`` is UAPI's (``fx_recipients_invalid``, ``unauthorized`` ...)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


class UapiErrorDetail(msgspec.Struct):
    code: str
    message: str


class UapiErrorEnvelope(msgspec.Struct):
    """The body of every UAPI error."""

    error: UapiErrorDetail


def uapi_failure(status_code: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        UapiErrorEnvelope(error=UapiErrorDetail(code=code, message=message)), status_code=status_code, headers=headers
    )


def uapi_error_response(_: Request, exc: UapiError) -> Response:
    return uapi_failure(exc.status_code, exc.code, exc.message)
