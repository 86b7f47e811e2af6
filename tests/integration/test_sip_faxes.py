"""Real fax calls over SIP on loopback: the transmitter's sip line calls faxsim, every dial-plan row at once.

Calls run in real time (a page over G.711 is ~15-30 s of line time), so every scenario starts together in one
module fixture and each test then checks one call's result.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from fax_faxsim.simulator import FaxSimulator, SimulatorSettings
from fax_media.t30 import FaxOptions, TransmissionOutcome
from fax_sip import SipSettings
from fax_transmitter.config import TrunkConfig
from fax_transmitter.lines import CallRequest
from fax_transmitter.outcome import should_retry
from fax_transmitter.sip_line import SipLine, SipLineSettings
from tests.integration.test_media_calls import make_tiff, tiff_pages

HOST = "127.0.0.1"


def _free_udp_port(low: int = 36500, high: int = 36999) -> int:
    for port in range(low, high):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port")


@dataclass
class Dialled:
    number: str
    outcome: TransmissionOutcome
    pages_seen: list[int]


NUMBERS = {
    "fax": "+15551230000",
    "g711_only": "+15551230038",
    "busy": "+15551230486",
    "unavailable": "+15551230503",
    "no_answer": "+15551230408",
    "voice": "+15551230404",
    "hangs_up": "+15551230049",
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[FaxSimulator, dict[str, Dialled]]]:
    folder = tmp_path_factory.mktemp("sip")
    document = make_tiff(folder / "two-pages.tif")
    faxsim_port = _free_udp_port()
    simulator = FaxSimulator(
        SimulatorSettings(
            sip_host=HOST, sip_port=faxsim_port, media_ports=(38400, 38699), received_dir=folder / "received"
        )
    )
    line = SipLine(
        SipLineSettings(
            sip=SipSettings(bind_host=HOST, bind_port=_free_udp_port(faxsim_port + 1)),
            trunks=(TrunkConfig.at(f"{HOST}:{faxsim_port}", probe_interval_s=0),),
            media_ports=(38700, 38999),
            ring_timeout=4.0,
        )
    )
    await simulator.start()
    await line.start()

    async def dial(number: str) -> Dialled:
        pages: list[int] = []
        outcome = await line.place_call(
            CallRequest(
                job_id=uuid.uuid4(), attempt=1, to_number=number, from_number="+15550001000", from_name="Tests",
                tiff=document, options=FaxOptions(local_ident="+1 555 0001000"), on_page=pages.append,
            )
        )  # fmt: skip
        return Dialled(number, outcome, pages)

    try:
        results = await asyncio.wait_for(asyncio.gather(*(dial(n) for n in NUMBERS.values())), 300)
        yield simulator, dict(zip(NUMBERS, results, strict=True))
    finally:
        await line.close()
        await simulator.close()


def _received(simulator: FaxSimulator, number: str) -> tuple[dict, Path]:
    for sidecar in simulator.settings.received_dir.glob("*.json"):
        record = json.loads(sidecar.read_text())
        if record["to_number"] == number:
            return record, sidecar.with_suffix(".tif")
    raise AssertionError(f"faxsim kept no record of a call to {number}")


def _same_pixels(sent: Path, received: Path) -> None:
    sent_pages, received_pages = tiff_pages(sent), tiff_pages(received)
    assert len(received_pages) == len(sent_pages) == 2
    for mine, theirs in zip(sent_pages, received_pages, strict=True):
        assert theirs.size == mine.size
        assert theirs.tobytes() == mine.tobytes()


async def test_a_fax_goes_through_t38_and_arrives_pixel_for_pixel(world, tmp_path_factory) -> None:
    simulator, dialled = world
    call = dialled["fax"]
    assert call.outcome.success, call.outcome
    assert call.outcome.t38_used and call.outcome.pages_sent == 2
    assert call.outcome.remote_ident == "FAXSIM"
    assert call.pages_seen == [1, 2]
    record, received = _received(simulator, NUMBERS["fax"])
    assert record["t38_used"] and record["pages"] == 2 and record["completion_code"] == 0
    assert record["from_number"] == "+15550001000"
    _same_pixels(simulator.settings.received_dir.parent / "two-pages.tif", received)


async def test_a_machine_that_refuses_t38_gets_the_fax_over_g711(world) -> None:
    simulator, dialled = world
    call = dialled["g711_only"]
    assert call.outcome.success, call.outcome
    assert not call.outcome.t38_used and call.outcome.pages_sent == 2
    record, received = _received(simulator, NUMBERS["g711_only"])
    assert not record["t38_used"] and record["pages"] == 2
    _same_pixels(simulator.settings.received_dir.parent / "two-pages.tif", received)


@pytest.mark.parametrize(
    ("row", "sip_status", "retry"),
    [("busy", 486, True), ("unavailable", 503, True), ("no_answer", 408, True)],
)
async def test_unanswered_calls_carry_their_sip_status(world, row: str, sip_status: int, retry: bool) -> None:
    _, dialled = world
    outcome = dialled[row].outcome
    assert not outcome.success and outcome.sip_status == sip_status and outcome.pages_sent == 0
    assert should_retry(outcome, attempt=1, retries=3) is retry


async def test_a_voice_line_fails_in_t30_and_is_retried(world) -> None:
    _, dialled = world
    outcome = dialled["voice"].outcome
    assert not outcome.success and outcome.sip_status is None and outcome.pages_sent == 0
    assert should_retry(outcome, attempt=1, retries=2)


async def test_a_call_dropped_after_the_first_page_reports_one_page(world) -> None:
    simulator, dialled = world
    outcome = dialled["hangs_up"].outcome
    assert not outcome.success
    assert outcome.pages_sent == 1
    record, _ = _received(simulator, NUMBERS["hangs_up"])
    assert record["pages"] == 1
