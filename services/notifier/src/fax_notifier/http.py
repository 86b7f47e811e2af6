"""Outgoing HTTP for callbacks and SMS providers, over the runtime's guarded session (one network guard for all)."""

from __future__ import annotations

import aiohttp

from fax_notifier.transport import Outcome, SendResult
from fax_runtime.guarded_http import guarded_session, refusal_of, url_problem
from fax_runtime.network_guard import NetworkGuard


class GuardedHttp:
    """Sends one request and classifies the answer: 2xx sent; a URL or address that can never be reached failed;
    anything else (no answer, another status) retried."""

    def __init__(self, guard: NetworkGuard, timeout: float = 30.0) -> None:
        self._guard = guard
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Built lazily: a ClientSession must be created inside the running loop.
        if self._session is None:
            self._session = guarded_session(self._guard, timeout=self._timeout, limit=64)
        return self._session

    async def request(self, method: str, url: str, *, data: bytes, headers: dict[str, str]) -> SendResult:
        problem = url_problem(url)
        if problem:
            return SendResult(Outcome.FAILED, problem)
        try:
            async with self._client().request(
                method.upper(), url, data=data, headers=headers, allow_redirects=False
            ) as response:
                text = (await response.text(errors="replace"))[:200]
                detail = f"HTTP {response.status} {text}".strip()
                return SendResult(Outcome.SENT if 200 <= response.status < 300 else Outcome.RETRY, detail)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            # A refused address never becomes allowed by waiting, nor does a URL the client cannot use.
            refusal = refusal_of(error)
            if refusal is not None:
                return SendResult(Outcome.FAILED, str(refusal))
            if isinstance(error, aiohttp.InvalidURL):
                return SendResult(Outcome.FAILED, f"invalid URL {url!r}")
            return SendResult(Outcome.RETRY, f"{type(error).__name__}: {error}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
