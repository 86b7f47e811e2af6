"""UDPTL (ITU-T T.38 Annex D) with redundancy error recovery: packets of IFPs, encode and decode.

A packet is a 2-byte big-endian sequence number, the primary IFP as an open type (length determinant + bytes), and
the error-recovery field: ``0x00`` (secondary IFPs: a count, then the previous IFPs newest first, each an open
type) or ``0x80`` (FEC, which we decode only as far as its primary IFP). Length determinants are ASN.1 PER: one
byte below 128, else two bytes ``0x80 | len >> 8, len & 0xff`` (fragments over 16383 bytes are not used by fax).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

_SEQ_MOD = 1 << 16
_MAX_LENGTH = 0x3FFF
# A packet this far behind (in sequence numbers) is not a late duplicate but a restarted far end: resynchronise.
_RESYNC_BEHIND = 1000
_REDUNDANCY = 0x00
_FEC = 0x80


class UdptlError(ValueError):
    """A datagram that is not a well-formed UDPTL packet."""


def _encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    if length <= _MAX_LENGTH:
        return bytes((0x80 | length >> 8, length & 0xFF))
    raise UdptlError(f"IFP too long for UDPTL: {length} bytes")


def _open_type(ifp: bytes) -> bytes:
    return _encode_length(len(ifp)) + ifp


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def byte(self) -> int:
        if self.offset >= len(self.data):
            raise UdptlError("UDPTL packet truncated")
        value = self.data[self.offset]
        self.offset += 1
        return value

    def length(self) -> int:
        first = self.byte()
        if first & 0x80 == 0:
            return first
        if first & 0x40:
            raise UdptlError("fragmented UDPTL length determinants are not supported")
        return (first & 0x3F) << 8 | self.byte()

    def open_type(self) -> bytes:
        length = self.length()
        end = self.offset + length
        if end > len(self.data):
            raise UdptlError("UDPTL open type runs past the packet")
        value = self.data[self.offset : end]
        self.offset = end
        return value


@dataclass(frozen=True)
class UdptlPacket:
    sequence: int
    primary: bytes
    secondary: tuple[bytes, ...] = ()  # the IFPs of sequence-1, sequence-2, ... (newest first)

    def encode(self) -> bytes:
        parts = [struct.pack("!H", self.sequence & 0xFFFF), _open_type(self.primary), bytes((_REDUNDANCY,))]
        parts.append(_encode_length(len(self.secondary)))
        parts.extend(_open_type(ifp) for ifp in self.secondary)
        return b"".join(parts)

    @classmethod
    def decode(cls, datagram: bytes) -> UdptlPacket:
        if len(datagram) < 4:
            raise UdptlError(f"UDPTL packet too short: {len(datagram)} bytes")
        reader = _Reader(datagram)
        reader.offset = 2
        (sequence,) = struct.unpack_from("!H", datagram)
        primary = reader.open_type()
        if reader.byte() & _FEC:
            return cls(sequence, primary)
        count = reader.length()
        secondary = tuple(reader.open_type() for _ in range(count))
        return cls(sequence, primary, secondary)


class UdptlEncoder:
    """Numbers outgoing IFPs and adds as many previous IFPs as fit in the far end's maximum datagram."""

    def __init__(self, max_datagram: int = 400, redundancy: int = 3) -> None:
        if max_datagram < 16:
            raise ValueError(f"T38FaxMaxDatagram is too small: {max_datagram}")
        self.max_datagram = max_datagram
        self._history: deque[bytes] = deque(maxlen=redundancy)
        self._sequence = 0

    def encode(self, ifp: bytes) -> bytes:
        """The datagram for the next IFP (send it as many times as spandsp asks: copies share the number)."""
        packet = UdptlPacket(self._sequence, ifp)
        size = len(packet.encode())
        if size > self.max_datagram:
            raise UdptlError(f"an IFP of {len(ifp)} bytes exceeds the far end's max datagram {self.max_datagram}")
        secondary: list[bytes] = []
        for previous in reversed(self._history):  # newest first
            extra = len(_open_type(previous))
            if size + extra > self.max_datagram:
                break
            secondary.append(previous)
            size += extra
        self._history.append(ifp)
        self._sequence = (self._sequence + 1) % _SEQ_MOD
        return UdptlPacket(packet.sequence, ifp, tuple(secondary)).encode()


@dataclass
class UdptlStats:
    received: int = 0
    delivered: int = 0
    recovered: int = 0
    lost: int = 0
    duplicate: int = 0
    malformed: int = 0


class UdptlDecoder:
    """Turns received datagrams into IFPs in sequence order: drops duplicates, recovers gaps from redundancy."""

    def __init__(self) -> None:
        self.stats = UdptlStats()
        self._next: int | None = None

    def decode(self, datagram: bytes) -> list[tuple[int, bytes]]:
        """The (sequence, IFP) pairs this datagram makes deliverable, oldest first; [] for a duplicate or junk."""
        self.stats.received += 1
        try:
            packet = UdptlPacket.decode(datagram)
        except UdptlError:
            self.stats.malformed += 1
            return []
        if self._next is None:
            self._next = packet.sequence
        ahead = (packet.sequence - self._next + _SEQ_MOD // 2) % _SEQ_MOD - _SEQ_MOD // 2
        if ahead < -_RESYNC_BEHIND:
            ahead = 0
        elif ahead < 0:
            self.stats.duplicate += 1
            return []
        deliverable: list[tuple[int, bytes]] = []
        # Redundancy lists the IFPs before the primary newest first; replay the missing ones oldest first.
        for back in range(ahead, 0, -1):
            sequence = (packet.sequence - back) % _SEQ_MOD
            if back <= len(packet.secondary):
                deliverable.append((sequence, packet.secondary[back - 1]))
                self.stats.recovered += 1
            else:
                self.stats.lost += 1
        deliverable.append((packet.sequence, packet.primary))
        self.stats.delivered += len(deliverable)
        self._next = (packet.sequence + 1) % _SEQ_MOD
        return deliverable
