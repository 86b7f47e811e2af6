"""The platform as ``make run`` starts it, with three trunks from a trunks file: the outbox shows the trunk and
transport that carried each fax, inbound calls are taken only from the trunks' addresses, and a fax that fails over
T.38 is retried over G.711.

The trunks, in priority order: a silent one (a UDP socket of this test that answers nothing), then the devstack's
faxsim over TCP, then the same faxsim over UDP.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.documents import make_pdf
from tests.integration.stack import REPO, RunningStack, free_port_block, infra_env, running_stack
from tests.integration.test_sip_stack import _metric, _submit, _wait_finished

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def silent_trunk() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))
        yield silent.getsockname()[1]


@pytest.fixture(scope="module")
def stack(infra, document_server: str, silent_trunk: int, tmp_path_factory) -> Iterator[RunningStack]:
    faxsim_port = free_port_block(1, 32000 - 3000, 32000)
    trunks = tmp_path_factory.mktemp("trunks") / "trunks.toml"
    trunks.write_text(
        f"""
[[trunk]]
uri = "{HOST}:{silent_trunk}"
name = "silent"
probe_interval = 0
response_timeout = 1

[[trunk]]
uri = "sip:{HOST}:{faxsim_port};transport=tcp"
name = "faxsim-tcp"

[[trunk]]
uri = "{HOST}:{faxsim_port}"
name = "faxsim-udp"
"""
    )
    env = {
        **infra_env(infra, bucket=f"trunks-{uuid.uuid4().hex[:8]}"),
        "FAX_FETCH_ALLOW_NETWORKS": "127.0.0.0/8",
        "FAX_LINE": "sip",
        "FAX_FAXSIM_SIP": f"{HOST}:{faxsim_port}",
        "FAX_SIP_TRUNK": "",  # the trunks file gives the order
        "FAX_SIP_TRUNKS_FILE": str(trunks),
        "FAX_RING_TIMEOUT": "4",
        "FAX_RETRY_DELAY": "1",
        "FAX_RETRY_DELAY_BUSY": "1",
    }
    with running_stack(REPO / ".devstack" / f"test-trunks-{uuid.uuid4().hex[:8]}", env) as running:
        yield running


@pytest.fixture(scope="module")
def jobs(stack: RunningStack, document_server: str) -> dict[str, dict]:
    numbers = {"fax": ("+15551230000", 1), "busy": ("+15551230486", 1), "t38_breaks": ("+15551230380", 2)}
    ids = {row: _submit(stack, document_server, number, retries) for row, (number, retries) in numbers.items()}
    finished = _wait_finished(stack, list(ids.values()), timeout=300)
    return {row: finished[fax_id] for row, fax_id in ids.items()}


def test_the_outbox_names_the_trunk_and_transport_that_carried_the_fax(jobs: dict[str, dict]) -> None:
    job = jobs["fax"]
    assert job["status"] == "completed" and job["attempts"] == 1, job["tx_result"]
    tx = job["tx_result"]
    assert (tx["sip_trunk"], tx["sip_transport"]) == ("faxsim-tcp", "tcp")
    assert [(t["trunk"], t["sip_status"]) for t in tx["sip_failover"]] == [("silent", 408)]
    assert tx["fax_t38_used"] and tx["pages_sent"] == 2


def test_a_busy_callee_ends_the_attempt_on_the_trunk_that_said_so(jobs: dict[str, dict]) -> None:
    job = jobs["busy"]
    assert job["status"] == "failed" and job["tx_result"]["sip_status"] == 486
    # The silent trunk failed over to faxsim over TCP, which said busy: faxsim over UDP was not tried.
    assert job["tx_result"]["sip_trunk"] == "faxsim-tcp"
    assert [t["trunk"] for t in job["tx_result"]["sip_failover"]] == ["silent"]


def test_a_fax_that_failed_over_t38_is_retried_over_g711_and_the_outbox_says_so(jobs: dict[str, dict]) -> None:
    job = jobs["t38_breaks"]
    assert job["status"] == "completed" and job["attempts"] == 2, job["tx_result"]
    first, second = job["tx_result"]["attempt_log"]
    assert (first["attempt"], first["t38"], first["trunk"]) == (1, True, "faxsim-tcp") and first["result_code"] > 0
    assert (second["attempt"], second["t38"], second["result_code"]) == (2, False, 0)
    assert not job["tx_result"]["fax_t38_used"] and job["tx_result"]["pages_sent"] == 2


def _send_from(stack: RunningStack, source: str, document: Path, caller: str) -> subprocess.CompletedProcess[str]:
    transmitter = f"{HOST}:{int(stack.api_url.rsplit(':', 1)[1]) + 6}"
    port = free_port_block(2, 26000, 29000)
    return subprocess.run(
        [
            sys.executable, "-m", "fax_faxsim", "send", str(document), "--to", stack.credentials["FAX_INBOUND_NUMBER"],
            "--from", caller, "--target", transmitter, "--sip", f"{source}:{port - 1}", "--no-t38",
            "--media-ports", f"{port + 2000}-{port + 2099}",
        ],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )  # fmt: skip


def test_an_inbound_call_from_an_address_not_allowed_gets_403_and_one_from_the_trunk_is_received(
    stack: RunningStack, tmp_path: Path
) -> None:
    document = make_pdf(tmp_path / "inbound.pdf")
    stranger = _send_from(stack, "127.0.0.2", document, "+15557770002")
    assert stranger.returncode == 1 and "call refused: 403" in stranger.stdout, stranger.stdout + stranger.stderr
    trunk = _send_from(stack, HOST, document, "+15557770003")
    assert trunk.returncode == 0 and "sent: 2 page(s)" in trunk.stdout, trunk.stdout + trunk.stderr
    health = f"http://{HOST}:{int(stack.api_url.rsplit(':', 1)[1]) + 2}/metrics"
    deadline = time.monotonic() + 10
    while _metric(httpx.get(health).text, "fax_sip_refused_total", method="INVITE") < 1:
        assert time.monotonic() < deadline, "the refused INVITE was not counted"
        time.sleep(0.5)
    metrics = httpx.get(health).text
    assert _metric(metrics, "fax_sip_refused_total", method="INVITE") == 1
    assert _metric(metrics, "fax_sip_trunk_up", trunk="faxsim-tcp") == 1
    assert _metric(metrics, "fax_sip_failovers_total", trunk="silent") >= 3
