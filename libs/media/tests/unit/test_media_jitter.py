"""The fixed-delay jitter buffer: reorder, fill, drop late and duplicate frames, wrap the sequence space."""

from fax_media.jitter import LOST, JitterBuffer


def frame(sequence: int) -> bytes:
    return sequence.to_bytes(2, "big") * 80


def test_frames_play_in_sequence_order_after_the_delay() -> None:
    buffer = JitterBuffer(delay_frames=2)
    assert buffer.pop() is None  # nothing arrived: no stream yet
    for sequence in (10, 12, 11):
        buffer.put(sequence, frame(sequence))
    assert [buffer.pop(), buffer.pop()] == [None, None]  # the play-out delay
    assert [buffer.pop() for _ in range(3)] == [frame(10), frame(11), frame(12)]


def test_a_missing_frame_is_reported_lost_and_a_late_one_dropped() -> None:
    buffer = JitterBuffer(delay_frames=0)
    buffer.put(1, frame(1))
    buffer.put(3, frame(3))
    assert buffer.pop() == frame(1)
    assert buffer.pop() is LOST
    buffer.put(2, frame(2))  # after its turn
    assert buffer.pop() == frame(3)
    assert (buffer.stats.lost, buffer.stats.late, buffer.stats.played) == (1, 1, 2)


def test_duplicates_are_dropped() -> None:
    buffer = JitterBuffer(delay_frames=0)
    buffer.put(5, frame(5))
    buffer.put(5, b"other")
    assert buffer.pop() == frame(5)
    assert buffer.pop() is LOST
    assert buffer.stats.duplicate == 1


def test_sequence_numbers_wrap() -> None:
    buffer = JitterBuffer(delay_frames=0)
    for sequence in (65534, 0, 65535, 1):
        buffer.put(sequence, frame(sequence))
    assert [buffer.pop() for _ in range(4)] == [frame(65534), frame(65535), frame(0), frame(1)]


def test_an_overfull_buffer_skips_ahead_instead_of_growing() -> None:
    buffer = JitterBuffer(delay_frames=0, max_frames=4)
    for sequence in range(6):
        buffer.put(sequence, frame(sequence))
    assert len(buffer) <= 4
    assert buffer.pop() == frame(2)
    assert buffer.stats.overflow == 2


def test_a_restarted_stream_resynchronises() -> None:
    buffer = JitterBuffer(delay_frames=0)
    buffer.put(100, frame(100))
    assert buffer.pop() == frame(100)
    buffer.put(30000, frame(30000))
    assert buffer.pop() == frame(30000)


def test_an_underrun_waits_for_the_late_frame_instead_of_skipping_it() -> None:
    buffer = JitterBuffer(delay_frames=0)
    buffer.put(1, frame(1))
    assert buffer.pop() == frame(1)
    assert buffer.pop() is LOST  # nothing here yet: the stream is late
    buffer.put(2, frame(2))
    buffer.put(3, frame(3))
    assert [buffer.pop(), buffer.pop()] == [frame(2), frame(3)]
    assert buffer.stats.late == 0
