"""Each dialect's error shape, on every path of that dialect, whatever raised the error.

Each dialect has its error and its envelope: Kazoo's (``web.kazoo``: ``KazooError``, ``KazooErrorEnvelope``), Fax.to's
(``web.faxto``: ``FaxtoError``, ``FaxtoFailure``) and UAPI's (``web.uapi``: ``UapiError``, ``UapiErrorEnvelope``).
The dialects raise their own errors in their handlers and dependencies; routing (an unknown path, a method the path
does not take), body parsing and unexpected failures are raised before or around them and reach
``EXCEPTION_HANDLERS``, which answer in the envelope of the path's dialect (``dialect_error``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from fax_api.web.faxto import FaxtoError, faxto_error_response, faxto_failure
from fax_api.web.kazoo import KazooError, error_response
from fax_api.web.uapi import UapiError, uapi_error_response, uapi_failure
from fax_runtime.transient import is_transient

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
# Kazoo's message for failures raised outside its handlers.
_KAZOO_MESSAGES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}


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
    if status_code == HTTP_503_SERVICE_UNAVAILABLE:
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


def _http_error(request: Request, exc: HTTPException) -> Response:
    answer = dialect_error(request.method, request.url.path, exc.status_code, str(exc.detail), exc.headers)
    if answer is not None:
        return answer
    message = _KAZOO_MESSAGES.get(exc.status_code, "error")
    answer = error_response(request, KazooError(exc.status_code, message, {"message": str(exc.detail)}))
    answer.headers.update(exc.headers or {})  # a 405's Allow
    return answer


def _unexpected_error(request: Request, exc: Exception) -> Response:
    if is_transient(exc):
        # Postgres or S3 is away: nothing was wrong with the request, which the client should make again shortly.
        request.logger.warning("a dependency is unavailable: %s: %s", type(exc).__name__, exc)
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        answer = dialect_error(request.method, request.url.path, HTTP_503_SERVICE_UNAVAILABLE, "", headers)
        if answer is not None:
            return answer
        response = error_response(
            request, KazooError(HTTP_503_SERVICE_UNAVAILABLE, "service_unavailable", {"message": UNAVAILABLE})
        )
        response.headers.update(headers)
        return response
    request.logger.exception("unhandled error", exc_info=exc)
    answer = dialect_error(request.method, request.url.path, HTTP_500_INTERNAL_SERVER_ERROR, "")
    if answer is not None:
        return answer
    return error_response(request, KazooError(HTTP_500_INTERNAL_SERVER_ERROR, "internal_server_error"))


EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Request, Any], Response]] = {
    KazooError: error_response,
    FaxtoError: faxto_error_response,
    UapiError: uapi_error_response,
    HTTPException: _http_error,
    Exception: _unexpected_error,
}
