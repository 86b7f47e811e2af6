"""A transmitter killed with calls up and started again at once, over real SIP to faxsim.

The killed process sends no BYE, so the far end keeps streaming its orphaned calls (five it placed, one it was
receiving) into the dead process's media ports. The restarted process (same settings, same port range) takes new
jobs straight away; its calls must not be disturbed by those streams, and the far end must see the orphaned calls
ended.

Before the fix this failed: the restarted transmitter bound the very ports its predecessor had used (the port picker
started at the first port of the range) and its sockets took the orphaned audio as the new calls' audio, so new
G.711 calls failed in T.30 ("Received no response to DCS or TCF", one of three in the first run; in another run all
got through by luck); faxsim kept every orphaned call up until its own T.30 gave up ~23 s after answering, and hung
up itself (``ended_by == "faxsim"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from fax_devstack.infra import Endpoints
from fax_faxsim.records import ReceivedFax, read_sidecar
from fax_faxsim.sender import SendResult, send_fax
from fax_faxsim.simulator import FaxSimulator, SimulatorSettings
from fax_runtime.blobs import BlobStore
from fax_runtime.config import S3Settings
from tests.integration.stack import REPO, infra_env
from tests.integration.test_media_calls import make_tiff

HOST = "127.0.0.1"
TRANSMITTER_MEDIA = (37000, 37199)
FAXSIM_MEDIA = (37200, 37399)
ORPHANS = [f"+155520{i}0038" for i in range(5)]  # G.711-only machines: their audio streams on after the kill
NEW_CALLS = [f"+155530{i}0038" for i in range(3)] + [f"+155540{i}1234" for i in range(2)]  # G.711 and T.38
INBOUND = "+15557770100"  # one of the account's numbers: faxsim faxes it while the first transmitter dies


def _free_port(kind: int, low: int, high: int) -> int:
    for port in range(low, high):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


@dataclass
class Transmitter:
    """``python -m fax_transmitter`` as a deployment runs it, its output in a file."""

    env: dict[str, str]
    log: Path
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "fax_transmitter", cwd=REPO, env=self.env,
                stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                await self.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


@pytest.fixture
async def faxsim(tmp_path: Path) -> AsyncIterator[FaxSimulator]:
    simulator = FaxSimulator(
        SimulatorSettings(
            sip_host=HOST,
            sip_port=_free_port(socket.SOCK_DGRAM, 37400, 37450),
            media_ports=FAXSIM_MEDIA,
            received_dir=tmp_path / "received",
        )
    )
    await simulator.start()
    yield simulator
    await simulator.close()


async def _insert_jobs(pool: asyncpg.Pool, numbers: list[str], tiff_key: str) -> dict[str, uuid.UUID]:
    """Jobs ready to send; their age makes the sweeper take them on its first pass, as it takes held-back ones."""
    ids = {number: uuid.uuid4() for number in numbers}
    for number, job_id in ids.items():
        await pool.execute(
            "INSERT INTO fax_jobs (id, account_id, status, request, to_number, from_number, retries, tiff_key, pages,"
            " updated_at) VALUES ($1, 'acc', 'pending', $2, $3, '+15550001000', 1, $4, 2, now() - interval '1 minute')",
            job_id,
            json.dumps({"to_number": number, "from_number": "+15550001000"}),
            number,
            tiff_key,
        )
    return ids


async def _wait(what: str, ready: Callable[[], Awaitable[bool]], seconds: float, transmitter: Transmitter) -> None:
    deadline = time.monotonic() + seconds
    while not await ready():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {seconds:.0f} s; transmitter log:\n{transmitter.tail()}")
        await asyncio.sleep(0.5)


def _records(simulator: FaxSimulator, numbers: list[str]) -> dict[str, ReceivedFax]:
    found = {}
    for sidecar in simulator.settings.received_dir.glob("*.json"):
        record = read_sidecar(sidecar)
        if record.to_number in numbers:
            found[record.to_number] = record
    return found


@pytest.mark.slow
@pytest.mark.timeout(420)
async def test_a_restarted_transmitter_places_new_calls_untouched_by_its_predecessors_media(
    infra: Endpoints, database_url: str, faxsim: FaxSimulator, tmp_path: Path
) -> None:
    s3 = S3Settings(
        endpoint=infra.s3_endpoint,
        access_key=infra.s3_access_key,
        secret_key=infra.s3_secret_key,
        bucket=infra.s3_bucket,
        secure=infra.s3_secure,
    )
    tiff_key = f"jobs/{uuid.uuid4()}/fax.tif"
    document = make_tiff(tmp_path / "two-pages.tif")
    await BlobStore(s3).put_file(tiff_key, document, content_type="image/tiff")
    health_port = _free_port(socket.SOCK_STREAM, 37450, 37500)
    env = {
        **os.environ,
        **infra_env(infra, database_url=database_url),
        "FAX_LINE": "sip",
        "FAX_SIP_BIND": f"{HOST}:{_free_port(socket.SOCK_DGRAM, faxsim.settings.sip_port + 1, 37450)}",
        "FAX_SIP_TRUNK": f"{HOST}:{faxsim.settings.sip_port}",
        "FAX_RTP_PORT_MIN": str(TRANSMITTER_MEDIA[0]),
        "FAX_RTP_PORT_MAX": str(TRANSMITTER_MEDIA[1]),
        "FAX_TRANSMITTER_HEALTH_PORT": str(health_port),
        "FAX_TRANSMITTER_DRAIN": "2",
        "FAX_LOG_FORMAT": "text",
    }
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    first = Transmitter(env, tmp_path / "transmitter-1.log")
    second = Transmitter(env, tmp_path / "transmitter-2.log")
    sending: asyncio.Task[SendResult] | None = None
    try:
        await pool.execute("INSERT INTO accounts (id, name) VALUES ('acc', 'Restart test')")
        await pool.execute("INSERT INTO phone_numbers (e164, account_id) VALUES ($1, 'acc')", INBOUND)
        orphaned_jobs = await _insert_jobs(pool, ORPHANS, tiff_key)
        await first.start()
        sending = asyncio.create_task(
            send_fax(faxsim, document, to_number=INBOUND, from_number="+1555777", target=env["FAX_SIP_BIND"], t38=False)
        )

        async def orphans_up() -> bool:
            receiving = await pool.fetchval("SELECT count(*) FROM inbound_faxes WHERE sip_call IS NOT NULL")
            return faxsim.calls_up == len(ORPHANS) and receiving == 1

        await _wait("the first transmitter's calls answered", orphans_up, 60, first)
        await asyncio.sleep(3)  # T.30 under way on every call
        await first.kill()
        killed_at = time.time()

        new_jobs = await _insert_jobs(pool, NEW_CALLS, tiff_key)
        await second.start()

        async def new_calls_finished() -> bool:
            rows = await pool.fetch(
                "SELECT id FROM fax_jobs WHERE id = ANY($1::uuid[]) AND status IN ('completed', 'failed')",
                list(new_jobs.values()),
            )
            return len(rows) == len(new_jobs)

        sent = await asyncio.wait_for(sending, 60)
        inbound_ended_at = time.time()
        await _wait("the new calls finished", new_calls_finished, 240, second)
        reception = await pool.fetchrow("SELECT status, error_message FROM inbound_faxes")
        inbound_events = await pool.fetchval("SELECT count(*) FROM outbox WHERE routing_key = 'fax.inbound.failed.v1'")
        jobs = {
            row["to_number"]: row
            for row in await pool.fetch(
                "SELECT to_number, status, attempts, tx_result, error_message FROM fax_jobs WHERE id = ANY($1::uuid[])",
                [*new_jobs.values(), *orphaned_jobs.values()],
            )
        }
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://{HOST}:{health_port}/metrics")).text

        async def orphans_recorded() -> bool:
            return len(_records(faxsim, ORPHANS)) == len(ORPHANS)

        await _wait("faxsim's records of the orphaned calls", orphans_recorded, 120, second)
    finally:
        if sending is not None and not sending.done():
            sending.cancel()
        await second.stop()
        with contextlib.suppress(ProcessLookupError, AssertionError):
            await first.kill()
        await pool.close()

    log = second.tail()
    # Every new call succeeded at its first attempt.
    results = {
        number: (jobs[number]["status"], jobs[number]["attempts"], jobs[number]["error_message"])
        for number in NEW_CALLS
    }
    assert all(result[:2] == ("completed", 1) for result in results.values()), (results, log)
    for number in NEW_CALLS:
        tx_result = json.loads(jobs[number]["tx_result"])
        assert tx_result["pages_sent"] == 2 and tx_result["fax_t38_used"] is number.endswith("1234")
    news = _records(faxsim, NEW_CALLS)
    assert len(news) == len(NEW_CALLS), news
    assert all(record.pages == 2 and record.completion_code == 0 for record in news.values()), news

    # The far end saw the orphaned calls ended by the platform, seconds after the restart.
    orphans = _records(faxsim, ORPHANS)
    for number, record in orphans.items():
        assert record.ended_by == "caller", (number, record, log)
        assert record.ended_at - killed_at < 30, (number, record.ended_at - killed_at)
        assert jobs[number]["status"] == "failed"
        assert jobs[number]["error_message"] == "call interrupted: transmitter stopped"

    # The fax faxsim was sending in was cut by the platform's BYE too, and the reception recorded as interrupted.
    assert sent.outcome is not None and not sent.outcome.success and sent.ended_by == "callee", sent
    assert inbound_ended_at - killed_at < 30
    assert (reception["status"], reception["error_message"]) == ("failed", "reception interrupted: transmitter stopped")
    assert inbound_events == 1

    # No orphaned stream was still flowing into an address a new call listened on, and no new call's socket had a
    # datagram from anyone but its own far end to refuse.
    for orphan in orphans.values():
        for new in news.values():
            shared = set(orphan.caller_media) & set(new.caller_media)
            assert not shared or orphan.ended_at <= new.answered_at, (orphan, new)
    assert "fax_media_packets_dropped_total" in metrics
    assert _samples(metrics, "fax_media_packets_dropped_total", 'reason="stranger"') == 0, metrics


def _samples(metrics: str, name: str, label: str) -> float:
    """The sum of one metric's samples that carry ``label`` (Prometheus text format)."""
    return sum(
        float(line.rpartition(" ")[2]) for line in metrics.splitlines() if line.startswith(name + "{") and label in line
    )
