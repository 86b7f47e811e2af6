"""The DSP engine's clock and its workers: channels ticked at 50 Hz, packets sent at their slot, starts spread over
ticks, a failing channel contained; calls spread over worker processes, a closed call freeing its place, a dead
worker failing only its own calls and being replaced."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fax_media.call import FaxCall, PortRange
from fax_media.dsp_clock import TICK_SECONDS, DspClock, Timings, percentile
from fax_media.dsp_loop import DspLoop

HOST = "127.0.0.1"


class CountingChannel:
    """Makes one 'packet' per tick, due at the slot the clock gives, and records when each was sent."""

    def __init__(self, ticks: int) -> None:
        self.ticks_left = ticks
        self.processed: list[float] = []
        self.slots: list[float] = []
        self.outbox: list[float] = []
        self.sent: list[tuple[float, float]] = []
        self.aborted = False
        self.done = threading.Event()

    def send_due(self, scheduled: float, lateness: Timings) -> None:
        while self.outbox and self.outbox[0] <= scheduled:
            slot = self.outbox.pop(0)
            self.sent.append((slot, time.monotonic()))
            lateness.add(time.monotonic() - slot)

    def process(self, now: float, slot: float) -> bool:
        self.processed.append(now)
        self.slots.append(slot)
        self.outbox.append(slot)
        self.ticks_left -= 1
        if self.ticks_left == 0:
            self.done.set()
        return self.ticks_left > 0

    def abort(self) -> None:
        self.aborted = True


class FailingChannel(CountingChannel):
    def process(self, now: float, slot: float) -> bool:
        super().process(now, slot)
        if len(self.processed) == 5:
            raise RuntimeError("a bug in one call")
        return True


@pytest.fixture
def clock() -> Iterator[DspClock]:
    clock = DspClock(lookahead_ticks=3)
    clock.start()
    yield clock
    clock.stop()


def test_channels_are_ticked_every_20_ms_and_their_packets_sent_at_the_slot(clock: DspClock) -> None:
    channels = [CountingChannel(ticks=50) for _ in range(3)]
    for channel in channels:
        clock.submit(lambda channel=channel: clock.add(channel))
    assert all(channel.done.wait(timeout=5) for channel in channels)
    time.sleep(0.1)
    assert clock.channel_count == 0
    for channel in channels:
        # Exactly once a tick: 50 ticks span 49 tick lengths, and no two ticks share a slot.
        elapsed = channel.processed[-1] - channel.processed[0]
        assert abs(elapsed - 49 * TICK_SECONDS) < 0.1
        assert len(set(channel.slots)) == 50
        assert all(abs(later - earlier - TICK_SECONDS) < 1e-6 for earlier, later in itertools.pairwise(channel.slots))
        assert not channel.aborted
        # Every packet made ahead was sent, none before its slot (within the pacer's half-tick grid).
        assert len(channel.sent) >= 45
        assert all(sent >= slot - TICK_SECONDS / 2 for slot, sent in channel.sent)
    assert percentile(clock.send_lateness.snapshot(), 0.5) < 0.005


def test_slots_fall_on_the_epochs_grid() -> None:
    """Workers started with different epochs keep their pacers' bursts apart: slots are epoch + k * 20 ms."""
    epoch = time.monotonic() - 0.0123
    clock = DspClock(lookahead_ticks=2)
    clock.start(epoch)
    channel = CountingChannel(ticks=10)
    clock.submit(lambda: clock.add(channel))
    assert channel.done.wait(timeout=5)
    clock.stop()
    for slot in channel.slots:
        offset = (slot - epoch) % TICK_SECONDS
        assert min(offset, TICK_SECONDS - offset) < 1e-6


def test_a_channel_whose_tick_fails_is_dropped_and_the_others_keep_time(clock: DspClock) -> None:
    failing, healthy = FailingChannel(ticks=1000), CountingChannel(ticks=40)
    clock.submit(lambda: (clock.add(failing), clock.add(healthy)))
    assert healthy.done.wait(timeout=5)
    assert failing.aborted and len(failing.processed) == 5  # dropped at its failure, ended, never ticked again
    assert abs(healthy.processed[-1] - healthy.processed[0] - 39 * TICK_SECONDS) < 0.1


def test_stopping_aborts_running_channels() -> None:
    clock = DspClock()
    clock.start()
    channel = CountingChannel(ticks=10_000)
    clock.submit(lambda: clock.add(channel))
    time.sleep(0.1)
    clock.stop()
    assert channel.aborted and not clock.running


def test_starts_are_spread_one_per_tick(clock: DspClock) -> None:
    started: list[float] = []
    finished = threading.Event()
    for index in range(4):
        clock.submit_start(lambda index=index: (started.append(time.monotonic()), index == 3 and finished.set()))
    assert finished.wait(timeout=5)
    gaps = [later - earlier for earlier, later in itertools.pairwise(started)]
    assert len(started) == 4 and all(gap > TICK_SECONDS / 2 for gap in gaps)


def _may_use_realtime() -> bool:
    """Whether this process may put a thread under SCHED_FIFO (root, CAP_SYS_NICE or an RLIMIT_RTPRIO)."""
    allowed: list[bool] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(1))
        except OSError:
            allowed.append(False)
        else:
            allowed.append(True)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return allowed[0]


@pytest.mark.parametrize("realtime", [True, False])
def test_the_clocks_threads_run_in_real_time_when_asked_and_allowed(realtime: bool) -> None:
    clock = DspClock(name=f"rt-{realtime}", realtime=realtime)
    clock.start()
    channel = CountingChannel(ticks=10)
    clock.submit(lambda: clock.add(channel))
    assert channel.done.wait(timeout=5)  # it ticks either way
    policies = {
        thread.name: os.sched_getscheduler(thread.native_id)
        for thread in threading.enumerate()
        if thread.name.startswith(clock.name) and thread.native_id is not None
    }
    clock.stop()
    granted = realtime and _may_use_realtime()
    expected = os.SCHED_FIFO if granted else os.SCHED_OTHER
    assert policies == {clock.name: expected, f"{clock.name}-pacer": expected}
    assert clock.realtime_threads == (2 if granted else 0)


def test_timings_give_percentiles_that_never_flatter() -> None:
    timings = Timings()
    for milliseconds in [0.5] * 990 + [3.0] * 9 + [120.0]:
        timings.add(milliseconds / 1000)
    snapshot = timings.snapshot()
    assert 0.0005 <= percentile(snapshot, 0.5) <= 0.00051
    assert 0.003 <= percentile(snapshot, 0.99) <= 0.00301
    assert 0.120 <= percentile(snapshot, 1.0) <= 0.121


# The worker processes.


@pytest.fixture
def loop() -> Iterator[DspLoop]:
    loop = DspLoop(name="test-dsp", workers=2)
    loop.start()
    yield loop
    loop.stop()


async def _channels_per_worker(loop: DspLoop, expected: list[int]) -> list[int]:
    """What the workers' clocks tick, once they have taken the last commands (a tick or two)."""
    for _ in range(250):
        counts = [worker.channels for worker in await asyncio.to_thread(loop.statistics)]
        if counts == expected:
            break
        await asyncio.sleep(0.02)
    return counts


async def _silent_call(loop: DspLoop, ports: PortRange, folder: Path, index: int, **options: float) -> FaxCall:
    return await FaxCall.open(loop, ports, calling=False, receive_file=folder / f"{index}.tif", **options)


async def test_calls_are_spread_over_the_workers_and_a_closed_call_frees_its_place(
    loop: DspLoop, tmp_path: Path
) -> None:
    ports = PortRange(HOST, 37400, 37499)
    calls = [await _silent_call(loop, ports, tmp_path, index) for index in range(4)]
    # Each call is ticked by exactly one worker, and they share the calls out evenly.
    assert loop.load() == [2, 2]
    assert await _channels_per_worker(loop, [2, 2]) == [2, 2]
    # Placed on the worker carrying the fewest (the first of equals): calls 0 and 2 went to worker 0.
    await calls[0].close()
    await calls[2].close()
    assert loop.load() == [0, 2]
    assert await _channels_per_worker(loop, [0, 2]) == [0, 2]
    calls += [await _silent_call(loop, ports, tmp_path, index) for index in range(4, 6)]
    assert loop.load() == [2, 2]
    for call in calls:
        await call.close()
    assert loop.load() == [0, 0]


async def test_a_call_on_a_worker_is_ticked_in_real_time(loop: DspLoop, tmp_path: Path) -> None:
    """A call's line time is the wall time it ran: its worker ticks it once every 20 ms, no more, no less."""
    ports = PortRange(HOST, 37400, 37499)
    calls = [await _silent_call(loop, ports, tmp_path, index, stall_timeout=2.0) for index in range(4)]
    started = time.monotonic()
    for call in calls:
        call.start_audio(HOST, 37499, 0)  # nobody there: the watchdog ends each call after 2 s without progress
    outcomes = await asyncio.wait_for(asyncio.gather(*(call.finished for call in calls)), timeout=20)
    elapsed = time.monotonic() - started
    for call in calls:
        await call.close()
    for outcome in outcomes:
        assert not outcome.success
        # Never more line time than wall time; less only by what a starved machine makes the clock skip (>200 ms).
        assert 1.5 < outcome.line_seconds <= elapsed + 0.05


async def test_a_dead_worker_fails_its_calls_only_and_is_replaced(loop: DspLoop, tmp_path: Path) -> None:
    ports = PortRange(HOST, 37400, 37499)
    calls = [await _silent_call(loop, ports, tmp_path, index) for index in range(2)]
    for call in calls:
        call.start_audio(HOST, 37499, 0)
    victim = loop.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(RuntimeError, match="stopped"):
        await asyncio.wait_for(calls[0].finished, timeout=10)
    assert not calls[1].finished.done()  # the other worker's call goes on
    for _ in range(200):
        if len(loop.worker_pids()) == 2 and victim not in loop.worker_pids():
            break
        await asyncio.sleep(0.05)
    assert len(loop.worker_pids()) == 2 and victim not in loop.worker_pids() and loop.running
    assert loop.load() == [0, 1]
    replacement = await _silent_call(loop, ports, tmp_path, 2)
    assert loop.load() == [1, 1]
    assert await _channels_per_worker(loop, [1, 1]) == [1, 1]
    for call in [*calls, replacement]:
        await call.close()


def test_workers_get_none_of_the_owners_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker parses what the network sends: it must not hold the database's, broker's or trunk's credentials."""
    monkeypatch.setenv("FAX_SIP_PASSWORD", "trunk-secret")
    monkeypatch.setenv("FAX_DATABASE_URL", "postgresql://fax:db-secret@db/fax")
    loop = DspLoop(name="env-dsp", workers=1)
    loop.start()
    try:
        (pid,) = loop.worker_pids()
        with open(f"/proc/{pid}/environ", "rb") as environ:
            names = {entry.split(b"=", 1)[0] for entry in environ.read().split(b"\0") if entry}
    finally:
        loop.stop()
    assert b"PATH" in names
    assert not any(name.startswith(b"FAX_") for name in names)
