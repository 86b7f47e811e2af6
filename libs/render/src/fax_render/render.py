"""Render documents to TIFF-F and prove every page decodes.

Formats are sniffed from the bytes (by structure, never by a name or a Content-Type). PDF and PostScript go through
ghostscript, which draws every page scaled to fit without cropping (landscape pages rotated) onto a 1728 px wide A4
page at 204 x 98/196/392 dpi; Office documents become PDF through LibreOffice first; images and plain text go
through `fax_render.raster`. Every converter writes one file per page, already compressed as the job wants (G4 for
ECM, G3 2-D without), and runs in `fax_runtime.sandbox`: a private directory holding only its input and its output,
no network, no other tenant's files, a memory, CPU and file-size limit, killed at the job's time limit.

spandsp transmits whatever strips libtiff hands it and reports success even when a page is truncated, so every page
is decoded (`fax_render.pagecheck`, sandboxed too) before it is accepted; ghostscript's pages are checked while it
still draws the next ones. The checked pages are then joined into one file by copying their compressed strips
(`fax_render.tiff`).

A job's error text says what was wrong with the document, never a path, a Python exception or a library's message:
those go to the log.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import math
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fax_render
from fax_render.tiff import FaxAssembler, TiffError, check_fax_page, read_pages
from fax_runtime.pdfcopy import PdfCopyError, tiff_to_pdf
from fax_runtime.sandbox import Limits, Sandbox, SandboxError, kill, python_paths, read_bounded

log = logging.getLogger(__name__)

GHOSTSCRIPT = "gs"
FAX_WIDTH_PX = 1728
FAX_HEIGHT_PX = 2292
FAX_X_DPI = 204
FAX_Y_DPI = 196
RESOLUTIONS = {"standard": 98, "fine": 196, "superfine": 392}
SNIFF_BYTES = 1024
DEFAULT_MAX_PIXELS = 100_000_000
# A converter run's address space: a 100 MP image decodes in ~300 MB, ghostscript draws a fax page in far less. A
# document built to exhaust memory fails its own job instead of taking the fetcher's (FAX_RENDER_MEMORY_MB).
DEFAULT_MEMORY_BYTES = 1024 * 1024 * 1024
DEFAULT_FILE_BYTES = 256 * 1024 * 1024
PREVIEW_WIDTH_PX = 864

_PAGE_GLOB = "page-*.tif"
# Isolated mode (-I): the child reads no PYTHON* variable and no user site, and does not import from its directory.
_RASTER = (sys.executable, "-I", "-m", "fax_render.raster")
_CHECK_INTERVAL_S = 0.02
_FAX_COMPRESSIONS = {True: "group4", False: "group3"}
# A reason ghostscript gives is shown only if it names no file: paths belong to the sandbox, not to the user.
_PATHLIKE = re.compile(r"/[\w.\-]+/|\\")


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
class Converters:
    """Where converters run (the sandbox) and what each run may use."""

    sandbox: Sandbox
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    file_bytes: int = DEFAULT_FILE_BYTES

    def limits(self, timeout_s: float) -> Limits:
        return Limits(
            cpu_seconds=max(1, math.ceil(timeout_s)), memory_bytes=self.memory_bytes, file_bytes=self.file_bytes
        )


def converter_sandbox(mode: str = "auto") -> Sandbox:
    """The sandbox for this package's converters: they may read this Python and this library's own modules."""
    package_root = Path(fax_render.__file__).resolve().parent.parent
    return Sandbox.from_setting(mode, readable=[*python_paths(), package_root])


_default: Converters | None = None


def default_converters() -> Converters:
    """Converters with the default limits in a sandbox chosen automatically (made on first use)."""
    global _default
    if _default is None:
        _default = Converters(converter_sandbox("auto"))
    return _default


@dataclass(frozen=True)
class RenderedFax:
    """A validated TIFF-F file and its page count."""

    tiff_path: Path
    pages: int


def sniff_format(head: bytes, tail: bytes = b"") -> str:
    """Name the format of a document from its first (and last) bytes; raise RenderError for what can't be faxed.

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
    # Acrobat accepts a PDF header anywhere in the first kilobyte, and so does ghostscript; but a letter that
    # mentions "%PDF-" is still a letter: a PDF also has its cross-reference trailer at the end.
    if _PDF_HEADER.search(head[:SNIFF_BYTES]) and (b"startxref" in tail or b"%%EOF" in tail):
        return "pdf"
    description = _describe(head)
    if description == "plain text":
        return "text"
    raise RenderError(f"unsupported document format: {description}")


def sniff_file(path: Path) -> str:
    """`sniff_format` of a file (blocking: it reads the file's first and last kilobyte)."""
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
        size = file.seek(0, 2)
        file.seek(max(0, size - SNIFF_BYTES))
        tail = file.read(SNIFF_BYTES)
    return sniff_format(head, tail)


_PDF_HEADER = re.compile(rb"%PDF-\d\.\d")
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
    converters: Converters | None = None,
) -> RenderedFax:
    """Render one document `source` to a validated TIFF-F at `dest` (written only on success)."""
    return await render_documents(
        [source],
        dest,
        options=options,
        timeout_s=timeout_s,
        max_pages=max_pages,
        max_pixels=max_pixels,
        converters=converters,
    )


async def render_documents(
    sources: Sequence[Path],
    dest: Path,
    *,
    options: RenderOptions | None = None,
    timeout_s: float = 180.0,
    max_pages: int = 500,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    converters: Converters | None = None,
) -> RenderedFax:
    """Render `sources`, in order, to one validated TIFF-F at `dest` (written only on success).

    `timeout_s` bounds the whole job (every conversion, the checks and the join); `max_pages` the total.
    """
    job = _RenderJob(converters or default_converters(), options or RenderOptions(), timeout_s, max_pages, max_pixels)
    try:
        async with asyncio.timeout(timeout_s):
            return await job.render(sources, dest)
    except TimeoutError:
        raise RenderError(f"document conversion timed out after {timeout_s:g} s") from None


@dataclass
class _RenderJob:
    converters: Converters
    options: RenderOptions
    timeout_s: float
    max_pages: int
    max_pixels: int
    checker: _PageChecker | None = field(default=None)
    assembler: FaxAssembler = field(default_factory=FaxAssembler)

    @property
    def sandbox(self) -> Sandbox:
        return self.converters.sandbox

    @property
    def limits(self) -> Limits:
        return self.converters.limits(self.timeout_s)

    async def render(self, sources: Sequence[Path], dest: Path) -> RenderedFax:
        work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f".{dest.name}.", dir=dest.parent))
        try:
            self.checker = _PageChecker(self.sandbox, work, self.limits)
            # Each document gets the whole page budget; the joined fax is held to it again below.
            for index, source in enumerate(sources):
                await self._render_one(source.resolve(), work / f"doc-{index}")
            if self.assembler.pages > self.max_pages:
                raise RenderError(f"document has more than {self.max_pages} pages, the limit")
            joined = work / "joined.tif"
            await asyncio.to_thread(self.assembler.write, joined)
            await asyncio.to_thread(joined.replace, dest)
            return RenderedFax(tiff_path=dest, pages=self.assembler.pages)
        finally:
            if self.checker is not None:
                await self.checker.close()
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _render_one(self, source: Path, run: Path) -> None:
        """Convert one document into page files, check each and add it to the fax."""
        await asyncio.to_thread(run.mkdir, mode=0o700)
        document_format = await asyncio.to_thread(sniff_file, source)
        if document_format == "office":
            await asyncio.to_thread(_check_office_package, source)
            source = await self._office_to_pdf(source, run / "office")
            document_format = "pdf"
        if document_format in ("pdf", "postscript"):
            await self._ghostscript(source, run / "pages", document_format)
        else:
            await self._rasterize(source, run / "pages", document_format)

    async def _ghostscript(self, source: Path, run: Path, document_format: str) -> None:
        await asyncio.to_thread(run.mkdir, mode=0o700)
        inside = self.sandbox.workdir(run)
        name = "document.pdf" if document_format == "pdf" else "document.ps"
        argv = [
            GHOSTSCRIPT,
            "-dSAFER",
            f"--permit-file-read={inside}/{name}",
            "-dNOINTERPOLATE",
            "-dBATCH",
            "-dNOPAUSE",
            "-dQUIET",
            "-sDEVICE=tiffg4" if self.options.ecm else "-sDEVICE=tiffg32d",
            f"-r{FAX_X_DPI}x{self.options.y_dpi}",
            f"-g{FAX_WIDTH_PX}x{self.options.page_height_px}",
            # FitPage (PDF, PostScript and EPS alike) scales, centres and, for landscape pages, rotates onto the media.
            "-dFitPage",
            "-dFIXEDMEDIA",
            # Drawing one page past the limit is enough to know the limit was exceeded.
            f"-dLastPage={self.max_pages + 1}",
            f"-sOutputFile={inside}/page-%05d.tif",
        ]
        if document_format == "pdf":
            # What ghostscript's runpdf does (errors reported, not fatal), with the page count first: a huge PDF fails
            # at once with its real page count, and the file is parsed once.
            argv += [
                "-c",
                f"({inside}/{name}) (r) file {{ runpdfbegin pdfpagecount dup (PAGES ) print = flush "
                f"{self.max_pages} gt {{ quit }} if process_trailer_attrs runpdfpagerange dopdfpages runpdfend }} "
                "stopped { (   **** Error: PDF interpreter encountered an error processing the file.) = } if",
            ]
        else:
            argv.append(f"{inside}/{name}")
        process = await self._start(argv, run, {name: source}, "ghostscript (gs)")
        assert process.stdout is not None and process.stderr is not None
        output = asyncio.gather(read_bounded(process.stdout), read_bounded(process.stderr))
        queued = 0
        checks: list[tuple[Path, asyncio.Future[str]]] = []
        assert self.checker is not None
        try:
            await self.checker.start()  # boots while ghostscript draws the first page
            # Check each page as soon as ghostscript has moved on to the next one, and add it to the fax once it
            # passed, while ghostscript draws on.
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(process.wait()), _CHECK_INTERVAL_S)
                done = process.returncode is not None
                pages = sorted(await asyncio.to_thread(lambda: list(run.glob(_PAGE_GLOB))))
                if done and process.returncode != 0:
                    break
                for page in (pages if done else pages[:-1])[queued:]:
                    queued += 1
                    if queued <= self.max_pages:
                        checks.append((page, await self.checker.submit(page)))
                while checks and checks[0][1].done():
                    await self._add(*checks.pop(0))
                if done:
                    break
            stdout, stderr = await output
        finally:
            await kill(process)
            output.cancel()
        messages = (stdout + b"\n" + stderr).decode(errors="replace")
        counts = [int(line.split()[1]) for line in messages.splitlines() if re.fullmatch(r"PAGES \d+", line.strip())]
        if counts and counts[-1] > self.max_pages:
            raise RenderError(f"document has {counts[-1]} pages, more than the {self.max_pages} page limit")
        if process.returncode != 0 or not queued:
            raise _conversion_error(messages, document_format)
        if queued > self.max_pages:
            raise RenderError(f"document has more than {self.max_pages} pages, the limit")
        for page, verdict in checks:
            await self._add(page, verdict)

    async def _rasterize(self, source: Path, run: Path, document_format: str) -> None:
        await asyncio.to_thread(run.mkdir, mode=0o700)
        argv = [
            *_RASTER,
            "pages",
            f"--format={document_format}",
            f"--y-dpi={self.options.y_dpi}",
            f"--image-mode={self.options.image_mode}",
            f"--compression={_FAX_COMPRESSIONS[self.options.ecm]}",
            f"--max-pixels={self.max_pixels}",
            f"--max-pages={self.max_pages}",
            "document",
        ]
        assert self.checker is not None
        await self.checker.start()  # boots while the image converter runs
        result = await _run(self.sandbox, argv, run, {"document": source}, self.limits, "the image converter")
        if result.returncode != 0:
            raise _raster_error(result.returncode, result.stderr)
        pages = sorted(await asyncio.to_thread(lambda: list(run.glob(_PAGE_GLOB))))
        checks = [(page, await self.checker.submit(page)) for page in pages]
        for page, verdict in checks:
            await self._add(page, verdict)

    async def _office_to_pdf(self, source: Path, run: Path) -> Path:
        office = shutil.which("soffice") or shutil.which("libreoffice")
        if office is None:
            raise RenderError("Office documents need LibreOffice, which is not installed")
        await asyncio.to_thread(run.mkdir, mode=0o700)
        inside = self.sandbox.workdir(run)
        # A private profile per conversion: LibreOffice refuses to run twice on one profile.
        argv = [
            office,
            f"-env:UserInstallation=file://{inside}/.profile",
            "--headless",
            "--norestore",
            "--convert-to",
            "pdf",
            "--outdir",
            inside,
            f"{inside}/document",
        ]
        result = await _run(self.sandbox, argv, run, {"document": source}, self.limits, "LibreOffice")
        pdf = run / "document.pdf"
        if result.returncode != 0 or not await asyncio.to_thread(pdf.exists):
            log.info("LibreOffice failed (exit %d): %s", result.returncode, _tail(result.stdout + result.stderr))
            raise RenderError("could not convert document: LibreOffice could not read it")
        return pdf

    async def _start(
        self, argv: list[str], run: Path, inputs: Mapping[str, Path], what: str
    ) -> asyncio.subprocess.Process:
        try:
            return await self.sandbox.start(argv, cwd=run, inputs=inputs, limits=self.limits)
        except SandboxError as error:
            log.error("%s could not start: %s", what, error)
            raise RenderError(f"document converter unavailable: {what} is not installed") from None

    async def _add(self, page: Path, check: asyncio.Future[str]) -> None:
        """Add a page file to the fax once its decode check passed."""
        verdict = await check
        if not verdict.startswith("ok"):
            log.warning("a rendered page does not decode: %s", verdict)
            raise RenderError("rendered fax is corrupt")
        try:
            await asyncio.to_thread(lambda: self.assembler.add(page.read_bytes()))
        except TiffError as error:
            log.warning("a rendered page cannot join the fax: %s", error)
            raise RenderError(f"rendered fax {error}") from None


class _PageChecker:
    """One `fax_render.pagecheck` child for a render job, fed page files as they are written."""

    def __init__(self, sandbox: Sandbox, work: Path, limits: Limits, readable: Sequence[Path] = ()) -> None:
        self._sandbox = sandbox
        self._work = work
        self._limits = limits
        self._readable = [work, *readable]
        self._process: asyncio.subprocess.Process | None = None
        self._waiting: list[asyncio.Future[str]] = []
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start the child now, if it is not running yet: it boots (a sandboxed Python, libtiff) while the converter
        draws the first page, instead of after it (for a 1-page fax that was ~45 ms on the path to the dial)."""
        async with self._lock:
            await self._started()

    async def _started(self) -> asyncio.subprocess.Process:
        if self._process is None:
            self._process = await _start_checker(self._sandbox, self._work, self._limits, self._readable)
            self._reader = asyncio.create_task(self._read_verdicts())
        return self._process

    async def submit(self, path: Path) -> asyncio.Future[str]:
        """Queue `path` for decoding; the future is its verdict, ``ok <pages>`` or ``bad <why>``."""
        async with self._lock:
            process = await self._started()
            verdict: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._waiting.append(verdict)
            assert process.stdin is not None
            try:
                process.stdin.write(f"{path}\n".encode())
                await process.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the checker died: _read_verdicts answers every waiting page
            return verdict

    async def _read_verdicts(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        while line := await self._process.stdout.readline():
            if self._waiting:
                self._waiting.pop(0).set_result(line.decode(errors="replace").strip())
        for verdict in self._waiting:
            if not verdict.done():
                verdict.set_result("bad the page checker stopped")

    async def close(self) -> None:
        if self._process is not None:
            await kill(self._process)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


async def _start_checker(
    sandbox: Sandbox, work: Path, limits: Limits, readable: Sequence[Path]
) -> asyncio.subprocess.Process:
    checker_dir = work / "pagecheck"
    await asyncio.to_thread(checker_dir.mkdir, mode=0o700, exist_ok=True)
    try:
        # The job's working directory, read-only: the pages to check are there, at the paths the fetcher sends.
        return await sandbox.start(
            [sys.executable, "-I", "-m", "fax_render.pagecheck"],
            cwd=checker_dir,
            limits=limits,
            readable=readable,
            stdin=True,
        )
    except SandboxError as error:
        log.error("the page checker could not start: %s", error)
        raise RenderError("fax validation unavailable") from None


async def _run(
    sandbox: Sandbox, argv: list[str], run: Path, inputs: Mapping[str, Path], limits: Limits, what: str
) -> Any:
    try:
        return await sandbox.run(argv, cwd=run, inputs=inputs, limits=limits)
    except SandboxError as error:
        log.error("%s could not start: %s", what, error)
        raise RenderError(f"document converter unavailable: {what} is not installed") from None


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


def _raster_error(returncode: int, stderr: bytes) -> RenderError:
    message = stderr.decode(errors="replace").strip().splitlines()[-1:] if stderr.strip() else []
    if returncode == 2 and message:
        return RenderError(message[0])  # the child's own error text, written for the job
    log.warning("the image converter failed (exit %d): %s", returncode, _tail(stderr))
    if returncode < 0:
        return RenderError("could not convert document: the image decoder crashed")
    return RenderError("could not convert document: the image decoder failed")


def _tail(output: bytes) -> str:
    return output.decode(errors="replace").strip()[-500:]


def _conversion_error(output: str, document_format: str) -> RenderError:
    """Name ghostscript's most telling complaint, if it names no file, kept short enough for a job's error text."""
    log.info("ghostscript refused a %s: %s", document_format, output.strip()[-500:])
    if "requires a password" in output:
        return RenderError("could not convert document: the PDF is password-protected")
    reason = ""
    for line in output.splitlines():
        line = line.strip().removeprefix("****").strip()
        if line.startswith("Error:"):
            reason = line.removeprefix("Error:").strip().rstrip(".")[:120]
            break
    if _PATHLIKE.search(reason):
        reason = reason.split(" in ", 1)[0] if reason.startswith("/") else ""
    if document_format == "pdf":
        return RenderError("could not convert document: not a valid PDF" + (f" ({reason})" if reason else ""))
    if reason:
        return RenderError(f"could not convert document: PostScript error {reason}")
    return RenderError("could not convert document: the PostScript document has no pages")


async def validate_fax_tiff(path: Path, *, converters: Converters | None = None, timeout_s: float = 120.0) -> int:
    """Decode every page of a TIFF-F file and return its page count; raise RenderError if it is not sendable."""
    converters = converters or default_converters()
    limits = converters.limits(timeout_s)
    try:
        data = await asyncio.to_thread(path.read_bytes)
        pages = await asyncio.to_thread(read_pages, data)
        for number, page in enumerate(pages, start=1):
            check_fax_page(page, number)
    except TiffError as error:
        raise RenderError(f"rendered fax {error}") from None
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f".{path.name}.", dir=path.parent))
    target = await asyncio.to_thread(path.absolute)
    checker = _PageChecker(converters.sandbox, work, limits, readable=[target])
    try:
        async with asyncio.timeout(timeout_s):
            verdict = await (await checker.submit(target))
    except TimeoutError:
        raise RenderError(f"fax validation timed out after {timeout_s:g} s") from None
    finally:
        await checker.close()
        await asyncio.to_thread(shutil.rmtree, work, True)
    if not verdict.startswith("ok"):
        log.warning("%s does not decode: %s", path.name, verdict)
        raise RenderError("rendered fax is corrupt")
    return len(pages)


async def write_pdf_copy(
    tiff: Path, pdf: Path, *, timeout_s: float = 120.0, converters: Converters | None = None
) -> None:
    """A PDF of the fax exactly as it will be sent (tiff2pdf embeds the CCITT pages without re-rendering)."""
    converters = converters or default_converters()
    try:
        async with asyncio.timeout(timeout_s):
            await tiff_to_pdf(converters.sandbox, tiff, pdf, limits=converters.limits(timeout_s))
    except TimeoutError:
        raise RenderError(f"PDF copy timed out after {timeout_s:g} s") from None
    except PdfCopyError as error:
        raise RenderError(f"could not write the PDF copy: {error}") from None


async def write_previews(
    tiff: Path, out_dir: Path, *, timeout_s: float = 120.0, converters: Converters | None = None
) -> list[Path]:
    """One greyscale PNG per fax page, half the fax width, with square pixels whatever the fax resolution."""
    converters = converters or default_converters()
    run = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=".previews.", dir=out_dir))
    try:
        async with asyncio.timeout(timeout_s):
            result = await _run(
                converters.sandbox,
                [*_RASTER, "previews", f"--width={PREVIEW_WIDTH_PX}", "fax.tif"],
                run,
                {"fax.tif": tiff},
                converters.limits(timeout_s),
                "the preview renderer",
            )
        drawn = sorted(await asyncio.to_thread(lambda: list(run.glob("preview-*.png"))), key=_page_number)
        if result.returncode != 0 or not drawn:
            log.warning("previews failed (exit %d): %s", result.returncode, _tail(result.stderr))
            raise RenderError("could not draw the page previews")
        previews = []
        for path in drawn:
            await asyncio.to_thread(path.replace, out_dir / path.name)
            previews.append(out_dir / path.name)
        return previews
    except TimeoutError:
        raise RenderError(f"page previews timed out after {timeout_s:g} s") from None
    finally:
        await asyncio.to_thread(shutil.rmtree, run, True)


def _page_number(path: Path) -> int:
    return int(path.stem.rsplit("-", 1)[1])
