"""Nothing accepted is lost, nothing refused is kept: uploads reach S3 before the job commits and are removed again
when the job cannot be stored. (Fakes for the pool and S3 here; the integration tests use the real ones.)"""

import uuid

import pytest

from fax_jobs import JobStore


class FakeBlobs:
    def __init__(self, fail_on: int | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0
        self.fail_on = fail_on

    async def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
        self.puts += 1
        if self.puts == self.fail_on:
            raise OSError("S3 down")
        self.objects[key] = data

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)


class FailingPool:
    def __init__(self, blobs: FakeBlobs) -> None:
        self.blobs = blobs
        self.seen_objects: list[str] = []

    async def fetchrow(self, query: str, *args: object) -> None:
        self.seen_objects = sorted(self.blobs.objects)  # what was in S3 when the job was written
        raise ConnectionError("Postgres went away")


REQUEST = {"to_number": "1555", "document": {"method": "get"}, "retries": 1}
DOCUMENTS = [(b"%PDF-1", "application/pdf"), (b"II*\x00", "image/tiff")]


async def test_uploads_are_stored_before_the_job_and_removed_when_it_fails() -> None:
    blobs = FakeBlobs()
    pool = FailingPool(blobs)
    job_id = uuid.uuid4()
    with pytest.raises(ConnectionError):
        await JobStore(pool, blobs).submit_job("acc", REQUEST, DOCUMENTS, job_id=job_id)  # type: ignore[arg-type]
    assert pool.seen_objects == [f"jobs/{job_id}/upload-0", f"jobs/{job_id}/upload-1"]
    assert blobs.objects == {}


async def test_a_failed_upload_removes_the_ones_before_it_and_writes_no_job() -> None:
    blobs = FakeBlobs(fail_on=2)
    pool = FailingPool(blobs)
    with pytest.raises(OSError):
        await JobStore(pool, blobs).submit_job("acc", REQUEST, DOCUMENTS)  # type: ignore[arg-type]
    assert blobs.objects == {} and pool.seen_objects == []
