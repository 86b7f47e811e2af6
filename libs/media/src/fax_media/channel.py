"""The DSP-thread side of one fax call: a spandsp terminal fed from RTP (G.711) or UDPTL (T.38), with a watchdog.

Everything here runs in a DSP worker process (``fax_media.dsp_worker``) on its ``DspClock``'s DSP thread, so
spandsp, TIFF I/O and the C callbacks stay off the asyncio loop and off the other workers' cores. Each tick the
channel reads what its media sockets received (``MediaSocket``: only the far end's datagrams get through); results
go back with ``report``. Packets go out with ``sendto`` on the non-blocking sockets to each socket's ``MediaPeer``:
RTP made a few ticks ahead and sent by the clock's pacer thread at its slot, so a slow spandsp call (TIFF I/O) does
not delay it; UDPTL straight from the DSP thread as spandsp emits it.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fax_media import spandsp
from fax_media.dsp_clock import Timings
from fax_media.jitter import LOST, JitterBuffer
from fax_media.peer import MediaPeer
from fax_media.rtp import FRAME_SAMPLES, PCMA, RtpError, RtpPacket, RtpStream
from fax_media.t30 import FaxOptions, T30Progress, TransmissionOutcome, configure
from fax_media.udptl import UdptlDecoder, UdptlEncoder

_LOG = logging.getLogger(__name__)

# After T.30 ends we keep the line up this long so the far end hears our last frames (DCN, MCF).
_HANGUP_GRACE_SECONDS = 1.0
# This many frames lost in a row means the far end stopped sending: play silence so spandsp's timers run.
_MAX_FILLIN_FRAMES = 10
_SILENCE = bytes(2 * FRAME_SAMPLES)

_MSG_DONTWAIT = 0x40
# What one socket may take in one tick: 50 packets a second arrive one a tick; a flood beyond this waits in (and
# overflows) the kernel's buffer instead of stretching the tick.
_MAX_DATAGRAMS_PER_TICK = 32
# The socket of the stream not in use (UDPTL during audio, RTP during T.38) is emptied every this many ticks.
_IDLE_SOCKET_TICKS = 25


@functools.cache
def _gil_holding_sendto() -> Callable[..., int]:
    """libc's sendto through PyDLL, which keeps the GIL: socket.sendto releases it for every packet, and under load
    the pacer then waits up to a switch interval to get it back, once per packet of its burst."""
    sendto = ctypes.PyDLL(None).sendto
    sendto.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    sendto.restype = ctypes.c_ssize_t
    return sendto


class MediaSocket:
    """One of a call's media sockets as the DSP thread reads it: each tick, what arrived from the far end
    (``peer.admit``) goes to ``inbox``, the rest is dropped. ``loss`` drops that share on purpose (faxsim's lossy
    network)."""

    def __init__(self, sock: socket.socket, peer: MediaPeer, loss: float = 0.0) -> None:
        self.socket = sock
        self.peer = peer
        self.inbox: deque[bytes] = deque()
        self._loss = loss
        self._random = random.Random()

    def receive(self) -> None:
        recvfrom, admit = self.socket.recvfrom, self.peer.admit
        for _ in range(_MAX_DATAGRAMS_PER_TICK):
            try:
                data, source = recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                # ICMP port unreachable while the far end is not listening yet; the media timers deal with loss.
                _LOG.debug("%s: media socket error: %s", self.peer.name, error)
                return
            if admit(source[:2]) and not (self._loss and self._random.random() < self._loss):
                self.inbox.append(data)


@dataclass
class CallReport:
    """What the channel tells its owner: a page done, or the final outcome."""

    pages_done: int | None = None
    outcome: TransmissionOutcome | None = None


@dataclass(frozen=True)
class CallSetup:
    calling: bool
    send_file: Path | None
    receive_file: Path | None
    options: FaxOptions
    max_duration: float
    stall_timeout: float


class FaxChannel:
    """One call's media and T.30 engine. Created on any thread; every method after that runs on the DSP thread."""

    def __init__(
        self,
        setup: CallSetup,
        *,
        name: str,
        rtp: MediaSocket,
        udptl: MediaSocket,
        report: Callable[[CallReport], None],
    ) -> None:
        self.name = name
        self.setup = setup
        self._rtp_media = rtp
        self._udptl_media = udptl
        self.rtp_inbox = rtp.inbox
        self.udptl_inbox = udptl.inbox
        self._rtp_socket = rtp.socket
        self._rtp_fd = rtp.socket.fileno()
        self._sendto_fd = _gil_holding_sendto()
        self._udptl_socket = udptl.socket
        self.rtp_peer = rtp.peer
        self.udptl_peer = udptl.peer
        self._report = report
        self._terminal: spandsp.AudioFaxTerminal | spandsp.T38FaxTerminal | None = None
        self._progress = T30Progress()
        self._t38_used = False
        self._samples = 0
        self._ticks = 0
        self._started_at: float | None = None
        self._last_progress = 0.0
        self._ended_at: float | None = None  # when T.30 finished; the line stays up for the grace period
        self._timed_out = False
        self._done = False
        self.send_errors = 0
        # Audio state.
        self._rtp: RtpStream | None = None
        self._jitter = JitterBuffer()
        self._encoder: spandsp.G711Codec | None = None
        self._decoder: spandsp.G711Codec | None = None
        self._audio = (ctypes.c_int16 * FRAME_SAMPLES)()
        # (send slot, RTP packet) made ahead by the DSP thread, sent on time by the pacer thread.
        self._outbox: deque[tuple[float, bytes]] = deque()
        self._send_lock = threading.Lock()
        self._sockets_open = True
        self._lost_in_row = 0
        # T.38 state.
        self._udptl_encoder: UdptlEncoder | None = None
        self._udptl_decoder = UdptlDecoder()

    # Commands (submitted by the owner).

    def start_audio(self, payload_type: int) -> None:
        if self._done:  # a start queued behind a hangup
            return
        self._stop_terminal()
        self._rtp = RtpStream(payload_type)
        alaw = payload_type == PCMA
        self._encoder = spandsp.G711Codec(alaw=alaw)
        self._decoder = spandsp.G711Codec(alaw=alaw)
        self._jitter = JitterBuffer()
        self.rtp_inbox.clear()
        terminal = spandsp.AudioFaxTerminal(calling=self.setup.calling, name=self.name)
        terminal.set_transmit_on_idle(True)
        self._install(terminal)

    def start_t38(self, far_max_datagram: int) -> None:
        if self._done:
            return
        self._stop_terminal()
        self._close_codecs()
        self._rtp = None
        self._outbox.clear()
        self._t38_used = True
        self._udptl_encoder = UdptlEncoder(max_datagram=far_max_datagram)
        self._udptl_decoder = UdptlDecoder()
        terminal = spandsp.T38FaxTerminal(
            calling=self.setup.calling, name=self.name, send_packet=self._send_ifp, max_datagram=far_max_datagram
        )
        self._install(terminal)

    def hangup(self) -> None:
        """The far end hung up (BYE): T.30 ends now with whatever it has."""
        if self._terminal is not None and self._ended_at is None:
            self._terminal.t30.terminate()
        self._finish()

    def abort(self) -> None:
        self.hangup()

    # Ticks.

    def send_due(self, scheduled: float, lateness: Timings) -> None:
        """Pacer thread: send the RTP packets whose slot has come."""
        outbox = self._outbox
        while outbox and outbox[0][0] <= scheduled:
            slot, packet = outbox.popleft()
            self._send_rtp(packet)
            lateness.add(time.monotonic() - slot)

    def close_sockets(self) -> None:
        """Stop every send and close this process's handles on the sockets (DSP thread, once the call is done)."""
        with self._send_lock:
            self._sockets_open = False
            self._outbox.clear()
        self._rtp_socket.close()
        self._udptl_socket.close()

    def process(self, now: float, slot: float) -> bool:
        if self._done:
            return False
        terminal = self._terminal
        audio = isinstance(terminal, spandsp.AudioFaxTerminal)
        self._ticks += 1
        # The stream in use is read every tick; the other is only emptied now and then (a syscall less a tick).
        emptying = self._ticks % _IDLE_SOCKET_TICKS == 0
        if audio or emptying:
            self._rtp_media.receive()
        if (terminal is not None and not audio) or emptying:
            self._udptl_media.receive()
        if terminal is None:
            self.rtp_inbox.clear()
            self.udptl_inbox.clear()
            return True
        if audio:
            self._tick_audio(terminal, slot)
        else:
            self._tick_t38(terminal)
        self._samples += FRAME_SAMPLES
        self._watch(now)
        return not self._done

    def _tick_audio(self, terminal: spandsp.AudioFaxTerminal, slot: float) -> None:
        assert self._rtp is not None and self._encoder is not None and self._decoder is not None
        self.udptl_inbox.clear()
        while self.rtp_inbox:
            try:
                packet = RtpPacket.decode(self.rtp_inbox.popleft())
            except RtpError:
                continue
            # Comfort noise or DTMF events have no place in a fax stream; only the negotiated codec is played.
            if packet.payload_type == self._rtp.payload_type and packet.payload:
                self._jitter.put(packet.sequence, packet.payload)
        frame = self._jitter.pop()
        audio = self._audio
        if frame is LOST and self._lost_in_row < _MAX_FILLIN_FRAMES:
            self._lost_in_row += 1
            terminal.rx_fillin(FRAME_SAMPLES)
        elif frame:
            self._lost_in_row = 0
            count = self._decoder.decode(frame, audio)
            if count < FRAME_SAMPLES:
                ctypes.memset(ctypes.addressof(audio) + 2 * count, 0, 2 * (FRAME_SAMPLES - count))
            terminal.rx(audio, FRAME_SAMPLES)
        else:
            # Nothing playing yet, or the far end went quiet: silence keeps T.30's timers running.
            ctypes.memmove(audio, _SILENCE, len(_SILENCE))
            terminal.rx(audio, FRAME_SAMPLES)
        produced = terminal.tx(audio, FRAME_SAMPLES)
        if produced < FRAME_SAMPLES:
            ctypes.memset(ctypes.addressof(audio) + 2 * produced, 0, 2 * (FRAME_SAMPLES - produced))
        self._outbox.append((slot, self._rtp.next_packet(self._encoder.encode(audio, FRAME_SAMPLES))))

    def _tick_t38(self, terminal: spandsp.T38FaxTerminal) -> None:
        self.rtp_inbox.clear()
        while self.udptl_inbox:
            for sequence, ifp in self._udptl_decoder.decode(self.udptl_inbox.popleft()):
                terminal.rx_packet(ifp, sequence)
                if self._done or self._terminal is not terminal:
                    return
        terminal.send_timeout(FRAME_SAMPLES)

    def _send_ifp(self, ifp: bytes, count: int) -> None:
        if self._udptl_encoder is None:
            return
        datagram = self._udptl_encoder.encode(ifp)
        for _ in range(max(count, 1)):
            self._sendto(self._udptl_socket, datagram, self.udptl_peer)

    def _send_rtp(self, packet: bytes) -> None:
        target = self.rtp_peer.target
        if target is None or target[1] is None:
            self._sendto(self._rtp_socket, packet, self.rtp_peer)
            return
        sockaddr = target[1]
        with self._send_lock:
            if (
                self._sockets_open
                and self._sendto_fd(self._rtp_fd, packet, len(packet), _MSG_DONTWAIT, sockaddr, len(sockaddr)) < 0
            ):
                self.send_errors += 1

    def _sendto(self, sock: socket.socket, datagram: bytes, peer: MediaPeer) -> None:
        target = peer.target
        with self._send_lock:
            if not self._sockets_open or target is None:
                return
            try:
                sock.sendto(datagram, target[0])
            except OSError:
                # A full socket buffer or an unreachable port loses the packet, as the network could.
                self.send_errors += 1

    def _watch(self, now: float) -> None:
        assert self._terminal is not None
        if self._ended_at is None and not self._terminal.t30.call_active():
            self._ended_at = now
        if self._ended_at is not None:
            if now - self._ended_at >= _HANGUP_GRACE_SECONDS:
                self._finish()
            return
        assert self._started_at is not None
        if now - self._started_at > self.setup.max_duration:
            _LOG.warning("%s: call longer than %.0f s: hanging up", self.name, self.setup.max_duration)
        elif now - self._last_progress > self.setup.stall_timeout:
            _LOG.warning("%s: no T.30 progress for %.0f s: hanging up", self.name, self.setup.stall_timeout)
        else:
            return
        self._timed_out = True
        self._terminal.t30.terminate()
        self._finish()

    # Terminal set-up and teardown.

    def _install(self, terminal: spandsp.AudioFaxTerminal | spandsp.T38FaxTerminal) -> None:
        try:
            self._configure(terminal)
        except BaseException:
            terminal.close()
            raise
        self._terminal = terminal
        self._progress = T30Progress()
        now = time.monotonic()
        if self._started_at is None:
            self._started_at = now
        self._last_progress = now

    def _configure(self, terminal: spandsp.AudioFaxTerminal | spandsp.T38FaxTerminal) -> None:
        t30 = terminal.t30
        configure(t30, self.setup.options)
        if self.setup.send_file is not None:
            t30.set_tx_file(self.setup.send_file)
        if self.setup.receive_file is not None:
            # A stale file from an earlier attempt must never pass for this call's pages.
            self.setup.receive_file.unlink(missing_ok=True)
            t30.set_rx_file(self.setup.receive_file)
        # Handlers of a terminal being replaced (audio -> T.38) must not touch the new one's progress.
        t30.set_phase_b_handler(lambda result: self._phase_b(terminal, result))
        t30.set_phase_d_handler(lambda result: self._phase_d(terminal, result))
        t30.set_phase_e_handler(lambda code: self._phase_e(terminal, code))

    def _phase_b(self, terminal: object, _result: int) -> int:
        if terminal is self._terminal:
            self._last_progress = time.monotonic()
        return spandsp.T30_ERR_OK

    def _phase_d(self, terminal: spandsp.AudioFaxTerminal | spandsp.T38FaxTerminal, _result: int) -> int:
        if terminal is not self._terminal:
            return spandsp.T30_ERR_OK
        statistics = self._progress.page_done(terminal.t30)
        self._last_progress = time.monotonic()
        done = statistics.pages_tx if self.setup.calling else statistics.pages_rx
        self._report(CallReport(pages_done=done))
        return spandsp.T30_ERR_OK

    def _phase_e(self, terminal: spandsp.AudioFaxTerminal | spandsp.T38FaxTerminal, completion_code: int) -> None:
        if terminal is not self._terminal:
            return
        self._progress.ended(terminal.t30, completion_code)

    def _stop_terminal(self) -> None:
        # Freed without t30_terminate: a fax state replaced by another (audio -> T.38) must not report phase E.
        terminal, self._terminal = self._terminal, None
        if terminal is not None:
            terminal.close()

    def _close_codecs(self) -> None:
        for codec in (self._encoder, self._decoder):
            if codec is not None:
                codec.close()
        self._encoder = self._decoder = None

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        outcome = self._outcome()
        self._stop_terminal()
        self._close_codecs()
        self._report(CallReport(outcome=outcome))

    def _outcome(self) -> TransmissionOutcome:
        return self._progress.outcome(
            calling=self.setup.calling,
            timed_out=self._timed_out,
            line_seconds=self._samples / spandsp.SAMPLE_RATE,
            t38_used=self._t38_used,
        )
