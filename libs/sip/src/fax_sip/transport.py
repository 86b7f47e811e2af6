"""SIP transports (RFC 3261 §18): UDP, TCP and TLS, connection reuse and stream framing.

One ``SipTransports`` listens on UDP and TCP at one port (every element must, §18) and on TLS at another, and sends
each message the way its destination asks. Over a stream a message is framed by its Content-Length (§18.3). A
connection is kept and reused for later messages to the same peer, whichever side opened it: a response goes back
over the connection its request came on (§18.2.2), and a TLS peer that puts ``alias`` in its Via gets our requests
over its connection too (RFC 5923). A keep-alive ``CRLFCRLF`` is answered with ``CRLF`` (RFC 5626 §3.5.1).
Connections nobody used for ``idle_s`` are closed; a new message opens a new one.

A message that cannot be sent (name not resolved, connection refused, TLS refused, connection lost) is handed to
``on_send_error``: the user agent fails its transaction at once, which is how a dead trunk is told from a silent one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from fax_sip.message import DEFAULT_PORTS, TCP, TLS, UDP, Hop, SipMessage, SipParseError, Via, parse_message

log = logging.getLogger(__name__)

Address = tuple[str, int]
# A stream's message must fit in these (a fax endpoint's largest is an INVITE with SDP, about 1 kB): a peer that
# sends more is broken or hostile, and its connection is closed.
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 10.0
RESOLVED_FOR_S = 60.0
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", re.IGNORECASE | re.MULTILINE)


class TransportError(Exception):
    """A message could not be sent: no address for the name, connection refused or lost, TLS refused."""


class FramingError(ValueError):
    """A stream carried something that is not a SIP message: the connection cannot be resynchronised."""


@dataclass(frozen=True)
class TlsSettings:
    """TLS for ``sips:`` and ``transport=tls``: our certificate (served, and shown to servers that ask for one)
    and the authorities we trust. Peers' certificates are verified, names included, unless ``verify`` is off."""

    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None  # None: the system's authorities
    verify: bool = True

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def server_context(self) -> ssl.SSLContext:
        if not self.cert_file:
            raise ValueError("a TLS listener needs a certificate (cert_file) and its key")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


class StreamFramer:
    """Cuts a byte stream into SIP messages by their Content-Length (§18.3). ``feed`` returns the whole messages
    received so far, and ``PING`` for each keep-alive; it raises ``FramingError`` on anything unframeable."""

    PING = b"\r\n\r\n"

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        while True:
            # CRLFs before a start line are ignored (§7.5); a double one is a keep-alive ping.
            crlfs = 0
            while self._buffer[crlfs : crlfs + 2] == b"\r\n":
                crlfs += 2
            if crlfs:
                if crlfs == len(self._buffer) and crlfs < 4:
                    return out  # maybe the start of a ping: wait for the rest
                if crlfs >= 4:
                    out.append(self.PING)
                del self._buffer[:crlfs]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    raise FramingError("headers longer than allowed")
                return out
            if end > MAX_HEADER_BYTES:
                raise FramingError("headers longer than allowed")
            found = _CONTENT_LENGTH.search(bytes(self._buffer[:end]))
            if found is None:
                raise FramingError("a message without Content-Length on a stream")
            length = int(found.group(1))
            if length > MAX_BODY_BYTES:
                raise FramingError(f"a body of {length} bytes")
            total = end + 4 + length
            if len(self._buffer) < total:
                return out
            out.append(bytes(self._buffer[:total]))
            del self._buffer[:total]


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection, opened by us or by the peer."""

    def __init__(self, layer: SipTransports, transport_name: str) -> None:
        self._layer = layer
        self.transport_name = transport_name
        self.remote: Address = ("", 0)
        self.last_used = time.monotonic()
        self._transport: asyncio.Transport | None = None
        self._framer = StreamFramer()

    @property
    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.remote = (peer[0], peer[1])
        self._layer._register(self)

    def data_received(self, data: bytes) -> None:
        self.last_used = time.monotonic()
        try:
            messages = self._framer.feed(data)
        except FramingError as error:
            log.info("closing the SIP %s connection from %s:%d: %s", self.transport_name, *self.remote, error)
            self.close()
            return
        for message in messages:
            if message == StreamFramer.PING:
                self.write(b"\r\n")
            else:
                self._layer._deliver(message, Flow(self.transport_name, self.remote, self))

    def connection_lost(self, exc: Exception | None) -> None:
        self._layer._forget(self)

    def write(self, data: bytes) -> None:
        if not self.open:
            raise TransportError(f"the {self.transport_name} connection to {self.remote[0]}:{self.remote[1]} is closed")
        assert self._transport is not None
        self.last_used = time.monotonic()
        self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


@dataclass(eq=False)
class Flow:
    """How a message reached us, so that what answers it goes back the same way (§18.2.2)."""

    transport: str
    remote: Address
    connection: StreamConnection | None = None

    @property
    def reliable(self) -> bool:
        return self.transport != UDP


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, layer: SipTransports) -> None:
        self._layer = layer

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.strip():  # a bare CRLF is a keep-alive
            self._layer._deliver(data, Flow(UDP, (addr[0], addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP UDP socket error: %s", exc)


Deliver = Callable[[SipMessage, Flow], None]
SendFailed = Callable[[SipMessage, TransportError], None]


class SipTransports:
    """The UDP socket, the TCP and TLS listeners, and every connection, of one user agent."""

    def __init__(
        self,
        *,
        on_message: Deliver,
        on_send_error: SendFailed,
        tls: TlsSettings | None = None,
        idle_s: float = 300.0,
        max_connections: int = 1024,
    ) -> None:
        self._on_message = on_message
        self._on_send_error = on_send_error
        self._tls = tls or TlsSettings()
        self._client_tls: ssl.SSLContext | None = None
        self._idle_s = idle_s
        self._max_connections = max_connections
        self.bind_host = ""
        self.ports: dict[str, int] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.Server] = []
        # Open connections by (transport, peer address, peer port), and by the peer's alias (RFC 5923).
        self._connections: dict[tuple[str, str, int], StreamConnection] = {}
        self._connecting: dict[tuple[str, str, int], asyncio.Future[StreamConnection]] = {}
        self._resolved: dict[str, tuple[str, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int, transports: tuple[str, ...], tls_port: int | None) -> None:
        """Listen on UDP and/or TCP at ``port`` (0: one free for both) and on TLS at ``tls_port`` (None: not)."""
        loop = asyncio.get_running_loop()
        self.bind_host = host
        plain = [t for t in (UDP, TCP) if t in transports]
        for attempt in range(20):
            try:
                await self._listen_plain(host, port, plain)
                break
            except OSError:
                await self._close_listeners()
                if port or attempt == 19:
                    raise
        if tls_port is not None:
            server = await loop.create_server(
                lambda: self._accepted(TLS), host, tls_port, ssl=self._tls.server_context(), reuse_address=True
            )
            self._servers.append(server)
            self.ports[TLS] = server.sockets[0].getsockname()[1]
        self._spawn(self._close_idle_connections())

    async def _listen_plain(self, host: str, port: int, transports: list[str]) -> None:
        loop = asyncio.get_running_loop()
        if TCP in transports:
            server = await loop.create_server(lambda: self._accepted(TCP), host, port, reuse_address=True)
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]  # the same free port for UDP
            self.ports[TCP] = port
        if UDP in transports:
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), local_addr=(host, port))
            self.ports[UDP] = self._udp.get_extra_info("sockname")[1]

    async def _close_listeners(self) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        self.ports.clear()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for connection in list(self._connections.values()):
            connection.close()
        await self._close_listeners()

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- connections ---------------------------------------------------------------------------------------------

    def _accepted(self, transport_name: str) -> StreamConnection:
        return StreamConnection(self, transport_name)

    def _register(self, connection: StreamConnection) -> None:
        key = (connection.transport_name, *connection.remote)
        if self.open_connections() >= self._max_connections:
            log.warning("refusing a SIP %s connection from %s: too many open", connection.transport_name, key[1])
            connection.close()
            return
        self._connections[key] = connection

    def _forget(self, connection: StreamConnection) -> None:
        for key in [key for key, known in self._connections.items() if known is connection]:
            del self._connections[key]

    def open_connections(self) -> int:
        return len({id(connection) for connection in self._connections.values()})

    async def _close_idle_connections(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self._idle_s))
            cutoff = time.monotonic() - self._idle_s
            for connection in {id(c): c for c in self._connections.values()}.values():
                if connection.last_used < cutoff:
                    connection.close()

    async def _connection(self, hop: Hop) -> StreamConnection:
        address = await self.resolve(hop.host)
        key = (hop.transport, address, hop.port)
        known = self._connections.get(key)
        if known is not None and known.open:
            return known
        pending = self._connecting.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._connect(hop, address))
            self._connecting[key] = pending
            pending.add_done_callback(lambda _: self._connecting.pop(key, None))
        return await asyncio.shield(pending)

    async def _connect(self, hop: Hop, address: str) -> StreamConnection:
        loop = asyncio.get_running_loop()
        context = None
        if hop.transport == TLS:
            if self._client_tls is None:
                self._client_tls = self._tls.client_context()
            context = self._client_tls
        local = (self.bind_host, 0) if self.bind_host and _same_family(self.bind_host, address) else None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                _, connection = await loop.create_connection(
                    lambda: StreamConnection(self, hop.transport),
                    address,
                    hop.port,
                    ssl=context,
                    # The certificate must name the host the URI names (RFC 5922): its DNS name, or its address.
                    server_hostname=hop.host if context is not None else None,
                    local_addr=local,
                )
        except ssl.SSLCertVerificationError as error:
            reason = error.verify_message
            raise TransportError(f"TLS to {hop.host}:{hop.port}: certificate refused ({reason})") from None
        except (OSError, TimeoutError, ssl.SSLError) as error:
            raise TransportError(f"{hop.transport.upper()} to {hop.host}:{hop.port}: {_describe(error)}") from None
        # Keyed by the address and port we dialled too (the kernel's view may name the peer differently).
        self._connections[(hop.transport, address, hop.port)] = connection
        return connection

    async def resolve(self, host: str) -> str:
        """An address for ``host`` (itself when it is one), from the resolver without blocking the loop."""
        if _is_address(host):
            return host
        cached = self._resolved.get(host)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        except OSError as error:
            raise TransportError(f"cannot resolve {host}: {_describe(error)}") from None
        prefer = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET
        addresses = sorted(found, key=lambda info: info[0] != prefer)
        address = str(addresses[0][4][0])
        self._resolved[host] = (address, time.monotonic() + RESOLVED_FOR_S)
        return address

    # --- sending -------------------------------------------------------------------------------------------------

    def send(self, message: SipMessage, to: Hop | Flow) -> None:
        """Send ``message`` to a next hop, or back along the flow a request came in on; failures go to
        ``on_send_error`` (now or, when a connection or a name has to be waited for, later)."""
        data = message.encode()
        if isinstance(to, Flow):
            if to.transport == UDP:
                self._sendto(data, to.remote, message)
                return
            if to.connection is not None and to.connection.open:
                to.connection.write(data)
                return
            # The connection is gone: a response goes to the top Via's address instead (§18.2.2).
            hop = _response_hop(message, to) if not message.is_request else Hop(to.transport, *to.remote)
            if hop is None:
                self._failed(message, TransportError("the connection is closed and the Via names no address"))
                return
            to = hop
        if to.transport == UDP:
            if _is_address(to.host):
                self._sendto(data, (to.host, to.port), message)
            else:
                self._spawn(self._resolve_and_send(data, to, message))
            return
        if _is_address(to.host):
            known = self._connections.get((to.transport, to.host, to.port))
            if known is not None and known.open:
                known.write(data)
                return
        self._spawn(self._connect_and_send(data, to, message))

    def _sendto(self, data: bytes, address: Address, message: SipMessage) -> None:
        if self._udp is None or self._udp.is_closing():
            self._failed(message, TransportError("no UDP socket"))
            return
        self._udp.sendto(data, address)

    async def _resolve_and_send(self, data: bytes, hop: Hop, message: SipMessage) -> None:
        try:
            address = await self.resolve(hop.host)
        except TransportError as error:
            self._failed(message, error)
            return
        self._sendto(data, (address, hop.port), message)

    async def _connect_and_send(self, data: bytes, hop: Hop, message: SipMessage) -> None:
        try:
            connection = await self._connection(hop)
            connection.write(data)
        except TransportError as error:
            self._failed(message, error)

    def _failed(self, message: SipMessage, error: TransportError) -> None:
        log.info("SIP %s not sent: %s", message.method or message.status, error)
        self._on_send_error(message, error)

    # --- receiving -----------------------------------------------------------------------------------------------

    def _deliver(self, data: bytes, flow: Flow) -> None:
        try:
            message = parse_message(data)
        except SipParseError as error:
            log.debug("dropping an unparseable SIP message from %s: %s", flow.remote, error)
            return
        if flow.connection is not None and message.is_request:
            self._note_alias(message, flow.connection)
        try:
            self._on_message(message, flow)
        except Exception:
            log.exception("SIP message from %s could not be handled", flow.remote)

    def _note_alias(self, request: SipMessage, connection: StreamConnection) -> None:
        # RFC 5923: over TLS, a Via with "alias" lets requests to its sent-by address reuse this connection.
        try:
            via = Via.parse(request.top_via)
        except SipParseError:
            return
        if connection.transport_name == TLS and "alias" in via.params:
            port = via.port or DEFAULT_PORTS[TLS]
            self._connections.setdefault((TLS, connection.remote[0], port), connection)


def _response_hop(response: SipMessage, flow: Flow) -> Hop | None:
    try:
        via = Via.parse(response.top_via)
    except SipParseError:
        return None
    host = via.params.get("received") or via.host
    return Hop(flow.transport, host, via.port or DEFAULT_PORTS[flow.transport])


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _same_family(one: str, other: str) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(one).version == ipaddress.ip_address(other).version
    return False


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no connection in time"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__
