"""Two fax calls on loopback, no SIP: real spandsp T.30 over RTP G.711 and UDPTL T.38 through the media engine.

The slow tests run in real time (a 2-page fax is ~25 s of line time), so every scenario starts at once in one
module fixture and each test then checks one scenario's result.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image, ImageSequence

from fax_media import spandsp
from fax_media.call import FaxCall, PortRange
from fax_media.dsp_loop import DspLoop
from fax_media.t30 import FaxOptions, TransmissionOutcome
from tests.integration.documents import TWO_PAGE_POSTSCRIPT

HOST = "127.0.0.1"
RELAY_PORTS = PortRange(HOST, 39000, 39999)


def make_tiff(path: Path) -> Path:
    """A 2-page TIFF/F (1728 px wide, standard resolution, G4) rendered by ghostscript."""
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=tiffg4", "-r204x98", "-g1728x1145",
         "-dFIXEDMEDIA", f"-sOutputFile={path}", "-"],
        input=TWO_PAGE_POSTSCRIPT,
        check=True,
        capture_output=True,
    )  # fmt: skip
    return path


def tiff_pages(path: Path) -> list[Image.Image]:
    with Image.open(path) as image:
        return [page.convert("1").copy() for page in ImageSequence.Iterator(image)]


class LossyRelay(asyncio.DatagramProtocol):
    """Forwards UDP between two parties through two relay ports, dropping a seeded-random share of datagrams."""

    def __init__(self, loss: float, seed: int) -> None:
        self.loss = loss
        self.random = random.Random(seed)
        self.forwarded = self.dropped = 0
        self.transports: dict[int, asyncio.DatagramTransport] = {}
        self.routes: dict[int, tuple[int, tuple[str, int]]] = {}  # relay port -> (out relay port, destination)

    @classmethod
    async def open(cls, loss: float, seed: int) -> tuple[LossyRelay, int, int]:
        relay = cls(loss, seed)
        loop = asyncio.get_running_loop()
        ports = []
        for _ in range(2):
            sock = RELAY_PORTS.bind()
            port = sock.getsockname()[1]
            transport, _ = await loop.create_datagram_endpoint(lambda port=port: _RelaySide(relay, port), sock=sock)
            relay.transports[port] = transport
            ports.append(port)
        return relay, ports[0], ports[1]

    def connect(self, port_a: int, party_a: int, port_b: int, party_b: int) -> None:
        """What arrives on ``port_a`` goes out of ``port_b`` to ``party_b``, and the other way round."""
        self.routes[port_a] = (port_b, (HOST, party_b))
        self.routes[port_b] = (port_a, (HOST, party_a))

    def forward(self, port: int, data: bytes) -> None:
        if port not in self.routes:
            return
        if self.random.random() < self.loss:
            self.dropped += 1
            return
        out_port, destination = self.routes[port]
        self.forwarded += 1
        self.transports[out_port].sendto(data, destination)

    def close(self) -> None:
        for transport in self.transports.values():
            transport.close()


class _RelaySide(asyncio.DatagramProtocol):
    def __init__(self, relay: LossyRelay, port: int) -> None:
        self.relay, self.port = relay, port

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay.forward(self.port, data)


@dataclass
class Scenario:
    sender: TransmissionOutcome
    receiver: TransmissionOutcome
    received: Path
    seconds: float
    pages_seen: list[int]
    relay: LossyRelay | None = None


@pytest.fixture(scope="module")
def dsp() -> Iterator[DspLoop]:
    loop = DspLoop()
    loop.start()
    yield loop
    loop.stop()


@pytest.fixture(scope="module")
def ports() -> PortRange:
    return PortRange(HOST, 38000, 38999)


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiff(tmp_path_factory.mktemp("media") / "two-pages.tif")


async def run_fax(
    dsp: DspLoop, ports: PortRange, document: Path, received: Path, mode: str, *, loss: float = 0.0
) -> Scenario:
    pages_seen: list[int] = []
    sender = await FaxCall.open(
        dsp, ports, calling=True, send_file=document, options=FaxOptions(local_ident="+1 555 0100"),
        on_page=pages_seen.append,
    )  # fmt: skip
    calls: list[FaxCall] = []

    def receiver_page(pages: int) -> None:
        if mode == "hangup" and pages == 1:
            # The answering side hangs up (sends BYE) as soon as the first page is in.
            for call in calls:
                call.remote_hangup()

    receiver = await FaxCall.open(
        dsp, ports, calling=False, receive_file=received, options=FaxOptions(local_ident="+1 555 0199"),
        on_page=receiver_page,
    )  # fmt: skip
    calls += (sender, receiver)
    relay = None
    started = time.monotonic()
    try:
        if mode in ("pcmu", "pcma"):
            payload_type = 0 if mode == "pcmu" else 8
            sender.start_audio(HOST, receiver.rtp_port, payload_type)
            receiver.start_audio(HOST, sender.rtp_port, payload_type)
        elif mode == "t38":
            sender.start_t38(HOST, receiver.udptl_port)
            receiver.start_t38(HOST, sender.udptl_port)
        elif mode == "t38-lossy":
            relay, sender_side, receiver_side = await LossyRelay.open(loss, seed=38)
            relay.connect(sender_side, sender.udptl_port, receiver_side, receiver.udptl_port)
            sender.start_t38(HOST, sender_side)
            receiver.start_t38(HOST, receiver_side)
        elif mode == "switch":
            sender.start_audio(HOST, receiver.rtp_port, 0)
            receiver.start_audio(HOST, sender.rtp_port, 0)
            await asyncio.sleep(3.0)  # CNG/CED heard, then both sides re-INVITE to T.38
            sender.start_t38(HOST, receiver.udptl_port)
            receiver.start_t38(HOST, sender.udptl_port)
        elif mode == "hangup":
            sender.start_t38(HOST, receiver.udptl_port)
            receiver.start_t38(HOST, sender.udptl_port)
        sent, got = await asyncio.wait_for(asyncio.gather(sender.finished, receiver.finished), timeout=240)
    finally:
        await sender.close()
        await receiver.close()
        if relay is not None:
            relay.close()
    return Scenario(sent, got, received, time.monotonic() - started, pages_seen, relay)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scenarios(
    dsp: DspLoop, ports: PortRange, document: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Scenario]]:
    folder = tmp_path_factory.mktemp("received")
    modes = ["pcmu", "pcma", "t38", "t38-lossy", "switch", "hangup"]
    results = await asyncio.gather(
        *(run_fax(dsp, ports, document, folder / f"{mode}.tif", mode, loss=0.05) for mode in modes)
    )
    yield dict(zip(modes, results, strict=True))


def assert_pages_intact(document: Path, received: Path, count: int = 2) -> None:
    sent_pages, received_pages = tiff_pages(document), tiff_pages(received)
    assert len(received_pages) == count
    for sent, got in zip(sent_pages, received_pages, strict=False):
        assert got.size == sent.size == (1728, 1145)
        assert got.tobytes() == sent.tobytes()
    assert all(page.histogram()[0] > 2_000 for page in sent_pages)  # the pages carry ink


def assert_sent_ok(scenario: Scenario, *, t38: bool) -> None:
    sender, receiver = scenario.sender, scenario.receiver
    assert sender.success and sender.result_code == spandsp.T30_ERR_OK, sender
    assert receiver.success and receiver.pages_sent == 2, receiver
    assert sender.pages_sent == 2 and sender.bit_rate == 14400 and sender.ecm_used
    assert sender.remote_ident == "+1 555 0199" and receiver.remote_ident == "+1 555 0100"
    assert sender.t38_used is t38 and receiver.t38_used is t38
    assert scenario.pages_seen == [1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["pcmu", "pcma"])
def test_g711_fax_delivers_every_page_pixel_for_pixel(
    scenarios: dict[str, Scenario], document: Path, mode: str
) -> None:
    scenario = scenarios[mode]
    assert_sent_ok(scenario, t38=False)
    assert_pages_intact(document, scenario.received)
    assert scenario.seconds > 15  # real time: G.711 fax cannot go faster than the modems


@pytest.mark.slow
def test_t38_fax_delivers_every_page_pixel_for_pixel(scenarios: dict[str, Scenario], document: Path) -> None:
    assert_sent_ok(scenarios["t38"], t38=True)
    assert_pages_intact(document, scenarios["t38"].received)


@pytest.mark.slow
def test_t38_through_five_percent_loss_still_delivers_every_page(
    scenarios: dict[str, Scenario], document: Path
) -> None:
    scenario = scenarios["t38-lossy"]
    assert scenario.relay is not None and scenario.relay.dropped > 0.03 * scenario.relay.forwarded
    assert_sent_ok(scenario, t38=True)
    assert_pages_intact(document, scenario.received)


@pytest.mark.slow
def test_audio_call_switched_to_t38_mid_call_completes(scenarios: dict[str, Scenario], document: Path) -> None:
    assert_sent_ok(scenarios["switch"], t38=True)
    assert_pages_intact(document, scenarios["switch"].received)


@pytest.mark.slow
def test_far_end_hangup_after_the_first_page_ends_both_sides(scenarios: dict[str, Scenario], document: Path) -> None:
    scenario = scenarios["hangup"]
    assert not scenario.sender.success and not scenario.receiver.success
    assert scenario.sender.result_code == spandsp.T30_ERR_CALLDROPPED
    assert scenario.sender.pages_sent in (0, 1)  # 0 when the BYE beat the receiver's MCF
    assert scenario.receiver.pages_sent == 1
    assert_pages_intact(document, scenario.received, count=1)


async def test_watchdog_ends_a_call_nobody_answers(dsp: DspLoop, ports: PortRange, document: Path) -> None:
    call = await FaxCall.open(dsp, ports, calling=True, send_file=document, max_duration=1.0)
    started = time.monotonic()
    call.start_audio(HOST, 38999, 0)  # nobody listens there (an odd port: PortRange binds even ones)
    outcome = await asyncio.wait_for(call.finished, timeout=10)
    await call.close()
    assert 1.0 <= time.monotonic() - started < 3.0
    assert not outcome.success and outcome.result_code == spandsp.T30_ERR_CALLDROPPED
    assert outcome.pages_sent == 0 and 0.9 < outcome.line_seconds < 2.0


async def test_watchdog_ends_a_t38_call_without_t30_progress(dsp: DspLoop, ports: PortRange, tmp_path: Path) -> None:
    call = await FaxCall.open(dsp, ports, calling=False, receive_file=tmp_path / "in.tif", stall_timeout=1.0)
    call.start_t38(HOST, 38999)
    outcome = await asyncio.wait_for(call.finished, timeout=10)
    await call.close()
    assert not outcome.success and outcome.t38_used and outcome.pages_sent == 0
    assert not (tmp_path / "in.tif").exists()


async def test_closing_a_running_call_resolves_it_as_dropped(dsp: DspLoop, ports: PortRange, document: Path) -> None:
    call = await FaxCall.open(dsp, ports, calling=True, send_file=document)
    call.start_t38(HOST, 38999)
    await asyncio.sleep(0.1)
    await call.close()
    await call.close()  # idempotent
    outcome = call.finished.result()
    assert not outcome.success and outcome.result_code == spandsp.T30_ERR_CALLDROPPED
    with pytest.raises(RuntimeError, match="closed"):
        call.start_audio(HOST, 38999, 0)


async def test_bad_requests_are_refused_clearly(dsp: DspLoop, ports: PortRange, document: Path) -> None:
    with pytest.raises(ValueError, match="send_file"):
        await FaxCall.open(dsp, ports, calling=True)
    with pytest.raises(ValueError, match="receive_file"):
        await FaxCall.open(dsp, ports, calling=False)
    call = await FaxCall.open(dsp, ports, calling=True, send_file=document)
    try:
        assert call.rtp_port % 2 == 0 and call.udptl_port % 2 == 0 and call.rtp_port != call.udptl_port
        with pytest.raises(ValueError, match="PCMU"):
            call.start_audio(HOST, 38999, 18)
    finally:
        await call.close()
