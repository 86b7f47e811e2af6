"""The transmitter's handler on in-memory jobs and S3 with a scripted line: what it dials, and how each outcome
moves the job (sent, retried, failed, recorded even when the attempt breaks, ended when its transmitter died).
(The real lines: test_loopback.py and tests/integration; the same handler on Postgres: test_transmitter_jobs.py.)"""

from __future__ import annotations

import asyncio
import time
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
from fax_transmitter.inbound import HeldReceptions
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
    broke = RuntimeError("the DSP loop stopped reading /tmp/fax-tx-1234/fax.tif")
    transmitter = _transmitter(jobs, blobs, ScriptedLine(broke))

    await transmitter.attempt(job_id)
    job = jobs.jobs[job_id]
    # The owner reads a reason, never the exception's own words (they named a path of ours before).
    assert (job.status, job.error_message) == (PENDING, "transmitter error: the call could not be placed")

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

    await _transmitter(jobs, blobs, line).end_predecessors_calls()

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


class PostgresAway(MemoryJobs[AnsweredCall]):
    """Jobs whose database is away for the next ``outage`` writes of an attempt's outcome."""

    def __init__(self, clock: Clock, outage: int) -> None:
        super().__init__(clock)
        self.outage = outage

    def _away(self) -> None:
        if self.outage > 0:
            self.outage -= 1
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    async def record_success(self, job_id: uuid.UUID, attempt: int, tx_result: dict[str, Any]) -> None:
        self._away()
        await super().record_success(job_id, attempt, tx_result)


class HeldCall(ScriptedLine):
    """A line whose call, once its pages are confirmed, stays up until ``hang_up`` is set."""

    def __init__(self, outcome: TransmissionOutcome) -> None:
        super().__init__(outcome)
        self.up = asyncio.Event()
        self.hang_up = asyncio.Event()

    async def place_call(self, call: CallRequest) -> TransmissionOutcome:
        self.up.set()
        await self.hang_up.wait()
        return await super().place_call(call)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    from fax_runtime.transient import RetryPolicy
    from fax_transmitter import handlers

    monkeypatch.setattr(handlers, "UNBOUNDED", RetryPolicy(first_delay_s=0.001, give_up_after_s=None))
    monkeypatch.setattr(handlers, "DOCUMENT_READ", RetryPolicy(first_delay_s=0.001, give_up_after_s=1))


async def test_a_delivery_recorded_while_postgres_is_away_is_recorded_once_it_is_back_and_never_redialled(
    blobs: MemoryBlobs, clock: Clock, no_backoff: None
) -> None:
    """Before the fix the outcome's write failed once and was given up: the job stayed ``processing``, its lease ran
    out, and the sweeper took the attempt for an interrupted one and dialled the fax again."""
    jobs = PostgresAway(clock, outage=5)
    job_id = await _ready(jobs, blobs, retries=2)
    line = ScriptedLine(DELIVERED, DELIVERED)
    transmitter = _transmitter(jobs, blobs, line)

    await transmitter.attempt(job_id)
    clock.now += SETTINGS.call_lease_s + 1
    await transmitter.sweep_once(held_back_s=5)

    job = jobs.jobs[job_id]
    assert (job.status, job.attempts, len(line.calls)) == (COMPLETED, 1, 1)
    assert [name for name, *_ in _events(jobs)].count(TransmissionCompleted.__name__) == 1


async def test_the_sweeper_never_takes_an_attempt_its_own_process_still_runs(
    jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs, clock: Clock
) -> None:
    """A lease that ran out while Postgres was away belongs to a call that is still up here: its outcome comes."""
    job_id = await _ready(jobs, blobs, retries=2)
    line = HeldCall(DELIVERED)
    transmitter = _transmitter(jobs, blobs, line)
    assert await transmitter.start_attempt(job_id)
    await line.up.wait()

    clock.now += SETTINGS.call_lease_s + 1  # no renewal got through meanwhile
    await transmitter.sweep_once(held_back_s=5)
    assert jobs.jobs[job_id].status == PROCESSING

    line.hang_up.set()
    await _until(lambda: jobs.jobs[job_id].status == COMPLETED)
    assert len(line.calls) == 1


async def test_after_an_outage_the_sweeper_gives_leases_one_lease_period_to_be_renewed(
    jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transmitter's call, whose lease ran out while no one could reach Postgres, is renewed by its own
    heartbeat once Postgres is back: this sweeper leaves it alone for a lease period after its own failed sweep."""
    job_id = await _ready(jobs, blobs)
    assert await jobs.claim_attempt(job_id, max_calls_per_account=10, lease_s=60)  # a live sibling's call
    transmitter = _transmitter(jobs, blobs, ScriptedLine())
    reap = jobs.reap_abandoned_attempts
    monkeypatch.setattr(jobs, "reap_abandoned_attempts", _raising(ConnectionRefusedError()))
    sweeper = asyncio.create_task(transmitter.sweep(poll_seconds=0.001))
    try:
        await asyncio.sleep(0.01)  # sweeps fail: Postgres is away
        monkeypatch.setattr(jobs, "reap_abandoned_attempts", reap)
        clock.now += 61
        await asyncio.sleep(0.01)
        assert jobs.jobs[job_id].status == PROCESSING, "the sibling has a lease period to renew"
    finally:
        sweeper.cancel()


def _raising(error: Exception) -> Callable[..., Any]:
    async def fail(*_: Any, **__: Any) -> Any:
        raise error

    return fail


async def test_an_attempt_whose_every_page_was_confirmed_is_completed_not_redialled(
    jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs, clock: Clock
) -> None:
    """Before the fix the reaper took such an attempt for a failed one, and the fax was sent again."""
    job_id = await _ready(jobs, blobs, retries=3)
    attempt = await jobs.claim_attempt(job_id, max_calls_per_account=10, lease_s=60)
    assert attempt is not None
    # The far end confirmed both pages; the transmitter died before the call ended.
    await jobs.record_progress(job_id, 1, 1)
    await jobs.record_progress(job_id, 1, 2)
    line = ScriptedLine(DELIVERED)
    clock.now += 61

    await _transmitter(jobs, blobs, line).sweep_once(held_back_s=5)
    clock.now += SETTINGS.retry_delay_s
    await _transmitter(jobs, blobs, line).sweep_once(held_back_s=5)

    job = jobs.jobs[job_id]
    assert (job.status, job.attempts, job.error_message, line.calls) == (COMPLETED, 1, "", [])
    assert _events(jobs)[-1] == (TransmissionCompleted.__name__, 1, 2, None)


async def test_pages_confirmed_in_an_earlier_attempt_do_not_complete_the_next(
    jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs, clock: Clock
) -> None:
    job_id = await _ready(jobs, blobs, retries=3)
    assert await jobs.claim_attempt(job_id, max_calls_per_account=10, lease_s=60)
    await jobs.record_progress(job_id, 1, 2)
    await jobs.record_failure(job_id, 1, {"error_message": "no final report", "pages_sent": 2}, True, 0)
    assert await jobs.claim_attempt(job_id, max_calls_per_account=10, lease_s=60)  # dies before any page
    clock.now += 61

    (ended,) = await jobs.reap_abandoned_attempts()

    assert (ended.completed, ended.retried, jobs.jobs[job_id].status) == (False, True, PENDING)


async def test_a_fax_unreadable_while_s3_is_away_is_read_once_it_is_back(
    jobs: MemoryJobs[AnsweredCall], clock: Clock, no_backoff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the fix an S3 outage spent the attempt (``transmitter error``), and the last one failed the job."""
    blobs = MemoryBlobs()
    job_id = await _ready(jobs, blobs)
    outage = iter([ConnectionRefusedError(), ConnectionRefusedError()])
    download = blobs.download

    async def flaky(key: str, path: Any) -> None:
        error = next(outage, None)
        if error is not None:
            raise error
        await download(key, path)

    monkeypatch.setattr(blobs, "download", flaky)
    line = ScriptedLine(DELIVERED)

    await _transmitter(jobs, blobs, line).attempt(job_id)

    assert (jobs.jobs[job_id].status, len(line.calls)) == (COMPLETED, 1)


class LeasedReceptions:
    """The store side of held receptions: renewals only."""

    async def renew_lease(self, fax_id: uuid.UUID, lease_s: int) -> None:
        pass


async def test_a_stopping_transmitter_waits_within_its_drain_for_the_receptions_it_holds(
    jobs: MemoryJobs[AnsweredCall], blobs: MemoryBlobs
) -> None:
    """Caught: the drain waited for outbound calls only, and the line's close then cut a reception whose filing was
    waiting for S3, its pages lost. What is still held when the drain ends is left to the close (its lease to a
    sweeper)."""
    receptions = HeldReceptions(LeasedReceptions(), lease_s=60)  # type: ignore[arg-type]
    transmitter = Transmitter(jobs, blobs, SETTINGS, ScriptedLine(), receptions=receptions)  # type: ignore[arg-type]

    async def file(filed: asyncio.Event) -> None:
        async with receptions.hold(uuid.uuid4()):
            await filed.wait()

    quick_filed, never_filed = asyncio.Event(), asyncio.Event()
    quick, stuck = asyncio.create_task(file(quick_filed)), asyncio.create_task(file(never_filed))
    await asyncio.sleep(0)
    asyncio.get_running_loop().call_later(0.05, quick_filed.set)
    began = time.monotonic()

    await transmitter.drain(0.3)

    assert quick.done() and not stuck.done()
    assert 0.3 <= time.monotonic() - began < 1.0
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
