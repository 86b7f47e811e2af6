"""Turns a submitted job's document into a validated fax TIFF in S3, or ends the job with the reason it can't."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from fax_contracts import JobSubmitted
from fax_fetcher.config import FetcherSettings
from fax_fetcher.download import DocumentRequest, FetchError, fetch_document
from fax_fetcher.render import RenderError, render_to_fax_tiff
from fax_fetcher.store import FetcherStore
from fax_runtime.blobs import BlobStore
from fax_runtime.network_guard import BlockedAddressError, NetworkGuard

log = logging.getLogger(__name__)


def tiff_key(job_id: object) -> str:
    return f"jobs/{job_id}/fax.tif"


def document_request(document: dict[str, Any]) -> DocumentRequest:
    return DocumentRequest(
        url=document["url"],
        method=document.get("method", "get"),
        host=document.get("host"),
        referer=document.get("referer"),
        content_type=document.get("content_type"),
        content=document.get("content"),
    )


class DocumentPreparer:
    def __init__(self, store: FetcherStore, blobs: BlobStore, settings: FetcherSettings) -> None:
        self._store = store
        self._blobs = blobs
        self._settings = settings
        self._guard = NetworkGuard.from_setting(settings.allow_networks)

    async def on_job_submitted(self, event: JobSubmitted) -> None:
        job = await self._store.job_to_prepare(event.job_id)
        if job is None:
            log.info("job %s: document already prepared or job gone; nothing to do", event.job_id)
            return
        try:
            key, pages = await self._prepare(event, job["request"]["document"])
        except (FetchError, BlockedAddressError, RenderError) as exc:
            log.info("job %s failed: %s", event.job_id, exc)
            await self._store.mark_failed(event.job_id, str(exc))
            return
        await self._store.mark_ready(event.job_id, key, pages)
        log.info("job %s: %d page(s) ready", event.job_id, pages)

    async def _prepare(self, event: JobSubmitted, document: dict[str, Any]) -> tuple[str, int]:
        fetched = await fetch_document(
            document_request(document), guard=self._guard, max_bytes=self._settings.max_document_bytes
        )
        with tempfile.TemporaryDirectory(prefix="fax-fetch-") as tmp:
            source = Path(tmp) / "source"
            source.write_bytes(fetched.body)
            rendered = await render_to_fax_tiff(
                source,
                Path(tmp) / "fax.tif",
                timeout_s=self._settings.conversion_timeout_s,
                max_pages=self._settings.max_pages,
            )
            # render_to_fax_tiff decodes every page before it returns: spandsp would send a truncated TIFF.
            pages = rendered.pages
            key = tiff_key(event.job_id)
            await self._blobs.put_bytes(f"jobs/{event.job_id}/original", fetched.body)
            await self._blobs.put_file(key, rendered.tiff_path, content_type="image/tiff")
        return key, pages
