"""Several trunks, TCP and TLS, and media that learn from a failed attempt: the transmitter's sip line calling faxsims
on loopback, over real sockets.

faxsim plays every trunk: a fax machine answering on UDP, TCP and TLS (its certificate signed by a CA made here), a
trunk that answers every call 503, one that answers nothing at all, and a bare socket that only notes what reaches
it. Every call starts together in one module fixture (a page takes real time); each test checks one of them.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
import trustme

from fax_faxsim.simulator import FaxSimulator, SimulatorSettings
from fax_media.t30 import FaxOptions, TransmissionOutcome
from fax_sip import SipSettings, TlsSettings
from fax_transmitter.config import TrunkConfig
from fax_transmitter.lines import CallRequest, CallRoute
from fax_transmitter.media_policy import attempt_log
from fax_transmitter.outcome import tx_result
from fax_transmitter.sip_line import SipLine, SipLineSettings
from tests.integration.test_media_calls import make_tiff, tiff_pages

HOST = "127.0.0.1"
FAX, BUSY, T38_BREAKS = "+15551230000", "+15551230486", "+15551230380"


@dataclass
class Placed:
    outcome: TransmissionOutcome
    routes: list[CallRoute] = field(default_factory=list)
    call_ids: list[str] = field(default_factory=list)  # of the calls answered

    @property
    def route(self) -> CallRoute:
        return self.routes[-1]


@dataclass
class World:
    folder: Path
    document: Path
    fax_machine: FaxSimulator
    witness_datagrams: list[bytes]
    lines: dict[str, SipLine]
    placed: dict[str, Placed]


def _one_page_tiff(folder: Path) -> Path:
    two_pages = make_tiff(folder / "two-pages.tif")
    one_page = folder / "one-page.tif"
    subprocess.run(["tiffcp", f"{two_pages},0", str(one_page)], check=True, capture_output=True)
    return one_page


def _closed_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]  # nobody listens there: a connection is refused


class _Witness(asyncio.DatagramProtocol):
    def __init__(self, seen: list[bytes]) -> None:
        self.seen = seen

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.seen.append(data)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    folder = tmp_path_factory.mktemp("trunks")
    document = _one_page_tiff(folder)
    authority = trustme.CA()
    ca, cert = folder / "ca.pem", folder / "faxsim.pem"
    authority.cert_pem.write_to_path(str(ca))
    authority.issue_cert(HOST).private_key_and_cert_chain_pem.write_to_path(str(cert))

    def faxsim(name: str, media: tuple[int, int], **settings: object) -> FaxSimulator:
        return FaxSimulator(
            SimulatorSettings(sip_host=HOST, sip_port=0, media_ports=media, received_dir=folder / name, **settings)
        )

    fax_machine = faxsim("received", (42000, 42299), tls_port=0, tls_cert=str(cert))
    busy_network = faxsim("refusing", (42300, 42349), trunk_failure="503")
    silent = faxsim("silent", (42350, 42399), trunk_failure="timeout")
    loop = asyncio.get_running_loop()
    witness_datagrams: list[bytes] = []
    witness, _ = await loop.create_datagram_endpoint(lambda: _Witness(witness_datagrams), local_addr=(HOST, 0))
    for simulator in (fax_machine, busy_network, silent):
        await simulator.start()
    udp = f"{HOST}:{fax_machine.sip_port}"
    tcp = f"sip:{HOST}:{fax_machine.sip_port};transport=tcp"
    tls = f"sips:{HOST}:{fax_machine.user_agent.tls_port}"
    witness_uri = f"{HOST}:{witness.get_extra_info('sockname')[1]}"

    def trunk(uri: str, **settings: object) -> TrunkConfig:
        return TrunkConfig.at(uri, **{"probe_interval_s": 0, "response_timeout_s": 1.5, **settings})

    trunk_sets = {
        "silent_first": (trunk(f"{HOST}:{silent.sip_port}"), trunk(udp)),
        "refusing_first": (trunk(f"{HOST}:{busy_network.sip_port}"), trunk(tcp)),
        "unreachable_first": (trunk(f"sip:{HOST}:{_closed_tcp_port()};transport=tcp"), trunk(udp)),
        "busy_stays": (trunk(udp), trunk(witness_uri)),
        "tcp": (trunk(tcp, t38="off"),),
        "tls": (trunk(tls),),
        "probed": (trunk(f"{HOST}:{silent.sip_port}", probe_interval_s=0.5, name="silent"), trunk(tcp)),
        "t38_retry": (trunk(udp),),
        "one_channel": (trunk(udp, channels=1, name="small"), trunk(tcp, name="overflow")),
    }
    media = iter(range(42400, 42999, 60))
    lines = {}
    for name, trunks in trunk_sets.items():
        first = next(media)
        lines[name] = SipLine(
            SipLineSettings(
                sip=SipSettings(bind_host=HOST, bind_port=0, tls=TlsSettings(ca_file=str(ca)), t1=0.25),
                trunks=trunks,
                media_ports=(first, first + 59),
                ring_timeout=5.0,
            )
        )
        await lines[name].start()
    await asyncio.sleep(1.5)  # the probed line's probe of its silent trunk times out

    async def place(line: str, number: str, history: tuple = ()) -> Placed:
        routes: list[CallRoute] = []
        answered: list[str] = []
        request = CallRequest(
            job_id=uuid.uuid4(), attempt=len(history) + 1, to_number=number, from_number="+15550001000",
            from_name="Trunks", tiff=document, options=FaxOptions(local_ident="+1 555 0001000"),
            history=history, on_route=routes.append, on_answered=lambda call: answered.append(call.dialog.call_id),
        )  # fmt: skip
        return Placed(await lines[line].place_call(request), routes, answered)

    async def retried_over_g711() -> tuple[Placed, Placed]:
        first = await place("t38_retry", T38_BREAKS)
        logged = tx_result(first.outcome, time_elapsed=0, attempt=1, route=first.route)
        second = await place("t38_retry", T38_BREAKS, history=attempt_log(logged))
        return first, second

    try:
        calls = {
            "silent_first": place("silent_first", FAX),
            "refusing_first": place("refusing_first", FAX),
            "unreachable_first": place("unreachable_first", FAX),
            "busy_stays": place("busy_stays", BUSY),
            "tcp": place("tcp", FAX),
            "tls": place("tls", FAX),
            "probed": place("probed", FAX),
            "channel_a": place("one_channel", FAX),
            "channel_b": place("one_channel", FAX),
            "t38_retry": retried_over_g711(),
        }
        results = await asyncio.wait_for(asyncio.gather(*calls.values()), 240)
        placed = dict(zip(calls, results, strict=True))
        placed["t38_first"], placed["t38_second"] = placed.pop("t38_retry")  # type: ignore[misc]
        yield World(folder, document, fax_machine, witness_datagrams, lines, placed)
    finally:
        for line in lines.values():
            await line.close()
        for simulator in (fax_machine, busy_network, silent):
            await simulator.close()
        witness.close()


def _received_by_call(world: World) -> dict[str, dict]:
    records = {}
    for sidecar in (world.folder / "received").glob("*.json"):
        record = json.loads(sidecar.read_text())
        records[record["call_id"]] = {**record, "tif": sidecar.with_suffix(".tif")}
    return records


def _assert_same_pixels(world: World, received: Path) -> None:
    sent, got = tiff_pages(world.document), tiff_pages(received)
    assert len(got) == len(sent) == 1
    assert got[0].size == sent[0].size and got[0].tobytes() == sent[0].tobytes()


@pytest.mark.parametrize(
    ("row", "status"), [("silent_first", 408), ("refusing_first", 503), ("unreachable_first", 503)]
)
async def test_a_trunk_in_trouble_hands_the_call_to_the_next_which_delivers_it(world: World, row: str, status: int):
    placed = world.placed[row]
    assert placed.outcome.success and placed.outcome.pages_sent == 1, placed.outcome
    first, second = world.lines[row].settings.trunks
    assert placed.route.trunk == second.name and [t.trunk for t in placed.route.failed_over] == [first.name]
    assert placed.route.failed_over[0].sip_status == status, placed.route.failed_over


async def test_a_busy_callee_on_the_first_trunk_is_not_tried_on_the_second(world: World) -> None:
    placed = world.placed["busy_stays"]
    assert not placed.outcome.success and placed.outcome.sip_status == 486
    assert [route.trunk for route in placed.routes] == [world.lines["busy_stays"].settings.trunks[0].name]
    assert world.witness_datagrams == []  # not an INVITE, not a probe, reached the second trunk


@pytest.mark.parametrize(("row", "transport"), [("tcp", "tcp"), ("tls", "tls")])
async def test_a_fax_over_tcp_and_over_tls_arrives_pixel_for_pixel(world: World, row: str, transport: str) -> None:
    placed = world.placed[row]
    assert placed.outcome.success and placed.route.transport == transport, placed.outcome
    assert placed.outcome.t38_used is (transport == "tls")  # the TCP trunk is G.711 only ("off")
    line = world.lines[row]
    assert line.user_agent.transports.open_connections() == 1  # INVITE, re-INVITE, BYE: one connection
    (call_id,) = placed.call_ids
    record = _received_by_call(world)[call_id]
    assert record["pages"] == 1 and record["t38_used"] is placed.outcome.t38_used
    _assert_same_pixels(world, record["tif"])


async def test_a_trunk_whose_probes_go_unanswered_is_skipped(world: World) -> None:
    placed = world.placed["probed"]
    silent, carrier = world.lines["probed"].trunks.trunks
    assert not silent.up and carrier.up
    assert placed.outcome.success and placed.route.trunk == carrier.name and placed.route.failed_over == ()


async def test_a_full_trunk_overflows_to_the_next(world: World) -> None:
    trunks = sorted(world.placed[row].route.trunk for row in ("channel_a", "channel_b"))
    assert trunks == ["overflow", "small"]
    assert all(world.placed[row].outcome.success for row in ("channel_a", "channel_b"))


async def test_a_t30_failure_over_t38_is_retried_over_g711_and_succeeds(world: World) -> None:
    first, second = world.placed["t38_first"], world.placed["t38_second"]
    assert not first.outcome.success and first.outcome.t38_used and first.outcome.sip_status is None, first.outcome
    assert first.route.t38 and not second.route.t38
    assert "attempt 1 failed over T.38" in second.route.media_reason
    assert second.outcome.success and not second.outcome.t38_used and second.outcome.pages_sent == 1, second.outcome
    records = _received_by_call(world)
    broken, delivered = records[first.call_ids[0]], records[second.call_ids[0]]
    assert broken["t38_used"] and broken["pages"] == 0 and broken["ended_by"] == "faxsim"
    assert not delivered["t38_used"] and delivered["pages"] == 1
    _assert_same_pixels(world, delivered["tif"])
