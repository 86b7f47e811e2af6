"""RTP (RFC 3550) for G.711 fax audio: the 12-byte fixed header and a sender's sequence/timestamp/SSRC state."""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass

PCMU = 0
PCMA = 8
G711_PAYLOAD_TYPES = frozenset({PCMU, PCMA})
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
HEADER_BYTES = 12
_VERSION = 2
_HEADER = struct.Struct("!BBHII")


class RtpError(ValueError):
    """A datagram that is not an RTP packet we can play."""


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def encode(self) -> bytes:
        first = _VERSION << 6
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        header = _HEADER.pack(first, second, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc)
        return header + self.payload

    @classmethod
    def decode(cls, datagram: bytes) -> RtpPacket:
        if len(datagram) < HEADER_BYTES:
            raise RtpError(f"RTP packet too short: {len(datagram)} bytes")
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(datagram)
        if first >> 6 != _VERSION:
            raise RtpError(f"not RTP version 2: {first >> 6}")
        offset = HEADER_BYTES + 4 * (first & 0x0F)  # CSRC list
        if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words
            if len(datagram) < offset + 4:
                raise RtpError("truncated RTP header extension")
            (words,) = struct.unpack_from("!H", datagram, offset + 2)
            offset += 4 + 4 * words
        end = len(datagram)
        if first & 0x20:  # padding: the last byte counts the padding bytes
            end -= datagram[-1]
        if offset > end:
            raise RtpError("RTP header longer than the packet")
        return cls(
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=datagram[offset:end],
            marker=bool(second & 0x80),
        )


class RtpStream:
    """The sending side of one RTP stream: random SSRC and initial sequence/timestamp, one packet per frame."""

    def __init__(self, payload_type: int) -> None:
        if payload_type not in G711_PAYLOAD_TYPES:
            raise ValueError(f"payload type must be {PCMU} (PCMU) or {PCMA} (PCMA): {payload_type}")
        self.payload_type = payload_type
        self.ssrc = secrets.randbits(32)
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._first = True

    def next_packet(self, payload: bytes) -> bytes:
        """The next packet: sequence +1, timestamp + samples (continuous send, so no gaps); marker on the first."""
        packet = RtpPacket(self.payload_type, self._sequence, self._timestamp, self.ssrc, payload, marker=self._first)
        self._first = False
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + len(payload)) & 0xFFFFFFFF
        return packet.encode()
