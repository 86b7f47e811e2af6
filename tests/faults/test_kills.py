"""Services killed with SIGKILL mid-batch (the devstack restarts them, as Kubernetes would), and Postgres stopped as
calls end, over real SIP calls to faxsim: calls take tens of seconds, so a kill or an outage lands mid-call.

The transmitter is killed at the two instants that matter: before the first page (the attempt must be made again),
and after the far end confirmed the last page (it must not be).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from tests.faults.harness import (
    CallbackReceiver,
    ControlledInfra,
    FaultRun,
    FaultStack,
    Figures,
    fault_platform,
    numbers,
    until,
)

BATCH = 4
TERMINAL_WITHIN_S = 240


@pytest.fixture(scope="module")
def stack(fault_infra: ControlledInfra, fax_document: str) -> Iterator[FaultStack]:
    with fault_platform(fault_infra, "sip", fax_document) as platform:
        yield platform


@pytest.fixture(autouse=True)
def _prompt_receiver(receiver: CallbackReceiver) -> Iterator[None]:
    yield
    receiver.delay_s = 0.0


async def _poll(
    stack: FaultStack, fax_ids: list[str], condition: str, seconds: float, *, every_job: bool = False
) -> list[str]:
    """Poll (every 50 ms) until some of ``fax_ids`` (or all, ``every_job``) meet ``condition`` (SQL on fax_jobs);
    the ids of those that do."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rows = await conn.fetch(
                f"SELECT id FROM fax_jobs WHERE id = ANY($1::uuid[]) AND {condition}",
                [uuid.UUID(fax_id) for fax_id in fax_ids],
            )
            if rows and (not every_job or len(rows) == len(fax_ids)):
                return [row["id"].hex for row in rows]
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise AssertionError(f"no job met {condition!r} within {seconds:.0f} s:\n{stack.running.logs()}")


ANSWERED_NO_PAGE = (
    "status = 'processing' AND sip_call IS NOT NULL AND coalesce((tx_result ->> 'pages_sent')::int, 0) = 0"
)
ALL_PAGES_CONFIRMED = "(tx_result ->> 'pages_sent')::int >= pages"


async def test_the_transmitter_killed_after_the_last_page_is_confirmed_sends_nothing_twice(
    stack: FaultStack, receiver: CallbackReceiver
) -> None:
    """Before the fix, every fax whose last page the far end had confirmed was dialled and sent again: the reaper
    (here the restarted transmitter ending its dead predecessor's attempts) took every abandoned attempt for a
    failed one."""
    run = FaultRun(stack, receiver, Figures("transmitter SIGKILL after the last page was confirmed", "sip"))
    hits = 0
    for round_ in range(3):  # the window (every page confirmed, the call not yet ended) is about a second long
        accepted = await stack.submit_batch(numbers(200 + round_, BATCH), receiver.url)
        run.accepted += accepted
        # Every fax of the batch has had its last page confirmed (most calls are still up, ending).
        await _poll(stack, accepted, ALL_PAGES_CONFIRMED, 120, every_job=True)
        pid = stack.service_pid("fax_transmitter")
        await stack.kill("fax_transmitter")
        run.fault_ended()
        hits += sum(job["status"] == "processing" for job in (await stack.jobs(accepted)).values())
        assert pid is not None
        await stack.wait_restarted("fax_transmitter", pid)
        if hits:
            break
    assert hits, "the kill never landed between the last page's confirmation and the end of the call"
    await run.check(terminal_within_s=TERMINAL_WITHIN_S)


@pytest.mark.full_faults
async def test_the_transmitter_killed_before_the_first_page_sends_every_fax_once(
    stack: FaultStack, receiver: CallbackReceiver
) -> None:
    run = FaultRun(stack, receiver, Figures("transmitter SIGKILL before the first page", "sip"))
    run.accepted = await stack.submit_batch(numbers(210, BATCH), receiver.url)
    await _poll(stack, run.accepted, ANSWERED_NO_PAGE, 120)
    pid = stack.service_pid("fax_transmitter")
    await stack.kill("fax_transmitter")
    run.fault_ended()
    assert pid is not None
    await stack.wait_restarted("fax_transmitter", pid)
    await run.check(terminal_within_s=TERMINAL_WITHIN_S)


@pytest.mark.full_faults
async def test_postgres_away_as_calls_end_sends_nothing_twice(
    stack: FaultStack, fault_infra: ControlledInfra, receiver: CallbackReceiver
) -> None:
    """Before the fix, a fax was delivered twice: recording the call's success failed while Postgres was away, the
    lease ran out meanwhile, and once Postgres was back the sweeper reaped the attempt as interrupted and dialled it
    again."""
    run = FaultRun(stack, receiver, Figures("postgres stopped while calls end", "sip"))
    run.accepted = await stack.submit_batch(numbers(220, BATCH), receiver.url)
    await _poll(stack, run.accepted, "status = 'processing' AND sip_call IS NOT NULL", 120, every_job=True)
    async with fault_infra.down("postgres"):
        # Every call ends while Postgres is away (faxsim writes its record as the call ends), and the leases run out.
        called = set(numbers(220, BATCH))
        await until(lambda: called <= stack.receptions_by_number().keys(), 120, "every call's end")
        await asyncio.sleep(10)
    run.fault_ended()
    await run.check(terminal_within_s=TERMINAL_WITHIN_S)


@pytest.mark.parametrize(
    "module",
    [
        pytest.param("fax_notifier"),
        pytest.param("fax_fetcher", marks=pytest.mark.full_faults),
        pytest.param("fax_api", marks=pytest.mark.full_faults),
        pytest.param("fax_smtp_gateway", marks=pytest.mark.full_faults),
        pytest.param("fax_transmitter", marks=pytest.mark.full_faults),
    ],
)
async def test_a_service_killed_mid_batch_loses_nothing(
    stack: FaultStack, receiver: CallbackReceiver, module: str
) -> None:
    """The notifier is killed while a slow receiver holds its callbacks: the sent callbacks it could not close are
    sent again after the claim lease, with the same delivery id. Before the fix callbacks carried no
    ``X-Fax-Delivery-Id`` (receivers had nothing to deduplicate by) and the resend came after a fixed 300 s."""
    prefix = 230 + ["fax_notifier", "fax_fetcher", "fax_api", "fax_smtp_gateway", "fax_transmitter"].index(module)
    run = FaultRun(stack, receiver, Figures(f"{module.removeprefix('fax_')} SIGKILL mid-batch", "sip"))
    destinations = numbers(prefix, BATCH)
    if module == "fax_api":
        # Half the batch before the kill, half while the API restarts: what it did not answer was not accepted.
        run.accepted = await stack.submit_batch(destinations[: BATCH // 2], receiver.url)
        submitting = asyncio.create_task(stack.submit_batch(destinations[BATCH // 2 :], receiver.url, pause_s=0.3))
        await asyncio.sleep(0.2)
    else:
        run.accepted = await stack.submit_batch(destinations, receiver.url)
    if module == "fax_notifier":
        receiver.delay_s = 3.0
        await until(lambda: any(receiver.for_fax(fax_id) for fax_id in run.accepted), 180, "a callback")
    elif module == "fax_transmitter":
        await _poll(stack, run.accepted, "status = 'processing' AND sip_call IS NOT NULL", 120)
        await asyncio.sleep(3)  # mid-page
    else:
        await asyncio.sleep(0.5)
    pid = stack.service_pid(module)
    await stack.kill(module)
    run.fault_ended()
    assert pid is not None
    await stack.wait_restarted(module, pid)
    if module == "fax_api":
        run.accepted += await submitting
    if module == "fax_notifier":
        # The callback the kill interrupted is sent again once its claim lease (10 s here) runs out.
        await until(lambda: any(len(receiver.for_fax(fax_id)) > 1 for fax_id in run.accepted), 60, "a resend")
    await run.check(terminal_within_s=TERMINAL_WITHIN_S)
