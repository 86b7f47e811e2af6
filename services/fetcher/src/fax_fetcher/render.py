"""Render PDF and PostScript documents to TIFF-F and prove the result decodes.

Ghostscript runs as a subprocess (never on the event loop, killed on timeout) and draws every page, scaled to fit
without cropping, onto a 1728 x 2292 px page at 204 x 196 dpi: the full fax line width at fine resolution, A4 height.
spandsp transmits whatever strips libtiff hands it and reports success even when a page is truncated, so
`validate_fax_tiff` decodes every page of the output before it is accepted.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

GHOSTSCRIPT = "gs"
TIFFINFO = "tiffinfo"
FAX_WIDTH_PX = 1728
FAX_HEIGHT_PX = 2292
FAX_X_DPI = 204
FAX_Y_DPI = 196
FAX_Y_DPI_CHOICES = (98, 196, 392)
SNIFF_BYTES = 1024

_RENDER_ARGS = (
    "-dSAFER",
    "-dNOINTERPOLATE",
    "-dBATCH",
    "-dNOPAUSE",
    "-dQUIET",
    "-sDEVICE=tiffg4",
    f"-r{FAX_X_DPI}x{FAX_Y_DPI}",
    f"-g{FAX_WIDTH_PX}x{FAX_HEIGHT_PX}",
    # FitPage (PDF, PostScript and EPS alike) scales, centres and, for landscape pages, rotates onto the fixed media.
    "-dFitPage",
    "-dFIXEDMEDIA",
)
_OUTPUT_KEEP_BYTES = 16 * 1024
_FAX_COMPRESSIONS = frozenset({"group3", "group4"})
# Harmless libtiff chatter; anything else on tiffinfo's stderr means a page did not decode cleanly.
_BENIGN_TIFF_WARNINGS = re.compile(r"Unknown field with tag|ASCII value for tag .* does not end in null byte")


class RenderError(Exception):
    """str(error) is the job's error text."""


@dataclass(frozen=True)
class RenderedFax:
    """A validated TIFF-F file and its page count."""

    tiff_path: Path
    pages: int


def sniff_format(head: bytes) -> str:
    """Return "pdf" or "postscript" for the first bytes of a document; raise RenderError for anything else."""
    if not head:
        raise RenderError("empty document")
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.removeprefix(codecs.BOM_UTF8).startswith(b"%!") or head.startswith(b"\xc5\xd0\xd3\xc6"):
        return "postscript"
    # Acrobat accepts a PDF header anywhere in the first kilobyte, and so does ghostscript.
    if b"%PDF-" in head[:SNIFF_BYTES]:
        return "pdf"
    raise RenderError(f"unsupported document format: {_describe(head)}")


_SIGNATURES = (
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"PK\x03\x04", "ZIP archive (an Office document?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Microsoft Office document"),
    (b"{\\rtf", "RTF document"),
    (b"\x1f\x8b", "gzip archive"),
    (b"\x1b%-12345X", "PJL print job"),
)


def _describe(head: bytes) -> str:
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP image"
    text = _as_text(head)
    if text is None:
        return "binary data"
    start = text.lstrip().lower()
    if start.startswith(("<!doctype html", "<html")) or "<html" in start[:SNIFF_BYTES]:
        return "HTML page"
    if start.startswith("<?xml"):
        return "SVG image" if "<svg" in start else "XML document"
    return "plain text"


def _as_text(head: bytes) -> str | None:
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head.removeprefix(codecs.BOM_UTF8), final=False)
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    if any(ord(char) < 0x20 and char not in "\t\n\r\f\x1b" for char in text):
        return None
    return text


async def render_to_fax_tiff(
    source: Path, dest: Path, *, timeout_s: float = 180.0, max_pages: int = 500
) -> RenderedFax:
    """Render a PDF or PostScript `source` to a validated TIFF-F at `dest` (written only on success)."""
    head, source, partial = await asyncio.to_thread(_prepare, source, dest)
    try:
        document_format = sniff_format(head)
        try:
            async with asyncio.timeout(timeout_s):
                if document_format == "pdf":
                    await _refuse_long_pdf(source, max_pages)
                await _render(source, partial, document_format, max_pages)
        except TimeoutError:
            raise RenderError(f"document conversion timed out after {timeout_s:g} s") from None
        pages = await asyncio.to_thread(_accept, partial, dest, max_pages)
    finally:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
    return RenderedFax(tiff_path=dest, pages=pages)


def _prepare(source: Path, dest: Path) -> tuple[bytes, Path, Path]:
    """Read the document's head and reserve a partial output file next to `dest`."""
    with source.open("rb") as file:
        head = file.read(SNIFF_BYTES)
    fd, partial = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    os.close(fd)
    # An absolute path can never be taken for a ghostscript switch.
    return head, source.resolve(), Path(partial)


def _accept(partial: Path, dest: Path, max_pages: int) -> int:
    pages = validate_fax_tiff(partial)
    if pages > max_pages:
        raise RenderError(f"document has more than {max_pages} pages, the limit")
    partial.replace(dest)
    return pages


def _output_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


async def _refuse_long_pdf(source: Path, max_pages: int) -> None:
    """Count a PDF's pages before drawing any, so a huge document fails fast with its real page count."""
    returncode, output = await _run_ghostscript(
        "-q",
        "-dNODISPLAY",
        "-dSAFER",
        "-dBATCH",
        "-dNOPAUSE",
        f"--permit-file-read={source}",
        f"-sFile={source}",
        "-c",
        "File (r) file runpdfbegin pdfpagecount = quit",
    )
    counts = [int(line) for line in output.splitlines() if line.strip().isdigit()]
    if returncode != 0 or not counts:
        return  # leave the verdict to the render, which reports ghostscript's reason
    if counts[-1] == 0:
        raise _conversion_error(output, "pdf")
    if counts[-1] > max_pages:
        raise RenderError(f"document has {counts[-1]} pages, more than the {max_pages} page limit")


async def _render(source: Path, output: Path, document_format: str, max_pages: int) -> None:
    returncode, messages = await _run_ghostscript(
        *_RENDER_ARGS,
        # Drawing one page past the limit is enough to know the limit was exceeded.
        f"-dLastPage={max_pages + 1}",
        "-sOutputFile=" + str(output).replace("%", "%%"),
        str(source),
    )
    if returncode != 0 or await asyncio.to_thread(_output_size, output) == 0:
        raise _conversion_error(messages, document_format)


async def _run_ghostscript(*args: str) -> tuple[int, str]:
    """Run ghostscript; return its exit status and the start of its combined output. Killed if cancelled."""
    try:
        process = await asyncio.create_subprocess_exec(
            GHOSTSCRIPT,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise RenderError("document converter unavailable: ghostscript (gs) is not installed") from None
    assert process.stdout is not None and process.stderr is not None
    try:
        # A PostScript program can print without end; keep the start of each stream and discard the rest.
        stdout, stderr, returncode = await asyncio.gather(
            _read_bounded(process.stdout), _read_bounded(process.stderr), process.wait()
        )
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return returncode, (stdout + b"\n" + stderr).decode(errors="replace")


async def _read_bounded(stream: asyncio.StreamReader) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(64 * 1024):
        if len(kept) < _OUTPUT_KEEP_BYTES:
            kept += chunk[: _OUTPUT_KEEP_BYTES - len(kept)]
    return bytes(kept)


def _conversion_error(output: str, document_format: str) -> RenderError:
    """Name ghostscript's most telling complaint, kept short enough for a job's error text."""
    if "requires a password" in output:
        return RenderError("could not convert document: the PDF is password-protected")
    reason = ""
    for line in output.splitlines():
        line = line.strip().removeprefix("****").strip()
        if line.startswith("Error:"):
            reason = line.removeprefix("Error:").strip().rstrip(".")[:120]
            break
    if document_format == "pdf":
        return RenderError("could not convert document: not a valid PDF" + (f" ({reason})" if reason else ""))
    if reason:
        return RenderError(f"could not convert document: PostScript error {reason}")
    return RenderError("could not convert document: the PostScript document has no pages")


def validate_fax_tiff(path: Path, *, timeout_s: float = 120.0) -> int:
    """Decode every page of a TIFF-F file and return its page count; raise RenderError if it is not sendable.

    Blocking (it decodes whole files): call it through asyncio.to_thread or a worker process.
    """
    directories = _decode_with_libtiff(path, timeout_s)
    try:
        with Image.open(path) as image:
            pages = getattr(image, "n_frames", 1)
            for index in range(pages):
                image.seek(index)
                _check_fax_page(image, index + 1)
                image.load()
    except RenderError:
        raise
    except Exception as error:
        raise RenderError(f"rendered fax is unreadable: {error}") from None
    if pages != directories:
        raise RenderError(f"rendered fax is corrupt: libtiff sees {directories} pages, Pillow {pages}")
    if pages == 0:
        raise RenderError("rendered fax has no pages")
    return pages


def _decode_with_libtiff(path: Path, timeout_s: float) -> int:
    """Decode all strips with `tiffinfo -D`; return the number of pages. Pillow alone would accept damaged pages,
    because libtiff's fax decoder only warns about bad or missing code words and pads the rows."""
    try:
        result = subprocess.run(
            [TIFFINFO, "-D", str(path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError:
        raise RenderError("fax validation unavailable: tiffinfo (libtiff-tools) is not installed") from None
    except subprocess.TimeoutExpired:
        raise RenderError(f"fax validation timed out after {timeout_s:g} s") from None
    problems = [
        line.strip() for line in result.stderr.splitlines() if line.strip() and not _BENIGN_TIFF_WARNINGS.search(line)
    ]
    if result.returncode != 0 or problems:
        detail = problems[0] if problems else f"tiffinfo exit status {result.returncode}"
        raise RenderError(f"rendered fax is corrupt: {detail}")
    return result.stdout.count("TIFF Directory at offset")


def _check_fax_page(image: Image.Image, page: int) -> None:
    width, _height = image.size
    if width != FAX_WIDTH_PX:
        raise RenderError(f"rendered fax page {page} is {width} px wide, not {FAX_WIDTH_PX}")
    if image.mode != "1":
        raise RenderError(f"rendered fax page {page} is not bilevel (mode {image.mode})")
    compression = image.info.get("compression")
    if compression not in _FAX_COMPRESSIONS:
        raise RenderError(f"rendered fax page {page} is not G3/G4 compressed ({compression})")
    x_dpi, y_dpi = (float(value) for value in image.info.get("dpi", (0, 0)))
    # 8 dots/mm is 203.2 dpi, so some writers round differently; spandsp maps nearby values to the same mode.
    if abs(x_dpi - FAX_X_DPI) > 1.5 or not any(abs(y_dpi - choice) <= 2 for choice in FAX_Y_DPI_CHOICES):
        raise RenderError(f"rendered fax page {page} has resolution {x_dpi:g}x{y_dpi:g} dpi, not a fax resolution")
