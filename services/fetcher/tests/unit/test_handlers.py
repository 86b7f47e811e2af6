"""The fetcher's handler on in-memory jobs and S3 with a stand-in renderer: which transition a submitted job takes,
what is stored beside its fax, and what is removed. (Rendering itself: test_render.py and test_formats.py; the whole
path on Postgres and S3: tests/integration/test_documents.py.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fax_contracts import DocumentFailed, DocumentReady, JobSubmitted
from fax_fetcher import handlers
from fax_fetcher.config import FetcherSettings
from fax_fetcher.handlers import DocumentPreparer
from fax_jobs.lifecycle import FAILED, PENDING
from fax_jobs.testing import MemoryBlobs, MemoryJobs
from fax_render.render import RenderedFax, RenderError
from fax_runtime.blobs import fax_pdf_key, fax_preview_key, fax_render_keys
from fax_runtime.config import RuntimeSettings, S3Settings

ACCOUNT = "acc"
SETTINGS = FetcherSettings(runtime=RuntimeSettings(database_url="", amqp_url="", s3=S3Settings(endpoint="")))


class Renderer:
    """Stands in for render_documents, write_pdf_copy and write_previews: one page per document, the TIFF the
    documents' bytes in order; ``while_rendering`` runs in the middle of a render (a change arriving then),
    ``while_copying`` while the PDF copy and previews are made (what it raises, they raise)."""

    def __init__(self) -> None:
        self.rendered: list[list[bytes]] = []
        self.copied: list[bytes] = []
        self.on_disk_while_copying: list[str] = []
        self.while_rendering: Callable[[], None] | None = None
        self.while_copying: Callable[[], None] | None = None

    async def render_documents(self, sources: list[Path], dest: Path, **limits: Any) -> RenderedFax:
        documents = [await asyncio.to_thread(source.read_bytes) for source in sources]
        if any(document.startswith(b"%BROKEN") for document in documents):
            raise RenderError("could not convert document: the PDF is damaged")
        if self.while_rendering:
            self.while_rendering()
        self.rendered.append(documents)
        await asyncio.to_thread(dest.write_bytes, b"TIFF:" + b"|".join(documents))
        return RenderedFax(tiff_path=dest, pages=len(documents))

    async def write_pdf_copy(self, tiff: Path, pdf: Path, **limits: Any) -> None:
        await asyncio.to_thread(pdf.write_bytes, b"PDF:" + await asyncio.to_thread(tiff.read_bytes))

    async def write_previews(self, tiff: Path, out_dir: Path, **limits: Any) -> list[Path]:
        if self.while_copying:
            self.while_copying()
        body = await asyncio.to_thread(tiff.read_bytes)
        self.copied.append(body)
        self.on_disk_while_copying = sorted(path.name for path in tiff.parent.iterdir())
        previews = []
        for page in range(1, body.count(b"|") + 2):
            previews.append(out_dir / f"preview-{page}.png")
            previews[-1].write_bytes(b"PNG:%d" % page)
        return previews


@pytest.fixture
def renderer(monkeypatch: pytest.MonkeyPatch) -> Renderer:
    fake = Renderer()
    for name in ("render_documents", "write_pdf_copy", "write_previews"):
        monkeypatch.setattr(handlers, name, getattr(fake, name))
    return fake


@pytest.fixture
def jobs() -> MemoryJobs[Any]:
    return MemoryJobs()


@pytest.fixture
def blobs() -> MemoryBlobs:
    return MemoryBlobs()


@pytest.fixture
def preparer(jobs: MemoryJobs[Any], blobs: MemoryBlobs, renderer: Renderer) -> DocumentPreparer:
    # The stand-in renderer runs no converter: no sandbox to hand it.
    return DocumentPreparer(jobs, blobs, SETTINGS, converters=None)  # type: ignore[arg-type]


async def _uploaded(jobs: MemoryJobs[Any], blobs: MemoryBlobs, *documents: bytes) -> uuid.UUID:
    job_id = uuid.uuid4()
    keys = [f"jobs/{job_id}/upload-{index}" for index in range(len(documents))]
    for key, body in zip(keys, documents, strict=True):
        await blobs.put_bytes(key, body)
    return jobs.submit(ACCOUNT, {"to_number": "1555", "document": {"uploads": keys}}, job_id=job_id)


def _submitted(job_id: uuid.UUID) -> JobSubmitted:
    return JobSubmitted(event_id=uuid.uuid4(), occurred_at=dt.datetime.now(dt.UTC), job_id=job_id, account_id=ACCOUNT)


async def test_uploaded_documents_become_one_fax_stored_with_its_copies(
    preparer: DocumentPreparer, jobs: MemoryJobs[Any], blobs: MemoryBlobs, renderer: Renderer
) -> None:
    job_id = await _uploaded(jobs, blobs, b"first document", b"second document")

    await preparer.on_job_submitted(_submitted(job_id))

    job = jobs.jobs[job_id]
    assert (job.status, job.pages) == (PENDING, 2)
    assert job.tiff_key and re.fullmatch(f"jobs/{job_id}/r1/[0-9a-f]{{32}}/fax.tif", job.tiff_key)
    assert renderer.rendered == [[b"first document", b"second document"]]
    assert blobs.objects[job.tiff_key] == b"TIFF:first document|second document"
    assert blobs.objects[fax_pdf_key(job.tiff_key)].startswith(b"PDF:TIFF:")
    assert [blobs.objects[fax_preview_key(job.tiff_key, page)] for page in (1, 2)] == [b"PNG:1", b"PNG:2"]
    render = set(blobs.objects) - {f"jobs/{job_id}/upload-0", f"jobs/{job_id}/upload-1"}
    assert render == {job.tiff_key, fax_pdf_key(job.tiff_key), *(fax_preview_key(job.tiff_key, p) for p in (1, 2))}
    assert [(type(e), e.tiff_key, e.pages) for e in jobs.outbox] == [(DocumentReady, job.tiff_key, 2)]  # type: ignore[attr-defined]


async def test_a_redelivered_event_renders_nothing_again(
    preparer: DocumentPreparer, jobs: MemoryJobs[Any], blobs: MemoryBlobs, renderer: Renderer
) -> None:
    job_id = await _uploaded(jobs, blobs, b"the document")
    await preparer.on_job_submitted(_submitted(job_id))
    stored = dict(blobs.objects)

    await preparer.on_job_submitted(_submitted(job_id))

    assert len(renderer.rendered) == 1 and blobs.objects == stored and len(jobs.outbox) == 1


async def test_a_document_that_cannot_be_rendered_fails_the_job_with_the_reason(
    preparer: DocumentPreparer, jobs: MemoryJobs[Any], blobs: MemoryBlobs
) -> None:
    job_id = await _uploaded(jobs, blobs, b"%BROKEN pdf")

    await preparer.on_job_submitted(_submitted(job_id))

    job = jobs.jobs[job_id]
    assert (job.status, job.error_message) == (FAILED, "could not convert document: the PDF is damaged")
    assert job.tx_result == {"success": False, "error_message": job.error_message}
    assert [(type(e), e.error) for e in jobs.outbox] == [(DocumentFailed, job.error_message)]  # type: ignore[attr-defined]
    assert set(blobs.objects) == {f"jobs/{job_id}/upload-0"}, "a failed render leaves nothing behind"


async def test_a_missing_upload_fails_the_job(preparer: DocumentPreparer, jobs: MemoryJobs[Any]) -> None:
    job_id = uuid.uuid4()
    key = f"jobs/{job_id}/upload-0"
    jobs.submit(ACCOUNT, {"to_number": "1555", "document": {"uploads": [key]}}, job_id=job_id)

    await preparer.on_job_submitted(_submitted(job_id))

    assert (jobs.jobs[job_id].status, jobs.jobs[job_id].error_message) == (
        FAILED,
        f"uploaded document {key} is missing",
    )


async def test_another_jobs_upload_is_never_read(
    preparer: DocumentPreparer, jobs: MemoryJobs[Any], blobs: MemoryBlobs, renderer: Renderer
) -> None:
    other = await _uploaded(jobs, blobs, b"someone else's fax")
    job_id = jobs.submit(ACCOUNT, {"to_number": "1555", "document": {"uploads": [f"jobs/{other}/upload-0"]}})

    await preparer.on_job_submitted(_submitted(job_id))

    assert jobs.jobs[job_id].status == FAILED and "does not belong to this job" in jobs.jobs[job_id].error_message
    assert renderer.rendered == []


async def test_a_document_url_the_network_guard_refuses_fails_the_job(
    preparer: DocumentPreparer, jobs: MemoryJobs[Any], blobs: MemoryBlobs
) -> None:
    job_id = jobs.submit(ACCOUNT, {"to_number": "1555", "document": {"url": "http://127.0.0.1:9/fax.pdf"}})

    await preparer.on_job_submitted(_submitted(job_id))

    job = jobs.jobs[job_id]
    assert job.status == FAILED and "loopback" in job.error_message, job.error_message
    assert blobs.objects == {}


async def test_a_render_of_a_request_changed_meanwhile_removes_only_its_own_objects(
    preparer: DocumentPreparer, jobs: MemoryJobs[Any], blobs: MemoryBlobs, renderer: Renderer
) -> None:
    """The request is changed (a PATCH) while its first version renders: that render is not recorded and removes
    exactly what it stored; the changed request's own delivery renders it under its new request_revision."""
    job_id = await _uploaded(jobs, blobs, b"version one")
    changed = {"to_number": "1555", "document": {"uploads": [f"jobs/{job_id}/upload-0"]}, "to_name": "N"}
    renderer.while_rendering = lambda: jobs.change(job_id, changed)

    await preparer.on_job_submitted(_submitted(job_id))

    assert jobs.jobs[job_id].tiff_key is None and jobs.outbox == []
    assert set(blobs.objects) == {f"jobs/{job_id}/upload-0"}

    renderer.while_rendering = None
    await preparer.on_job_submitted(_submitted(job_id))  # the change's own fax.job.submitted
    job = jobs.jobs[job_id]
    assert job.status == PENDING and job.tiff_key and job.tiff_key.startswith(f"jobs/{job_id}/r2/")


class Crash(Exception):
    """The fetcher stopping mid-handler: the event is not acked, the broker redelivers it."""


async def test_the_document_is_recorded_ready_before_its_copies_are_made(
    preparer: DocumentPreparer, jobs: MemoryJobs[Any], blobs: MemoryBlobs, renderer: Renderer
) -> None:
    job_id = await _uploaded(jobs, blobs, b"the document")
    seen: list[tuple[str | None, int, bool]] = []

    def record_state() -> None:
        job = jobs.jobs[job_id]
        seen.append((job.status, len(jobs.outbox), job.tiff_key is not None and job.tiff_key in blobs.objects))

    renderer.while_copying = record_state

    await preparer.on_job_submitted(_submitted(job_id))

    assert seen == [(PENDING, 1, True)], "DocumentReady queued and the TIFF stored before the copies are made"
    assert renderer.on_disk_while_copying == ["fax.pdf", "fax.tif"], "the tenant's document is removed once rendered"
    tiff_key = jobs.jobs[job_id].tiff_key
    assert tiff_key and fax_pdf_key(tiff_key) in blobs.objects and fax_preview_key(tiff_key, 1) in blobs.objects


async def test_a_redelivery_after_a_crash_before_the_copies_makes_them(
    preparer: DocumentPreparer, jobs: MemoryJobs[Any], blobs: MemoryBlobs, renderer: Renderer
) -> None:
    job_id = await _uploaded(jobs, blobs, b"first", b"second")

    def crash() -> None:
        raise Crash

    renderer.while_copying = crash
    with pytest.raises(Crash):
        await preparer.on_job_submitted(_submitted(job_id))
    job = jobs.jobs[job_id]
    assert job.status == PENDING and job.tiff_key and fax_pdf_key(job.tiff_key) not in blobs.objects

    renderer.while_copying = None
    await preparer.on_job_submitted(_submitted(job_id))  # the unacked event, redelivered

    assert len(renderer.rendered) == 1 and len(jobs.outbox) == 1, "the recorded render is kept, not made again"
    assert renderer.copied[-1] == b"TIFF:first|second", "the copies are made from the recorded TIFF"
    assert blobs.objects[fax_pdf_key(job.tiff_key)] == b"PDF:TIFF:first|second"
    assert [blobs.objects[fax_preview_key(job.tiff_key, page)] for page in (1, 2)] == [b"PNG:1", b"PNG:2"]

    stored = dict(blobs.objects)
    await preparer.on_job_submitted(_submitted(job_id))  # once more: the copies are there, nothing is done
    assert blobs.objects == stored and len(renderer.copied) == 1


@pytest.mark.parametrize("how", ["changed", "deleted"])
async def test_a_job_changed_or_deleted_while_its_copies_are_made_leaves_no_litter(
    how: str, preparer: DocumentPreparer, jobs: MemoryJobs[Any], blobs: MemoryBlobs, renderer: Renderer
) -> None:
    """What the API does (fax_jobs.JobStore): commit the change or delete, then remove the render the row named,
    here before the copies are stored; the fetcher removes what it stored after."""
    job_id = await _uploaded(jobs, blobs, b"the document")
    upload = f"jobs/{job_id}/upload-0"

    def api_replaces_the_render() -> None:
        job = jobs.jobs[job_id]
        assert job.tiff_key
        render = fax_render_keys(job.tiff_key, job.pages)
        if how == "changed":
            jobs.change(job_id, {"to_number": "1555", "document": {"uploads": [upload]}, "to_name": "N"})
        else:
            del jobs.jobs[job_id]
        for key in render:
            blobs.objects.pop(key, None)

    renderer.while_copying = api_replaces_the_render

    await preparer.on_job_submitted(_submitted(job_id))

    assert set(blobs.objects) == {upload}


async def test_a_copy_that_cannot_be_made_leaves_the_fax_to_be_sent(
    preparer: DocumentPreparer, jobs: MemoryJobs[Any], blobs: MemoryBlobs, renderer: Renderer
) -> None:
    job_id = await _uploaded(jobs, blobs, b"the document")

    def time_out() -> None:
        raise RenderError("page previews timed out after 5 s")

    renderer.while_copying = time_out

    await preparer.on_job_submitted(_submitted(job_id))

    job = jobs.jobs[job_id]
    assert job.status == PENDING and job.tiff_key in blobs.objects and fax_pdf_key(job.tiff_key) not in blobs.objects
    assert [type(event) for event in jobs.outbox] == [DocumentReady]
