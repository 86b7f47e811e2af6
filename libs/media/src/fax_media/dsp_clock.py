"""The clock of one DSP worker: a DSP thread ticks its channels every 20 ms, a pacer thread sends their RTP on time.

spandsp is driven by sample counts, so channels are ticked at exactly 50 Hz. The DSP thread works
``lookahead_ticks`` ahead of the wall clock; the pacer thread sends each channel's RTP packet at its 20 ms slot, so
a slow tick (a page boundary's TIFF work, the machine busy elsewhere) does not make packets late as long as the DSP
thread is less than the lookahead behind. ctypes releases the GIL inside spandsp, so the pacer can send while a tick
is in C. Each worker process (``fax_media.dsp_worker``) runs one clock; ``DspLoop`` gives the workers' clocks
different phases (``epoch``), so their pacers' bursts do not coincide.

With ``realtime`` both threads ask for ``SCHED_FIFO`` (allowed with ``CAP_SYS_NICE`` or an ``RLIMIT_RTPRIO``, as
FreeSWITCH's and Asterisk's real-time options are): a waking pacer then runs at once instead of queueing behind
every busy process of the machine, which on a loaded 2-core machine is the difference between a bare pacer's p99 of
3 ms and of 40-500 ms (bench/fax_calls_bench.py). Where it is not allowed they run as normal threads.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Protocol

_LOG = logging.getLogger(__name__)

TICK_SECONDS = 0.020
# Behind by more than this (the machine stalled), the schedule restarts instead of bursting to catch up.
_MAX_CATCH_UP_SECONDS = 0.200
# The interpreter's default GIL hand-over of 5 ms would be the pacer's jitter whenever another thread is busy;
# 0.2 ms measured better than 1 ms at 200 calls (RTP send p99 6 ms -> 4.5 ms) at no CPU cost (bench/fax_calls_bench.py).
_SWITCH_INTERVAL_SECONDS = 0.0002
# Any real-time priority runs before every normal thread; the pacer's is above the DSP thread's, so a send slot
# interrupts a long tick. Both threads sleep most of each tick: together they use ~10 % of a core per 100 calls.
PACER_PRIORITY = 2
DSP_PRIORITY = 1


class Timings:
    """A histogram of delays: 10 µs buckets up to 50 ms, then 1 ms buckets up to 1 s (the last one takes the rest).
    Percentiles of millions of packets without keeping them. One thread adds; ``snapshot`` may run on any other."""

    FINE = 1e-5
    COARSE = 1e-3
    _FINE_BUCKETS = 5_000  # up to 50 ms
    _BUCKETS = _FINE_BUCKETS + 951  # up to 1 s

    def __init__(self) -> None:
        self._counts = [0] * self._BUCKETS

    def add(self, seconds: float) -> None:
        if seconds < 0.05:
            bucket = int(seconds / self.FINE) if seconds > 0 else 0
        else:
            bucket = min(self._FINE_BUCKETS + int((seconds - 0.05) / self.COARSE), self._BUCKETS - 1)
        self._counts[bucket] += 1

    def snapshot(self) -> dict[int, int]:
        """Bucket -> count, non-empty buckets only (copying a list is atomic under the GIL)."""
        return {bucket: count for bucket, count in enumerate(list(self._counts)) if count}

    @classmethod
    def upper_edge(cls, bucket: int) -> float:
        if bucket < cls._FINE_BUCKETS:
            return (bucket + 1) * cls.FINE
        return 0.05 + (bucket - cls._FINE_BUCKETS + 1) * cls.COARSE


def percentile(buckets: dict[int, int], share: float) -> float:
    """The ``share`` percentile, in seconds, of a ``Timings.snapshot`` (or several merged): the upper edge of its
    bucket, so it never flatters; NaN when empty."""
    total = sum(buckets.values())
    if not total:
        return math.nan
    rank = min(total - 1, int(share * total))
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen > rank:
            return Timings.upper_edge(bucket)
    raise AssertionError("unreachable")


class Channel(Protocol):
    def send_due(self, scheduled: float, lateness: Timings) -> None:
        """Pacer thread: send what is due by ``scheduled`` (monotonic); add each packet's delay to ``lateness``."""

    def process(self, now: float, slot: float) -> bool:
        """One tick of DSP work whose output is due at ``slot``; return False when the channel is done."""

    def abort(self) -> None:
        """The clock is stopping: end the call now and free the C state."""


class DspClock:
    """Ticks channels on its DSP thread. ``submit`` runs a function there, before the next tick's work."""

    def __init__(
        self,
        *,
        name: str = "fax-dsp",
        lookahead_ticks: int = 3,
        starts_per_tick: int = 1,
        realtime: bool = False,
    ) -> None:
        if lookahead_ticks < 1 or starts_per_tick < 1:
            raise ValueError("lookahead_ticks and starts_per_tick must be at least 1")
        self.name = name
        self.realtime = realtime
        self.realtime_threads = 0  # how many of the two threads got SCHED_FIFO
        self.starts_per_tick = starts_per_tick
        self.lookahead = lookahead_ticks * TICK_SECONDS
        self.send_lateness = Timings()
        self.tick_work = Timings()
        self.stalls = 0
        self._channels: list[Channel] = []
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._starts: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pacer: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def channel_count(self) -> int:
        return len(self._channels)

    def start(self, epoch: float | None = None) -> None:
        """Start ticking; the pacer's slots fall on ``epoch + k * 20 ms`` (monotonic; default: now)."""
        if self._thread is not None:
            raise RuntimeError("the DSP clock was already started")
        sys.setswitchinterval(min(sys.getswitchinterval(), _SWITCH_INTERVAL_SECONDS))
        now = time.monotonic()
        base = now if epoch is None else epoch + math.ceil(max(0.0, now - epoch) / TICK_SECONDS) * TICK_SECONDS
        # The DSP ticks half a tick out of phase with the pacer, so the pacer never waits for a tick's Python work.
        self._thread = threading.Thread(target=self._run, args=(base + TICK_SECONDS / 2,), name=self.name, daemon=True)
        self._pacer = threading.Thread(target=self._pace, args=(base + self.lookahead,), name=f"{self.name}-pacer")
        self._pacer.daemon = True
        self._thread.start()
        self._pacer.start()

    def stop(self) -> None:
        """Stop ticking; calls still running are ended (``t30_terminate``) and freed."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        if self._pacer is not None:
            self._pacer.join()

    def submit(self, command: Callable[[], None]) -> None:
        """Run ``command`` on the DSP thread at the start of the next tick (exceptions are logged)."""
        if self._stopping.is_set() or not self.running:
            raise RuntimeError("the DSP clock is not running")
        self._commands.put(command)

    def submit_start(self, command: Callable[[], None]) -> None:
        """Like ``submit``, for starting a terminal: at most ``starts_per_tick`` run per tick.

        Calls started in the same tick run in lockstep and reach their page boundaries in the same tick; a tick
        apart, that work spreads out.
        """
        if self._stopping.is_set() or not self.running:
            raise RuntimeError("the DSP clock is not running")
        self._starts.put(command)

    def add(self, channel: Channel) -> None:
        """Start ticking ``channel``; call only on the DSP thread (``submit`` a function that does it)."""
        self._channels = [*self._channels, channel]

    def _enter_realtime(self, priority: int) -> None:
        if not self.realtime:
            return
        try:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(priority))
        except OSError as error:
            if priority == DSP_PRIORITY:  # once per clock
                _LOG.info("%s: no real-time scheduling (%s): its threads run at normal priority", self.name, error)
            return
        self.realtime_threads += 1

    def _run(self, scheduled: float) -> None:
        self._enter_realtime(DSP_PRIORITY)
        while not self._stopping.is_set():
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif -delay > _MAX_CATCH_UP_SECONDS:
                self.stalls += 1
                _LOG.warning("%s: %.0f ms behind its schedule: restarting it", self.name, -delay * 1000)
                scheduled += math.ceil(-delay / TICK_SECONDS) * TICK_SECONDS  # stay on the pacer's grid
            started = time.monotonic()
            self._run_commands(self._commands)
            self._run_commands(self._starts, limit=self.starts_per_tick)
            slot = scheduled - TICK_SECONDS / 2 + self.lookahead
            self._channels = [channel for channel in self._channels if self._process(channel, started, slot)]
            self.tick_work.add(time.monotonic() - started)
            scheduled += TICK_SECONDS
        self._run_commands(self._commands)
        self._run_commands(self._starts)
        for channel in self._channels:
            try:
                channel.abort()
            except Exception:
                _LOG.exception("channel abort failed")
        self._channels = []

    def _pace(self, scheduled: float) -> None:
        self._enter_realtime(PACER_PRIORITY)
        while not self._stopping.is_set():
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif -delay > _MAX_CATCH_UP_SECONDS:
                scheduled += math.ceil(-delay / TICK_SECONDS) * TICK_SECONDS
            # The DSP thread replaces the list rather than mutating it, so this snapshot is safe to walk.
            for channel in self._channels:
                try:
                    # Half a tick of tolerance: the two threads add up their schedules in different float orders.
                    channel.send_due(scheduled + TICK_SECONDS / 2, self.send_lateness)
                except Exception:
                    _LOG.exception("channel send failed")
            scheduled += TICK_SECONDS

    @staticmethod
    def _process(channel: Channel, now: float, slot: float) -> bool:
        try:
            return channel.process(now, slot)
        except Exception:
            _LOG.exception("channel tick failed: dropping the channel")
            try:
                channel.abort()
            except Exception:
                _LOG.exception("channel abort failed")
            return False

    @staticmethod
    def _run_commands(commands: queue.SimpleQueue[Callable[[], None]], limit: int = -1) -> None:
        while limit != 0:
            limit -= 1
            try:
                command = commands.get_nowait()
            except queue.Empty:
                return
            try:
                command()
            except Exception:
                _LOG.exception("DSP command failed")
