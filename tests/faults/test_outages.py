"""Postgres, RabbitMQ and S3, each stopped mid-batch for longer than a message's retry budget, then started again.

A batch of faxes with callbacks is submitted; once the first is rendered (the rest are being fetched, rendered and sent)
the dependency goes away for 15 s. Every fax the API accepted must end completed or failed, be received once, and
have its callback. Over the loopback line (instant calls): the faults here are the infrastructure's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.faults.harness import (
    CallbackReceiver,
    ControlledInfra,
    FaultRun,
    FaultStack,
    Figures,
    fault_platform,
    numbers,
)

OUTAGE_S = 15  # far longer than the five deliveries a message had (spent within about a second)
BATCH = 20


@pytest.fixture(scope="module")
def stack(fault_infra: ControlledInfra, fax_document: str) -> Iterator[FaultStack]:
    with fault_platform(fault_infra, "loopback", fax_document) as platform:
        yield platform


async def _wait_until_one_rendered(stack: FaultStack, fax_ids: list[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        jobs = await stack.jobs(fax_ids)
        if any(job["pages"] for job in jobs.values()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"nothing of the batch rendered in {seconds:.0f} s:\n{stack.running.logs()}")


async def _outage_during_batch(
    stack: FaultStack, infra: ControlledInfra, receiver: CallbackReceiver, dependency: str, prefix: int
) -> dict[str, tuple[int, str | None, object]]:
    """Run a batch through an outage of ``dependency``; what the API's dialects answered during it."""
    run = FaultRun(stack, receiver, Figures(f"{dependency} stopped {OUTAGE_S} s", "loopback"))
    run.accepted = await stack.submit_batch(numbers(prefix, BATCH), receiver.url)
    if dependency != "s3":  # weed takes seconds to stop: it begins at once, or the batch is rendered before it is down
        await _wait_until_one_rendered(stack, run.accepted)
    async with infra.down(dependency):
        await asyncio.sleep(3)
        answers = await stack.dialect_answers()
        await asyncio.sleep(OUTAGE_S - 3)
    run.fault_ended()
    await run.check(terminal_within_s=240)
    return answers


@pytest.mark.timeout(600)
async def test_a_postgres_outage_strands_no_fax(
    stack: FaultStack, fault_infra: ControlledInfra, receiver: CallbackReceiver
) -> None:
    """Before the fix, 18 of 20 stayed ``pending`` for good: the fetcher requeued each failing message at once, so it
    spent its five deliveries before Postgres was back and went to the dead-letter queue, and nothing re-drove a job
    with no rendered document. And the API answered 500 meanwhile."""
    answers = await _outage_during_batch(stack, fault_infra, receiver, "postgres", 101)
    assert answers["kazoo"][:2] == (503, "5") and answers["kazoo"][2]["error"] == "503", answers  # type: ignore[index]
    assert answers["faxto"][:2] == (503, "5") and answers["faxto"][2]["status"] == "failed", answers  # type: ignore[index]
    assert answers["voipnow"][:2] == (503, "5"), answers
    assert answers["voipnow"][2]["error"]["code"] == "service_unavailable", answers  # type: ignore[index]


@pytest.mark.full_faults
@pytest.mark.timeout(600)
async def test_a_rabbitmq_outage_strands_no_fax(
    stack: FaultStack, fault_infra: ControlledInfra, receiver: CallbackReceiver
) -> None:
    await _outage_during_batch(stack, fault_infra, receiver, "rabbitmq", 102)


@pytest.mark.full_faults
@pytest.mark.timeout(600)
async def test_an_s3_outage_strands_no_fax(
    stack: FaultStack, fault_infra: ControlledInfra, receiver: CallbackReceiver
) -> None:
    """Before the fix, most of the batch stayed ``pending``: storing the render failed, and the message spent its
    deliveries within a second as with Postgres."""
    await _outage_during_batch(stack, fault_infra, receiver, "s3", 103)
