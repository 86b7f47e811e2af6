"""Hostile documents against the real fetcher: each ends its job `failed` with its reason, in time, and the fetcher
still prepares a good job afterwards.

The fetcher's DocumentPreparer is driven directly, with real Postgres and S3: the documents arrive as uploads in S3
(the path an API upload takes), so no HTTP server is involved. Inputs are generated on the spot and kept small:
the bombs are a few hundred kilobytes that claim gigapixels or a hundred thousand pages.
"""

from __future__ import annotations

import io
import re
import struct
import time
import uuid
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from minio import Minio
from PIL import Image

from fax_contracts import DocumentStored, JobSubmitted
from fax_devstack.infra import Endpoints
from fax_fetcher import handlers
from fax_fetcher.config import FetcherSettings
from fax_fetcher.handlers import DocumentPreparer
from fax_fetcher.previews import DocumentPreviewer
from fax_fetcher.store import FetcherStore
from fax_jobs import DocumentJobStore, JobStore, JobToPrepare
from fax_render.render import default_converters
from fax_runtime.blobs import (
    BlobStore,
    document_preview_key,
    fax_original_key,
    fax_pdf_key,
    fax_preview_key,
    fax_render_keys,
)
from fax_runtime.config import RuntimeSettings, S3Settings
from fax_runtime.db import create_pool
from tests.integration.documents import TWO_PAGE_POSTSCRIPT, make_pdf

ACCOUNT = "acct-documents"
CONVERSION_TIMEOUT_S = 5
# The conversion limit plus what fetching from S3, validation and bookkeeping may add on a slow machine.
JOB_TIME_LIMIT_S = CONVERSION_TIMEOUT_S + 10
CONVERTERS = default_converters()


# ---------------------------------------------------------------------------------------------------------------------
# The corpus


def _pdf(objects: list[bytes], *, root: int = 1) -> bytes:
    """A PDF with a correct cross-reference table, so ghostscript reads it as written instead of repairing it."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def hundred_thousand_page_pdf() -> bytes:
    """100,000 pages in ~1 MB: the page tree lists one page object 100,000 times."""
    kids = b" ".join([b"3 0 R"] * 100_000)
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count 100000 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        ]
    )


def pageless_pdf() -> bytes:
    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def giant_png(side: int = 50_000) -> bytes:
    """A one-colour 1-bit PNG of side x side pixels: 2.5 gigapixels in a few hundred kilobytes."""
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    # Compressing the same row many times over is cheap; a block of rows at a time keeps the Python loop short.
    block = row * 100
    data = b"".join(compressor.compress(block) for _ in range(side // 100)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def png_with_bad_crc() -> bytes:
    good = _image_bytes(Image.new("RGB", (200, 200), "red"), "PNG")
    # Flip a byte inside the IDAT data: the chunk's CRC no longer matches.
    index = good.index(b"IDAT") + 10
    return good[:index] + bytes([good[index] ^ 0xFF]) + good[index + 1 :]


def tiff_bomb() -> bytes:
    """A TIFF header claiming 100,000 x 100,000 8-bit pixels in one deflate strip: the zip bomb's image cousin."""
    strip = zlib.compress(b"\x00" * 1_000_000, 9)
    entries = [
        (256, 4, 1, 100_000),  # ImageWidth
        (257, 4, 1, 100_000),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 8),  # Compression: deflate
        (262, 3, 1, 1),  # Photometric: min-is-black
        (273, 4, 1, 0),  # StripOffsets, patched below
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, 100_000),  # RowsPerStrip
        (279, 4, 1, len(strip)),  # StripByteCounts
    ]
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    strip_offset = ifd_offset + ifd_size
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        value = strip_offset if tag == 273 else value
        packed = struct.pack("<H", value) + b"\x00\x00" if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    return b"II*\x00" + struct.pack("<I", ifd_offset) + ifd + struct.pack("<I", 0) + strip


def tiff_with_many_pages(pages: int = 600) -> bytes:
    frames = [Image.new("1", (64, 64), 1) for _ in range(pages)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:], compression="group4")
    return buffer.getvalue()


def giant_gif() -> bytes:
    """A GIF whose logical screen is 65,535 x 65,535 (4.3 gigapixels) around one tiny frame."""
    small = _image_bytes(Image.new("P", (4, 4), 0), "GIF")
    return small[:6] + struct.pack("<HH", 65_535, 65_535) + small[10:]


def giant_jpeg() -> bytes:
    """A JPEG whose frame header claims 60,000 x 60,000 pixels."""
    good = _image_bytes(Image.new("L", (16, 16), 128), "JPEG")
    sof = good.index(b"\xff\xc0")
    return good[: sof + 5] + struct.pack(">HH", 60_000, 60_000) + good[sof + 9 :]


def giant_bmp() -> bytes:
    """A BMP header claiming 60,000 x 60,000 24-bit pixels over a few bytes of data."""
    good = _image_bytes(Image.new("RGB", (4, 4), "white"), "BMP")
    return good[:18] + struct.pack("<ii", 60_000, 60_000) + good[26:]


def _image_bytes(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def rgba_png(side: int = 10_000) -> bytes:
    """A side x side RGBA PNG, half transparent: 100 megapixels, 400 MB decoded (it took 1.5 GB to render)."""
    row = b"\x00" + b"\x20\x40\x60\x80" * side
    compressor = zlib.compressobj(6)
    block = row * 20
    data = b"".join(compressor.compress(block) for _ in range(side // 20)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def nested_pdf(depth: int = 200_000) -> bytes:
    """A page whose /Annots is an array nested 200,000 deep: the parser's recursion and memory, not the drawing."""
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Annots " + b"[" * depth + b"]" * depth + b" >>",
        ]
    )


def self_parented_pdf() -> bytes:
    """A page tree whose only kid is the tree itself."""
    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"])


def tiff_with_looping_directories() -> bytes:
    """A one-page TIFF whose next-directory offset points back at its own directory."""
    good = bytearray(_image_bytes(Image.new("1", (64, 64), 1), "TIFF"))
    (ifd,) = struct.unpack_from("<I", good, 4)
    (count,) = struct.unpack_from("<H", good, ifd)
    struct.pack_into("<I", good, ifd + 2 + 12 * count, ifd)
    return bytes(good)


def _multipage_tiff(pages: int = 3) -> bytes:
    frames = [Image.new("L", (400, 500), 40 * index) for index in range(pages)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
    return buffer.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@dataclass(frozen=True)
class Hostile:
    name: str
    build: Callable[[], bytes]
    error: str | tuple[str, ...] | None  # the job's error_message starts with this (one of these); None: it renders
    request: dict[str, Any] | None = None  # extra request fields


def _valid_pdf() -> bytes:
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            b"<< /Length 22 >>\nstream\n0 0 m 612 792 l S\nendstream",
        ]
    )


HOSTILE = [
    Hostile("empty file", lambda: b"", "empty document"),
    Hostile("random bytes", lambda: bytes(range(1, 256)) * 40, "unsupported document format: binary data"),
    Hostile("gzip archive", lambda: b"\x1f\x8b\x08\x00" + bytes(60), "unsupported document format: gzip archive"),
    Hostile(
        "HTML login page",
        lambda: b"<!DOCTYPE html><html><body>Login</body></html>",
        "unsupported document format: HTML page",
    ),
    Hostile(
        "PDF header, then garbage",
        lambda: b"%PDF-1.7\n" + bytes(range(256)) * 20,
        "could not convert document: not a valid PDF",
    ),
    Hostile("PDF truncated to its header", lambda: _valid_pdf()[:60], "could not convert document: not a valid PDF"),
    Hostile("PDF without pages", pageless_pdf, "could not convert document: not a valid PDF"),
    Hostile(
        "PDF of 100,000 pages", hundred_thousand_page_pdf, "document has 100000 pages, more than the 500 page limit"
    ),
    Hostile(
        "PostScript that loops forever",
        lambda: b"%!PS\n{ 1 pop } loop\n",
        f"document conversion timed out after {CONVERSION_TIMEOUT_S} s",
    ),
    Hostile(
        "PostScript that prints forever",
        lambda: b"%!PS\n{ (spam) print } loop\n",
        f"document conversion timed out after {CONVERSION_TIMEOUT_S} s",
    ),
    # ghostscript honours LastPage for PostScript by discarding pages, not by stopping: endless pages meet the timer.
    Hostile(
        "PostScript with endless pages",
        lambda: b"%!PS\n{ showpage } loop\n",
        f"document conversion timed out after {CONVERSION_TIMEOUT_S} s",
    ),
    Hostile(
        "PostScript of 600 pages",
        lambda: b"%!PS\n1 1 600 { pop showpage } for\n",
        "document has more than 500 pages, the limit",
    ),
    Hostile(
        "PostScript error",
        lambda: b"%!PS\n/foo nosuchoperator\n",
        "could not convert document: PostScript error /undefined in nosuchoperator",
    ),
    Hostile("PNG of 50,000 x 50,000", giant_png, "image is 50000 x 50000 pixels, more than the 100 megapixel limit"),
    Hostile("PNG with a bad CRC", png_with_bad_crc, "could not convert document: not a valid PNG image"),
    Hostile(
        "PNG truncated",
        lambda: _image_bytes(Image.new("RGB", (300, 300), "blue"), "PNG")[:80],
        "could not convert document: not a valid PNG image",
    ),
    Hostile(
        "TIFF claiming 10 gigapixels", tiff_bomb, "image is 100000 x 100000 pixels, more than the 100 megapixel limit"
    ),
    Hostile("TIFF of 600 pages", tiff_with_many_pages, "document has 600 pages, more than the 500 page limit"),
    Hostile(
        "GIF with a 65,535 x 65,535 screen",
        giant_gif,
        "image is 65535 x 65535 pixels, more than the 100 megapixel limit",
    ),
    Hostile(
        "JPEG claiming 60,000 x 60,000", giant_jpeg, "image is 60000 x 60000 pixels, more than the 100 megapixel limit"
    ),
    Hostile(
        "JPEG truncated",
        lambda: _image_bytes(Image.effect_noise((400, 400), 64), "JPEG")[:2000],
        "could not convert document: not a valid JPEG image",
    ),
    Hostile(
        "BMP claiming 60,000 x 60,000", giant_bmp, "image is 60000 x 60000 pixels, more than the 100 megapixel limit"
    ),
    Hostile(
        "text that is not UTF-8", lambda: b"Invoice " * 50 + b"\xff\xfe\x00", "unsupported document format: binary data"
    ),
    Hostile(
        "text with a bad byte after the first kilobyte",
        lambda: b"Invoice\n" * 500 + b"\xff",
        "could not convert document: text is not valid UTF-8",
    ),
    Hostile(
        "ZIP archive that is no Office document",
        lambda: _zip({"a.exe": b"MZ"}),
        "unsupported document format: ZIP archive",
    ),
    Hostile("corrupt ZIP", lambda: b"PK\x03\x04" + bytes(100), "could not convert document: corrupt ZIP archive"),
    Hostile("unknown resolution", _valid_pdf, "unknown fax_resolution 'ultra'", {"fax_resolution": "ultra"}),
    # Memory: each must fail its own job or render within FAX_RENDER_MEMORY_MB, never take the fetcher's memory.
    Hostile("RGBA PNG of 10,000 x 10,000 (400 MB decoded)", rgba_png, None),
    Hostile("PDF nested 200,000 arrays deep", nested_pdf, (None, "could not convert document: not a valid PDF")),
    Hostile(
        "PostScript that allocates without end",
        lambda: b"%!PS\n/a [] def { /a [ a 100000 array ] def } loop\n",
        ("could not convert document: PostScript error /VMerror", "document conversion timed out"),
    ),
    Hostile(
        "PostScript that recurses without end",
        lambda: b"%!PS\n/f { f } def f\n",
        ("could not convert document: PostScript error /execstackoverflow", "document conversion timed out"),
    ),
    Hostile(
        "PostScript that reads /etc/passwd",
        lambda: b"%!PS\n(/etc/passwd) (r) file 100 string readstring pop show showpage\n",
        "could not convert document: PostScript error /invalidfileaccess",
    ),
    Hostile(
        "PostScript with a 10 m x 10 m page",
        lambda: b"%!PS\n<< /PageSize [28346 28346] >> setpagedevice 0 0 28346 28346 rectfill showpage\n",
        None,
    ),
    Hostile(
        "EPS with a DOS binary header that points nowhere",
        lambda: b"\xc5\xd0\xd3\xc6" + struct.pack("<IIII", 4_000_000_000, 100, 0, 0) + bytes(40),
        "could not convert document:",
    ),
    # Loops and malformed structure.
    Hostile("PDF whose page tree contains itself", self_parented_pdf, "could not convert document: not a valid PDF"),
    Hostile(
        "PDF truncated in the middle",
        lambda: _valid_pdf()[: len(_valid_pdf()) // 2],
        (None, "could not convert document: not a valid PDF"),
    ),
    Hostile("TIFF whose directories loop", tiff_with_looping_directories, (None, "could not convert document: not")),
    Hostile(
        "TIFF truncated in its second page",
        lambda: _multipage_tiff()[: len(_multipage_tiff()) * 2 // 3],
        "could not convert document: not a valid TIFF image",
    ),
    Hostile(
        "GIF truncated",
        lambda: _image_bytes(Image.effect_noise((300, 300), 50).convert("P"), "GIF")[:400],
        "could not convert document: not a valid GIF image",
    ),
    Hostile(
        "BMP truncated",
        lambda: _image_bytes(Image.new("RGB", (300, 300), "green"), "BMP")[:2000],
        "could not convert document: not a valid BMP image",
    ),
    Hostile(
        "JPEG with garbage after its header",
        lambda: _image_bytes(Image.new("L", (64, 64), 128), "JPEG")[:20] + bytes(range(256)) * 4,
        "could not convert document: not a valid JPEG image",
    ),
    Hostile("text of 100,000 form feeds", lambda: b"page\f" * 100_000, "document has more than 500 pages, the limit"),
    Hostile("text of one 6 MB line", lambda: b"x" * 6_000_000, "document has more than 500 pages, the limit"),
    Hostile(
        "text over 10 MB",
        lambda: b"Invoice line\n" * 900_000,
        "text document larger than 10 MB",
    ),
    # Polyglots: a file is what its structure says, whatever else it also claims to be.
    Hostile(
        "a letter that mentions %PDF- near its start", lambda: b"Dear Sir,\nthe %PDF-1.7 file is attached.\n", None
    ),
    Hostile("PDF with a ZIP archive appended", lambda: _valid_pdf() + _zip({"a.exe": b"MZ" * 100}), None),
    Hostile(
        "GIF header on a PostScript program",
        lambda: b"GIF89a\n%!PS\n{ } loop\n",
        "could not convert document: not a valid GIF image",
    ),
    Hostile(
        "HTML page that carries a PDF",
        lambda: b"<html><body>%PDF-1.4 1 0 obj</body></html>",
        "unsupported document format: HTML page",
    ),
    Hostile(
        "legacy Office file of garbage",
        lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 8,
        ("Office documents need LibreOffice, which is not installed", "could not convert document: LibreOffice"),
    ),
    Hostile(
        "Word document whose ZIP is a bomb",
        lambda: _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<" * 20_000_000}),
        ("Office documents need LibreOffice, which is not installed", "could not convert document: LibreOffice"),
    ),
]


# ---------------------------------------------------------------------------------------------------------------------
# Fixtures


@dataclass
class Harness:
    pool: asyncpg.Pool
    blobs: BlobStore
    s3: Minio
    bucket: str
    preparer: DocumentPreparer
    previewer: DocumentPreviewer
    settings: FetcherSettings

    async def submit(self, documents: list[bytes], **request: Any) -> uuid.UUID:
        """A job whose documents are uploads in S3, as the API leaves them; returns its id once it is prepared."""
        job_id = uuid.uuid4()
        keys = [f"jobs/{job_id}/upload-{index}" for index in range(len(documents))]
        for key, body in zip(keys, documents, strict=True):
            await self.blobs.put_bytes(key, body)
        document = {"uploads": keys}
        await self.pool.execute(
            "INSERT INTO fax_jobs (id, account_id, status, request, to_number, from_number, retries)"
            " VALUES ($1::uuid, $2::text, 'attaching_files', $3::jsonb, '15550001234', '', 1)",
            job_id,
            ACCOUNT,
            {"document": document, **request},
        )
        await self.preparer.on_job_submitted(
            JobSubmitted(event_id=uuid.uuid4(), occurred_at=_now(), job_id=job_id, account_id=ACCOUNT)
        )
        return job_id

    async def job(self, job_id: uuid.UUID) -> asyncpg.Record:
        row = await self.pool.fetchrow(
            "SELECT status, error_message, tiff_key, pages FROM fax_jobs WHERE id = $1", job_id
        )
        assert row is not None
        return row


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


@pytest.fixture
async def harness(infra: Endpoints, database_url: str) -> AsyncIterator[Harness]:
    s3 = S3Settings(
        endpoint=infra.s3_endpoint,
        access_key=infra.s3_access_key,
        secret_key=infra.s3_secret_key,
        bucket=infra.s3_bucket,
        secure=infra.s3_secure,
    )
    settings = FetcherSettings(
        runtime=RuntimeSettings(database_url=database_url, amqp_url=infra.amqp_url, s3=s3),
        conversion_timeout_s=CONVERSION_TIMEOUT_S,
    )
    pool = await create_pool(database_url)
    try:
        await pool.execute("INSERT INTO accounts (id, name) VALUES ($1, 'documents test')", ACCOUNT)
        blobs = BlobStore(s3)
        client = Minio(infra.s3_endpoint, infra.s3_access_key, infra.s3_secret_key, secure=infra.s3_secure)
        yield Harness(
            pool,
            blobs,
            client,
            infra.s3_bucket,
            DocumentPreparer(DocumentJobStore(pool), blobs, settings, CONVERTERS),
            DocumentPreviewer(FetcherStore(pool), blobs, settings, CONVERTERS),
            settings,
        )
    finally:
        await pool.close()


# ---------------------------------------------------------------------------------------------------------------------
# Tests


async def test_hostile_documents_fail_with_their_reason_and_a_good_job_still_succeeds(harness: Harness) -> None:
    assert len(HOSTILE) >= 40
    outcomes: dict[str, tuple[str, str, float]] = {}
    for case in HOSTILE:
        body = case.build()
        started = time.monotonic()
        job_id = await harness.submit([body], **(case.request or {}))
        elapsed = time.monotonic() - started
        row = await harness.job(job_id)
        outcomes[case.name] = (row["status"], row["error_message"], elapsed)

    wrong = {
        name: outcome
        for (name, outcome), case in zip(outcomes.items(), HOSTILE, strict=True)
        if not _as_expected(outcome[0], outcome[1], case.error) or outcome[2] > JOB_TIME_LIMIT_S
    }
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in wrong.items())
    # No error text shows a path, a Python exception or a library's own message.
    leaky = {name: outcome[1] for name, outcome in outcomes.items() if re.search(LEAKS, outcome[1] or "")}
    assert not leaky, leaky

    good = await harness.submit([TWO_PAGE_POSTSCRIPT, b"Hello from the text part\n", giant_png(side=1000)])
    row = await harness.job(good)
    assert row["status"] == "pending", row["error_message"]
    assert row["pages"] == 4
    # A directory of its own, under the job's first (and only) request.
    assert re.fullmatch(f"jobs/{good}/r1/[0-9a-f]{{32}}/fax.tif", row["tiff_key"])
    previews = [fax_preview_key(row["tiff_key"], page) for page in range(1, 5)]
    for key in [row["tiff_key"], fax_pdf_key(row["tiff_key"]), *previews]:
        assert harness.s3.stat_object(harness.bucket, key).size > 0


LEAKS = r"/tmp|/sandbox|/work|Traceback|Error\(|Exception|errno|\.py\b|libtiff|TIFFRead|Fax4Decode|PIL|Pillow"


def _as_expected(status: str, error_message: str | None, expected: str | tuple[str | None, ...] | None) -> bool:
    """`expected` None: rendered; a text: failed with an error that starts with it; a tuple: any of these."""
    for choice in expected if isinstance(expected, tuple) else (expected,):
        if choice is None and status == "pending":
            return True
        if choice is not None and status == "failed" and (error_message or "").startswith(choice):
            return True
    return False


async def test_documents_of_one_job_become_one_fax_in_order(harness: Harness, tmp_path: Any) -> None:
    pdf = make_pdf(tmp_path / "two.pdf").read_bytes()
    photo = _image_bytes(Image.linear_gradient("L").resize((600, 800)), "JPEG")

    job_id = await harness.submit([photo, pdf], fax_resolution="standard", fax_ecm=False)

    row = await harness.job(job_id)
    assert row["status"] == "pending", row["error_message"]
    assert row["pages"] == 3
    tiff = harness.s3.get_object(harness.bucket, row["tiff_key"]).read()
    with Image.open(io.BytesIO(tiff)) as image:
        assert image.n_frames == 3
        for index in range(3):
            image.seek(index)
            assert image.width == 1728
            assert image.info["compression"] == "group3"
            assert round(float(image.info["dpi"][1])) == 98


async def test_a_missing_upload_fails_the_job(harness: Harness) -> None:
    job_id = uuid.uuid4()
    key = f"jobs/{job_id}/upload-0"
    await harness.pool.execute(
        "INSERT INTO fax_jobs (id, account_id, status, request, to_number) VALUES ($1, $2, 'attaching_files', $3, '1')",
        job_id,
        ACCOUNT,
        {"document": {"uploads": [key]}},
    )

    await harness.preparer.on_job_submitted(
        JobSubmitted(event_id=uuid.uuid4(), occurred_at=_now(), job_id=job_id, account_id=ACCOUNT)
    )

    row = await harness.job(job_id)
    assert (row["status"], row["error_message"]) == ("failed", f"uploaded document {key} is missing")


class _LateStore(DocumentJobStore):
    """The store as a slow render saw it when it started: ``job_to_prepare`` is that snapshot."""

    def __init__(self, pool: asyncpg.Pool, snapshot: JobToPrepare | None) -> None:
        super().__init__(pool)
        self._snapshot = snapshot

    async def job_to_prepare(self, job_id: uuid.UUID) -> JobToPrepare | None:
        return self._snapshot


async def test_a_render_of_a_replaced_request_finishing_last_does_not_replace_the_fax(harness: Harness) -> None:
    """A job is changed while its first document renders; the new document renders first, the old render finishes
    after it: the job keeps the new fax (its own render's objects) and the old render's objects are removed."""
    job_id = uuid.uuid4()
    first, second = f"jobs/{job_id}/upload-0", f"jobs/{job_id}/upload-1"
    await harness.blobs.put_bytes(first, b"The first version, one page\n")
    await harness.blobs.put_bytes(second, TWO_PAGE_POSTSCRIPT)
    await harness.pool.execute(
        "INSERT INTO fax_jobs (id, account_id, status, request, to_number) VALUES ($1, $2, 'attaching_files', $3, '1')",
        job_id,
        ACCOUNT,
        {"document": {"uploads": [first]}},
    )
    store = DocumentJobStore(harness.pool)
    snapshot = await store.job_to_prepare(job_id)  # the old render starts reading request 1
    await harness.pool.execute(  # what a PATCH does: a new request, a new version of the row
        "UPDATE fax_jobs SET request = $2, request_revision = 2, revision = revision + 1 WHERE id = $1",
        job_id,
        {"document": {"uploads": [second]}},
    )
    event = JobSubmitted(event_id=uuid.uuid4(), occurred_at=_now(), job_id=job_id, account_id=ACCOUNT)
    await harness.preparer.on_job_submitted(event)  # request 2 renders and is recorded
    late = DocumentPreparer(_LateStore(harness.pool, snapshot), harness.blobs, harness.settings, CONVERTERS)
    await late.on_job_submitted(event)  # then request 1's render finishes

    row = await harness.job(job_id)
    assert (row["status"], row["pages"]) == ("pending", 2)
    assert row["tiff_key"].startswith(f"jobs/{job_id}/r2/")
    with Image.open(io.BytesIO(harness.s3.get_object(harness.bucket, row["tiff_key"]).read())) as fax:
        assert fax.n_frames == 2, "the fax is the new document"
    assert _stored(harness, f"jobs/{job_id}/r") == set(fax_render_keys(row["tiff_key"], 2)) - {
        fax_original_key(row["tiff_key"])  # uploads have no fetched original
    }


async def test_a_second_render_of_the_same_request_leaves_the_recorded_one_alone(harness: Harness) -> None:
    """Two deliveries of one request (an event redelivered, or the submitted and the changed job's events both read
    after the change) render it at once; the one that finishes last must not touch the fax the first recorded.

    Before renders had a directory each, both wrote ``jobs/<id>/r<revision>/`` and the last one, finding the row's
    revision moved on by its rival's document_ready, deleted that directory: the transmitter was told to send a key
    that no longer existed."""
    job_id = uuid.uuid4()
    upload = f"jobs/{job_id}/upload-0"
    await harness.blobs.put_bytes(upload, TWO_PAGE_POSTSCRIPT)
    await harness.pool.execute(
        "INSERT INTO fax_jobs (id, account_id, status, request, to_number) VALUES ($1, $2, 'attaching_files', $3, '1')",
        job_id,
        ACCOUNT,
        {"document": {"uploads": [upload]}},
    )
    snapshot = await DocumentJobStore(harness.pool).job_to_prepare(job_id)  # the second delivery reads the job
    event = JobSubmitted(event_id=uuid.uuid4(), occurred_at=_now(), job_id=job_id, account_id=ACCOUNT)
    await harness.preparer.on_job_submitted(event)  # the first one renders and is recorded
    recorded = await harness.job(job_id)
    late = DocumentPreparer(_LateStore(harness.pool, snapshot), harness.blobs, harness.settings, CONVERTERS)
    await late.on_job_submitted(event)  # then the second one finishes

    row = await harness.job(job_id)
    assert (row["status"], row["tiff_key"], row["pages"]) == ("pending", recorded["tiff_key"], 2)
    assert _stored(harness, f"jobs/{job_id}/r") == set(fax_render_keys(row["tiff_key"], 2)) - {
        fax_original_key(row["tiff_key"])
    }
    with Image.open(io.BytesIO(harness.s3.get_object(harness.bucket, row["tiff_key"]).read())) as fax:
        assert fax.n_frames == 2


class _Stopped(Exception):
    """The fetcher stopping between recording the fax ready and storing its copies: the event is not acked."""


async def _queued(harness: Harness, document: bytes) -> tuple[uuid.UUID, JobSubmitted]:
    """A job with an uploaded document, as the API leaves it, and its fax.job.submitted (not handled yet)."""
    job_id = uuid.uuid4()
    upload = f"jobs/{job_id}/upload-0"
    await harness.blobs.put_bytes(upload, document)
    await harness.pool.execute(
        "INSERT INTO fax_jobs (id, account_id, status, request, to_number) VALUES ($1, $2, 'attaching_files', $3, '1')",
        job_id,
        ACCOUNT,
        {"document": {"uploads": [upload]}, "to_number": "1", "retries": 1},
    )
    return job_id, JobSubmitted(event_id=uuid.uuid4(), occurred_at=_now(), job_id=job_id, account_id=ACCOUNT)


async def test_copies_are_made_after_the_fax_is_ready_and_again_on_redelivery_after_a_stop(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fax is recorded ready (and DocumentReady queued with it) before its PDF copy and previews exist; a
    fetcher that stops between the two leaves the event unacked, and its redelivery makes the copies of the recorded
    render."""
    job_id, event = await _queued(harness, TWO_PAGE_POSTSCRIPT)
    make_previews = handlers.write_previews
    seen: list[asyncpg.Record] = []

    async def stop_while_copying(*args: Any, **kwargs: Any) -> Any:
        seen.append(await harness.job(job_id))
        raise _Stopped

    monkeypatch.setattr(handlers, "write_previews", stop_while_copying)
    with pytest.raises(_Stopped):
        await harness.preparer.on_job_submitted(event)
    recorded = await harness.job(job_id)
    assert [(row["status"], row["tiff_key"]) for row in seen] == [("pending", recorded["tiff_key"])]
    assert _stored(harness, f"jobs/{job_id}/r") == {recorded["tiff_key"]}, "the fax, not its copies yet"

    monkeypatch.setattr(handlers, "write_previews", make_previews)
    await harness.preparer.on_job_submitted(event)  # the redelivery

    assert await harness.job(job_id) == recorded
    assert _stored(harness, f"jobs/{job_id}/r") == set(fax_render_keys(recorded["tiff_key"], 2)) - {
        fax_original_key(recorded["tiff_key"])
    }
    assert harness.s3.get_object(harness.bucket, fax_pdf_key(recorded["tiff_key"])).read().startswith(b"%PDF")


async def test_a_job_changed_while_its_copies_are_made_leaves_no_copies_behind(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API changes the job (JobStore.change_queued_job: commit, then remove the render the row named) after the
    fax was recorded ready and before its copies are stored: the fetcher removes the copies it stores after."""
    job_id, event = await _queued(harness, TWO_PAGE_POSTSCRIPT)
    make_previews = handlers.write_previews
    jobs = JobStore(harness.pool, harness.blobs)

    async def change_while_copying(*args: Any, **kwargs: Any) -> Any:
        previews = await make_previews(*args, **kwargs)
        assert await jobs.change_queued_job(ACCOUNT, job_id, lambda request: {**request, "to_name": "changed"})
        return previews

    monkeypatch.setattr(handlers, "write_previews", change_while_copying)
    await harness.preparer.on_job_submitted(event)

    row = await harness.job(job_id)
    assert (row["status"], row["tiff_key"]) == ("attaching_files", None)
    assert _stored(harness, f"jobs/{job_id}/r") == set(), "neither the replaced fax nor its copies are left"


def _stored(harness: Harness, prefix: str) -> set[str]:
    return {item.object_name for item in harness.s3.list_objects(harness.bucket, prefix=prefix, recursive=True)}


async def test_a_stored_documents_previews_are_its_fax_pages(harness: Harness, tmp_path: Any) -> None:
    """A Fax.to file's previews are the pages a job of the same file is faxed as, pixel for pixel; its page count
    becomes the rendered one; a file that cannot be faxed says why; a deleted one is left alone."""
    pool = harness.pool
    user_id = await pool.fetchval(
        "INSERT INTO faxto_users (account_id, email, password_scrypt, api_key) VALUES ($1, $2, '', $3) RETURNING id",
        ACCOUNT,
        f"{uuid.uuid4().hex[:8]}@example.com",
        uuid.uuid4().hex,
    )

    async def stored(body: bytes, *, deleted_first: bool = False) -> tuple[int, str]:
        key = f"faxto/{ACCOUNT}/documents/{uuid.uuid4()}"
        await harness.blobs.put_bytes(key, body)
        document_id = await pool.fetchval(
            "INSERT INTO faxto_documents (account_id, user_id, filename_uploaded, file_extension, content_type,"
            " object_key, filesize, total_pages, preview_status)"
            " VALUES ($1, $2, 'f.pdf', 'pdf', 'application/pdf', $3, $4, 1, 'pending') RETURNING id",
            ACCOUNT,
            user_id,
            key,
            len(body),
        )
        if deleted_first:
            await pool.execute("DELETE FROM faxto_documents WHERE id = $1", document_id)
        await harness.previewer.on_document_stored(
            DocumentStored(
                event_id=uuid.uuid4(), occurred_at=_now(), document_id=document_id, account_id=ACCOUNT, object_key=key
            )
        )
        return document_id, key

    def row(document_id: int) -> Any:
        return pool.fetchrow(
            "SELECT object_key, total_pages, preview_status, preview_error FROM faxto_documents WHERE id = $1",
            document_id,
        )

    pdf = make_pdf(tmp_path / "two.pdf").read_bytes()
    good = await row((await stored(pdf))[0])
    assert (good["preview_status"], good["total_pages"]) == ("ready", 2)
    job = await harness.submit([pdf])
    for page in (1, 2):
        drawn = harness.s3.get_object(harness.bucket, document_preview_key(good["object_key"], page)).read()
        faxed = harness.s3.get_object(
            harness.bucket, fax_preview_key((await harness.job(job))["tiff_key"], page)
        ).read()
        with Image.open(io.BytesIO(drawn)) as mine, Image.open(io.BytesIO(faxed)) as theirs:
            assert mine.format == "PNG" and mine.size == theirs.size
            assert mine.tobytes() == theirs.tobytes()

    bad = await row((await stored(hundred_thousand_page_pdf()))[0])
    assert bad["preview_status"] == "failed" and "500" in bad["preview_error"], bad["preview_error"]

    _, key = await stored(pdf, deleted_first=True)
    assert not list(harness.s3.list_objects(harness.bucket, prefix=f"{key}.preview")), "a deleted file is not drawn"
