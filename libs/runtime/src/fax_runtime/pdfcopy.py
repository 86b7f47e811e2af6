"""A PDF of a fax TIFF, as the fetcher stores for a sent fax and the transmitter for a received one.

libtiff's ``tiff2pdf`` embeds the CCITT pages without re-rendering them. The TIFF may come from the far end of a
call or be drawn from a tenant's document, so tiff2pdf runs in the converter sandbox like every converter.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from fax_runtime.sandbox import Limits, Sandbox, SandboxError, private_directory

log = logging.getLogger(__name__)

TIFF2PDF = "tiff2pdf"


class PdfCopyError(RuntimeError):
    """No PDF could be made; str(error) is safe to show (no path, no tool output: those are logged)."""


async def tiff_to_pdf(sandbox: Sandbox, tiff: Path, pdf: Path, *, limits: Limits | None = None) -> None:
    """Write the PDF of `tiff` at `pdf`; PdfCopyError if tiff2pdf is missing or fails."""
    with private_directory("fax-pdf-", parent=pdf.parent) as run:
        try:
            result = await sandbox.run(
                [TIFF2PDF, "-o", "fax.pdf", "fax.tif"], cwd=run, inputs={"fax.tif": tiff}, limits=limits
            )
        except SandboxError as error:
            raise PdfCopyError("tiff2pdf (libtiff-tools) is not installed") from error
        made = run / "fax.pdf"
        if result.returncode != 0 or not await asyncio.to_thread(lambda: made.exists() and made.stat().st_size > 0):
            output = result.stderr.decode(errors="replace")[-300:]
            log.warning("tiff2pdf failed (exit %d): %s", result.returncode, output)
            raise PdfCopyError("the fax could not be converted to PDF")
        await asyncio.to_thread(shutil.move, made, pdf)
