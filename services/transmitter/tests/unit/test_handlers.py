"""The transmitter's handler on in-memory jobs and S3 with a scripted line: what it dials, and how each outcome
moves the job (sent, retried, failed, recorded even when the attempt breaks, ended when its transmitter died).
(The real lines: test_loopback.py and tests/integration; the same handler on Postgres: test_transmitter_jobs.py.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from fax_contracts import TransmissionCompleted, TransmissionFailed, TransmissionProgress
from fax_jobs.lifecycle import COMPLETED, FAILED, PENDING, PROCESSING
from fax_jobs.testing import MemoryBlobs, MemoryJobs
from fax_media.t30 import TransmissionOutcome
from fax_runtime.config import RuntimeSettings, S3Settings
from fax_sip import DialogIdentity
from fax_transmitter.config import TransmitterSettings
from fax_transmitter.handlers import Transmitter
from fax_transmitter.lines import AnsweredCall, CallRequest
from fax_transmitter.outcome import call_not_answered

SETTINGS = TransmitterSettings(
    runtime=RuntimeSettings(database_url="", amqp_url="", s3=S3Settings(endpoint="")),
    line="loopback",
    retry_delay_s=60,
    retry_delay_busy_s=120,
)
TIFF = b"II*\x00 a rendered fax"
DELIVERED = TransmissionOutcome(
    success=True, result_code=0, result_text="OK", pages_sent=2, bit_rate=14400, ecm_used=True, bad_rows=0,
    remote_ident="FAR END", line_seconds=40.0,
)  # fmt: skip
PREDECESSOR = "<sip:fax@127.0.0.1:5060>"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedLine:
    """A line that answers each call with the next outcome (an exception is raised), reporting its pages; with an
    ``owner`` every call is answered as a SIP dialog of that contact."""

    def __init__(self, *outcomes: TransmissionOutcome | Exception, owner: str | None = None) -> None:
        self.outcomes = list(outcomes)
        self.owner = owner
        self.calls: list[tuple[CallRequest, bytes]] = []
        self.hung_up: list[AnsweredCall] = []

    def hang_up_abandoned(self, calls: Iterable[AnsweredCall]) -> None:
        self.hung_up += calls

    async def place_call(self, call: CallRequest) -> TransmissionOutcome:
        self.calls.append((call, call.tiff.read_bytes()))
        if self.owner is not None and call.on_answered is not None:
            call.on_answered(_answered(self.owner))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        for page in range(1, outcome.pages_sent + 1):
            assert call.on_page is not None
            call.on_page(page)
        return outcome


class NoReceptions:
    async def end_orphaned_receptions(self, owner: str) -> list[AnsweredCall]:
        return []


def _answered(contact: str) -> AnsweredCall:
    return AnsweredCall(
        dialog=DialogIdentity(call_id=uuid.uuid4().hex, local="<sip:a>;tag=1", remote="<sip:b>;tag=2",
                              remote_target="sip:b", contact=contact),
        media_host="127.0.0.1",
        media_ports=(40000, 40002),
    )  # fmt: skip


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (up to a second) for the sweeper, which runs in the background, to get there."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the sweeper did not get there within a second")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jobs(clock: Clock) -> MemoryJobs[AnsweredCall]:
    return MemoryJobs(clock)


@pytest.fixture
def blobs() -> MemoryBlobs:
    return MemoryBlobs()


def _transmitter(jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs, line: ScriptedLine) -> Transmitter:
    return Transmitter(jobs, blobs, SETTINGS, line)  # type: ignore[arg-type]


async def _ready(jobs: MemoryJobs[Any], blobs: MemoryBlobs, *, retries: int = 1, **request: Any) -> uuid.UUID:
    """A job whose fax is rendered and stored: waiting for its first attempt."""
    job_id = jobs.submit("acc", {"to_number": "15551234567", "document": {}, **request}, retries=retries)
    key = f"jobs/{job_id}/r1/{uuid.uuid4().hex}/fax.tif"
    await blobs.put_bytes(key, TIFF)
    assert await jobs.document_ready(job_id, key, 2, 1)
    jobs.outbox.clear()
    return job_id


def _events(jobs: MemoryJobs[Any]) -> list[tuple[Any, ...]]:
    return [
        (type(e).__name__, e.attempt, getattr(e, "pages_sent", None), getattr(e, "final", None))  # type: ignore[attr-defined]
        for e in jobs.outbox
    ]


async def test_a_ready_job_is_dialled_with_its_fax_and_completed(
    jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs
) -> None:
    job_id = await _ready(jobs, blobs, from_number="15550001111", fax_identity="ACME FAX")
    line = ScriptedLine(DELIVERED)

    await _transmitter(jobs, blobs, line).attempt(job_id)

    ((call, tiff),) = line.calls
    assert (call.job_id, call.attempt, call.to_number, call.from_number) == (job_id, 1, "15551234567", "15550001111")
    assert tiff == TIFF and call.options.local_ident == "ACME FAX"
    job = jobs.jobs[job_id]
    assert (job.status, job.attempts, job.error_message) == (COMPLETED, 1, "")
    assert job.tx_result["pages_sent"] == 2 and job.tx_result["fax_receiver_id"] == "FAR END"
    assert _events(jobs) == [
        (TransmissionProgress.__name__, 1, 1, None),
        (TransmissionProgress.__name__, 1, 2, None),
        (TransmissionCompleted.__name__, 1, 2, None),
    ]


async def test_a_redelivered_document_ready_dials_once(jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs) -> None:
    job_id = await _ready(jobs, blobs)
    line = ScriptedLine(DELIVERED, DELIVERED)
    transmitter = _transmitter(jobs, blobs, line)

    await transmitter.attempt(job_id)
    await transmitter.attempt(job_id)

    assert len(line.calls) == 1 and jobs.jobs[job_id].attempts == 1


async def test_a_busy_line_is_tried_again_after_the_busy_delay_until_attempts_run_out(
    jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs, clock: Clock
) -> None:
    job_id = await _ready(jobs, blobs, retries=2)
    busy = call_not_answered(486, "Busy Here")
    transmitter = _transmitter(jobs, blobs, ScriptedLine(busy, busy))

    await transmitter.attempt(job_id)

    job = jobs.jobs[job_id]
    assert (job.status, job.attempts, job.error_message) == (PENDING, 1, "SIP 486 Busy Here")
    clock.now += SETTINGS.retry_delay_busy_s - 1
    assert await jobs.due_jobs(SETTINGS.retry_delay_s, held_back_s=5) == []
    clock.now += 1
    assert await jobs.due_jobs(SETTINGS.retry_delay_s, held_back_s=5) == [job_id]

    await transmitter.attempt(job_id)

    assert (job.status, job.attempts) == (FAILED, 2)
    failed = [(e.attempt, e.final, e.result_code) for e in jobs.outbox if isinstance(e, TransmissionFailed)]
    assert failed == [(1, False, busy.result_code), (2, True, busy.result_code)]


async def test_a_number_that_does_not_exist_is_not_tried_again(
    jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs
) -> None:
    job_id = await _ready(jobs, blobs, retries=3)

    await _transmitter(jobs, blobs, ScriptedLine(call_not_answered(404, "Not Found"))).attempt(job_id)

    assert (jobs.jobs[job_id].status, jobs.jobs[job_id].attempts) == (FAILED, 1)


async def test_an_attempt_that_breaks_is_recorded_not_left_processing(
    jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs
) -> None:
    job_id = await _ready(jobs, blobs, retries=2)
    transmitter = _transmitter(jobs, blobs, ScriptedLine(RuntimeError("the DSP loop stopped")))

    await transmitter.attempt(job_id)
    job = jobs.jobs[job_id]
    assert (job.status, job.error_message) == (PENDING, "transmitter error: the DSP loop stopped")

    blobs.objects.clear()  # the fax went missing from S3: the call is never placed, the attempt still ends
    await transmitter.attempt(job_id)
    assert job.status == FAILED and job.error_message.startswith("transmitter error")


async def test_a_successor_hangs_up_the_calls_its_dead_predecessor_left_up(
    jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs
) -> None:
    job_id = await _ready(jobs, blobs)
    # The predecessor claimed the attempt and answered; it died before recording anything.
    attempt = await jobs.claim_attempt(job_id, max_calls_per_account=10, lease_s=60)
    assert attempt is not None
    left_up = _answered(PREDECESSOR)
    await jobs.record_answered_call(job_id, attempt.attempts, left_up)
    line = ScriptedLine(owner=PREDECESSOR)

    await _transmitter(jobs, blobs, line).end_predecessors_calls(NoReceptions())  # type: ignore[arg-type]

    assert line.hung_up == [left_up]
    job = jobs.jobs[job_id]
    assert (job.status, job.error_message) == (FAILED, "call interrupted: transmitter stopped")
    assert _events(jobs) == [(TransmissionFailed.__name__, 1, None, True)]


async def test_the_sweeper_ends_attempts_whose_lease_ran_out_and_starts_their_retry(
    jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs, clock: Clock
) -> None:
    job_id = await _ready(jobs, blobs, retries=2)
    assert await jobs.claim_attempt(job_id, max_calls_per_account=10, lease_s=60)  # a transmitter that died
    line = ScriptedLine(DELIVERED)
    sweeper = asyncio.create_task(_transmitter(jobs, blobs, line).sweep(poll_seconds=0.001))
    try:
        await asyncio.sleep(0.01)
        assert jobs.jobs[job_id].status == PROCESSING, "the lease still runs"
        clock.now += 61
        await _until(lambda: jobs.jobs[job_id].status == PENDING)
        assert line.calls == [], "a retry waits its delay from the failure"
        clock.now += SETTINGS.retry_delay_s
        await _until(lambda: jobs.jobs[job_id].status == COMPLETED)
    finally:
        sweeper.cancel()
    assert jobs.jobs[job_id].attempts == 2 and len(line.calls) == 1
    assert _events(jobs)[0] == (TransmissionFailed.__name__, 1, None, False)
