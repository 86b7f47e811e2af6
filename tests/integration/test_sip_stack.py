"""The platform as ``make run`` starts it, on its default line: real SIP calls to faxsim, both directions.

Outbound: Kazoo jobs dialled to faxsim's dial plan end in the right state after the right number of attempts, and a
delivered fax's pages match what the fetcher rendered. Inbound: ``faxsim send`` faxes the demo inbound number and
the reception lands in the inbox (row, TIFF and PDF in S3, event), pixel for pixel.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from minio import Minio
from PIL import Image, ImageSequence

from fax_faxsim.records import tiff_path
from tests.integration.documents import make_pdf
from tests.integration.stack import REPO, RunningStack, infra_env, running_stack

FINISHED = ("completed", "failed")


@pytest.fixture(scope="module")
def stack(infra, document_server: str) -> Iterator[RunningStack]:
    state_dir = REPO / ".devstack" / f"test-sip-{uuid.uuid4().hex[:8]}"
    env = {
        **infra_env(infra, bucket=f"sip-{uuid.uuid4().hex[:8]}"),
        "FAX_FETCH_ALLOW_NETWORKS": "127.0.0.0/8",
        "FAX_LINE": "sip",
        "FAX_RING_TIMEOUT": "4",
        "FAX_RETRY_DELAY": "1",
        "FAX_RETRY_DELAY_BUSY": "1",
    }
    with running_stack(state_dir, env) as running:
        running.credentials.update({key: env[key] for key in ("FAX_DATABASE_URL", "FAX_S3_BUCKET")})
        running.credentials["FAX_S3_ENDPOINT"] = infra.s3_endpoint
        running.credentials["FAX_S3_ACCESS_KEY"] = infra.s3_access_key
        running.credentials["FAX_S3_SECRET_KEY"] = infra.s3_secret_key
        yield running


def _minio(stack: RunningStack) -> Minio:
    c = stack.credentials
    return Minio(
        c["FAX_S3_ENDPOINT"], access_key=c["FAX_S3_ACCESS_KEY"], secret_key=c["FAX_S3_SECRET_KEY"], secure=False
    )


def _pages(data: bytes) -> list[bytes]:
    with Image.open(io.BytesIO(data)) as image:
        return [page.convert("1").tobytes() for page in ImageSequence.Iterator(image)]


def _submit(stack: RunningStack, document_server: str, to_number: str, retries: int) -> str:
    account = stack.credentials["FAX_ACCOUNT_ID"]
    response = httpx.put(
        f"{stack.api_url}/v2/accounts/{account}/faxes",
        headers={"X-Auth-Token": stack.credentials["FAX_AUTH_TOKEN"]},
        json={
            "data": {
                "document": {"url": f"{document_server}/fax.pdf"},
                "from_number": "+15550001000",
                "from_name": "SIP tests",
                "to_number": to_number,
                "retries": retries,
            }
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def _wait_finished(stack: RunningStack, fax_ids: list[str], timeout: float = 240) -> dict[str, dict]:
    account = stack.credentials["FAX_ACCOUNT_ID"]
    headers = {"X-Auth-Token": stack.credentials["FAX_AUTH_TOKEN"]}
    finished: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while len(finished) < len(fax_ids):
        for fax_id in set(fax_ids) - set(finished):
            response = httpx.get(f"{stack.api_url}/v2/accounts/{account}/faxes/outbox/{fax_id}", headers=headers)
            if response.status_code == 200 and response.json()["data"]["status"] in FINISHED:
                finished[fax_id] = response.json()["data"]
        if time.monotonic() > deadline:
            pytest.fail(f"not finished in {timeout:.0f} s: {set(fax_ids) - set(finished)}\n{stack.logs()}")
        time.sleep(1)
    return finished


@pytest.fixture(scope="module")
def dial_plan_jobs(stack: RunningStack, document_server: str) -> dict[str, dict]:
    numbers = {"fax": ("+15551230000", 1), "busy": ("+15551230486", 2), "down": ("+15551230503", 2)}
    ids = {row: _submit(stack, document_server, number, retries) for row, (number, retries) in numbers.items()}
    finished = _wait_finished(stack, list(ids.values()))
    return {row: finished[fax_id] for row, fax_id in ids.items()}


def test_a_fax_to_faxsim_completes_over_t38_with_the_rendered_pixels(stack: RunningStack, dial_plan_jobs) -> None:
    job = dial_plan_jobs["fax"]
    assert job["status"] == "completed" and job["attempts"] == 1, (job["tx_result"], job.get("error_message"))
    tx = job["tx_result"]
    assert tx["success"] and tx["pages_sent"] == 2 and tx["fax_t38_used"] and tx["fax_receiver_id"] == "FAXSIM"
    received_dir = stack.state_dir / "faxsim" / "received"
    records = [json.loads(p.read_text()) for p in received_dir.glob("*.json")]
    mine = [r for r in records if r["to_number"] == "+15551230000"]
    assert len(mine) == 1 and mine[0]["pages"] == 2 and mine[0]["t38_used"]
    tiff = tiff_path(received_dir, mine[0]["call_id"])
    rendered = stack.sent_fax(job["id"])
    assert _pages(tiff.read_bytes()) == _pages(rendered)


@pytest.mark.parametrize("row", ["busy", "down"])
def test_busy_and_network_failures_use_every_attempt(dial_plan_jobs, row: str) -> None:
    job = dial_plan_jobs[row]
    assert job["status"] == "failed" and job["attempts"] == 2, job
    assert job["tx_result"]["sip_status"] == {"busy": 486, "down": 503}[row]


def test_an_inbound_fax_from_faxsim_lands_in_the_inbox(stack: RunningStack, tmp_path: Path) -> None:
    document = make_pdf(tmp_path / "inbound.pdf")
    sender_port = _free_udp_port()
    sent = subprocess.run(
        [
            sys.executable, "-m", "fax_faxsim", "send", str(document),
            "--to", stack.credentials["FAX_INBOUND_NUMBER"], "--from", "+15557770001",
            "--target", _transmitter_sip(stack), "--sip", f"127.0.0.1:{sender_port}",
            "--media-ports", "47000-47199",
        ],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "sent: 2 page(s)" in sent.stdout

    async def reception() -> dict:
        conn = await asyncpg.connect(stack.credentials["FAX_DATABASE_URL"])
        try:
            for _ in range(60):
                row = await conn.fetchrow(
                    "SELECT * FROM inbound_faxes WHERE from_number = '+15557770001' AND status <> 'receiving'"
                )
                if row is not None:
                    events = await conn.fetchval(
                        "SELECT count(*) FROM outbox WHERE routing_key = 'fax.inbound.received.v1'"
                    )
                    return {**dict(row), "events": events}
                await asyncio.sleep(0.5)
        finally:
            await conn.close()
        raise AssertionError("no finished reception recorded")

    row = asyncio.run(reception())
    assert row["status"] == "received" and row["pages"] == 2, row
    assert row["to_number"] == stack.credentials["FAX_INBOUND_NUMBER"]
    assert row["faxbox_id"] == stack.credentials["FAX_FAXBOX_ID"]
    assert json.loads(row["rx_result"])["fax_t38_used"] and row["events"] == 1
    storage = _minio(stack)
    received = storage.get_object(stack.credentials["FAX_S3_BUCKET"], row["tiff_key"]).read()
    assert storage.get_object(stack.credentials["FAX_S3_BUCKET"], row["pdf_key"]).read().startswith(b"%PDF")
    rendered = _render_like_faxsim(document, tmp_path)
    assert _pages(received) == _pages(rendered)


def _transmitter_sip(stack: RunningStack) -> str:
    # running_stack puts the transmitter's SIP port just after the API and health ports.
    return f"127.0.0.1:{int(stack.api_url.rsplit(':', 1)[1]) + 6}"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _render_like_faxsim(document: Path, tmp_path: Path) -> bytes:
    from fax_render.render import render_to_fax_tiff

    tiff = tmp_path / "expected.tif"
    asyncio.run(render_to_fax_tiff(document, tiff))
    return tiff.read_bytes()


def _faxctl(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FAX_API_URL": stack.api_url,
        "FAX_ACCOUNT_ID": stack.credentials["FAX_ACCOUNT_ID"],
        "FAX_AUTH_TOKEN": stack.credentials["FAX_AUTH_TOKEN"],
    }
    return subprocess.run(
        [sys.executable, "-m", "fax_faxctl", *args], capture_output=True, text=True, timeout=240, env=env, cwd=REPO
    )


def test_faxctl_send_delivers_a_file_to_faxsim_page_by_page(stack: RunningStack, tmp_path: Path) -> None:
    document = make_pdf(tmp_path / "faxctl.pdf")
    sent = _faxctl(stack, "send", str(document), "--to", "+15551237777", "--from", "+15550001000")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    lines = sent.stdout.splitlines()
    assert lines[0].startswith("fax ") and "accepted" in lines[0]
    progress = [line for line in lines if "pages" in line]
    assert any("1/2 pages" in line for line in progress) and any("2/2 pages" in line for line in progress)
    assert lines[-1].startswith("delivered: 2 page(s) to +15551237777")


def test_faxctl_inbox_lists_the_inbound_fax(stack: RunningStack) -> None:
    listed = _faxctl(stack, "inbox")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "+15557770001" in listed.stdout  # the fax faxsim sent in test_an_inbound_fax_from_faxsim_lands_...


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when absent)."""
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        metric, _, label_text = sample.partition("{")
        if metric != name:
            continue
        found = dict(item.split("=", 1) for item in label_text.rstrip("}").split(",") if "=" in item)
        if all(found.get(key, "").strip('"') == wanted for key, wanted in labels.items()):
            return float(value)
    return 0.0


def test_the_counters_moved_with_the_calls(stack: RunningStack, dial_plan_jobs) -> None:
    api_port = int(stack.api_url.rsplit(":", 1)[1])
    transmitter = httpx.get(f"http://127.0.0.1:{api_port + 2}/metrics").text
    assert _metric(transmitter, "fax_calls_total", direction="outbound", outcome="delivered", media="t38") >= 1
    assert _metric(transmitter, "fax_pages_sent_total") >= 2
    assert _metric(transmitter, "fax_sip_responses_total", method="INVITE", code="486") == 2  # busy, twice
    assert _metric(transmitter, "fax_sip_responses_total", method="INVITE", code="503") == 2
    assert _metric(transmitter, "fax_t30_completions_total", direction="outbound", code="0") >= 1
    assert _metric(transmitter, "fax_pages_received_total") == 2  # the inbound fax from faxsim
    assert _metric(transmitter, "fax_calls_active", direction="outbound") == 0
    assert _metric(transmitter, "fax_events_handled_total", event="fax.document.ready.v1", outcome="ok") >= 4
    assert _metric(transmitter, "fax_consumer_lag_seconds_count", event="fax.document.ready.v1") >= 4
    assert 'fax_queue_messages{queue="transmitter.fax.document.ready.v1"}' in transmitter
    fetcher = httpx.get(f"http://127.0.0.1:{api_port + 1}/metrics").text
    assert _metric(fetcher, "fax_documents_total", format="pdf", outcome="ok") >= 3
    assert _metric(fetcher, "fax_conversion_seconds_count", format="pdf") >= 3
    assert _metric(fetcher, "fax_job_state_seconds_count", state="pending") >= 3  # URL jobs waiting for their TIFF
    assert _metric(transmitter, "fax_job_state_seconds_count", state="processing") >= 5
    api = httpx.get(f"{stack.api_url}/metrics").text
    assert _metric(api, "fax_jobs", state="completed") >= 2  # the T.38 fax and faxctl's
    assert _metric(api, "fax_jobs", state="failed") == 2  # busy and network failure, every attempt used
    assert _metric(api, "fax_outbox_pending") >= 0 and "fax_outbox_pending" in api
