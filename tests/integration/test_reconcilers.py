"""The fetcher reconciler's SQL on Postgres (fax_jobs: redrive_document): which queued jobs are stalled, and that a
job taken is not taken again within the period, by this fetcher or another."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from fax_jobs import DocumentJobStore
from fax_runtime.db import create_pool


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url)
    await pool.execute("INSERT INTO accounts (id, name) VALUES ('acc', 'Test')")
    try:
        yield pool
    finally:
        await pool.close()


async def _job(
    pool: asyncpg.Pool, *, status: str = "pending", tiff_key: str | None = None, age_s: int = 120
) -> uuid.UUID:
    job_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO fax_jobs (id, account_id, status, request, to_number, tiff_key, updated_at)"
        " VALUES ($1, 'acc', $2, '{}'::jsonb, $3, $4, now() - make_interval(secs => $5))",
        job_id, status, f"+1555{job_id.int % 10**7:07d}", tiff_key, age_s,
    )  # fmt: skip
    return job_id


async def test_queued_jobs_without_a_document_past_the_period_are_taken_once(pool: asyncpg.Pool) -> None:
    """Before the fix nothing took them: a job whose fax.job.submitted was dead-lettered stayed pending for good."""
    store = DocumentJobStore(pool)
    lost = await _job(pool)
    uploading = await _job(pool, status="attaching_files")
    await _job(pool, age_s=10)  # submitted 10 s ago: its event may still be on its way
    await _job(pool, tiff_key="jobs/x/fax.tif")  # rendered, waiting for its call
    await _job(pool, status="failed")
    await _job(pool, status="completed", tiff_key="jobs/y/fax.tif")

    taken = await store.stalled_documents(60)

    assert {(job.id, job.account_id) for job in taken} == {(lost, "acc"), (uploading, "acc")}
    assert await store.stalled_documents(60) == [], "stamped: not taken again within the period"
    states = dict(await pool.fetch("SELECT id, status FROM fax_jobs WHERE id = ANY($1)", [lost, uploading]))
    assert states == {lost: "pending", uploading: "attaching_files"}, "taking a job does not change its state"


async def test_two_fetchers_at_once_never_take_the_same_job(pool: asyncpg.Pool) -> None:
    store = DocumentJobStore(pool)
    stalled = {await _job(pool) for _ in range(20)}

    first, second = await asyncio.gather(store.stalled_documents(60, limit=15), store.stalled_documents(60, limit=15))

    first_ids, second_ids = {job.id for job in first}, {job.id for job in second}
    assert not first_ids & second_ids
    assert first_ids | second_ids == stalled
