"""A call's media sockets take datagrams from its far end only, over real UDP on loopback; ports are spread."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from fax_media.call import FaxCall, PortRange
from fax_media.channel import MediaSocket
from fax_media.dsp_loop import DspLoop
from fax_media.peer import MediaPeer, behind_nat
from fax_media.rtp import RtpStream
from fax_runtime.metrics import default_metrics

HOST = "127.0.0.1"


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    return sock


@pytest.fixture
def parties() -> Iterator[tuple[socket.socket, socket.socket]]:
    """The far end, and a stranger on the same host (a stream a dead predecessor's call left up)."""
    far_end, stranger = _udp(), _udp()
    yield far_end, stranger
    far_end.close()
    stranger.close()


class ReadEachTick:
    """A media socket as a DSP worker reads it, with what reached the channel and what was dropped."""

    def __init__(self) -> None:
        self.drops: list[str] = []
        self.peer = MediaPeer("test RTP", self.drops.append)
        self.media = MediaSocket(PortRange(HOST, 37600, 37699).bind(), self.peer)
        self.port = self.media.socket.getsockname()[1]

    @property
    def received(self) -> deque[bytes]:
        return self.media.inbox

    def tick(self) -> None:
        time.sleep(0.02)  # loopback delivers at once; a tick later everything sent has arrived
        self.media.receive()


@pytest.fixture
def inbox() -> Iterator[ReadEachTick]:
    reader = ReadEachTick()
    yield reader
    reader.media.socket.close()


async def _settle() -> None:
    await asyncio.sleep(0.05)


def test_the_socket_takes_the_far_ends_datagrams_and_refuses_a_strangers(parties, inbox: ReadEachTick) -> None:
    far_end, stranger = parties
    stranger.sendto(b"too early", (HOST, inbox.port))
    inbox.tick()
    inbox.peer.expect(HOST, far_end.getsockname()[1])  # the far end's SDP names it: the call is answered
    for number in range(3):
        far_end.sendto(b"far end %d" % number, (HOST, inbox.port))
        stranger.sendto(b"orphaned stream %d" % number, (HOST, inbox.port))
    inbox.tick()
    assert list(inbox.received) == [b"far end 0", b"far end 1", b"far end 2"]
    assert inbox.drops == ["unanswered", "stranger", "stranger", "stranger"]
    assert inbox.peer.target is not None and inbox.peer.target[0] == (HOST, far_end.getsockname()[1])


def test_a_t38_reinvite_moves_the_socket_to_the_new_far_end(parties, inbox: ReadEachTick) -> None:
    old, new = parties
    inbox.peer.expect(HOST, old.getsockname()[1])
    inbox.peer.expect(HOST, new.getsockname()[1])  # the far end's answer names another address
    old.sendto(b"old", (HOST, inbox.port))
    new.sendto(b"new", (HOST, inbox.port))
    inbox.tick()
    assert list(inbox.received) == [b"new"] and inbox.drops == ["stranger"]


def test_behind_nat_the_first_datagram_from_the_signalling_host_is_latched_on(parties, inbox: ReadEachTick) -> None:
    far_end, stranger = parties
    # The SDP names the far end's private address; its SIP came from our host (the NAT's public side).
    inbox.peer.expect("192.168.1.20", 4000, signalling_host=HOST)
    far_end.sendto(b"first", (HOST, inbox.port))
    inbox.tick()
    stranger.sendto(b"second source", (HOST, inbox.port))
    far_end.sendto(b"again", (HOST, inbox.port))
    inbox.tick()
    assert list(inbox.received) == [b"first", b"again"] and inbox.drops == ["stranger"]
    assert inbox.peer.target is not None and inbox.peer.target[0] == (HOST, far_end.getsockname()[1])  # we answer


def test_latching_takes_only_the_signalling_hosts_datagrams(inbox: ReadEachTick) -> None:
    inbox.peer.expect("10.0.0.7", 4000, signalling_host="192.0.2.10")  # its SIP came from elsewhere than our probe
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as prober:
        prober.sendto(b"guess", (HOST, inbox.port))
        inbox.tick()
    assert not inbox.received and inbox.drops == ["stranger"]


def test_a_flood_is_read_a_bounded_amount_per_tick(parties, inbox: ReadEachTick) -> None:
    """Whatever arrives, one tick reads at most 32 datagrams of a socket: a flood cannot stretch the DSP tick."""
    far_end, _ = parties
    inbox.peer.expect(HOST, far_end.getsockname()[1])
    for number in range(100):
        far_end.sendto(b"%d" % number, (HOST, inbox.port))
    inbox.tick()
    assert len(inbox.received) == 32
    inbox.tick()
    assert len(inbox.received) == 64 and inbox.received[-1] == b"63"  # the rest waits, in order


@pytest.mark.parametrize(
    ("sdp_host", "signalling_host", "nat"),
    [
        ("81.2.69.142", "81.2.69.160", False),  # public: the far end sends from where it says
        ("127.0.0.1", "127.0.0.1", False),
        ("192.168.1.20", "192.168.1.20", False),  # a LAN peer that is its own signalling host
        ("192.168.1.20", "81.2.69.160", True),
        ("100.64.3.4", "81.2.69.160", True),  # carrier-grade NAT
        ("0.0.0.0", "81.2.69.160", True),
        ("fax.example.com", "81.2.69.160", True),  # a name cannot be compared with a source address
        ("192.168.1.20", None, False),  # no signalling host to latch on: strict
        ("192.168.1.20", "sbc.example.com", False),  # a trunk named by a name: no source to match
    ],
)
def test_nat_is_recognised_the_way_sip_proxies_do(sdp_host: str, signalling_host: str | None, nat: bool) -> None:
    assert behind_nat(sdp_host, signalling_host) is nat


@pytest.fixture(scope="module")
def dsp() -> Iterator[DspLoop]:
    loop = DspLoop()
    loop.start()
    yield loop
    loop.stop()


def _dropped(reason: str) -> float:
    value = default_metrics().registry.get_sample_value(
        "fax_media_packets_dropped_total", {"media": "g711", "reason": reason}
    )
    return value or 0.0


async def test_a_fax_calls_sockets_count_what_they_refuse_in_the_metrics(dsp: DspLoop, parties, tmp_path: Path) -> None:
    far_end, stranger = parties
    call = await FaxCall.open(dsp, PortRange(HOST, 37700, 37799), calling=False, receive_file=tmp_path / "in.tif")
    before = _dropped("stranger")
    try:
        call.start_audio(HOST, far_end.getsockname()[1], 0)
        orphan = RtpStream(0)
        for _ in range(10):
            stranger.sendto(orphan.next_packet(bytes(160)), (HOST, call.rtp_port))
        await _settle()
    finally:
        await call.close()
    assert _dropped("stranger") - before == 10


def test_ports_start_at_a_random_place_and_rest_after_a_call() -> None:
    first_binds = []
    for _ in range(10):
        sock = PortRange(HOST, 37800, 37999).bind()
        first_binds.append(sock.getsockname()[1])
        sock.close()
    assert len(set(first_binds)) > 1  # a restarted process does not begin where its predecessor did

    ports = PortRange(HOST, 37800, 37805)  # three even ports
    resting = {37800, 37802}
    ports.rest(resting)
    taken = ports.bind()
    assert taken.getsockname()[1] == 37804  # the only one not resting
    second = ports.bind()  # nothing else is free: a resting port beats no call
    assert second.getsockname()[1] in resting
    taken.close()
    second.close()
