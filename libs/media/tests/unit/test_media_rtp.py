"""RTP header encoding and the sender's sequence/timestamp state."""

import struct

import pytest

from fax_media.rtp import PCMA, PCMU, RtpError, RtpPacket, RtpStream


def test_header_round_trip_and_wire_layout() -> None:
    packet = RtpPacket(payload_type=PCMA, sequence=0xFFFF, timestamp=0x12345678, ssrc=0xDEADBEEF, payload=b"\xd5" * 160)
    wire = packet.encode()
    assert len(wire) == 12 + 160
    assert wire[:12] == bytes.fromhex("8008ffff12345678deadbeef")
    assert RtpPacket.decode(wire) == packet


def test_marker_csrc_extension_and_padding_are_parsed() -> None:
    header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 1, 0x80 | PCMU, 7, 1120, 42)
    csrc = struct.pack("!I", 99)
    extension = struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    padding = b"\x00\x00\x03"
    packet = RtpPacket.decode(header + csrc + extension + b"\xff" * 160 + padding)
    assert packet.marker and packet.payload_type == PCMU and packet.sequence == 7
    assert packet.payload == b"\xff" * 160


VERSION_1 = bytes.fromhex("4000000100000000000000000000")
FIFTEEN_CSRCS_MISSING = b"\x8f" + bytes(11)


@pytest.mark.parametrize("datagram", [b"", b"\x80\x00", VERSION_1, FIFTEEN_CSRCS_MISSING])
def test_malformed_packets_are_refused(datagram: bytes) -> None:
    with pytest.raises(RtpError):
        RtpPacket.decode(datagram)


def test_stream_counts_sequence_and_timestamp_continuously() -> None:
    stream = RtpStream(PCMU)
    packets = [RtpPacket.decode(stream.next_packet(bytes(160))) for _ in range(3)]
    assert [p.marker for p in packets] == [True, False, False]
    assert {p.ssrc for p in packets} == {stream.ssrc}
    assert [(p.sequence - packets[0].sequence) % 65536 for p in packets] == [0, 1, 2]
    assert [(p.timestamp - packets[0].timestamp) % 2**32 for p in packets] == [0, 160, 320]


def test_only_g711_payload_types_are_accepted() -> None:
    with pytest.raises(ValueError, match="PCMU"):
        RtpStream(18)
