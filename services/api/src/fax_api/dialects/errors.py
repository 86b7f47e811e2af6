"""Each dialect's error shape, on every path of that dialect, whatever raised the error.

The dialects' own errors are raised in their handlers; routing (an unknown path, a method the path does not take),
body parsing and unexpected failures are raised before or around them and reach the application's handlers, which
ask ``dialect_error`` for the answer of the path's dialect (None: a Kazoo path, answered in Kazoo's envelope).
"""

from __future__ import annotations

from collections.abc import Mapping

from litestar import Response

FAXTO_PREFIX = "/api"  # Fax.to: /api/v2 and the v1 send path
UAPI_PREFIX = "/uapi"  # VoipNow UAPI

# UAPI codes for failures its text does not name; a client error never gets internal_server_error.
_UAPI_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "request_too_large", 415: "unsupported_media_type",
               503: "service_unavailable"}  # fmt: skip
_MESSAGES = {404: "No such call: {method} {path}", 405: "{method} is not allowed on {path}"}
# While Postgres or S3 is away every dialect answers 503 with Retry-After: the request was fine, make it again.
RETRY_AFTER_S = 5
UNAVAILABLE = "Temporarily unavailable: try again shortly"


def faxto_failure(status_code: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Fax.to's error answer: ``{"status": "failed", "message": ...}``."""
    return Response({"status": "failed", "message": message}, status_code=status_code, headers=headers)


def uapi_failure(status_code: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """UAPI's error answer: ``{"error": {"code": ..., "message": ...}}``."""
    return Response({"error": {"code": code, "message": message}}, status_code=status_code, headers=headers)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def dialect_error(
    method: str, path: str, status_code: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response | None:
    """The error of ``status_code`` in the shape of ``path``'s dialect; None for a path of no dialect.

    ``detail`` is shown for client errors only (it says what was wrong with the request); a server error says no
    more than that it happened, whatever raised it. ``headers`` (a 405's Allow) go with the answer.
    """
    allow = (headers or {}).get("allow", "")
    if status_code == 503:
        message = UNAVAILABLE
    elif status_code >= 500:
        message = "Internal error: the request could not be completed"
    elif status_code in _MESSAGES:
        message = _MESSAGES[status_code].format(method=method, path=path) + (f" (allowed: {allow})" if allow else "")
    else:
        message = detail
    if _under(path, FAXTO_PREFIX):
        return faxto_failure(status_code, message, headers)
    if _under(path, UAPI_PREFIX):
        code = _UAPI_CODES.get(status_code) or ("internal_server_error" if status_code >= 500 else "invalid_request")
        return uapi_failure(status_code, code, message, headers)
    return None
