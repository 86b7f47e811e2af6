"""The asyncio side of a fax call: its UDP sockets for RTP and UDPTL (bound here, read and written by the DSP worker
that runs the call), the commands SIP gives the call, and the future that carries the outcome."""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fax_media.channel import CallSetup
from fax_media.dsp_loop import DspLoop, WorkerLost
from fax_media.dsp_worker import Expect, Failed, Hangup, Release, Released, Report, StartAudio, StartT38
from fax_media.rtp import G711_PAYLOAD_TYPES
from fax_media.t30 import FaxOptions, TransmissionOutcome

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


class FaxCall:
    """One fax call's media: RTP (G.711) or UDPTL (T.38) to a far end, T.30 by spandsp in a ``DspLoop`` worker.

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
        self._on_page = on_page
        self._closed = False
        self.finished: asyncio.Future[TransmissionOutcome] = loop.create_future()
        self._released: asyncio.Future[None] = loop.create_future()
        setup = CallSetup(calling, send_file, receive_file, options or FaxOptions(), max_duration, stall_timeout)
        rtp_socket = ports.bind()
        try:
            udptl_socket = ports.bind(exclude=frozenset({rtp_socket.getsockname()[1]}))
        except BaseException:
            rtp_socket.close()
            raise
        self._ports = ports
        # Ours stay open until the call is closed, so the ports stay taken even if the worker dies first.
        self._sockets = (rtp_socket, udptl_socket)
        self.rtp_port = rtp_socket.getsockname()[1]
        self.udptl_port = udptl_socket.getsockname()[1]
        self._name = f"fax call {next(_call_numbers)} ({'calling' if calling else 'answering'})"
        try:
            self._channel = dsp.open_channel(
                name=self._name,
                setup=setup,
                receive_loss=receive_loss,
                sockets=self._sockets,
                on_message=self._from_worker,
            )
        except BaseException:
            rtp_socket.close()
            udptl_socket.close()
            raise
        return self

    @property
    def name(self) -> str:
        return self._name

    def start_audio(
        self, remote_host: str, remote_port: int, payload_type: int, *, signalling_host: str | None = None
    ) -> None:
        """Start (or restart) G.711 fax with the far end at ``remote_host:remote_port`` (its SDP's audio), payload
        type 0 (PCMU) or 8 (PCMA). Only that address's datagrams are taken, unless it looks like an address behind
        NAT: then the first datagram from ``signalling_host`` (where the far end's SIP came from) is latched on."""
        if payload_type not in G711_PAYLOAD_TYPES:
            raise ValueError(f"payload type must be 0 (PCMU) or 8 (PCMA): {payload_type}")
        call_id = self._channel.call_id
        self._send(Expect(call_id, "rtp", remote_host, remote_port, signalling_host))
        self._send(StartAudio(call_id, payload_type))

    def redirect_audio(self, remote_host: str, remote_port: int, *, signalling_host: str | None = None) -> None:
        """The far end moved its audio (a re-INVITE): send to and take from the new address, T.30 carries on."""
        self._send(Expect(self._channel.call_id, "rtp", remote_host, remote_port, signalling_host))

    def start_t38(
        self, remote_host: str, remote_port: int, far_max_datagram: int = 400, *, signalling_host: str | None = None
    ) -> None:
        """Switch to T.38 over UDPTL with the far end at ``remote_host:remote_port`` (its SDP's image stream): the
        audio fax state is torn down and a T.38 terminal starts T.30 afresh. NAT as for ``start_audio``."""
        call_id = self._channel.call_id
        self._send(Expect(call_id, "udptl", remote_host, remote_port, signalling_host))
        self._send(StartT38(call_id, far_max_datagram))

    def remote_hangup(self) -> None:
        """The far end hung up: T.30 is terminated and ``finished`` resolves with what was done."""
        if not self.finished.done():
            self._send(Hangup(self._channel.call_id))

    def _send(self, command: object) -> None:
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        if self.finished.done():
            raise RuntimeError(f"{self.name} has finished")
        self._channel.send(command)

    def _from_worker(self, message: object) -> None:
        """On the DSP loop's reader thread: hand the worker's message to the event loop."""
        try:
            self._loop.call_soon_threadsafe(self._deliver, message)
        except RuntimeError:
            _LOG.warning("%s: event loop closed before the call's %s arrived", self.name, type(message).__name__)

    def _deliver(self, message: object) -> None:
        match message:
            case Report(report=report):
                if report.pages_done is not None and self._on_page is not None:
                    try:
                        self._on_page(report.pages_done)
                    except Exception:
                        _LOG.exception("%s: on_page failed", self.name)
                if report.outcome is not None and not self.finished.done():
                    self.finished.set_result(report.outcome)
            case Failed(error=error):
                if not self.finished.done():
                    self.finished.set_exception(RuntimeError(f"media command failed: {error}"))
            case WorkerLost(error=error):
                if not self.finished.done():
                    self.finished.set_exception(RuntimeError(error))
                if not self._released.done():
                    self._released.set_result(None)
            case Released():
                if not self._released.done():
                    self._released.set_result(None)

    async def close(self) -> None:
        """End the call if still running, free spandsp state and sockets. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            # The worker must be done with the sockets before ours close (a reused port would get its packets).
            self._channel.send(Release(self._channel.call_id))
        except RuntimeError:
            pass  # the worker is gone: so are its handles on the sockets
        else:
            await asyncio.shield(self._released)
        for sock in self._sockets:
            sock.close()
        self._ports.rest((self.rtp_port, self.udptl_port))
        if not self.finished.done():
            # The report of the hangup is queued behind us; let it land first.
            await asyncio.sleep(0)
        if not self.finished.done():
            self.finished.cancel()
