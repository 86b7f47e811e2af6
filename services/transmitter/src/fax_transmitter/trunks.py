"""The trunks of a sip line at run time: which are up, how many calls each carries, which to try next, who may call.

Calls try the trunks in priority order. A trunk is skipped while it is down (its OPTIONS probes go unanswered or
answer 5xx, or a call found it unreachable) and while its channels are all taken; when every trunk is down, they
are all tried anyway, in order, since a probe may be wrong (the embedded default starts faxsim and the transmitter at
the same moment). When every trunk still to try is full, the call waits for a channel.

A call leaves a trunk for the next one when the trunk times out, answers 408 or a 5xx, or cannot be reached; an
answer about the callee (busy, unknown, unavailable, 6xx) or an answered call stays with it (``fails_over``).

Inbound requests are served only from the trunks' addresses (resolved now and then) and FAX_SIP_INBOUND_ALLOW's
networks; the rest are answered 403 and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable, Sequence

from fax_runtime.metrics import default_metrics
from fax_sip import CallFailed, Credentials, SipUserAgent
from fax_transmitter.config import TrunkConfig

log = logging.getLogger(__name__)

# How often trunk host names are resolved again for the inbound allow-list.
RESOLVE_EVERY_S = 300.0
DOWN_PROBE_INTERVAL_S = 5.0
KNOWN_METHODS = frozenset({"INVITE", "OPTIONS", "REGISTER", "BYE", "MESSAGE", "SUBSCRIBE", "NOTIFY", "INFO", "PUBLISH"})


def fails_over(failure: CallFailed) -> bool:
    """Whether a call refused by one trunk goes to the next: the trunk is in trouble, not the callee."""
    if failure.unreachable:
        return True
    return not failure.local and (failure.status == 408 or 500 <= failure.status < 600)


class Trunk:
    def __init__(self, config: TrunkConfig) -> None:
        self.config = config
        self.name = config.name
        self.transport = config.sip_uri.transport
        self.credentials = Credentials(config.username, config.password or "") if config.username else None
        self.up = True
        self.active = 0

    @property
    def has_room(self) -> bool:
        return self.config.channels is None or self.active < self.config.channels


class TrunkSet:
    def __init__(self, configs: Sequence[TrunkConfig]) -> None:
        self.trunks = [Trunk(config) for config in configs]
        self._freed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        for trunk in self.trunks:
            default_metrics().sip_trunk_up.labels(trunk.name).set(1)

    async def start(self, ua: SipUserAgent) -> None:
        """Register where asked, and probe every trunk that has a probe interval."""
        for trunk in self.trunks:
            if trunk.config.register:
                ua.register(trunk.config.uri, credentials=trunk.credentials)
            if trunk.config.probe_interval_s > 0:
                self._tasks.append(asyncio.create_task(self._probe(ua, trunk), name=f"probe-{trunk.name}"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def in_order(self) -> list[Trunk]:
        """The trunks to try, best first: those up, or every one when none is."""
        return [trunk for trunk in self.trunks if trunk.up] or list(self.trunks)

    async def claim_channel(self, candidates: Sequence[Trunk], wait_s: float) -> Trunk | None:
        """The first of ``candidates`` with a free channel, which it takes; waits for one while all are full, and
        gives up (None) after ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            for trunk in candidates:
                if trunk.has_room:
                    trunk.active += 1
                    return trunk
            self._freed.clear()
            try:
                await asyncio.wait_for(self._freed.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return None

    def release_channel(self, trunk: Trunk) -> None:
        trunk.active -= 1
        self._freed.set()

    def note_failure(self, trunk: Trunk, failure: CallFailed) -> None:
        """A call left ``trunk`` for the next one; one that could not reach it marks it down until a probe answers."""
        default_metrics().sip_failovers.labels(trunk.name).inc()
        if failure.unreachable and trunk.config.probe_interval_s > 0:
            self._set_up(trunk, False, f"a call could not reach it ({failure.status} {failure.reason})")

    def _set_up(self, trunk: Trunk, up: bool, why: str) -> None:
        if trunk.up != up:
            (log.info if up else log.warning)("trunk %s is %s: %s", trunk.name, "up" if up else "down", why)
        trunk.up = up
        default_metrics().sip_trunk_up.labels(trunk.name).set(1 if up else 0)

    async def _probe(self, ua: SipUserAgent, trunk: Trunk) -> None:
        while True:
            try:
                response = await asyncio.wait_for(
                    ua.options(trunk.config.uri, credentials=trunk.credentials), trunk.config.response_timeout_s
                )
                up, why = not response.local and response.status < 500, f"OPTIONS: {response.status} {response.reason}"
            except TimeoutError:
                up, why = False, "OPTIONS: no response"
            except Exception as error:
                up, why = False, f"OPTIONS not sent: {error}"
            self._set_up(trunk, up, why)
            # A trunk that is down is asked again sooner: it may only have been starting (faxsim on make run).
            interval = trunk.config.probe_interval_s
            await asyncio.sleep(interval if up else min(interval, DOWN_PROBE_INTERVAL_S))

    async def addresses(self) -> set[str]:
        """Every address the trunks' hosts resolve to (a name that does not resolve now adds none)."""
        loop = asyncio.get_running_loop()
        found: set[str] = set()
        for trunk in self.trunks:
            host = trunk.config.sip_uri.host
            try:
                found.add(str(ipaddress.ip_address(host)))
                continue
            except ValueError:
                pass
            try:
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
            except OSError as error:
                log.warning("trunk %s: cannot resolve %s for the inbound allow-list: %s", trunk.name, host, error)
                continue
            found.update(str(info[4][0]) for info in infos)
        return found


class InboundAllowList:
    """Who may place calls to us (and send any out-of-dialog request): the trunks' addresses and the networks of
    FAX_SIP_INBOUND_ALLOW."""

    def __init__(self, networks: Iterable[str]) -> None:
        self._networks = [ipaddress.ip_network(network) for network in networks]
        self._trunk_addresses: frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address] = frozenset()
        self._task: asyncio.Task[None] | None = None

    async def start(self, trunks: TrunkSet) -> None:
        await self.refresh(trunks)
        self._task = asyncio.create_task(self._keep_fresh(trunks), name="inbound-allow-list")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self, trunks: TrunkSet) -> None:
        self._trunk_addresses = frozenset(ipaddress.ip_address(a) for a in await trunks.addresses())

    async def _keep_fresh(self, trunks: TrunkSet) -> None:
        while True:
            await asyncio.sleep(RESOLVE_EVERY_S)
            await self.refresh(trunks)

    def admits(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
        return ip in self._trunk_addresses or any(ip in network for network in self._networks)


def method_label(method: str) -> str:
    """A metric label for a request's method: strangers may send any token there."""
    return method if method in KNOWN_METHODS else "other"
