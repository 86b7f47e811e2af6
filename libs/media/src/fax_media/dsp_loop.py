"""One DSP thread per process: every 20 ms it ticks every fax channel (spandsp modems, T.30, TIFF I/O).

spandsp is driven by sample counts, so channels are ticked at exactly 50 Hz, and a page boundary (TIFF reads and
writes of 8-13 ms a call) never stalls the asyncio loop that owns the sockets. The DSP thread works
``lookahead_ticks`` ahead of the wall clock; a second, pacer thread sends each channel's RTP packet at its 20 ms slot.
ctypes releases the GIL inside spandsp, so the pacer keeps sending on time while a tick is slow (many calls crossing
a page boundary at once), as long as the DSP thread is less than the lookahead behind.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

_LOG = logging.getLogger(__name__)

TICK_SECONDS = 0.020
# Behind by more than this (the machine stalled), the schedule restarts instead of bursting to catch up.
_MAX_CATCH_UP_SECONDS = 0.200
# The interpreter's default GIL hand-over of 5 ms would be the pacer's jitter whenever another thread is busy;
# 0.2 ms measured better than 1 ms at 200 calls (RTP send p99 6 ms -> 4.5 ms) at no CPU cost (bench/fax_calls_bench.py).
_SWITCH_INTERVAL_SECONDS = 0.0002


class Channel(Protocol):
    def send_due(self, scheduled: float, lateness: deque[float]) -> None:
        """Pacer thread: send what is due by ``scheduled`` (monotonic); append each packet's delay to ``lateness``."""

    def process(self, now: float, slot: float) -> bool:
        """One tick of DSP work whose output is due at ``slot``; return False when the channel is done."""

    def abort(self) -> None:
        """The loop is stopping: end the call now and free the C state."""


class DspLoop:
    """The thread that ticks channels. ``submit`` runs a function on it, before the next tick's work."""

    def __init__(
        self,
        *,
        name: str = "fax-dsp",
        lookahead_ticks: int = 3,
        starts_per_tick: int = 1,
        lateness_samples: int = 500_000,
    ) -> None:
        self.name = name
        self.starts_per_tick = starts_per_tick
        self.lookahead = lookahead_ticks * TICK_SECONDS
        self.send_lateness: deque[float] = deque(maxlen=lateness_samples)
        self.tick_work: deque[float] = deque(maxlen=lateness_samples // 100)
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

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the DSP loop was already started")
        sys.setswitchinterval(min(sys.getswitchinterval(), _SWITCH_INTERVAL_SECONDS))
        base = time.monotonic()
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
            raise RuntimeError("the DSP loop is not running")
        self._commands.put(command)

    def submit_start(self, command: Callable[[], None]) -> None:
        """Like ``submit``, for starting a terminal: at most ``starts_per_tick`` run per tick.

        Calls started in the same tick run in lockstep and cross their page boundaries (8-13 ms of TIFF work
        each) in the same tick; a tick apart, that work spreads out.
        """
        if self._stopping.is_set() or not self.running:
            raise RuntimeError("the DSP loop is not running")
        self._starts.put(command)

    def add(self, channel: Channel) -> None:
        """Start ticking ``channel``; call only on the DSP thread (``submit`` a function that does it)."""
        self._channels = [*self._channels, channel]

    def _run(self, scheduled: float) -> None:
        while not self._stopping.is_set():
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif -delay > _MAX_CATCH_UP_SECONDS:
                self.stalls += 1
                _LOG.warning("DSP loop %.0f ms behind its schedule: restarting it", -delay * 1000)
                scheduled = time.monotonic()
            started = time.monotonic()
            self._run_commands()
            self._run_commands(self._starts, limit=self.starts_per_tick)
            slot = scheduled - TICK_SECONDS / 2 + self.lookahead
            self._channels = [channel for channel in self._channels if self._process(channel, started, slot)]
            self.tick_work.append(time.monotonic() - started)
            scheduled += TICK_SECONDS
        self._run_commands()
        self._run_commands(self._starts)
        for channel in self._channels:
            try:
                channel.abort()
            except Exception:
                _LOG.exception("channel abort failed")
        self._channels = []

    def _pace(self, scheduled: float) -> None:
        while not self._stopping.is_set():
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif -delay > _MAX_CATCH_UP_SECONDS:
                scheduled = time.monotonic()
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

    def _run_commands(self, commands: queue.SimpleQueue[Callable[[], None]] | None = None, limit: int = -1) -> None:
        commands = commands or self._commands
        while limit != 0:
            limit -= 1
            try:
                command = commands.get_nowait()
            except queue.Empty:
                return
            try:
                command()
            except Exception:
                _LOG.exception("DSP loop command failed")
