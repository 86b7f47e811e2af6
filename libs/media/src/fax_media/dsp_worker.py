"""A DSP worker process: the fax channels of a share of the calls, on its own ``DspClock`` and its own core.

The Python work of a channel (RTP, jitter buffer, ctypes calls, the pacer's sends) holds the GIL for ~85 % of its
time, so threads of one process cannot spread 200 calls over two cores; processes can. ``DspLoop`` (the owning
process) starts one worker per core and talks to each over a Unix ``SOCK_SEQPACKET`` pair: pickled messages (both
ends are this library, never anything received from the network), and each call's two media sockets passed as file
descriptors (``SCM_RIGHTS``), so the worker reads and sends the call's media itself and the owner only does SIP.

The worker lives as long as that control socket: when the owner closes it or dies, every call still up is ended
(``t30_terminate``) and the worker exits. Its log records go back to the owner, which formats them as its own.

    python -m fax_media.dsp_worker <control fd>      (started by DspLoop, never by hand)
"""

from __future__ import annotations

import array
import logging
import os
import pickle
import signal
import socket
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from fax_media.channel import CallReport, CallSetup, FaxChannel, MediaSocket
from fax_media.dsp_clock import DspClock
from fax_media.peer import MediaPeer

_LOG = logging.getLogger(__name__)

# Big enough for any message below (a statistics reply is a few tens of kB); SOCK_SEQPACKET keeps message edges.
MAX_MESSAGE_BYTES = 1 << 18
# A peer that does not read its control socket for this long is stuck: the send fails instead of hanging.
_SEND_TIMEOUT_SECONDS = 5.0
# How often the drop counts go to the owner's metrics.
_FLUSH_SECONDS = 0.5


# The owner's messages.


@dataclass(frozen=True)
class WorkerConfig:
    name: str
    lookahead_ticks: int
    starts_per_tick: int
    epoch: float  # monotonic time of a pacer slot: the workers' phases differ
    realtime: bool  # ask for SCHED_FIFO
    log_levels: dict[str, int]  # logger name ("" = root) -> level, as the owner has them


@dataclass(frozen=True)
class OpenChannel:
    """Comes with two file descriptors: the call's RTP and UDPTL sockets."""

    call_id: int
    name: str
    setup: CallSetup
    receive_loss: float


@dataclass(frozen=True)
class Expect:
    call_id: int
    media: str  # "rtp" | "udptl"
    host: str
    port: int
    signalling_host: str | None


@dataclass(frozen=True)
class StartAudio:
    call_id: int
    payload_type: int


@dataclass(frozen=True)
class StartT38:
    call_id: int
    far_max_datagram: int


@dataclass(frozen=True)
class Hangup:
    call_id: int


@dataclass(frozen=True)
class Release:
    """End the call if it still runs and close the worker's handles on its sockets; ``Released`` answers."""

    call_id: int


@dataclass(frozen=True)
class StatisticsRequest:
    pass


# The worker's messages.


@dataclass(frozen=True)
class Ready:
    pid: int


@dataclass(frozen=True)
class Report:
    call_id: int
    report: CallReport


@dataclass(frozen=True)
class Failed:
    call_id: int
    error: str


@dataclass(frozen=True)
class Released:
    call_id: int


@dataclass(frozen=True)
class Dropped:
    counts: dict[tuple[str, str], int]  # (media "g711" | "t38", reason) -> datagrams refused


@dataclass(frozen=True)
class ForwardedLog:
    name: str
    level: int
    message: str
    created: float
    thread_name: str | None


@dataclass(frozen=True)
class WorkerStatistics:
    """How one worker's clock kept time, for benchmarks: ``Timings`` snapshots (10 µs buckets)."""

    pid: int
    send_lateness: dict[int, int]
    tick_work: dict[int, int]
    stalls: int
    channels: int
    realtime_threads: int  # of the clock's two threads, how many run under SCHED_FIFO
    thread_cpu_seconds: dict[str, float] = field(default_factory=dict)  # thread name -> user + system CPU


class ControlLink:
    """One end of the owner-worker socket pair: whole pickled messages, optionally with file descriptors."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        sock.setblocking(True)
        timeout = int(_SEND_TIMEOUT_SECONDS).to_bytes(8, sys.byteorder) + bytes(8)  # struct timeval
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
        self._send_lock = threading.Lock()

    def send(self, message: object, fds: tuple[int, ...] = ()) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        with self._send_lock:
            self.socket.sendmsg([data], ancillary)

    def receive(self) -> tuple[object, list[int]] | None:
        """The next message and the descriptors that came with it; None when the other end is gone."""
        data, fds, _flags, _address = socket.recv_fds(self.socket, MAX_MESSAGE_BYTES, 2)
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        return pickle.loads(data), fds

    def close(self) -> None:
        self.socket.close()


class _ForwardToOwner(logging.Handler):
    """Sends log records to the owner, whose handlers format and write them."""

    def __init__(self, link: ControlLink) -> None:
        super().__init__()
        self._link = link

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{''.join(traceback.format_exception(*record.exc_info)).rstrip()}"
            self._link.send(ForwardedLog(record.name, record.levelno, message, record.created, record.threadName))
        except OSError:
            pass  # the owner is gone
        except Exception:
            self.handleError(record)


def thread_cpu_seconds() -> dict[str, float]:
    """User + system CPU of each of this process's threads, by name (``/proc/self/task/<tid>/stat``)."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    seconds: dict[str, float] = {}
    for tid, name in names.items():
        try:
            with open(f"/proc/self/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[name] = (int(fields[11]) + int(fields[12])) / ticks_per_second
    return seconds


class DspWorker:
    """The worker's side of the control link: builds channels, hands the owner's commands to the DSP thread."""

    def __init__(self, link: ControlLink, config: WorkerConfig) -> None:
        self._link = link
        self._clock = DspClock(
            name=config.name,
            lookahead_ticks=config.lookahead_ticks,
            starts_per_tick=config.starts_per_tick,
            realtime=config.realtime,
        )
        self._epoch = config.epoch
        self._channels: dict[int, FaxChannel] = {}  # control thread only
        self._drops: Counter[tuple[str, str]] = Counter()  # DSP thread only

    def run(self) -> None:
        """Serve the owner until it closes the link; then end every call and stop."""
        self._clock.start(self._epoch)
        self._link.send(Ready(os.getpid()))
        self._link.socket.settimeout(_FLUSH_SECONDS)
        try:
            while True:
                try:
                    received = self._link.receive()
                except TimeoutError:
                    self._clock.submit(self._flush_drops)
                    continue
                if received is None:
                    break
                message, fds = received
                try:
                    self._handle(message, fds)
                except Exception:
                    _LOG.exception("DSP worker: %r failed", message)
        finally:
            self._clock.stop()

    def _handle(self, message: object, fds: list[int]) -> None:
        match message:
            case OpenChannel():
                self._open(message, fds)
            case StatisticsRequest():
                clock = self._clock
                self._link.send(
                    WorkerStatistics(
                        pid=os.getpid(),
                        send_lateness=clock.send_lateness.snapshot(),
                        tick_work=clock.tick_work.snapshot(),
                        stalls=clock.stalls,
                        channels=clock.channel_count,
                        realtime_threads=clock.realtime_threads,
                        thread_cpu_seconds=thread_cpu_seconds(),
                    )
                )
            case Expect(call_id=call_id) if call_id in self._channels:
                channel = self._channels[call_id]
                peer = channel.rtp_peer if message.media == "rtp" else channel.udptl_peer
                self._clock.submit(
                    lambda: peer.expect(message.host, message.port, signalling_host=message.signalling_host)
                )
            case StartAudio(call_id=call_id) if call_id in self._channels:
                channel = self._channels[call_id]
                self._command(call_id, lambda: channel.start_audio(message.payload_type), start=True)
            case StartT38(call_id=call_id) if call_id in self._channels:
                channel = self._channels[call_id]
                self._command(call_id, lambda: channel.start_t38(message.far_max_datagram), start=True)
            case Hangup(call_id=call_id) if call_id in self._channels:
                self._command(call_id, self._channels[call_id].hangup)
            case Release(call_id=call_id):
                channel = self._channels.pop(call_id, None)
                self._clock.submit(lambda: self._release(call_id, channel))
            case Expect() | StartAudio() | StartT38() | Hangup():
                pass  # for a call already released: nothing left to do
            case _:
                for fd in fds:
                    os.close(fd)
                _LOG.warning("DSP worker: unexpected message %r", message)

    def _open(self, message: OpenChannel, fds: list[int]) -> None:
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            raise ValueError(f"{message.name}: expected 2 media sockets, got {len(fds)}")
        rtp_socket, udptl_socket = (socket.socket(fileno=fd) for fd in fds)
        for sock in (rtp_socket, udptl_socket):
            sock.setblocking(False)
        call_id = message.call_id
        channel = FaxChannel(
            message.setup,
            name=message.name,
            rtp=MediaSocket(rtp_socket, self._peer(f"{message.name} RTP", "g711"), message.receive_loss),
            udptl=MediaSocket(udptl_socket, self._peer(f"{message.name} UDPTL", "t38"), message.receive_loss),
            report=lambda report: self._send_report(call_id, report),
        )
        self._channels[call_id] = channel
        self._clock.submit(lambda: self._clock.add(channel))

    def _peer(self, name: str, media: str) -> MediaPeer:
        def dropped(reason: str) -> None:
            self._drops[(media, reason)] += 1

        return MediaPeer(name, dropped)

    def _command(self, call_id: int, command: Callable[[], None], *, start: bool = False) -> None:
        channel = self._channels[call_id]

        def run() -> None:
            try:
                command()
            except Exception as error:
                _LOG.exception("%s: media command failed", channel.name)
                channel.hangup()
                self._send(Failed(call_id, f"{channel.name}: {error}"))

        (self._clock.submit_start if start else self._clock.submit)(run)

    def _release(self, call_id: int, channel: FaxChannel | None) -> None:
        if channel is not None:
            channel.hangup()  # reports the outcome first if the call was still up
            channel.close_sockets()
        self._flush_drops()
        self._send(Released(call_id))

    def _flush_drops(self) -> None:
        if self._drops:
            drops, self._drops = dict(self._drops), Counter()
            self._send(Dropped(drops))

    def _send_report(self, call_id: int, report: CallReport) -> None:
        self._send(Report(call_id, report))

    def _send(self, message: object) -> None:
        # Runs inside spandsp's callbacks too: nothing may escape into C.
        try:
            self._link.send(message)
        except OSError:
            pass  # the owner is gone (it closed the link or died): nobody is waiting for this
        except Exception:
            _LOG.exception("DSP worker: could not tell the owner %r", message)


def main() -> None:
    # The owner decides when this process ends (it closes the link); a Ctrl-C meant for the owner is not for us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    link = ControlLink(socket.socket(fileno=int(sys.argv[1])))
    received = link.receive()
    if received is None or not isinstance(received[0], WorkerConfig):
        raise SystemExit("fax_media.dsp_worker: expected a WorkerConfig first")
    config = received[0]
    root = logging.getLogger()
    root.handlers[:] = [_ForwardToOwner(link)]
    for name, level in config.log_levels.items():
        logging.getLogger(name or None).setLevel(level)
    DspWorker(link, config).run()
    link.close()


if __name__ == "__main__":
    # Run as the importable module, so the messages unpickled here are the very classes this code matches on.
    from fax_media import dsp_worker

    dsp_worker.main()
