"""The fax attached to an email: the stored PDF copy, else the TIFF converted with ``tiff2pdf``, or the TIFF itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fax_runtime.blobs import BlobNotFound, BlobStore, fax_pdf_key
from fax_runtime.pdfcopy import tiff_to_pdf as write_pdf
from fax_runtime.sandbox import Sandbox, private_directory


async def tiff_to_pdf(tiff: bytes, sandbox: Sandbox) -> bytes:
    """Convert with libtiff's ``tiff2pdf`` in the converter sandbox (G4 pages pass through without recompression)."""
    with private_directory("fax-notify-") as work:
        source, target = Path(work) / "fax.tif", Path(work) / "fax.pdf"
        await asyncio.to_thread(source.write_bytes, tiff)
        await write_pdf(sandbox, source, target)
        return await asyncio.to_thread(target.read_bytes)


class FaxAttachments:
    """Finds or makes the file to attach; ``fmt`` is "pdf", "tiff" or "none"."""

    def __init__(self, blobs: BlobStore, fmt: str, sandbox: Sandbox) -> None:
        self._blobs = blobs
        self._fmt = fmt
        self._sandbox = sandbox

    async def for_job(self, job_id: str, tiff: str | None = None) -> tuple[str, str, bytes] | None:
        """``(filename, content_type, data)`` or None (attachments off, or nothing stored for this fax)."""
        if self._fmt == "none":
            return None
        # Deliveries planned before renders were kept per revision carry no key: theirs is the job's old place.
        source = tiff or f"jobs/{job_id}/fax.tif"
        if self._fmt == "pdf":
            try:
                return ("fax.pdf", "application/pdf", await self._blobs.get_bytes(fax_pdf_key(source)))
            except BlobNotFound:
                pass
        try:
            data = await self._blobs.get_bytes(source)
        except BlobNotFound:
            return None
        if self._fmt == "tiff":
            return ("fax.tif", "image/tiff", data)
        return ("fax.pdf", "application/pdf", await tiff_to_pdf(data, self._sandbox))
