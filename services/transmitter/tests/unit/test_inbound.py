"""Filing a finished reception on in-memory S3 and a scripted store: S3 or Postgres away is waited out until the
reception is filed once; any other error fails it with a text fit for its owner; a write during the call that fails
never ends the call. (The SQL that makes a second filing a no-op: tests/integration/test_transmitter_jobs.py; a
whole reception through real outages: tests/faults/test_receptions.py.)"""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from minio.error import S3Error
from PIL import Image

from fax_jobs.testing import MemoryBlobs
from fax_media.t30 import TransmissionOutcome
from fax_runtime.sandbox import Sandbox
from fax_runtime.transient import RetryPolicy
from fax_transmitter.inbound import FaxReceiver, HeldReceptions, Reception

RECEIVED = TransmissionOutcome(
    success=True, result_code=0, result_text="OK", pages_sent=1, bit_rate=14400, ecm_used=True, bad_rows=0,
    remote_ident="FAR END", line_seconds=20.0,
)  # fmt: skip
QUICK = RetryPolicy(first_delay_s=0.001, longest_delay_s=0.001, give_up_after_s=None)


class ScriptedStore:
    """The reception's records, each write failing with the next of its scripted errors before it goes through."""

    def __init__(self, **failures: list[Exception]) -> None:
        self.failures = failures
        self.status = "receiving"
        self.filed: list[tuple[str, Any]] = []

    def _next_failure(self, write: str) -> None:
        if self.failures.get(write):
            raise self.failures[write].pop(0)

    async def page(self, fax_id: uuid.UUID, pages: int) -> None:
        self._next_failure("page")

    async def received(
        self, reception: Reception, outcome: TransmissionOutcome, tiff_key: str, pdf_key: str | None
    ) -> bool:
        self._next_failure("received")
        return self._finish("received", (tiff_key, pdf_key))

    async def failed(self, reception: Reception, outcome: TransmissionOutcome | None, error: str) -> bool:
        self._next_failure("failed")
        return self._finish("failed", error)

    def _finish(self, status: str, detail: Any) -> bool:
        if self.status != "receiving":
            return False
        self.status = status
        self.filed.append((status, detail))
        return True


class FlakyBlobs(MemoryBlobs):
    def __init__(self, *failures: Exception) -> None:
        super().__init__()
        self.failures = list(failures)
        self.puts = 0

    async def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        self.puts += 1
        if self.failures:
            raise self.failures.pop(0)
        await super().put_file(key, path, content_type)


def _receiver(store: ScriptedStore, blobs: MemoryBlobs) -> FaxReceiver:
    return FaxReceiver(
        HeldReceptions(store, lease_s=60),  # type: ignore[arg-type]
        blobs,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]  # the DSP loop and media ports: no call is made here
        None,  # type: ignore[arg-type]
        media_host="127.0.0.1",
        station_ident="TEST",
        sandbox=Sandbox.from_setting("none"),
        filing=QUICK,
    )


def _reception() -> Reception:
    return Reception(uuid.uuid4(), "acc", None, "call-1", "+15557770001", "", "+15550001111")


def _page(path: Path) -> Path:
    out = io.BytesIO()
    Image.new("1", (1728, 1100), 1).save(out, "TIFF", compression="group4", dpi=(204, 196))
    path.write_bytes(out.getvalue())
    return path


def _s3_error(code: str) -> S3Error:
    return S3Error(None, code, "message", "/bucket/inbound/x/fax.tif", "request", "host")  # type: ignore[arg-type]


async def test_s3_and_postgres_away_are_waited_out_and_the_reception_is_filed_once(tmp_path: Path) -> None:
    store = ScriptedStore(received=[asyncpg.CannotConnectNowError("starting up"), ConnectionRefusedError()] * 3)
    blobs = FlakyBlobs(*[ConnectionRefusedError(), _s3_error("ServiceUnavailable")] * 3)
    reception = _reception()

    await _receiver(store, blobs)._file(reception, RECEIVED, _page(tmp_path / "fax.tif"))

    tiff, pdf = f"inbound/{reception.fax_id}/fax.tif", f"inbound/{reception.fax_id}/fax.pdf"
    assert store.filed == [("received", (tiff, pdf))]
    assert blobs.objects[tiff] == (tmp_path / "fax.tif").read_bytes() and blobs.objects[pdf].startswith(b"%PDF")
    assert not store.failures["received"] and not blobs.failures


async def test_a_retry_after_a_lost_commit_acknowledgement_files_nothing_twice(tmp_path: Path) -> None:
    class LostAcknowledgement(ScriptedStore):
        async def received(self, *args: Any) -> bool:
            filed = await super().received(*args)
            if len(self.filed) == 1 and filed:
                raise ConnectionResetError("the commit went through; its answer did not")
            return filed

    store = LostAcknowledgement()
    await _receiver(store, MemoryBlobs())._file(_reception(), RECEIVED, _page(tmp_path / "fax.tif"))
    assert [status for status, _ in store.filed] == ["received"]


@pytest.mark.parametrize("error", [_s3_error("AccessDenied"), PermissionError(13, "denied", "/tmp/fax-rx-x/fax.tif")])
async def test_an_error_waiting_does_not_fix_fails_the_reception_without_internal_detail(
    tmp_path: Path, error: Exception
) -> None:
    store = ScriptedStore(failed=[ConnectionRefusedError()])
    await _receiver(store, FlakyBlobs(error))._file(_reception(), RECEIVED, _page(tmp_path / "fax.tif"))
    assert store.filed == [("failed", "reception failed: the received fax could not be stored")]


async def test_a_call_without_pages_is_recorded_failed_through_a_postgres_outage(tmp_path: Path) -> None:
    store = ScriptedStore(failed=[asyncpg.CannotConnectNowError("starting up")] * 3)
    no_fax = TransmissionOutcome(
        success=False, result_code=2, result_text="No fax tones", pages_sent=0, bit_rate=0, ecm_used=False,
        bad_rows=0, remote_ident="", line_seconds=60.0,
    )  # fmt: skip
    await _receiver(store, MemoryBlobs())._file(_reception(), no_fax, tmp_path / "fax.tif")
    assert store.filed == [("failed", "No fax tones")]


async def test_a_page_write_that_fails_is_logged_and_ends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    store = ScriptedStore(page=[asyncpg.CannotConnectNowError("starting up")])
    receiver = _receiver(store, MemoryBlobs())
    task = receiver._write_aside(store.page(uuid.uuid4(), 1), "recording page 1")
    await asyncio.wait_for(task, 1)
    assert task.exception() is None and "recording page 1 failed: CannotConnectNowError" in caplog.text
