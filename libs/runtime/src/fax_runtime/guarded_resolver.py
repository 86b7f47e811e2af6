"""An aiohttp resolver that lets a connection reach only addresses the network guard allows.

Checking the address a name resolves to, at connect time, leaves no DNS-rebinding gap between a check and the
connection. aiohttp skips resolvers for IP literals: callers check those with ``NetworkGuard.check`` themselves.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from fax_runtime.network_guard import BlockedAddressError, NetworkGuard


class GuardedResolver(AbstractResolver):
    """Wraps a resolver and drops every resolved address the guard refuses; raises when none is left."""

    def __init__(self, guard: NetworkGuard, inner: AbstractResolver | None = None) -> None:
        self._guard = guard
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        refusal: BlockedAddressError | None = None
        for result in results:
            try:
                self._guard.check(result["host"], hostname=host)
            except BlockedAddressError as error:
                refusal = refusal or error
            else:
                allowed.append(result)
        if refusal is not None and not allowed:
            raise refusal
        return allowed

    async def close(self) -> None:
        await self._inner.close()
