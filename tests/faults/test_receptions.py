"""Faxes received over SIP while S3 or Postgres goes away as their calls end, and stays away well after.

faxsim calls the demo inbound number (the demo faxbox, whose inbound callback is the test's receiver) twice at once.
Once both calls are answered the dependency is stopped; it stays down through the rest of the calls (pages, hangup)
and for ``AFTER_CALLS_S`` after both ended, then starts again. Every reception must end ``received`` with its page,
its TIFF and PDF copy served by the Kazoo inbox, exactly one ``fax.inbound.received`` event (none failed) and its
callback, repeated only with the same delivery id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from fax_contracts import decode_event
from tests.faults.conftest import ONE_PAGE
from tests.faults.harness import (
    CallbackReceiver,
    ControlledInfra,
    FaultStack,
    Figures,
    ReceivedCallback,
    fault_platform,
    until,
)
from tests.integration.documents import make_pdf
from tests.integration.stack import REPO

CALLS = 2
# Before the fix there was no retry at all: the first failed put or write left the reception `receiving` for good.
# The outage outlasts the calls by this much, so that anything but retrying until the filing commits would show.
AFTER_CALLS_S = 10
RECEIVED_WITHIN_S = 60
T = TypeVar("T")


@pytest.fixture(scope="module")
def stack(fault_infra: ControlledInfra, fax_document: str, receiver: CallbackReceiver) -> Iterator[FaultStack]:
    with fault_platform(fault_infra, "sip", fax_document) as platform:
        credentials = platform.running.credentials
        answer = httpx.patch(
            f"{platform.api_url}/v2/accounts/{platform.account}/faxboxes/{credentials['FAX_FAXBOX_ID']}",
            headers={"X-Auth-Token": platform.token},
            json={"data": {"notifications": {"inbound": {"callback": {"url": receiver.url, "type": "json"}}}}},
            timeout=15,
        )
        assert answer.status_code == 200, answer.text
        yield platform


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pdf(tmp_path_factory.mktemp("inbound-docs") / "inbound.pdf", ONE_PAGE)


def _sender_ports() -> int:
    """The first of the ports faxsim's senders use: 500 above the session's base, clear of every port the session
    and the fault infrastructure take from it, and below the ephemeral range."""
    raw = os.environ.get("FAX_TEST_DEVSTACK_PORT_BASE", "").strip()
    return (int(raw) if raw else 23000) + 500


async def _send(stack: FaultStack, document: Path, from_number: str, index: int) -> asyncio.subprocess.Process:
    """faxsim faxes ``document`` to the demo inbound number, calling the transmitter as a trunk would."""
    first = _sender_ports()
    sip = first + 2 * index  # faxsim's sender binds the port after --sip's
    media = first + 20 + 20 * index
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fax_faxsim", "send", str(document),
        "--to", stack.running.credentials["FAX_INBOUND_NUMBER"], "--from", from_number,
        "--target", f"127.0.0.1:{stack.api_port + 6}", "--sip", f"127.0.0.1:{sip}",
        "--media-ports", f"{media}-{media + 19}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip


async def _receptions(stack: FaultStack, callers: list[str]) -> dict[str, dict[str, Any]]:
    """The receptions of calls from ``callers`` by caller, each with the names of its events; {} while Postgres does
    not answer."""
    answers = await stack.query(
        (
            "SELECT id, from_number, status, pages, error_message, sip_call IS NOT NULL AS answered"
            " FROM inbound_faxes WHERE from_number = ANY($1::text[])",
            callers,
        ),
        ("SELECT payload FROM outbox WHERE routing_key LIKE 'fax.inbound.%'",),
    )
    if answers is None:
        return {}
    rows, payloads = answers
    events = [decode_event(row["payload"]) for row in payloads]
    return {
        row["from_number"]: {
            **dict(row),
            "events": [type(event).__name__ for event in events if getattr(event, "fax_id", None) == row["id"]],
        }
        for row in rows
    }


async def _until(condition: Callable[[], Awaitable[T | None]], seconds: float, what: str, stack: FaultStack) -> T:
    """Poll ``condition`` until it returns something; fail naming ``what`` (with the services' logs) after
    ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = await condition()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} not within {seconds:.0f} s:\n{stack.running.logs()}")


async def _calls_answered(
    stack: FaultStack, document: Path, prefix: int
) -> tuple[list[str], list[asyncio.subprocess.Process]]:
    """``CALLS`` faxes from faxsim, once the transmitter answered every one: their callers and senders."""
    callers = [f"+1555{prefix:03d}{2000 + n}" for n in range(CALLS)]
    senders = [await _send(stack, document, caller, n) for n, caller in enumerate(callers)]

    async def all_answered() -> bool:
        found = await _receptions(stack, callers)
        return len(found) == CALLS and all(row["answered"] for row in found.values())

    await _until(all_answered, 60, "every call answered", stack)
    return callers, senders


async def _calls_ended(senders: list[asyncio.subprocess.Process]) -> None:
    """Wait for every sender's call to end, each with its page confirmed by the transmitter."""
    for sender in senders:
        output = (await sender.communicate())[0].decode()
        assert sender.returncode == 0 and "sent: 1 page(s)" in output, output


async def _all_finished(stack: FaultStack, callers: list[str]) -> dict[str, dict[str, Any]] | None:
    found = await _receptions(stack, callers)
    return found if len(found) == CALLS and all(row["status"] != "receiving" for row in found.values()) else None


async def _reception_through_outage(
    stack: FaultStack, infra: ControlledInfra, receiver: CallbackReceiver, document: Path, dependency: str, prefix: int
) -> None:
    figures = Figures(f"{dependency} stopped from mid-reception until {AFTER_CALLS_S} s after its calls ended", "sip")
    callers, senders = await _calls_answered(stack, document, prefix)
    figures.accepted = CALLS
    async with infra.down(dependency):
        await _calls_ended(senders)
        await asyncio.sleep(AFTER_CALLS_S)
    fault_over = time.monotonic()
    ready_task = asyncio.create_task(stack.wait_ready(120))
    try:
        found = await _until(lambda: _all_finished(stack, callers), RECEIVED_WITHIN_S, "every reception filed", stack)
        figures.drained_s = round(time.monotonic() - fault_over, 1)
    except AssertionError:
        found = await _receptions(stack, callers)
    ready = await ready_task
    figures.ready_s = None if ready is None else round(max(0.0, ready - fault_over), 1)
    figures.terminal = sum(row["status"] != "receiving" for row in found.values())
    figures.failed = sum(row["status"] == "failed" for row in found.values())
    figures.stuck = CALLS - figures.terminal
    figures.sent_twice = sum(row["events"].count("InboundReceived") > 1 for row in found.values())
    with contextlib.suppress(AssertionError):
        await until(lambda: all(_callbacks(receiver, row["id"]) for row in found.values()), 60, "every callback")
    await asyncio.sleep(1)  # a duplicate right behind the first would show now
    figures.callbacks_missing = sum(not _callbacks(receiver, row["id"]) for row in found.values())
    figures.repeated_callbacks = sum(len(_callbacks(receiver, row["id"])) > 1 for row in found.values())
    figures.record()

    states = {caller: (row["status"], row["pages"], row["error_message"]) for caller, row in found.items()}
    assert all(row["status"] == "received" and row["pages"] == 1 for row in found.values()), states
    async with httpx.AsyncClient(timeout=15) as client:
        for row in found.values():
            assert row["events"] == ["InboundReceived"], (row["id"], row["events"])
            attachment = f"{stack.api_url}/v2/accounts/{stack.account}/faxes/inbox/{row['id'].hex}/attachment"
            tiff = await client.get(attachment, headers={"X-Auth-Token": stack.token, "Accept": "image/tiff"})
            assert tiff.status_code == 200 and tiff.content[:4] in (b"II*\0", b"MM\0*"), tiff.text[:200]
            pdf = await client.get(attachment, headers={"X-Auth-Token": stack.token, "Accept": "application/pdf"})
            assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), pdf.text[:200]
            callbacks = _callbacks(receiver, row["id"])
            assert callbacks, f"no callback for reception {row['id']}"
            ids = {callback.delivery_id for callback in callbacks}
            assert len(ids) == 1 and None not in ids, f"reception {row['id']}'s callbacks: delivery ids {ids}"


def _callbacks(receiver: CallbackReceiver, fax_id: uuid.UUID) -> list[ReceivedCallback]:
    return [callback for callback in receiver.received if callback.fields.get("uuid") == fax_id.hex]


@pytest.mark.timeout(300)
async def test_s3_away_as_receptions_end_files_every_fax_once(
    stack: FaultStack, fault_infra: ControlledInfra, receiver: CallbackReceiver, document: Path
) -> None:
    """Caught: storing the received TIFF failed with S3 away, the exception ended the reception's handler, its
    temporary TIFF was deleted and the reception stayed ``receiving`` for good."""
    await _reception_through_outage(stack, fault_infra, receiver, document, "s3", 301)


@pytest.mark.timeout(300)
async def test_postgres_away_as_receptions_end_files_every_fax_once(
    stack: FaultStack, fault_infra: ControlledInfra, receiver: CallbackReceiver, document: Path
) -> None:
    """Caught: recording ``received`` failed with Postgres away (the TIFF and PDF copy already in S3), and the
    reception stayed ``receiving`` for good."""
    await _reception_through_outage(stack, fault_infra, receiver, document, "postgres", 302)


@pytest.mark.full_faults
@pytest.mark.timeout(300)
async def test_a_transmitter_killed_while_its_filings_wait_for_s3_leaves_no_reception_receiving(
    stack: FaultStack, fault_infra: ControlledInfra, document: Path
) -> None:
    """What remains (docs/RELIABILITY.md): the TIFF lives in the transmitter until S3 takes it. Killed after the
    calls ended, while S3 is away, it loses them; its successor on the same SIP address (which waits for S3 to start)
    ends each reception failed as interrupted, with one ``fax.inbound.failed``: none stays ``receiving``."""
    callers, senders = await _calls_answered(stack, document, 303)
    async with fault_infra.down("s3"):
        await _calls_ended(senders)
        await asyncio.sleep(2)  # the filings are waiting for S3
        pid = stack.service_pid("fax_transmitter")
        assert pid is not None
        await stack.kill("fax_transmitter")
    await stack.wait_restarted("fax_transmitter", pid, 120)
    found = await _until(lambda: _all_finished(stack, callers), 60, "every reception ended", stack)
    ended = {caller: (row["status"], row["error_message"], tuple(row["events"])) for caller, row in found.items()}
    assert set(ended.values()) == {("failed", "reception interrupted: transmitter stopped", ("InboundFailed",))}, ended
