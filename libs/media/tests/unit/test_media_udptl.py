"""UDPTL (T.38 Annex D): wire vectors, redundancy trimmed to the far end's datagram, recovery of lost IFPs."""

import random

import pytest

from fax_media.udptl import UdptlDecoder, UdptlEncoder, UdptlError, UdptlPacket


def test_wire_layout_with_redundancy() -> None:
    packet = UdptlPacket(sequence=0x0102, primary=b"\xc0\x01\x80", secondary=(b"\x02", b"\x04\x05"))
    # seq | len 3 + primary | 0x00 redundancy | count 2 | len 1 + IFP(seq-1) | len 2 + IFP(seq-2)
    assert packet.encode() == bytes.fromhex("010203c0018000020102020405")
    assert UdptlPacket.decode(packet.encode()) == packet


def test_long_ifps_use_two_byte_lengths() -> None:
    ifp = bytes(range(256)) * 2
    wire = UdptlPacket(sequence=7, primary=ifp).encode()
    assert wire[:4] == bytes.fromhex("00078200")
    assert UdptlPacket.decode(wire).primary == ifp


def test_fec_packets_yield_their_primary() -> None:
    assert UdptlPacket.decode(bytes.fromhex("00090100800101")).primary == b"\x00"


@pytest.mark.parametrize("datagram", [b"", b"\x00\x01\x05\x00", bytes.fromhex("0001010000030101")])
def test_truncated_packets_are_refused(datagram: bytes) -> None:
    with pytest.raises(UdptlError):
        UdptlPacket.decode(datagram)


def test_redundancy_is_newest_first_and_trimmed_to_the_max_datagram() -> None:
    encoder = UdptlEncoder(max_datagram=40, redundancy=3)
    ifps = [bytes([n]) * 10 for n in range(5)]
    packets = [UdptlPacket.decode(encoder.encode(ifp)) for ifp in ifps]
    assert [p.sequence for p in packets] == [0, 1, 2, 3, 4]
    assert packets[1].secondary == (ifps[0],)
    # 2 + 11 + 1 + 1 = 15 bytes before redundancy; two 11-byte copies fit in 40, a third would not.
    assert packets[4].secondary == (ifps[3], ifps[2])
    assert all(len(p.encode()) <= 40 for p in packets)


def test_an_ifp_larger_than_the_far_end_accepts_is_refused() -> None:
    with pytest.raises(UdptlError, match="max datagram"):
        UdptlEncoder(max_datagram=20).encode(bytes(30))


def test_lost_packets_are_recovered_from_later_redundancy_and_copies_dropped() -> None:
    encoder = UdptlEncoder(max_datagram=400, redundancy=3)
    ifps = [f"ifp {n}".encode() for n in range(8)]
    wire = [encoder.encode(ifp) for ifp in ifps]
    decoder = UdptlDecoder()
    delivered = []
    for index in (0, 0, 0, 3, 1, 4, 7):  # 1, 2 lost (recovered by 3), 5, 6 by 7; copies and a late 1 dropped
        delivered += decoder.decode(wire[index])
    assert delivered == list(enumerate(ifps))
    assert (decoder.stats.recovered, decoder.stats.duplicate, decoder.stats.lost) == (4, 3, 0)


def test_a_gap_longer_than_the_redundancy_is_counted_lost() -> None:
    encoder = UdptlEncoder(max_datagram=400, redundancy=2)
    wire = [encoder.encode(bytes([n])) for n in range(6)]
    decoder = UdptlDecoder()
    delivered = decoder.decode(wire[0]) + decoder.decode(wire[5])
    assert [sequence for sequence, _ in delivered] == [0, 3, 4, 5]
    assert decoder.stats.lost == 2


def test_random_loss_with_redundancy_delivers_in_order_without_duplicates() -> None:
    rng = random.Random(5)
    encoder = UdptlEncoder(max_datagram=400, redundancy=3)
    ifps = [rng.randbytes(rng.randint(1, 60)) for _ in range(2000)]
    decoder = UdptlDecoder()
    delivered = []
    for ifp in ifps:
        datagram = encoder.encode(ifp)
        for _ in range(rng.choice((1, 3))):
            if rng.random() >= 0.05:
                delivered += decoder.decode(datagram)
    sequences = [sequence for sequence, _ in delivered]
    assert sequences == sorted(set(sequences))
    assert all(ifps[sequence] == ifp for sequence, ifp in delivered)
    assert len(delivered) >= 1995  # at 5% loss, four lost in a row is the only way to lose one
