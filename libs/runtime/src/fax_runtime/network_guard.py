"""Refuse to connect, on a tenant's behalf, to addresses that are not on the public internet.

Document URLs, remote files and callback URLs are tenant input, so without a guard the platform is a server-side
request forgery tool: loopback admin ports, the cloud metadata service at 169.254.169.254, private networks.
`NetworkGuard.check` is applied to every address actually connected to (see `fax_runtime.guarded_http`); operators
open specific ranges with FAX_FETCH_ALLOW_NETWORKS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "FAX_FETCH_ALLOW_NETWORKS"


def _table(*rows: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(network), reason) for network, reason in rows)


# First match wins, so specific ranges come before the ranges that contain them.
_BLOCKED_V4 = _table(
    ("0.0.0.0/8", "unspecified address"),
    ("10.0.0.0/8", "private address"),
    ("100.64.0.0/10", "shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "loopback address"),
    ("169.254.169.254/32", "link-local (cloud metadata) address"),
    ("169.254.0.0/16", "link-local address"),
    ("172.16.0.0/12", "private address"),
    ("192.0.0.0/24", "reserved address"),
    ("192.0.2.0/24", "reserved (documentation) address"),
    ("192.88.99.0/24", "reserved (6to4 relay) address"),
    ("192.168.0.0/16", "private address"),
    ("198.18.0.0/15", "reserved (benchmarking) address"),
    ("198.51.100.0/24", "reserved (documentation) address"),
    ("203.0.113.0/24", "reserved (documentation) address"),
    ("224.0.0.0/4", "multicast address"),
    ("255.255.255.255/32", "broadcast address"),
    ("240.0.0.0/4", "reserved address"),
)
_BLOCKED_V6 = _table(
    ("::/128", "unspecified address"),
    ("::1/128", "loopback address"),
    ("64:ff9b:1::/48", "private (local-use NAT64) address"),
    ("100::/64", "reserved (discard-only) address"),
    ("2001:2::/48", "reserved (benchmarking) address"),
    ("2001:db8::/32", "reserved (documentation) address"),
    ("3fff::/20", "reserved (documentation) address"),
    ("fc00::/7", "unique-local address"),
    ("fe80::/10", "link-local address"),
    ("fec0::/10", "site-local address"),
    ("ff00::/8", "multicast address"),
)
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_NAT64_V6 = ipaddress.ip_network("64:ff9b::/96")
_TEREDO_V6 = ipaddress.ip_network("2001::/32")


class BlockedAddressError(OSError):
    """A connection to this address was refused (document fetches and callbacks alike).

    str(error) explains why and how to allow it. An OSError, so that it travels through the connection machinery
    (happy eyeballs, aiohttp's connector) the way a refused connection does; `guarded_http.refusal_of` finds it there.
    """

    def __init__(self, address: str, reason: str, *, hostname: str | None = None) -> None:
        self.address = address
        self.reason = reason
        self.hostname = hostname
        target = f"{hostname} ({address})" if hostname and hostname != address else address
        super().__init__(f"refused to connect to {target}: {reason} (set {ALLOW_SETTING} to allow)")


@dataclass(frozen=True)
class NetworkGuard:
    """Blocks every non-public address except those inside `allowed` networks."""

    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_setting(cls, value: str) -> NetworkGuard:
        """Parse a comma-separated FAX_FETCH_ALLOW_NETWORKS value such as "127.0.0.0/8, ::1/128"; "" allows nothing."""
        return cls.of(entry.strip() for entry in value.split(",") if entry.strip())

    @classmethod
    def of(cls, networks: Iterable[str]) -> NetworkGuard:
        """Build a guard from network strings; a bare address means that single address."""
        parsed: list[IPNetwork] = []
        for entry in networks:
            try:
                parsed.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as error:
                raise ValueError(f"{ALLOW_SETTING}: {entry!r} is not an IP network ({error})") from None
        return cls(tuple(parsed))

    def check(self, address: str, *, hostname: str | None = None) -> None:
        """Raise BlockedAddressError unless `address` (an IP literal) may be fetched from.

        `hostname` only enriches the error text when the address came from resolving a name.
        """
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise BlockedAddressError(address, "not an IP address", hostname=hostname) from None
        reason = self._blocked_reason(ip)
        if reason is not None:
            raise BlockedAddressError(address, reason, hostname=hostname)

    def is_allowed(self, address: str) -> bool:
        """True when `check(address)` would pass."""
        try:
            self.check(address)
        except BlockedAddressError:
            return False
        return True

    def _blocked_reason(self, ip: IPAddress) -> str | None:
        if any(ip in network for network in self.allowed):
            return None
        if isinstance(ip, ipaddress.IPv4Address):
            return _first_match(ip, _BLOCKED_V4)
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            kind, inner = embedded
            inner_reason = self._blocked_reason(inner)
            return None if inner_reason is None else f"{kind} address of {inner} ({inner_reason})"
        reason = _first_match(ip, _BLOCKED_V6)
        if reason is None and ip not in _GLOBAL_UNICAST_V6:
            reason = "reserved address"
        return reason


def _first_match(ip: IPAddress, table: tuple[tuple[IPNetwork, str], ...]) -> str | None:
    return next((reason for network, reason in table if ip in network), None)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address really leads to, for the transition formats that embed one."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip in _NAT64_V6:
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip in _TEREDO_V6 and ip.teredo is not None:
        # Traffic to a Teredo address ends at the client address; the server half only brokers the tunnel.
        return "Teredo", ip.teredo[1]
    return None
