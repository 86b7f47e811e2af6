"""Render documents to TIFF-F and prove the result decodes.

Formats are sniffed from the bytes, never taken from a name or a Content-Type. PDF and PostScript go through
ghostscript, which draws every page scaled to fit without cropping (landscape pages rotated) onto a 1728 px wide A4
page at 204 x 98/196/392 dpi; Office documents become PDF through LibreOffice first; images and plain text go
through `fax_fetcher.raster` in a child process. Every converter is a subprocess (never on the event loop, killed
at the time limit, a crash costs only the child). The pages of all a job's documents are joined in order by
`tiffcp`, which also picks the compression (G4 for ECM, G3 2-D without). spandsp transmits whatever strips libtiff
hands it and reports success even when a page is truncated, so `validate_fax_tiff` decodes every page of the output
before it is accepted.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

GHOSTSCRIPT = "gs"
TIFFINFO = "tiffinfo"
TIFFCP = "tiffcp"
TIFF2PDF = "tiff2pdf"
FAX_WIDTH_PX = 1728
FAX_HEIGHT_PX = 2292
FAX_X_DPI = 204
FAX_Y_DPI = 196
FAX_Y_DPI_CHOICES = (98, 196, 392)
RESOLUTIONS = {"standard": 98, "fine": 196, "superfine": 392}
SNIFF_BYTES = 1024
DEFAULT_MAX_PIXELS = 100_000_000
# Address-space cap of the image child and ghostscript: a 100 MP RGB image decodes in ~300 MB, and a document
# built to exhaust memory must fail its own job, not take the host's memory from the other jobs.
CHILD_MEMORY_BYTES = 2 * 1024 * 1024 * 1024
PREVIEW_WIDTH_PX = 864

_OUTPUT_KEEP_BYTES = 16 * 1024
_GHOSTSCRIPT_OUTPUT = "rendered.tif"
_FAX_COMPRESSIONS = frozenset({"group3", "group4"})
_IMAGE_FORMATS = frozenset({"tiff", "png", "jpeg", "gif", "bmp"})
# Harmless libtiff chatter; anything else on tiffinfo's stderr means a page did not decode cleanly.
_BENIGN_TIFF_WARNINGS = re.compile(r"Unknown field with tag|ASCII value for tag .* does not end in null byte")


class RenderError(Exception):
    """str(error) is the job's error text."""


@dataclass(frozen=True)
class RenderOptions:
    """How a job wants its fax drawn: vertical resolution, compression (G4 needs ECM), how images become bilevel."""

    y_dpi: int = FAX_Y_DPI
    ecm: bool = True
    image_mode: str = "auto"  # auto: dither greys, threshold bilevel sources; or "dither" / "threshold"

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> RenderOptions:
        """Read `fax_resolution`, `fax_ecm` and `fax_image_mode` from a job request; RenderError if invalid."""
        resolution = request.get("fax_resolution") or "fine"
        if resolution not in RESOLUTIONS:
            raise RenderError(f"unknown fax_resolution {resolution!r} (standard, fine or superfine)")
        ecm = request.get("fax_ecm", True)
        if not isinstance(ecm, bool):
            raise RenderError("fax_ecm must be true or false")
        image_mode = request.get("fax_image_mode") or "auto"
        if image_mode not in ("auto", "dither", "threshold"):
            raise RenderError(f"unknown fax_image_mode {image_mode!r} (auto, dither or threshold)")
        return cls(y_dpi=RESOLUTIONS[resolution], ecm=ecm, image_mode=image_mode)

    @property
    def page_height_px(self) -> int:
        """An A4 page's height in fax rows at this resolution."""
        return round(FAX_HEIGHT_PX * self.y_dpi / FAX_Y_DPI)


@dataclass(frozen=True)
class RenderedFax:
    """A validated TIFF-F file and its page count."""

    tiff_path: Path
    pages: int


def sniff_format(head: bytes) -> str:
    """Name the format of a document from its first bytes; raise RenderError for what can't be faxed.

    Returns one of "pdf", "postscript", "tiff", "png", "jpeg", "gif", "bmp", "office" (Office/ODF/RTF, still to be
    confirmed by `_check_office_package` for ZIP files) or "text" (UTF-8 without control characters).
    """
    if not head:
        raise RenderError("empty document")
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.removeprefix(codecs.BOM_UTF8).startswith(b"%!") or head.startswith(b"\xc5\xd0\xd3\xc6"):
        return "postscript"
    for signature, name in _ACCEPTED_SIGNATURES:
        if head.startswith(signature):
            return name
    # Acrobat accepts a PDF header anywhere in the first kilobyte, and so does ghostscript.
    if b"%PDF-" in head[:SNIFF_BYTES]:
        return "pdf"
    description = _describe(head)
    if description == "plain text":
        return "text"
    raise RenderError(f"unsupported document format: {description}")


_ACCEPTED_SIGNATURES = (
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"PK\x03\x04", "office"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "office"),
    (b"{\\rtf", "office"),
)
_SIGNATURES = (
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
        return None
    if any(ord(char) < 0x20 and char not in "\t\n\r\f\x1b" for char in text):
        return None
    return text


async def render_to_fax_tiff(
    source: Path,
    dest: Path,
    *,
    options: RenderOptions | None = None,
    timeout_s: float = 180.0,
    max_pages: int = 500,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> RenderedFax:
    """Render one document `source` to a validated TIFF-F at `dest` (written only on success)."""
    return await render_documents(
        [source], dest, options=options, timeout_s=timeout_s, max_pages=max_pages, max_pixels=max_pixels
    )


async def render_documents(
    sources: Sequence[Path],
    dest: Path,
    *,
    options: RenderOptions | None = None,
    timeout_s: float = 180.0,
    max_pages: int = 500,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> RenderedFax:
    """Render `sources`, in order, to one validated TIFF-F at `dest` (written only on success).

    `timeout_s` bounds the whole job (every conversion, the join and the validation); `max_pages` the total.
    """
    options = options or RenderOptions()
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f".{dest.name}.", dir=dest.parent))
    try:
        try:
            async with asyncio.timeout(timeout_s):
                parts: list[Path] = []
                # Each document gets the whole page budget; the joined fax is held to it again in _accept.
                for index, source in enumerate(sources):
                    parts += await _render_one(source.resolve(), work / f"doc-{index}", options, max_pages, max_pixels)
                joined = work / "joined.tif"
                if len(parts) == 1 and parts[0].name == _GHOSTSCRIPT_OUTPUT:
                    # Ghostscript already wrote the job's compression: joining one file would only copy it.
                    joined = parts[0]
                else:
                    await _join(parts, joined, options)
                pages = await asyncio.to_thread(_accept, joined, dest, max_pages)
        except TimeoutError:
            raise RenderError(f"document conversion timed out after {timeout_s:g} s") from None
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    return RenderedFax(tiff_path=dest, pages=pages)


async def _render_one(source: Path, work: Path, options: RenderOptions, max_pages: int, max_pixels: int) -> list[Path]:
    """Convert one document into TIFF files under `work`: one multi-page file, or one file per page."""
    await asyncio.to_thread(work.mkdir)
    head = await asyncio.to_thread(_read_head, source)
    document_format = sniff_format(head)
    if document_format == "office":
        await asyncio.to_thread(_check_office_package, source)
        source = await _office_to_pdf(source, work)
        document_format = "pdf"
    if document_format in ("pdf", "postscript"):
        output = work / _GHOSTSCRIPT_OUTPUT
        if document_format == "pdf":
            await _refuse_long_pdf(source, max_pages)
        await _render(source, output, document_format, max_pages, options)
        return [output]
    await _rasterize(source, work, document_format, options, max_pages, max_pixels)
    return sorted(await asyncio.to_thread(lambda: list(work.glob("page-*.tif"))))


def _read_head(source: Path) -> bytes:
    with source.open("rb") as file:
        return file.read(SNIFF_BYTES)


def _check_office_package(source: Path) -> None:
    """A ZIP file is an Office document only if it is an OOXML package or an ODF one (not EPUB, JAR, ...)."""
    if not zipfile.is_zipfile(source):
        with source.open("rb") as file:
            if file.read(4) == b"PK\x03\x04":
                raise RenderError("could not convert document: corrupt ZIP archive")
        return  # legacy Office (OLE2) or RTF
    try:
        with zipfile.ZipFile(source) as package:
            names = set(package.namelist())
            mimetype = b""
            if "mimetype" in names:
                with package.open("mimetype") as entry:
                    mimetype = entry.read(100)
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError):
        raise RenderError("could not convert document: corrupt ZIP archive") from None
    if "[Content_Types].xml" not in names and not mimetype.startswith(b"application/vnd.oasis.opendocument"):
        raise RenderError("unsupported document format: ZIP archive")


async def _office_to_pdf(source: Path, work: Path) -> Path:
    office = shutil.which("soffice") or shutil.which("libreoffice")
    if office is None:
        raise RenderError("Office documents need LibreOffice, which is not installed")
    # A private profile per conversion: LibreOffice refuses to run twice on one profile.
    profile = work / "lo-profile"
    returncode, output = await _run_process(
        [
            office,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(work),
            str(source),
        ],
        missing="Office documents need LibreOffice, which is not installed",
    )
    pdf = work / (source.stem + ".pdf")
    if returncode != 0 or not pdf.exists():
        reason = output.strip().splitlines()[-1][:120] if output.strip() else f"exit status {returncode}"
        raise RenderError(f"could not convert document: LibreOffice failed ({reason})")
    return pdf


async def _rasterize(
    source: Path, work: Path, document_format: str, options: RenderOptions, max_pages: int, max_pixels: int
) -> None:
    returncode, output = await _run_process(
        [
            sys.executable,
            "-m",
            "fax_fetcher.raster",
            f"--format={document_format}",
            f"--y-dpi={options.y_dpi}",
            f"--image-mode={options.image_mode}",
            f"--max-pixels={max_pixels}",
            f"--max-pages={max_pages}",
            str(source),
            str(work),
        ],
        missing="image converter unavailable",
        memory_limit=CHILD_MEMORY_BYTES,
        split_output=True,
    )
    if returncode == 0:
        return
    message = output.strip().splitlines()[-1] if output.strip() else ""
    if returncode == 2 and message:
        raise RenderError(message)
    if returncode < 0:
        raise RenderError(f"could not convert document: the image decoder crashed (signal {-returncode})")
    raise RenderError(f"could not convert document: the image decoder failed (exit status {returncode})")


async def _join(parts: Sequence[Path], output: Path, options: RenderOptions) -> None:
    """Concatenate all pages and set the job's compression; tiffcp keeps each page's resolution tags."""
    compression = "g4" if options.ecm else "g3:2d:fill"
    returncode, messages = await _run_process(
        [TIFFCP, "-c", compression, *map(str, parts), str(output)],
        missing="fax assembly unavailable: tiffcp (libtiff-tools) is not installed",
    )
    if returncode != 0:
        raise RenderError(f"could not assemble fax pages: {messages.strip()[:160]}")


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


async def _render(source: Path, output: Path, document_format: str, max_pages: int, options: RenderOptions) -> None:
    returncode, messages = await _run_ghostscript(
        "-dSAFER",
        "-dNOINTERPOLATE",
        "-dBATCH",
        "-dNOPAUSE",
        "-dQUIET",
        "-sDEVICE=tiffg4" if options.ecm else "-sDEVICE=tiffg32d",
        f"-r{FAX_X_DPI}x{options.y_dpi}",
        f"-g{FAX_WIDTH_PX}x{options.page_height_px}",
        # FitPage (PDF, PostScript and EPS alike) scales, centres and, for landscape pages, rotates onto the media.
        "-dFitPage",
        "-dFIXEDMEDIA",
        # Drawing one page past the limit is enough to know the limit was exceeded.
        f"-dLastPage={max_pages + 1}",
        "-sOutputFile=" + str(output).replace("%", "%%"),
        str(source),
    )
    if returncode != 0 or await asyncio.to_thread(_output_size, output) == 0:
        raise _conversion_error(messages, document_format)


async def _run_ghostscript(*args: str) -> tuple[int, str]:
    return await _run_process(
        [GHOSTSCRIPT, *args],
        missing="document converter unavailable: ghostscript (gs) is not installed",
        memory_limit=CHILD_MEMORY_BYTES,
    )


async def _run_process(
    argv: Sequence[str], *, missing: str, memory_limit: int | None = None, split_output: bool = False
) -> tuple[int, str]:
    """Run a converter; return its exit status and the start of its output (stderr only with `split_output`).

    The child is killed if the caller is cancelled (the job's time limit), so nothing outlives its job.
    """

    def limit_memory() -> None:
        if memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=limit_memory if memory_limit is not None else None,
        )
    except FileNotFoundError:
        raise RenderError(missing) from None
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
    if split_output:
        return returncode, stderr.decode(errors="replace")
    return returncode, (stdout + b"\n" + stderr).decode(errors="replace")


async def write_pdf_copy(tiff: Path, pdf: Path, *, timeout_s: float = 120.0) -> None:
    """A PDF of the fax exactly as it will be sent (tiff2pdf embeds the CCITT pages without re-rendering)."""
    try:
        async with asyncio.timeout(timeout_s):
            returncode, messages = await _run_process(
                [TIFF2PDF, "-o", str(pdf), str(tiff)],
                missing="PDF copy unavailable: tiff2pdf (libtiff-tools) is not installed",
            )
    except TimeoutError:
        raise RenderError(f"PDF copy timed out after {timeout_s:g} s") from None
    if returncode != 0 or _output_size(pdf) == 0:
        raise RenderError(f"could not write the PDF copy: {messages.strip()[:160]}")


def write_previews(tiff: Path, out_dir: Path) -> list[Path]:
    """One greyscale PNG per fax page, half the fax width, with square pixels whatever the fax resolution.

    Blocking: call it through asyncio.to_thread. The input is our own validated TIFF-F, so its size is bounded.
    """
    previews: list[Path] = []
    with Image.open(tiff) as image:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            x_dpi, y_dpi = (float(value) for value in image.info.get("dpi", (FAX_X_DPI, FAX_Y_DPI)))
            height = max(1, round(image.height * PREVIEW_WIDTH_PX / image.width * x_dpi / y_dpi))
            preview = image.convert("L").resize((PREVIEW_WIDTH_PX, height), Image.Resampling.BOX)
            path = out_dir / f"preview-{index + 1}.png"
            preview.save(path, format="PNG", optimize=True)
            previews.append(path)
    return previews


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
                # Tags only: tiffinfo -D above has already decoded every strip, and a second full decode here
                # cost as much as the tiffcp join (0.3 s for 50 pages).
                _check_fax_page(image, index + 1)
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
