"""A process's DSP workers: ``DspLoop`` runs one ``fax_media.dsp_worker`` process per core and places each call's
channel on the one carrying the fewest.

A channel's Python work (RTP, jitter buffer, ctypes calls, the paced sends) holds the GIL most of the time, so one
process cannot spread 200 calls over two cores; a worker process per core can. Each worker has its own DSP thread and
pacer (``DspClock``), reads and sends its calls' media itself (their sockets are handed over when a call opens) and
reports back pages, outcomes, dropped datagrams and its log records; the owning process keeps SIP and the asyncio
side of each call (``FaxCall``). The workers' pacers run at different phases of the 20 ms tick, so their bursts of
sends do not coincide; with ``realtime`` (the default) their threads run under ``SCHED_FIFO`` where the process may
(``fax_media.dsp_clock``). A worker that dies fails its calls and is replaced; closing the loop ends every call still
up.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fax_media.channel import CallSetup
from fax_media.dsp_clock import TICK_SECONDS
from fax_media.dsp_worker import (
    ControlLink,
    Dropped,
    ForwardedLog,
    OpenChannel,
    Ready,
    Released,
    StatisticsRequest,
    WorkerConfig,
    WorkerStatistics,
)
from fax_runtime.metrics import default_metrics

_LOG = logging.getLogger(__name__)

# A worker that has not said Ready by then (it imports spandsp and starts two threads) is broken.
_START_TIMEOUT_SECONDS = 30.0
# Stopping: a worker ends its calls (t30_terminate) and exits within a tick or two; then it is killed.
_STOP_TIMEOUT_SECONDS = 10.0
# What a worker inherits of our environment: how to run Python and the zone page headers are stamped in. It parses
# what the network sends, so it gets none of our secrets (database, broker, SIP credentials).
_WORKER_ENVIRONMENT = ("PATH", "PYTHONPATH", "PYTHONHOME", "LD_LIBRARY_PATH", "TZ", "LANG", "LC_ALL", "LC_CTYPE")


def default_worker_count() -> int:
    """One worker per core this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


@dataclass(frozen=True)
class WorkerLost:
    """Told to a channel's owner when its worker died: the call is gone."""

    error: str


class DspChannel:
    """The owner's handle on one call's channel in a worker. ``send`` a ``dsp_worker`` command; the worker's
    messages for the call (and ``WorkerLost``) arrive at ``on_message``, on a reader thread."""

    def __init__(self, worker: _Worker, call_id: int, on_message: Callable[[object], None]) -> None:
        self.worker = worker
        self.call_id = call_id
        self.on_message = on_message

    def send(self, message: object) -> None:
        """``RuntimeError`` when the worker is gone (the channel has been told ``WorkerLost``)."""
        self.worker.send(message)


class _Worker:
    """One worker process, its control link and the thread that reads what it says."""

    def __init__(self, index: int, loop: DspLoop) -> None:
        self.index = index
        self.name = f"{loop.name}-{index}"
        self._loop = loop
        self.channels: dict[int, DspChannel] = {}
        self.statistics: queue.SimpleQueue[WorkerStatistics] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.alive = False
        self.process: subprocess.Popen[bytes] | None = None
        self.link: ControlLink | None = None
        self.reader: threading.Thread | None = None

    def spawn(self) -> None:
        """Start the process and give it its configuration (``await_ready`` waits for it)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fax_media.dsp_worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # never prints: its owner's stdout may carry a protocol (benches do)
                env={name: value for name, value in os.environ.items() if name in _WORKER_ENVIRONMENT},
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.link = ControlLink(ours)
        loop = self._loop
        self.link.send(
            WorkerConfig(
                name=self.name,
                lookahead_ticks=loop.lookahead_ticks,
                starts_per_tick=loop.starts_per_tick,
                epoch=loop.epoch + self.index * TICK_SECONDS / loop.worker_count,
                realtime=loop.realtime,
                log_levels=_log_levels(),
            )
        )

    def await_ready(self, *, start_reader: bool = True) -> None:
        assert self.link is not None and self.process is not None
        self.link.socket.settimeout(_START_TIMEOUT_SECONDS)
        try:
            received = self.link.receive()
        except TimeoutError:
            received = None
        finally:
            self.link.socket.settimeout(None)
        if received is None or not isinstance(received[0], Ready):
            self.process.kill()
            raise RuntimeError(f"DSP worker {self.name} did not start (exit code {self.process.wait()})")
        self.alive = True
        if start_reader:
            self.reader = threading.Thread(target=self._read, name=f"{self.name}-reader", daemon=True)
            self.reader.start()

    def send(self, message: object, fds: tuple[int, ...] = ()) -> None:
        link = self.link
        if not self.alive or link is None:
            raise RuntimeError(f"DSP worker {self.name} is not running")
        try:
            link.send(message, fds)
        except OSError as error:
            raise RuntimeError(f"DSP worker {self.name} is not answering: {error}") from error

    def stop(self) -> None:
        """Close our side of the link: the worker ends its calls (their outcomes still come back) and exits."""
        if self.link is not None:
            with contextlib.suppress(OSError):
                self.link.socket.shutdown(socket.SHUT_WR)
        if self.reader is not None:
            self.reader.join(_STOP_TIMEOUT_SECONDS)
        if self.process is not None:
            try:
                self.process.wait(_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                _LOG.error("DSP worker %s did not stop: killing it", self.name)
                self.process.kill()
                self.process.wait()
        if self.link is not None:
            self.link.close()

    def _read(self) -> None:
        while True:
            assert self.link is not None
            try:
                received = self.link.receive()
            except OSError:
                received = None
            if received is None:
                if not self._lost():
                    return
                continue
            message, fds = received
            for fd in fds:  # a worker sends none; never leak one
                os.close(fd)
            try:
                self._dispatch(message)
            except Exception:
                _LOG.exception("DSP worker %s: handling %r failed", self.name, message)

    def _dispatch(self, message: object) -> None:
        match message:
            case Dropped(counts=counts):
                dropped = default_metrics().media_packets_dropped
                for (media, reason), count in counts.items():
                    dropped.labels(media, reason).inc(count)
            case ForwardedLog():
                logger = logging.getLogger(message.name)
                if logger.isEnabledFor(message.level):
                    record = logger.makeRecord(message.name, message.level, "", 0, message.message, None, None)
                    record.created, record.msecs = message.created, message.created % 1 * 1000
                    record.threadName = f"{self.name}/{message.thread_name}"
                    logger.handle(record)
            case WorkerStatistics():
                self.statistics.put(message)
            case _:
                call_id = getattr(message, "call_id", None)
                with self.lock:
                    channel = self.channels.get(call_id) if call_id is not None else None
                    if isinstance(message, Released):
                        self.channels.pop(message.call_id, None)
                if channel is not None:
                    channel.on_message(message)

    def _lost(self) -> bool:
        """The link ended: tell the worker's calls; True when a new worker took over."""
        self.alive = False
        assert self.process is not None
        stopping = self._loop.stopping
        if not stopping:
            try:
                code = self.process.wait(_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
            _LOG.error("DSP worker %s stopped (exit code %s): its calls are lost; starting another", self.name, code)
        with self.lock:
            lost, self.channels = list(self.channels.values()), {}
        for channel in lost:
            channel.on_message(WorkerLost(f"the DSP worker {self.name} stopped"))
        if stopping:
            return False
        if self.link is not None:
            self.link.close()
        try:
            self.spawn()
            self.await_ready(start_reader=False)  # this thread goes on reading the new one
        except Exception:
            _LOG.exception("DSP worker %s could not be restarted", self.name)
            return False
        return True


def _log_levels() -> dict[str, int]:
    """The levels the workers' loggers need to log what ours would print: root, and any set under fax_media."""
    levels = {"": logging.getLogger().getEffectiveLevel()}
    for name, logger in logging.Logger.manager.loggerDict.items():
        if name.startswith("fax_media") and isinstance(logger, logging.Logger) and logger.level:
            levels[name] = logger.level
    return levels


class DspLoop:
    """The DSP workers of this process (``workers``, default one per core). Start it before opening calls.

    ``realtime``: the workers' DSP and pacer threads ask for real-time scheduling (granted with ``CAP_SYS_NICE``).
    """

    def __init__(
        self,
        *,
        name: str = "fax-dsp",
        workers: int | None = None,
        lookahead_ticks: int = 3,
        starts_per_tick: int = 1,
        realtime: bool = True,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError("a DSP loop needs at least one worker")
        if lookahead_ticks < 1 or starts_per_tick < 1:
            raise ValueError("lookahead_ticks and starts_per_tick must be at least 1")
        self.name = name
        self.worker_count = workers or default_worker_count()
        self.lookahead_ticks = lookahead_ticks
        self.starts_per_tick = starts_per_tick
        self.realtime = realtime
        self.epoch = 0.0
        self.stopping = False
        self._workers: list[_Worker] = []
        self._call_ids = itertools.count(1)
        self._place_lock = threading.Lock()

    @property
    def running(self) -> bool:
        return bool(self._workers) and not self.stopping

    def start(self) -> None:
        if self._workers:
            raise RuntimeError("the DSP loop was already started")
        self.epoch = time.monotonic()
        workers = [_Worker(index, self) for index in range(self.worker_count)]
        try:
            for worker in workers:
                worker.spawn()
            for worker in workers:
                worker.await_ready()
        except BaseException:
            self.stopping = True
            for worker in workers:
                worker.stop()
            raise
        self._workers = workers

    def stop(self) -> None:
        """End every call still up (``t30_terminate``; their outcomes are reported) and stop the workers."""
        self.stopping = True
        for worker in self._workers:
            worker.stop()

    def open_channel(
        self,
        *,
        name: str,
        setup: CallSetup,
        receive_loss: float,
        sockets: tuple[socket.socket, socket.socket],
        on_message: Callable[[object], None],
    ) -> DspChannel:
        """Place a call's channel (its RTP and UDPTL sockets, which the worker reads and sends on from now on) on
        the worker carrying the fewest calls (the first of equals); it keeps that place until the call is closed."""
        if not self.running:
            raise RuntimeError("the DSP loop is not running")
        with self._place_lock:
            candidates = [worker for worker in self._workers if worker.alive] or self._workers
            worker = min(candidates, key=lambda candidate: len(candidate.channels))
            channel = DspChannel(worker, next(self._call_ids), on_message)
            with worker.lock:
                worker.channels[channel.call_id] = channel
        try:
            worker.send(
                OpenChannel(channel.call_id, name, setup, receive_loss),
                fds=tuple(sock.fileno() for sock in sockets),
            )
        except BaseException:
            with worker.lock:
                worker.channels.pop(channel.call_id, None)
            raise
        return channel

    def statistics(self, timeout: float = 10.0) -> list[WorkerStatistics]:
        """Each live worker's timing figures and per-thread CPU (for benchmarks)."""
        asked = []
        for worker in self._workers:
            try:
                worker.send(StatisticsRequest())
            except RuntimeError:
                continue
            asked.append(worker)
        return [worker.statistics.get(timeout=timeout) for worker in asked]

    def load(self) -> list[int]:
        """How many calls each worker carries (opened and not closed yet)."""
        return [len(worker.channels) for worker in self._workers]

    def worker_pids(self) -> list[int]:
        """The live workers' process ids."""
        return [worker.process.pid for worker in self._workers if worker.alive and worker.process is not None]
