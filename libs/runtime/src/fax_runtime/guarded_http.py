"""HTTP for requests made on a tenant's behalf: every connection passes the network guard, every URL one check.

Documents and their redirects, Fax.to remote files, HTTP callbacks and SMS providers all go through
`guarded_session`. It checks addresses, never the URL's text, at two points:

- `GuardedResolver` drops every resolved address the guard refuses (the error names the host), and the address it
  returns is the address connected to, so DNS rebinding has no gap to use;
- the connector's socket factory checks the very address each socket is about to connect to. aiohttp never resolves
  an IP literal, and yarl turns full-width digits, ideographic dots, circled digits and IDNA into one, so this is
  where a loopback address written in full-width digits is caught: after all normalisation, whatever the spelling.

`url_problem` and `callback_url_problem` say, before a URL is stored, whether a request to it could ever succeed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from fax_runtime.network_guard import BlockedAddressError, NetworkGuard

MAX_URL_LENGTH = 2048
_SCHEMES = ("http", "https")


class GuardedResolver(AbstractResolver):
    """Resolves with getaddrinfo and drops every address the guard refuses; raises when none is left."""

    def __init__(self, guard: NetworkGuard, inner: AbstractResolver | None = None) -> None:
        self._guard = guard
        # The threaded resolver holds nothing to close, so a connector that does not own this one leaks nothing.
        self._inner = inner if inner is not None else ThreadedResolver()

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


def _guarded_socket_factory(
    guard: NetworkGuard,
) -> Callable[[tuple[int, int, int, str, tuple[object, ...]]], socket.socket]:
    def new_socket(addr_info: tuple[int, int, int, str, tuple[object, ...]]) -> socket.socket:
        family, kind, proto, _, address = addr_info
        guard.check(str(address[0]))
        return socket.socket(family, kind, proto)

    return new_socket


def guarded_session(guard: NetworkGuard, *, timeout: aiohttp.ClientTimeout, limit: int = 100) -> aiohttp.ClientSession:
    """A client session that can only connect where ``guard`` allows; create it inside the running loop.

    Callers follow redirects themselves (``allow_redirects=False``) so that each hop is a request of its own. Proxy
    settings from the environment are ignored: through a proxy, the address connected to would be the proxy's.
    """
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(guard), socket_factory=_guarded_socket_factory(guard), limit=limit
    )
    return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)


def refusal_of(error: BaseException) -> BlockedAddressError | None:
    """The guard's refusal behind an aiohttp error (aiohttp wraps it as a connection or DNS error), if it is one."""
    if isinstance(error, BlockedAddressError):
        return error
    if isinstance(error, aiohttp.ClientConnectorError) and isinstance(error.os_error, BlockedAddressError):
        return error.os_error
    cause = error.__cause__
    return cause if isinstance(cause, BlockedAddressError) else None


def url_problem(url: str) -> str:
    """Why a request to ``url`` could never be made (scheme, host, form), or "". No I/O: addresses are not checked."""
    if len(url) > MAX_URL_LENGTH:
        return f"URL longer than {MAX_URL_LENGTH} characters"
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return f"invalid URL {url!r}"
    if parsed.scheme not in _SCHEMES:
        return f"unsupported URL scheme {parsed.scheme!r}: only http and https"
    if not parsed.host or not parsed.absolute:
        return f"invalid URL {url!r}: no host"
    legacy = _legacy_ipv4(parsed.host)
    if legacy is not None:
        return f"{parsed.host} is not an IP address in dotted-quad form (it means {legacy})"
    return ""


async def callback_url_problem(url: str, guard: NetworkGuard, *, resolve_timeout: float = 5.0) -> str:
    """Why a request to ``url`` could never succeed, or "": `url_problem`, or every address of its host is refused.

    A host that does not resolve now is not refused (its record may not be published yet, DNS may be down): the
    guard still checks every address when the request is made.
    """
    problem = url_problem(url)
    if problem:
        return problem
    host = URL(url).host or ""
    try:
        async with asyncio.timeout(resolve_timeout):
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        return ""
    refusal: BlockedAddressError | None = None
    for *_, address in infos:
        try:
            guard.check(str(address[0]), hostname=host)
        except BlockedAddressError as error:
            refusal = refusal or error
        else:
            return ""
    return str(refusal) if refusal is not None else ""


def _legacy_ipv4(host: str) -> str | None:
    """The address a decimal, octal, hexadecimal or short IPv4 form (``2130706433``, ``127.1``) stands for, if it is
    one: C resolvers accept them, aiohttp refuses them, so a URL written that way can never be called."""
    if ":" in host:
        return None
    try:
        ipaddress.IPv4Address(host)
        return None
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None
