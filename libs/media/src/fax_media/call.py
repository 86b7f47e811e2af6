"""The asyncio side of a fax call: UDP sockets for RTP and UDPTL, and the future that carries the outcome."""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import random
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fax_media.channel import CallReport, CallSetup, FaxChannel
from fax_media.dsp_loop import DspLoop
from fax_media.peer import MediaPeer
from fax_media.rtp import G711_PAYLOAD_TYPES
from fax_media.t30 import FaxOptions, TransmissionOutcome
from fax_runtime.metrics import default_metrics

_LOG = logging.getLogger(__name__)
_call_numbers = itertools.count(1)

# A fax whose T.30 makes no progress (no phase B or D event) this long is stuck: longer than the slowest page
# (a dense page at V.27ter takes ~190 s of line time).
DEFAULT_STALL_TIMEOUT = 240.0
# A far end may keep sending for a while after a call ends (our BYE lost, its own timers): a port that just served
# a call rests this long before another call binds it, while the range has others.
PORT_REST_SECONDS = 60.0


@dataclass
class PortRange:
    """Where media sockets bind: even ports from ``first`` to ``last`` (RTP's convention), tried round robin.

    The round starts at a random port, so a restarted process does not bind the ports its predecessor's calls were
    using (their far ends may still be streaming into them); ports that served a call moments ago, here or in a dead
    predecessor (``rest``), are taken only when no other port is free.
    """

    host: str
    first: int
    last: int
    _ports: list[int] = field(init=False, repr=False)
    _cursor: int = field(init=False, repr=False)
    _resting: dict[int, float] = field(default_factory=dict, init=False, repr=False)  # port -> monotonic end of rest

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.last <= 65535:
            raise ValueError(f"bad media port range {self.first}-{self.last}")
        first_even = self.first + (self.first % 2)
        self._ports = list(range(first_even, self.last + 1, 2))
        if not self._ports:
            raise ValueError(f"no even port in {self.first}-{self.last}")
        self._cursor = secrets.randbelow(len(self._ports))

    def rest(self, ports: Iterable[int], seconds: float = PORT_REST_SECONDS) -> None:
        """Keep ``ports`` (of this range) for last during the next ``seconds``."""
        until = time.monotonic() + seconds
        for port in ports:
            if self.first <= port <= self.last:
                self._resting[port] = max(until, self._resting.get(port, 0.0))

    def bind(self, exclude: frozenset[int] = frozenset()) -> socket.socket:
        """A non-blocking UDP socket on the next free even port; ``OSError`` when the range is exhausted."""
        now = time.monotonic()
        self._resting = {port: until for port, until in self._resting.items() if until > now}
        for allow_resting in (False, True):
            for _ in range(len(self._ports)):
                port = self._ports[self._cursor % len(self._ports)]
                self._cursor += 1
                if port in exclude or (port in self._resting and not allow_resting):
                    continue
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    sock.bind((self.host, port))
                except OSError as error:
                    sock.close()
                    if error.errno == errno.EADDRINUSE:
                        continue
                    raise
                sock.setblocking(False)
                return sock
        raise OSError(errno.EADDRINUSE, f"no free media port in {self.host}:{self.first}-{self.last}")


class MediaInbox(asyncio.DatagramProtocol):
    """Hands the far end's datagrams to the DSP thread (``deque.append`` is thread-safe); ``peer`` refuses the rest.

    ``loss`` drops that share of what arrives, on purpose: faxsim's lossy network.
    """

    def __init__(self, inbox: deque[bytes], peer: MediaPeer, loss: float = 0.0) -> None:
        self._inbox = inbox
        self._peer = peer
        self._loss = loss
        self._random = random.Random()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self._peer.admit(addr[:2]):
            return
        if self._loss and self._random.random() < self._loss:
            return
        self._inbox.append(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while the far end is not listening yet; the media timers deal with real loss.
        _LOG.debug("media socket error: %s", exc)


class FaxCall:
    """One fax call's media: RTP (G.711) or UDPTL (T.38) to a far end, T.30 by spandsp on the ``DspLoop``.

    ``calling=True`` sends ``send_file``; ``calling=False`` answers and writes what it receives to ``receive_file``.
    ``finished`` resolves with the ``TransmissionOutcome`` (for an answering call ``pages_sent`` counts the pages
    received). ``on_page(pages_done)`` runs on the event loop after each page.
    """

    def __init__(self) -> None:
        raise TypeError("use `await FaxCall.open(...)`")

    @classmethod
    async def open(
        cls,
        dsp: DspLoop,
        ports: PortRange,
        *,
        calling: bool,
        send_file: Path | None = None,
        receive_file: Path | None = None,
        options: FaxOptions | None = None,
        max_duration: float = 600.0,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        on_page: Callable[[int], None] | None = None,
        receive_loss: float = 0.0,
    ) -> FaxCall:
        if calling and send_file is None:
            raise ValueError("a calling fax needs send_file")
        if not calling and receive_file is None:
            raise ValueError("an answering fax needs receive_file")
        if max_duration <= 0 or stall_timeout <= 0:
            raise ValueError("max_duration and stall_timeout must be positive")
        if not dsp.running:
            raise RuntimeError("the DSP loop is not running")
        self = object.__new__(cls)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._dsp = dsp
        self._on_page = on_page
        self._closed = False
        self.finished: asyncio.Future[TransmissionOutcome] = loop.create_future()
        setup = CallSetup(calling, send_file, receive_file, options or FaxOptions(), max_duration, stall_timeout)
        rtp_socket = ports.bind()
        try:
            udptl_socket = ports.bind(exclude=frozenset({rtp_socket.getsockname()[1]}))
        except BaseException:
            rtp_socket.close()
            raise
        self._ports = ports
        self.rtp_port = rtp_socket.getsockname()[1]
        self.udptl_port = udptl_socket.getsockname()[1]
        name = f"fax call {next(_call_numbers)} ({'calling' if calling else 'answering'})"
        dropped = default_metrics().media_packets_dropped
        self._rtp_peer = MediaPeer(f"{name} RTP", lambda reason: dropped.labels("g711", reason).inc())
        self._udptl_peer = MediaPeer(f"{name} UDPTL", lambda reason: dropped.labels("t38", reason).inc())
        self._channel = FaxChannel(
            setup,
            name=name,
            rtp_socket=rtp_socket,
            udptl_socket=udptl_socket,
            rtp_peer=self._rtp_peer,
            udptl_peer=self._udptl_peer,
            report=self._report_threadsafe,
        )
        self._transports: list[asyncio.DatagramTransport] = []
        try:
            for sock, inbox, peer in (
                (rtp_socket, self._channel.rtp_inbox, self._rtp_peer),
                (udptl_socket, self._channel.udptl_inbox, self._udptl_peer),
            ):
                transport, _ = await loop.create_datagram_endpoint(
                    lambda inbox=inbox, peer=peer: MediaInbox(inbox, peer, receive_loss), sock=sock
                )
                self._transports.append(transport)
            dsp.submit(lambda: dsp.add(self._channel))
        except BaseException:
            for transport in self._transports:
                transport.close()
            rtp_socket.close()
            udptl_socket.close()
            raise
        return self

    @property
    def name(self) -> str:
        return self._channel.name

    def start_audio(
        self, remote_host: str, remote_port: int, payload_type: int, *, signalling_host: str | None = None
    ) -> None:
        """Start (or restart) G.711 fax with the far end at ``remote_host:remote_port`` (its SDP's audio), payload
        type 0 (PCMU) or 8 (PCMA). Only that address's datagrams are taken, unless it looks like an address behind
        NAT: then the first datagram from ``signalling_host`` (where the far end's SIP came from) is latched on."""
        if payload_type not in G711_PAYLOAD_TYPES:
            raise ValueError(f"payload type must be 0 (PCMU) or 8 (PCMA): {payload_type}")
        self._ensure_running()
        self._rtp_peer.expect(remote_host, remote_port, signalling_host=signalling_host)
        self._command(lambda: self._channel.start_audio(payload_type), start=True)

    def redirect_audio(self, remote_host: str, remote_port: int, *, signalling_host: str | None = None) -> None:
        """The far end moved its audio (a re-INVITE): send to and take from the new address, T.30 carries on."""
        self._ensure_running()
        self._rtp_peer.expect(remote_host, remote_port, signalling_host=signalling_host)

    def start_t38(
        self, remote_host: str, remote_port: int, far_max_datagram: int = 400, *, signalling_host: str | None = None
    ) -> None:
        """Switch to T.38 over UDPTL with the far end at ``remote_host:remote_port`` (its SDP's image stream): the
        audio fax state is torn down and a T.38 terminal starts T.30 afresh. NAT as for ``start_audio``."""
        self._ensure_running()
        self._udptl_peer.expect(remote_host, remote_port, signalling_host=signalling_host)
        self._command(lambda: self._channel.start_t38(far_max_datagram), start=True)

    def remote_hangup(self) -> None:
        """The far end hung up: T.30 is terminated and ``finished`` resolves with what was done."""
        if not self.finished.done():
            self._command(self._channel.hangup)

    def _ensure_running(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        if self.finished.done():
            raise RuntimeError(f"{self.name} has finished")

    def _command(self, command: Callable[[], None], *, start: bool = False) -> None:
        self._ensure_running()

        def run() -> None:
            try:
                command()
            except Exception as error:
                _LOG.exception("%s: media command failed", self.name)
                self._channel.hangup()
                self._loop.call_soon_threadsafe(self._fail, error)

        (self._dsp.submit_start if start else self._dsp.submit)(run)

    def _fail(self, error: Exception) -> None:
        if not self.finished.done():
            self.finished.set_exception(error)

    def _report_threadsafe(self, report: CallReport) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver, report)
        except RuntimeError:
            _LOG.warning("%s: event loop closed before the call's report arrived", self.name)

    def _deliver(self, report: CallReport) -> None:
        if report.pages_done is not None and self._on_page is not None:
            try:
                self._on_page(report.pages_done)
            except Exception:
                _LOG.exception("%s: on_page failed", self.name)
        if report.outcome is not None and not self.finished.done():
            self.finished.set_result(report.outcome)

    async def close(self) -> None:
        """End the call if still running, free spandsp state and sockets. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._dsp.running:
            # The channel must be off the DSP thread before its sockets close (a reused fd would get our packets).
            released = self._loop.create_future()

            def hang_up_and_release() -> None:
                self._channel.hangup()
                self._loop.call_soon_threadsafe(lambda: released.done() or released.set_result(None))

            try:
                self._dsp.submit(hang_up_and_release)
            except RuntimeError:
                pass  # stopped meanwhile: stopping aborted every channel
            else:
                await released
        self._channel.release_sockets()
        for transport in self._transports:
            transport.close()
        self._ports.rest((self.rtp_port, self.udptl_port))
        if not self.finished.done():
            # The report of the hangup is queued behind us; let it land first.
            await asyncio.sleep(0)
        if not self.finished.done():
            self.finished.cancel()
