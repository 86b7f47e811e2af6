"""Who a call's media socket listens to: the far end its SDP names, or, behind NAT, the source it latched on.

A media port receives whatever anyone sends to it: the stream of a call a dead predecessor left up (the far end
keeps sending to the port until it gives up), a scanner, someone guessing ports to inject audio. Only the far end's
datagrams may reach T.30. A far end behind NAT sends from an address its SDP cannot name (it names its private
one), so there we take the first packet of the answered call that comes from the host its signalling came from,
latch on that source (and send to it, as symmetric RTP expects), and refuse everyone else.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from collections.abc import Callable

_LOG = logging.getLogger(__name__)

Address = tuple[str, int]
# Where a NAT'd device numbers itself: RFC 1918, carrier-grade NAT (RFC 6598), link-local, IPv6 unique local.
_PRIVATE_NETWORKS = [
    ipaddress.ip_network(network)
    for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7")
]


def sockaddr_in(address: Address) -> bytes | None:
    """A ``struct sockaddr_in`` for an IPv4 address (None for anything else: those use socket.sendto)."""
    try:
        packed = socket.inet_aton(address[0])
    except OSError:
        return None
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", address[1]) + packed + bytes(8)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def behind_nat(sdp_host: str, signalling_host: str | None) -> bool:
    """True when the SDP's address cannot be where the far end's packets come from (unspecified, a name, or a
    private address that is not the one its signalling came from: the heuristic SIP proxies use for NAT) and the
    signalling host is an address datagrams can be matched against (a trunk named by a name is not)."""
    signalling_ip = _ip(signalling_host or "")
    if signalling_ip is None:
        return False
    ip = _ip(sdp_host)
    if ip is None or ip.is_unspecified:
        return True
    private = any(ip in network for network in _PRIVATE_NETWORKS if network.version == ip.version)
    return private and ip != signalling_ip


class MediaPeer:
    """The far end of one media socket. ``admit`` runs on the event loop for every datagram; ``target`` (where to
    send, with its ``sockaddr_in``) is read by the DSP and pacer threads, and replaced whole, never mutated.

    ``on_drop(reason)`` counts what is refused: ``unanswered`` before the far end is known, ``stranger`` after.
    """

    def __init__(self, name: str, on_drop: Callable[[str], None] | None = None) -> None:
        self.name = name
        self._on_drop = on_drop
        self._accepted: Address | None = None
        self._latch_host: str | None = None
        self._warned = False
        self.target: tuple[Address, bytes | None] | None = None

    def expect(self, host: str, port: int, *, signalling_host: str | None = None) -> None:
        """The far end's SDP names ``host:port``; ``signalling_host`` is where its SIP came from (for NAT)."""
        ip = _ip(host)
        address = (str(ip) if ip is not None else host, port)
        self._accepted = address
        self._latch_host = signalling_host if behind_nat(host, signalling_host) else None
        self._warned = False
        self.target = (address, sockaddr_in(address))
        if self._latch_host is not None:
            _LOG.info(
                "%s: %s:%d looks like an address behind NAT: will latch on %s", self.name, host, port, self._latch_host
            )

    def admit(self, source: Address) -> bool:
        """Whether a datagram from ``source`` belongs to the call; latches on the first one from behind NAT."""
        if source == self._accepted:
            return True
        expected = self._accepted
        if expected is None:
            self._drop("unanswered")
            return False
        if self._latch_host is not None and source[0] == self._latch_host:
            self._latch_host = None
            self._accepted = source
            self.target = (source, sockaddr_in(source))
            _LOG.info("%s: latched on %s:%d", self.name, *source)
            return True
        self._drop("stranger")
        if not self._warned:
            self._warned = True  # once per far end: a stale stream sends 50 packets a second
            _LOG.warning("%s: refusing media from %s:%d (the far end is %s:%d)", self.name, *source, *expected)
        return False

    def _drop(self, reason: str) -> None:
        if self._on_drop is not None:
            self._on_drop(reason)
