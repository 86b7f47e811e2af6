"""Outgoing HTTP for callbacks and SMS providers: one aiohttp session whose every address passes the network guard."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import aiohttp

from fax_notifier.transport import Outcome, SendResult
from fax_runtime.guarded_resolver import GuardedResolver
from fax_runtime.network_guard import BlockedAddressError, NetworkGuard


class GuardedHttp:
    """Sends one request and classifies the answer: 2xx sent, anything else (or no answer) retried."""

    def __init__(self, guard: NetworkGuard, timeout: float = 30.0) -> None:
        self._guard = guard
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Built lazily: a ClientSession must be created inside the running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._guard), limit=64)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    def refusal(self, url: str) -> str:
        """Why ``url`` may never be requested, or "". aiohttp skips the resolver for IP literals: checked here."""
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            return f"not an http(s) URL: {url!r}"
        try:
            ipaddress.ip_address(parts.hostname)
        except ValueError:
            return ""
        try:
            self._guard.check(parts.hostname)
        except BlockedAddressError as error:
            return str(error)
        return ""

    async def request(self, method: str, url: str, *, data: bytes, headers: dict[str, str]) -> SendResult:
        refused = self.refusal(url)
        if refused:
            return SendResult(Outcome.FAILED, refused)
        try:
            async with self._client().request(
                method.upper(), url, data=data, headers=headers, allow_redirects=False
            ) as response:
                text = (await response.text(errors="replace"))[:200]
                detail = f"HTTP {response.status} {text}".strip()
                return SendResult(Outcome.SENT if 200 <= response.status < 300 else Outcome.RETRY, detail)
        except BlockedAddressError as error:
            return SendResult(Outcome.FAILED, str(error))
        except aiohttp.ClientConnectorError as error:
            # aiohttp wraps the resolver's refusal; a blocked address never becomes allowed by waiting.
            if isinstance(error.__cause__, BlockedAddressError) or isinstance(error.os_error, BlockedAddressError):
                return SendResult(Outcome.FAILED, str(error))
            return SendResult(Outcome.RETRY, f"{type(error).__name__}: {error}")
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            return SendResult(Outcome.RETRY, f"{type(error).__name__}: {error}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
