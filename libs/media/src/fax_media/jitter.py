"""A fixed-delay jitter buffer for 20 ms RTP frames: reorder by sequence, play out one frame per tick.

Fax modems need a steady sample clock more than low latency, so the buffer waits ``delay_frames`` before it starts
playing and then plays exactly one frame per tick: a frame that has not arrived by its turn is reported lost (the
caller feeds ``fax_rx_fillin``) and skipped if later frames are already here; a frame that arrives after its turn,
or twice, is dropped. The delay grows after an underrun and shrinks only when the buffer overflows.
"""

from __future__ import annotations

from dataclasses import dataclass

# What ``pop`` returns for a frame that did not arrive in time.
LOST = b""
_SEQ_MOD = 1 << 16
# A jump this far ahead (in frames, ~10 s) means the far end restarted its stream: resynchronise.
_RESYNC_FRAMES = 500


@dataclass
class JitterStats:
    received: int = 0
    played: int = 0
    lost: int = 0
    late: int = 0
    duplicate: int = 0
    overflow: int = 0


def _ahead(sequence: int, reference: int) -> int:
    """Signed distance from ``reference`` to ``sequence`` in 16-bit sequence space."""
    return (sequence - reference + _SEQ_MOD // 2) % _SEQ_MOD - _SEQ_MOD // 2


class JitterBuffer:
    """Holds payloads by RTP sequence number. ``put`` on arrival, ``pop`` once per 20 ms tick."""

    def __init__(self, delay_frames: int = 3, max_frames: int = 50) -> None:
        self.delay_frames = delay_frames
        self.max_frames = max_frames
        self.stats = JitterStats()
        self._frames: dict[int, bytes] = {}
        self._next: int | None = None  # the sequence number due at the next pop
        self._waiting = 0  # ticks waited since the first frame of a (re)started stream

    def put(self, sequence: int, payload: bytes) -> None:
        self.stats.received += 1
        if self._next is None:
            self._next = sequence
            self._waiting = 0
        distance = _ahead(sequence, self._next)
        if distance < 0:
            self.stats.late += 1
            return
        if distance > _RESYNC_FRAMES:
            self._frames.clear()
            self._next = sequence
            self._waiting = 0
            distance = 0
        if sequence in self._frames:
            self.stats.duplicate += 1
            return
        self._frames[sequence] = payload
        while len(self._frames) > self.max_frames:
            # The far end's clock runs fast or we stalled: drop the oldest rather than grow the delay for ever.
            self.stats.overflow += 1
            self._frames.pop(self._next, None)
            self._next = (self._next + 1) % _SEQ_MOD

    def pop(self) -> bytes | None:
        """The frame due now; ``LOST`` if it did not arrive in time; None while nothing is playing yet."""
        if self._next is None:
            return None
        if self._waiting < self.delay_frames:
            self._waiting += 1
            return None
        frame = self._frames.pop(self._next, None)
        if frame is None:
            self.stats.lost += 1
            # An empty buffer means the stream is late (our stall or the network's), not that this frame was
            # lost: keep waiting for it, so the play-out delay grows back instead of every later frame being late.
            if self._frames:
                self._next = (self._next + 1) % _SEQ_MOD
            return LOST
        self._next = (self._next + 1) % _SEQ_MOD
        self.stats.played += 1
        return frame

    def __len__(self) -> int:
        return len(self._frames)
