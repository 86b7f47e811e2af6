"""Draws the page previews of a stored document (a Fax.to file) from the document rendered as it will be faxed.

The render is the one a job gets (same code, limits and validation), so a preview shows what the far end will
print, the page count becomes exact, and a file that could never be faxed is known before anyone sends it.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

from fax_contracts import DocumentStored
from fax_fetcher.config import FetcherSettings
from fax_fetcher.store import FetcherStore
from fax_render.render import Converters, RenderError, RenderOptions, render_documents, write_previews
from fax_runtime.blobs import BlobNotFound, BlobStore, document_preview_key

log = logging.getLogger(__name__)


class DocumentPreviewer:
    """Handles DocumentStored: render the document, store one PNG per page, record the outcome on its row."""

    def __init__(
        self, store: FetcherStore, blobs: BlobStore, settings: FetcherSettings, converters: Converters
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._settings = settings
        self._converters = converters

    async def on_document_stored(self, event: DocumentStored) -> None:
        if not await self._store.preview_pending(event.document_id):
            log.info("document %s: previews already drawn or document gone", event.document_id)
            return
        try:
            keys = await self._draw(event.object_key)
        except RenderError as exc:
            log.info("document %s cannot be faxed: %s", event.document_id, exc)
            await self._store.preview_failed(event.document_id, str(exc))
            return
        if not await self._store.preview_ready(event.document_id, len(keys)):
            # Deleted while it rendered: the delete found no previews to remove, so they go here.
            for key in keys:
                await self._blobs.delete(key)

    async def _draw(self, object_key: str) -> list[str]:
        with tempfile.TemporaryDirectory(prefix="fax-preview-") as tmp:
            work = Path(tmp)
            try:
                body = await self._blobs.get_bytes(object_key)
            except BlobNotFound:
                raise RenderError("the uploaded file is missing") from None
            if len(body) > self._settings.max_document_bytes:
                limit = self._settings.max_document_bytes // (1024 * 1024)
                raise RenderError(f"document larger than {limit} MB limit")
            source = work / "source"
            await asyncio.to_thread(source.write_bytes, body)
            rendered = await render_documents(
                [source],
                work / "fax.tif",
                options=RenderOptions.from_request({}),
                timeout_s=self._settings.conversion_timeout_s,
                max_pages=self._settings.max_pages,
                max_pixels=self._settings.max_image_pixels,
                converters=self._converters,
            )
            previews = await write_previews(
                rendered.tiff_path, work, timeout_s=self._settings.conversion_timeout_s, converters=self._converters
            )
            keys = [document_preview_key(object_key, page) for page in range(1, len(previews) + 1)]
            for key, path in zip(keys, previews, strict=True):
                await self._blobs.put_file(key, path, content_type="image/png")
        return keys
