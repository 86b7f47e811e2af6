"""Download a fax job's document from its URL, the way Kazoo's fax fetcher does, but behind a network guard.

Every address the fetcher connects to passes `NetworkGuard.check` (`guarded_http.guarded_session`). Redirects are
followed by hand so each hop is a guarded request of its own.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from yarl import URL

from fax_runtime.guarded_http import guarded_session, refusal_of, url_problem
from fax_runtime.network_guard import NetworkGuard

MAX_POST_CONTENT_CHARS = 256
USER_AGENT = "fax-platform-fetcher/0.1"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 64 * 1024


class FetchError(Exception):
    """str(error) is the text the job's error shows to the user."""


class _RetryableFetchError(FetchError):
    """A failure worth another attempt: connection trouble, timeouts, 5xx."""


@dataclass(frozen=True)
class DocumentRequest:
    """Where and how to fetch a document (Kazoo's `document` object)."""

    url: str
    method: str = "get"
    host: str | None = None
    referer: str | None = None
    content_type: str | None = None
    content: str | None = None


@dataclass(frozen=True)
class FetchedDocument:
    """A downloaded document; formats are sniffed from `body`, `content_type` is informational only."""

    body: bytes
    content_type: str | None
    final_url: str


async def fetch_document(
    request: DocumentRequest,
    *,
    guard: NetworkGuard,
    max_bytes: int = 50 * 1024 * 1024,
    connect_timeout: float = 10.0,
    total_timeout: float = 60.0,
    max_redirects: int = 5,
    retries: int = 2,
    retry_backoff: float = 0.5,
) -> FetchedDocument:
    """Fetch `request` and return the body of its final 200 response.

    `total_timeout` bounds one attempt (the whole redirect chain and body); transient failures are retried `retries`
    times, waiting `retry_backoff`, then twice that, and so on. Raises FetchError with a user-facing text.
    """
    url = _parse_url(request.url)
    method = request.method.lower()
    if method not in ("get", "post"):
        raise FetchError(f"unsupported HTTP method {request.method!r}")
    if request.content is not None and len(request.content) > MAX_POST_CONTENT_CHARS:
        raise FetchError(f"POST content longer than {MAX_POST_CONTENT_CHARS} characters")
    for name, value in (("host", request.host), ("referer", request.referer), ("content_type", request.content_type)):
        if value is not None and any(char in value for char in "\r\n\0"):
            raise FetchError(f"invalid {name} header value")

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout)
    async with guarded_session(guard, timeout=timeout) as session:
        fetch = _Fetch(session, max_bytes=max_bytes, max_redirects=max_redirects, connect_timeout=connect_timeout)
        return await _with_retries(
            lambda: fetch.run(request, url, method), total_timeout, retries=retries, retry_backoff=retry_backoff
        )


async def _with_retries(
    attempt: Callable[[], Awaitable[FetchedDocument]], total_timeout: float, *, retries: int, retry_backoff: float
) -> FetchedDocument:
    for retry in range(retries + 1):
        if retry:
            await asyncio.sleep(retry_backoff * 2 ** (retry - 1))
        try:
            async with asyncio.timeout(total_timeout):
                return await attempt()
        except TimeoutError:
            error: FetchError = _RetryableFetchError(
                f"could not retrieve file: no complete response within {total_timeout:g} s"
            )
        except _RetryableFetchError as retryable:
            error = retryable
    raise error


class _Fetch:
    """One attempt: the request, its redirect chain and the capped body read."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        max_bytes: int,
        max_redirects: int,
        connect_timeout: float,
    ) -> None:
        self._session = session
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._connect_timeout = connect_timeout

    async def run(self, request: DocumentRequest, url: URL, method: str) -> FetchedDocument:
        headers = {"User-Agent": USER_AGENT}
        if request.referer is not None:
            headers["Referer"] = request.referer
        host_override = request.host
        body: bytes | None = None
        if method == "post" and request.content is not None:
            body = request.content.encode()
            headers["Content-Type"] = request.content_type or "application/x-www-form-urlencoded"
        elif method == "post" and request.content_type is not None:
            headers["Content-Type"] = request.content_type

        for hop in range(self._max_redirects + 1):
            request_headers = headers | ({"Host": host_override} if host_override else {})
            try:
                async with self._session.request(
                    method.upper(), url, headers=request_headers, data=body, allow_redirects=False
                ) as response:
                    location = response.headers.get("Location")
                    if response.status in _REDIRECT_STATUSES and location:
                        if hop == self._max_redirects:
                            raise FetchError(f"could not retrieve file: more than {self._max_redirects} redirects")
                        target = _redirect_target(url, location)
                        # Browsers turn a redirected POST into a GET except for 307/308, and servers expect that.
                        if response.status == 303 or (response.status in (301, 302) and method == "post"):
                            method, body = "get", None
                            headers.pop("Content-Type", None)
                        if target.origin() != url.origin():
                            host_override = None
                        url = target
                        continue
                    if response.status >= 500:
                        raise _RetryableFetchError(f"could not retrieve file, http response {response.status}")
                    if response.status != 200:
                        raise FetchError(f"could not retrieve file, http response {response.status}")
                    return FetchedDocument(
                        body=await self._read_capped(response),
                        content_type=response.headers.get("Content-Type"),
                        final_url=str(response.url),
                    )
            except FetchError:
                raise
            except aiohttp.ClientError as error:
                refusal = refusal_of(error)
                if refusal is not None:
                    raise refusal from None
                raise _describe_client_error(error, url, self._connect_timeout) from error
        raise AssertionError("unreachable: the loop returns or raises")

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        too_large = FetchError(f"document larger than {_format_size(self._max_bytes)} limit")
        if response.content_length is not None and response.content_length > self._max_bytes:
            raise too_large
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
            body += chunk
            if len(body) > self._max_bytes:
                raise too_large
        return bytes(body)


def _parse_url(raw: str) -> URL:
    problem = url_problem(raw)
    if problem:
        raise FetchError(problem)
    return URL(raw)


def _redirect_target(current: URL, location: str) -> URL:
    try:
        target = current.join(URL(location)).with_fragment(None)
    except (ValueError, TypeError):
        raise FetchError(f"could not retrieve file: invalid redirect location {location!r}") from None
    problem = url_problem(str(target))
    if problem:
        raise FetchError(f"could not retrieve file: redirected to {problem}")
    return target


def _endpoint(url: URL) -> str:
    host = url.host or ""
    return f"[{host}]:{url.port}" if ":" in host else f"{host}:{url.port}"


def _describe_client_error(error: aiohttp.ClientError, url: URL, connect_timeout: float) -> FetchError:
    """Turn an aiohttp exception into a user-facing FetchError; only non-transient failures are final."""
    endpoint = _endpoint(url)
    if isinstance(error, aiohttp.ClientSSLError):
        return FetchError(f"could not retrieve file: TLS handshake with {endpoint} failed ({error})")
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return _RetryableFetchError(f"could not retrieve file: cannot resolve host {url.host}")
    if isinstance(error, aiohttp.ClientConnectorError):
        cause = error.os_error
        if isinstance(cause, ConnectionRefusedError) or cause.errno == errno.ECONNREFUSED or "refused" in str(cause):
            return _RetryableFetchError(f"could not retrieve file: connection refused by {endpoint}")
        return _RetryableFetchError(
            f"could not retrieve file: cannot connect to {endpoint} ({cause.strerror or cause})"
        )
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return _RetryableFetchError(
            f"could not retrieve file: connecting to {endpoint} timed out after {connect_timeout:g} s"
        )
    if isinstance(error, aiohttp.ServerTimeoutError):
        return _RetryableFetchError(f"could not retrieve file: {endpoint} stopped responding")
    if isinstance(error, aiohttp.ClientResponseError):
        return FetchError(f"could not retrieve file: invalid HTTP response from {endpoint} ({error.message})")
    if isinstance(error, aiohttp.InvalidURL):
        return FetchError(f"invalid document URL {str(url)!r}")
    # Disconnects, resets and truncated bodies.
    return _RetryableFetchError(f"could not retrieve file: connection to {endpoint} failed ({error})")


def _format_size(size: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"
