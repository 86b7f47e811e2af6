"""The transmitter's handling of jobs against real Postgres and S3, over the loopback line."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from fax_runtime.blobs import BlobStore
from fax_runtime.config import RuntimeSettings, S3Settings
from fax_runtime.db import create_pool
from fax_transmitter.config import TransmitterSettings
from fax_transmitter.handlers import Transmitter
from fax_transmitter.lines import LoopbackLine
from fax_transmitter.store import TransmitterStore


def _fax_tiff(pages: int) -> bytes:
    images = []
    for number in range(pages):
        page = Image.new("1", (1728, 2292), 1)
        ImageDraw.Draw(page).rectangle((100 + 50 * number, 200, 900, 700), fill=0)
        images.append(page)
    out = io.BytesIO()
    images[0].save(out, "TIFF", compression="group4", dpi=(204, 196), save_all=True, append_images=images[1:])
    return out.getvalue()


@pytest.fixture
async def world(infra, database_url: str, tmp_path: Path):
    pool = await create_pool(database_url)
    s3 = S3Settings(
        endpoint=infra.s3_endpoint,
        access_key=infra.s3_access_key,
        secret_key=infra.s3_secret_key,
        bucket=infra.s3_bucket,
        secure=infra.s3_secure,
    )
    blobs = BlobStore(s3)
    settings = TransmitterSettings(
        runtime=RuntimeSettings(database_url=database_url, amqp_url=infra.amqp_url, s3=s3),
        line="loopback",
        loopback_received_dir=tmp_path / "received",
    )
    await pool.execute("INSERT INTO accounts (id, name) VALUES ('acc', 'Test')")
    line = LoopbackLine(settings.loopback_received_dir)
    await line.start()
    yield pool, blobs, Transmitter(TransmitterStore(pool), blobs, settings, line), settings
    await pool.close()


async def _job(pool, tiff_key: str, retries: int = 1) -> uuid.UUID:
    job_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO fax_jobs (id, account_id, status, request, to_number, retries, tiff_key, pages) "
        "VALUES ($1, 'acc', 'pending', $2, '15551234567', $3, $4, 2)",
        job_id,
        {"to_number": "15551234567", "from_number": "15550001111"},
        retries,
        tiff_key,
    )
    return job_id


async def test_job_is_sent_once_even_when_its_event_is_delivered_twice(world) -> None:
    pool, blobs, transmitter, settings = world
    key = f"jobs/{uuid.uuid4()}/fax.tif"
    await blobs.put_bytes(key, _fax_tiff(2))
    job_id = await _job(pool, key)

    await transmitter.attempt(job_id)
    await transmitter.attempt(job_id)  # a redelivered fax.document.ready

    row = await pool.fetchrow("SELECT status, attempts, tx_result FROM fax_jobs WHERE id = $1", job_id)
    assert row["status"] == "completed" and row["attempts"] == 1
    assert row["tx_result"]["pages_sent"] == 2 and row["tx_result"]["fax_receiver_id"] == "LOOPBACK"
    assert sorted(p.name for p in settings.loopback_received_dir.iterdir()) == [f"{job_id}-1.tif"]
    events = await pool.fetch("SELECT routing_key FROM outbox ORDER BY id")
    assert [e["routing_key"] for e in events] == ["fax.transmission.completed.v1"]


async def test_missing_document_ends_the_attempt_instead_of_hanging(world) -> None:
    pool, _, transmitter, _ = world
    job_id = await _job(pool, f"jobs/{uuid.uuid4()}/absent.tif", retries=2)

    await transmitter.attempt(job_id)
    first = await pool.fetchrow("SELECT status, attempts, error_message FROM fax_jobs WHERE id = $1", job_id)
    assert first["status"] == "pending" and first["attempts"] == 1  # one attempt left: back in the queue
    assert first["error_message"].startswith("transmitter error")

    await transmitter.attempt(job_id)
    second = await pool.fetchrow("SELECT status, attempts FROM fax_jobs WHERE id = $1", job_id)
    assert second["status"] == "failed" and second["attempts"] == 2
    finals = await pool.fetch("SELECT payload FROM outbox WHERE routing_key = 'fax.transmission.failed.v1'")
    assert len(finals) == 2
