"""The DSP loop's clock: 50 ticks a second, packets sent at their slot by the pacer, starts spread over ticks."""

import itertools
import threading
import time
from collections import deque

from fax_media.dsp_loop import TICK_SECONDS, DspLoop


class CountingChannel:
    """Makes one 'packet' per tick, due at the slot the loop gives, and records when each was sent."""

    def __init__(self, ticks: int) -> None:
        self.ticks_left = ticks
        self.processed: list[float] = []
        self.outbox: deque[float] = deque()
        self.sent: list[tuple[float, float]] = []
        self.aborted = False
        self.done = threading.Event()

    def send_due(self, scheduled: float, lateness: deque[float]) -> None:
        while self.outbox and self.outbox[0] <= scheduled:
            slot = self.outbox.popleft()
            self.sent.append((slot, time.monotonic()))
            lateness.append(time.monotonic() - slot)

    def process(self, now: float, slot: float) -> bool:
        self.processed.append(now)
        self.outbox.append(slot)
        self.ticks_left -= 1
        if self.ticks_left == 0:
            self.done.set()
        return self.ticks_left > 0

    def abort(self) -> None:
        self.aborted = True


def test_channels_are_ticked_every_20_ms_and_their_packets_sent_at_the_slot() -> None:
    loop = DspLoop(lookahead_ticks=3)
    loop.start()
    channel = CountingChannel(ticks=50)
    loop.submit(lambda: loop.add(channel))
    assert channel.done.wait(timeout=5)
    time.sleep(0.1)
    loop.stop()
    elapsed = channel.processed[-1] - channel.processed[0]
    assert abs(elapsed - 49 * TICK_SECONDS) < 0.1
    assert loop.channel_count == 0 and not channel.aborted
    # Every packet made ahead was sent, none before its slot (within the pacer's half-tick grid).
    assert len(channel.sent) >= 45
    assert all(sent >= slot - TICK_SECONDS / 2 for slot, sent in channel.sent)
    assert sorted(loop.send_lateness)[len(loop.send_lateness) // 2] < 0.005


def test_stopping_aborts_running_channels() -> None:
    loop = DspLoop()
    loop.start()
    channel = CountingChannel(ticks=10_000)
    loop.submit(lambda: loop.add(channel))
    time.sleep(0.1)
    loop.stop()
    assert channel.aborted and not loop.running


def test_starts_are_spread_one_per_tick() -> None:
    loop = DspLoop(starts_per_tick=1)
    loop.start()
    started: list[float] = []
    finished = threading.Event()
    for index in range(4):
        loop.submit_start(lambda index=index: (started.append(time.monotonic()), index == 3 and finished.set()))
    assert finished.wait(timeout=5)
    loop.stop()
    gaps = [later - earlier for earlier, later in itertools.pairwise(started)]
    assert len(started) == 4 and all(gap > TICK_SECONDS / 2 for gap in gaps)
