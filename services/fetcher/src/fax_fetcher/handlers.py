"""Turns a submitted job's documents into a validated fax TIFF in S3, or ends the job with the reason it can't."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from fax_contracts import JobSubmitted
from fax_fetcher.config import FetcherSettings
from fax_jobs import DocumentJobs
from fax_render.render import (
    Converters,
    RenderError,
    RenderOptions,
    render_documents,
    sniff_file,
    write_pdf_copy,
    write_previews,
)
from fax_runtime.blobs import (
    BlobNotFound,
    BlobStore,
    delete_quietly,
    fax_original_key,
    fax_pdf_key,
    fax_preview_key,
    fax_render_keys,
    rendered_fax_key,
)
from fax_runtime.download import DocumentRequest, FetchError, fetch_document
from fax_runtime.logs import fax_context
from fax_runtime.metrics import default_metrics
from fax_runtime.network_guard import BlockedAddressError, NetworkGuard

log = logging.getLogger(__name__)


def document_request(document: dict[str, Any]) -> DocumentRequest:
    return DocumentRequest(
        url=document["url"],
        method=document.get("method", "get"),
        host=document.get("host"),
        referer=document.get("referer"),
        content_type=document.get("content_type"),
        content=document.get("content"),
    )


def upload_keys(job_id: object, account_id: str, document: dict[str, Any]) -> list[str] | None:
    """The S3 keys of a job's uploaded documents, in order; None when the document is to be fetched by URL.

    Only keys under the job's own prefix, or the account's shared uploads (one VoipNow fax to many recipients),
    are accepted, so a request can never make the fetcher read (and fax) another account's document.
    """
    uploads = document.get("uploads")
    if uploads is None:
        if not document.get("url"):
            raise RenderError("the job has no document: neither a document URL nor uploaded files")
        return None
    if not isinstance(uploads, list) or not uploads or not all(isinstance(key, str) for key in uploads):
        raise RenderError("document uploads must be a non-empty list of object keys")
    prefixes = (f"jobs/{job_id}/", f"shared/{account_id}/")
    for key in uploads:
        if not key.startswith(prefixes) or ".." in key:
            raise RenderError(f"document upload {key!r} does not belong to this job")
    return uploads


class DocumentPreparer:
    """Handles JobSubmitted: fetch or read the documents, render them as one fax and record it ready, then make its
    PDF copy and page previews.

    The copies are made after the fax is recorded ready: the transmitter dials meanwhile, as nothing it sends needs
    them. The event is acked only when this returns, so a crash between the two redelivers it, and a redelivery that
    finds the recorded render without its copies makes them.
    """

    def __init__(self, jobs: DocumentJobs, blobs: BlobStore, settings: FetcherSettings, converters: Converters) -> None:
        self._jobs = jobs
        self._blobs = blobs
        self._settings = settings
        self._converters = converters
        self._guard = NetworkGuard.from_setting(settings.allow_networks)

    async def on_job_submitted(self, event: JobSubmitted) -> None:
        with fax_context(event.job_id):
            await self._prepare_job(event)

    async def _prepare_job(self, event: JobSubmitted) -> None:
        job = await self._jobs.job_to_prepare(event.job_id)
        if job is None:
            await self._copies_of_recorded_render(event)
            return
        metrics = default_metrics()
        with tempfile.TemporaryDirectory(prefix="fax-fetch-") as tmp:
            work = Path(tmp)
            try:
                key, pages = await self._prepare(event, job.request, job.request_revision, work)
            except (FetchError, BlockedAddressError, RenderError) as exc:
                log.info("job %s failed: %s", event.job_id, exc)
                metrics.documents.labels("unknown", "error").inc()
                await self._jobs.document_failed(event.job_id, str(exc), job.request_revision)
                return
            if not await self._jobs.document_ready(event.job_id, key, pages, job.request_revision):
                # The job was changed, another render of its request was recorded first, or it is gone: no row names
                # this render's own directory, so nothing that is or will be sent is removed with it.
                log.info("job %s: render of request %d not needed; removed", event.job_id, job.request_revision)
                await delete_quietly(self._blobs, fax_render_keys(key, pages))
                return
            # An upload waits in attaching_files, a URL job in pending, until its document is ready.
            waited = (dt.datetime.now(dt.UTC) - event.occurred_at).total_seconds()
            metrics.job_state_seconds.labels(job.status).observe(max(0.0, waited))
            log.info("job %s: %d page(s) ready", event.job_id, pages)
            await self._make_copies(event.job_id, key, pages, work / "fax.tif", work)

    async def _copies_of_recorded_render(self, event: JobSubmitted) -> None:
        """A redelivery: the document was recorded ready; make its copies if they are missing (the fetcher stopped
        between recording it and storing them)."""
        render = await self._jobs.recorded_render(event.job_id)
        if render is None:
            log.info("job %s: document already prepared or job gone; nothing to do", event.job_id)
            return
        if await self._blobs.size(fax_pdf_key(render.tiff_key)) is not None:  # stored last: the copies are complete
            log.info("job %s: document and its copies already prepared; nothing to do", event.job_id)
            return
        log.warning("job %s: document ready without its PDF copy and previews; making them now", event.job_id)
        with tempfile.TemporaryDirectory(prefix="fax-copies-") as tmp:
            work = Path(tmp)
            try:
                await self._blobs.download(render.tiff_key, work / "fax.tif")
            except BlobNotFound:
                log.info("job %s: its fax was removed meanwhile; no copies to make", event.job_id)
                return
            await self._make_copies(event.job_id, render.tiff_key, render.pages, work / "fax.tif", work)

    async def _make_copies(self, job_id: uuid.UUID, tiff_key: str, pages: int | None, tiff: Path, work: Path) -> None:
        """Store the PDF copy and the page previews beside the recorded fax ``tiff``.

        A copy that cannot be made is logged, not raised: the fax can be sent without it, and its readers manage
        (the notifier converts the TIFF, the API answers that there is no PDF). Any other error (S3) is raised: the
        event is redelivered and the copies made then.
        """
        timeout_s = self._settings.conversion_timeout_s
        try:
            await write_pdf_copy(tiff, work / "fax.pdf", timeout_s=timeout_s, converters=self._converters)
            previews = await write_previews(tiff, work, timeout_s=timeout_s, converters=self._converters)
        except RenderError as exc:
            log.warning("job %s: its fax is ready but has no PDF copy or previews: %s", job_id, exc)
            return
        for page, path in enumerate(previews, start=1):
            await self._blobs.put_file(fax_preview_key(tiff_key, page), path, content_type="image/png")
        # The PDF goes last: a redelivery that finds it knows the copies are complete.
        await self._blobs.put_file(fax_pdf_key(tiff_key), work / "fax.pdf", content_type="application/pdf")
        current = await self._jobs.recorded_render(job_id)
        if current is None or current.tiff_key != tiff_key:
            # Changed, deleted or its attachment removed while the copies were made: whoever did it removed the
            # render's objects once it committed, perhaps before these were stored, so they go here.
            log.info("job %s: its render was replaced or removed while its copies were made; removed", job_id)
            await delete_quietly(self._blobs, fax_render_keys(tiff_key, pages))

    async def _prepare(
        self, event: JobSubmitted, request: dict[str, Any], request_revision: int, work: Path
    ) -> tuple[str, int]:
        """Render the job's documents into ``work``/fax.tif and store it (and a fetched original) under a new key."""
        document = request.get("document") or {}
        tiff_key = rendered_fax_key(event.job_id, request_revision, uuid.uuid4().hex)
        options = RenderOptions.from_request(request)
        keys = upload_keys(event.job_id, event.account_id, document)
        original: bytes | None = None  # stored with the render only once it succeeded: no failed render leaves litter
        # The documents are removed once rendered: only the fax stays on disk while its copies are made.
        inputs = work / "sources"
        await asyncio.to_thread(inputs.mkdir)
        try:
            if keys is None:
                fetched = await fetch_document(
                    document_request(document), guard=self._guard, max_bytes=self._settings.max_document_bytes
                )
                sources = [inputs / "source-0"]
                await asyncio.to_thread(sources[0].write_bytes, fetched.body)
                original = fetched.body
            else:
                sources = [await self._read_upload(key, inputs / f"source-{index}") for index, key in enumerate(keys)]
            document_format = await asyncio.to_thread(_format_of, sources[0])
            began = time.monotonic()
            rendered = await render_documents(
                sources,
                work / "fax.tif",
                options=options,
                timeout_s=self._settings.conversion_timeout_s,
                max_pages=self._settings.max_pages,
                max_pixels=self._settings.max_image_pixels,
                converters=self._converters,
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, inputs, True)
        metrics = default_metrics()
        metrics.conversion_seconds.labels(document_format).observe(time.monotonic() - began)
        metrics.documents.labels(document_format, "ok").inc()
        # render_documents decodes every page before it returns: spandsp would send a truncated TIFF.
        if original is not None:
            await self._blobs.put_bytes(fax_original_key(tiff_key), original)
        # The TIFF goes last: its key in the job row is what says the document is ready.
        await self._blobs.put_file(tiff_key, rendered.tiff_path, content_type="image/tiff")
        return tiff_key, rendered.pages

    async def _read_upload(self, key: str, path: Path) -> Path:
        try:
            body = await self._blobs.get_bytes(key)
        except BlobNotFound:
            raise RenderError(f"uploaded document {key} is missing") from None
        if len(body) > self._settings.max_document_bytes:
            raise RenderError(f"document larger than {self._settings.max_document_bytes // (1024 * 1024)} MB limit")
        await asyncio.to_thread(path.write_bytes, body)
        return path


def _format_of(source: Path) -> str:
    """The first document's sniffed format, a small fixed set fit for a metric label."""
    try:
        return sniff_file(source)
    except RenderError:
        return "unsupported"
