"""The fetcher's reconciler on in-memory jobs: a queued job whose event was lost is prepared again, once per period,
and only when the fetcher's queue has nothing waiting. (On Postgres: tests/integration/test_reconcilers.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from fax_contracts import JobSubmitted
from fax_fetcher.reconciler import StalledDocuments
from fax_jobs.testing import MemoryJobs

AFTER_S = 600


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jobs(clock: Clock) -> MemoryJobs[None]:
    return MemoryJobs(clock)


class Preparer:
    def __init__(self, jobs: MemoryJobs[None]) -> None:
        self.jobs = jobs
        self.prepared: list[uuid.UUID] = []

    async def __call__(self, event: JobSubmitted) -> None:
        self.prepared.append(event.job_id)
        assert await self.jobs.document_ready(event.job_id, f"jobs/{event.job_id}/fax.tif", 1, 1)


def _backlog(waiting: int | Exception) -> Callable[[], Awaitable[int]]:
    async def backlog() -> int:
        if isinstance(waiting, Exception):
            raise waiting
        return waiting

    return backlog


def _reconciler(jobs: MemoryJobs[None], preparer: Preparer, waiting: int | Exception = 0) -> StalledDocuments:
    return StalledDocuments(jobs, preparer, _backlog(waiting), after_s=AFTER_S)


def _queued(jobs: MemoryJobs[None], number: str = "15551234567") -> uuid.UUID:
    return jobs.submit("acc", {"to_number": number, "document": {"url": "https://example.com/fax.pdf"}})


async def test_a_job_whose_event_was_lost_is_prepared_after_the_period(jobs: MemoryJobs[None], clock: Clock) -> None:
    """Before the fix nothing re-drove such a job: a dead-lettered fax.job.submitted left it pending for ever."""
    lost = _queued(jobs)
    preparer = Preparer(jobs)
    reconciler = _reconciler(jobs, preparer)

    clock.now += AFTER_S - 1
    assert await reconciler.reconcile() == 0
    clock.now += 2
    assert await reconciler.reconcile() == 1

    assert preparer.prepared == [lost] and jobs.jobs[lost].tiff_key is not None


async def test_a_job_taken_is_not_taken_again_within_the_period(jobs: MemoryJobs[None], clock: Clock) -> None:
    slow = _queued(jobs)
    taken: list[uuid.UUID] = []

    async def fails(event: JobSubmitted) -> None:
        taken.append(event.job_id)
        raise RuntimeError("the converter crashed")

    reconciler = StalledDocuments(jobs, fails, _backlog(0), after_s=AFTER_S)
    clock.now += AFTER_S + 1
    await reconciler.reconcile()
    await reconciler.reconcile()
    clock.now += AFTER_S + 1
    await reconciler.reconcile()

    assert taken == [slow, slow]


async def test_nothing_is_redriven_while_the_queue_holds_a_backlog(jobs: MemoryJobs[None], clock: Clock) -> None:
    _queued(jobs)
    preparer = Preparer(jobs)
    clock.now += AFTER_S + 1

    assert await _reconciler(jobs, preparer, waiting=40).reconcile() == 0
    assert preparer.prepared == []
    # With the broker away there is no queue to look at, but the database is there: the jobs are prepared.
    assert await _reconciler(jobs, preparer, waiting=ConnectionRefusedError()).reconcile() == 1


async def test_rendered_and_finished_jobs_are_left_alone(jobs: MemoryJobs[None], clock: Clock) -> None:
    rendered = _queued(jobs, "15550000001")
    assert await jobs.document_ready(rendered, "jobs/x/fax.tif", 1, 1)
    failed = _queued(jobs, "15550000002")
    assert await jobs.document_failed(failed, "no such document", 1)
    clock.now += AFTER_S + 1

    preparer = Preparer(jobs)
    assert await _reconciler(jobs, preparer).reconcile() == 0
