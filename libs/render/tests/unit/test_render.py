"""Rendering with real ghostscript, and validation that really decodes every page."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from fax_render.pagecheck import LibTiff
from fax_render.render import (
    RenderError,
    _PageChecker,
    default_converters,
    render_to_fax_tiff,
    sniff_format,
    validate_fax_tiff,
)
from fax_runtime.sandbox import Limits

TWO_PAGES_PS = b"""%!PS
/Helvetica findfont 36 scalefont setfont
<< /PageSize [595 842] >> setpagedevice
72 700 moveto (Page one, portrait A4) show showpage
<< /PageSize [842 595] >> setpagedevice
72 500 moveto (Page two, landscape A4) show showpage
"""

# Dense text gives each page a strip of tens of kilobytes, so damage can be aimed at page data.
DENSE_TEXT_PS = b"""%!PS
/Times-Roman findfont 9 scalefont setfont
1 1 2 { pop
  800 -11 40 { 40 exch moveto (The quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLM) show } for
  showpage } for
"""

FULL_BLEED_A4_PS = b"""%!PS
<< /PageSize [595 842] >> setpagedevice
0 0 moveto 595 0 lineto 595 842 lineto 0 842 lineto closepath fill showpage
"""


def _ps_to_pdf(ps: bytes, pdf: Path, *options: str) -> None:
    subprocess.run(
        ["gs", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET", "-sDEVICE=pdfwrite", *options, f"-sOutputFile={pdf}", "-"],
        input=ps,
        check=True,
    )


def _tiffinfo(path: Path) -> str:
    return subprocess.run(["tiffinfo", str(path)], capture_output=True, text=True, check=True).stdout


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("documents")
    _ps_to_pdf(TWO_PAGES_PS, folder / "two-pages.pdf")
    _ps_to_pdf(FULL_BLEED_A4_PS, folder / "full-bleed.pdf")
    _ps_to_pdf(TWO_PAGES_PS, folder / "locked.pdf", "-sOwnerPassword=owner", "-sUserPassword=user")
    (folder / "dense.ps").write_bytes(DENSE_TEXT_PS)
    return folder


@pytest.fixture(scope="module")
async def dense_tiff(documents: Path) -> bytes:
    rendered = await render_to_fax_tiff(documents / "dense.ps", documents / "dense.tif")
    assert rendered.pages == 2
    return rendered.tiff_path.read_bytes()


def _first_strip(tiff: Path) -> tuple[int, int]:
    with Image.open(tiff) as image:
        return image.tag_v2[273][0], image.tag_v2[279][0]  # StripOffsets, StripByteCounts


async def test_two_page_pdf_renders_to_tiff_f(documents: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    rendered = await render_to_fax_tiff(documents / "two-pages.pdf", tmp_path / "fax.tif")
    elapsed = time.monotonic() - started

    assert rendered.pages == 2
    assert rendered.tiff_path == tmp_path / "fax.tif"
    with Image.open(rendered.tiff_path) as image:
        assert image.n_frames == 2
        for page in range(2):
            image.seek(page)
            assert image.size == (1728, 2292)
            assert image.mode == "1"
            assert image.info["compression"] == "group4"
            assert image.info["dpi"] == (204, 196)
    assert elapsed < 10


async def test_resolution_tags_are_written(documents: Path, tmp_path: Path) -> None:
    rendered = await render_to_fax_tiff(documents / "two-pages.pdf", tmp_path / "fax.tif")

    info = _tiffinfo(rendered.tiff_path)
    assert info.count("Resolution: 204, 196 pixels/inch") == 2
    assert info.count("Image Width: 1728 Image Length: 2292") == 2


async def test_pages_are_fitted_without_cropping(documents: Path, tmp_path: Path) -> None:
    rendered = await render_to_fax_tiff(documents / "full-bleed.pdf", tmp_path / "fax.tif")

    with Image.open(rendered.tiff_path) as image:
        left, top, right, bottom = ImageOps.invert(image.convert("L")).getbbox()
    # A4 is narrower than the fax line: full height, centred with a margin each side.
    assert (top, bottom) == (0, 2292)
    assert 0 < left < 40
    assert abs(left - (1728 - right)) <= 2


async def test_postscript_renders(documents: Path, tmp_path: Path) -> None:
    source = tmp_path / "doc.ps"
    source.write_bytes(TWO_PAGES_PS)

    rendered = await render_to_fax_tiff(source, tmp_path / "fax.tif")

    assert rendered.pages == 2
    assert await validate_fax_tiff(rendered.tiff_path) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (os.urandom(4096).replace(b"%PDF-", b"xxxxx"), "unsupported document format: binary data"),
        (b"", "empty document"),
        (b"<!DOCTYPE html><html><body>Login</body></html>", "unsupported document format: HTML page"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "could not convert document: not a valid PNG image"),
        (b"PK\x03\x04" + bytes(60), "could not convert document: corrupt ZIP archive"),
    ],
)
async def test_unsupported_documents_are_refused(content: bytes, message: str, tmp_path: Path) -> None:
    source = tmp_path / "upload"
    source.write_bytes(content)

    with pytest.raises(RenderError) as caught:
        await render_to_fax_tiff(source, tmp_path / "fax.tif")

    assert str(caught.value).startswith(message)
    assert _names(tmp_path) == ["upload"]


async def test_broken_pdf_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "broken.pdf"
    source.write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")

    with pytest.raises(RenderError, match=r"^could not convert document: not a valid PDF"):
        await render_to_fax_tiff(source, tmp_path / "fax.tif")

    assert not (tmp_path / "fax.tif").exists()


async def test_password_protected_pdf_is_refused(documents: Path, tmp_path: Path) -> None:
    with pytest.raises(RenderError) as caught:
        await render_to_fax_tiff(documents / "locked.pdf", tmp_path / "fax.tif")

    assert str(caught.value) == "could not convert document: the PDF is password-protected"


async def test_postscript_error_is_reported(tmp_path: Path) -> None:
    source = tmp_path / "bad.ps"
    source.write_bytes(b"%!PS\n/foo nosuchoperator\n")

    with pytest.raises(RenderError) as caught:
        await render_to_fax_tiff(source, tmp_path / "fax.tif")

    assert str(caught.value) == "could not convert document: PostScript error /undefined in nosuchoperator"


async def test_endless_postscript_is_killed_at_the_timeout(tmp_path: Path) -> None:
    source = tmp_path / "loop.ps"
    source.write_bytes(b"%!PS\n{ (spinning) print } loop\n")
    started = time.monotonic()

    with pytest.raises(RenderError) as caught:
        await render_to_fax_tiff(source, tmp_path / "fax.tif", timeout_s=0.5)

    assert str(caught.value) == "document conversion timed out after 0.5 s"
    assert time.monotonic() - started < 5
    assert _names(tmp_path) == ["loop.ps"]


async def test_pdf_over_the_page_limit_is_refused_before_rendering(documents: Path, tmp_path: Path) -> None:
    with pytest.raises(RenderError) as caught:
        await render_to_fax_tiff(documents / "two-pages.pdf", tmp_path / "fax.tif", max_pages=1)

    assert str(caught.value) == "document has 2 pages, more than the 1 page limit"


async def test_postscript_over_the_page_limit_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "many.ps"
    source.write_bytes(b"%!PS\n1 1 5 { pop showpage } for\n")

    with pytest.raises(RenderError) as caught:
        await render_to_fax_tiff(source, tmp_path / "fax.tif", max_pages=3)

    assert str(caught.value) == "document has more than 3 pages, the limit"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n", "pdf"),
        (b"\r\n\r\njunk before the header %PDF-1.4\n", "text"),
        (b"%!PS-Adobe-3.0\n", "postscript"),
        (b"%!PS-Adobe-3.0\n%%Title: converted from %PDF-1.4\n", "postscript"),
        (b"\xef\xbb\xbf%!PS\n", "postscript"),
        (b"\xc5\xd0\xd3\xc6\x1e\x00\x00\x00", "postscript"),
        (b"II*\x00\x08\x00\x00\x00", "tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "tiff"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"GIF89a\x01\x00", "gif"),
        (b"BM\x36\x00\x00\x00", "bmp"),
        (b"PK\x03\x04\x14\x00\x06\x00", "office"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "office"),
        (b"{\\rtf1\\ansi", "office"),
        ("Grüße aus Köln\n".encode(), "text"),
    ],
)
def test_sniff_recognises_what_it_can_render(head: bytes, expected: str) -> None:
    assert sniff_format(head) == expected


@pytest.mark.parametrize(
    ("head", "looks_like"),
    [
        (b"\x00\x01\x02\x03binary", "binary data"),
        (b"\x1f\x8b\x08\x00", "gzip archive"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WebP image"),
        (b"<?xml version='1.0'?><svg>", "SVG image"),
        (b"<html><body>", "HTML page"),
        ("Grüße".encode("latin-1"), "binary data"),
    ],
)
def test_sniff_names_what_it_refuses(head: bytes, looks_like: str) -> None:
    with pytest.raises(RenderError) as caught:
        sniff_format(head)

    assert str(caught.value) == f"unsupported document format: {looks_like}"


@pytest.mark.parametrize(
    ("head", "tail", "expected"),
    [
        (b"\r\n\r\njunk before the header %PDF-1.4\n1 0 obj", b"startxref\n1234\n%%EOF\n", "pdf"),
        (b"Dear customer,\nthe attached %PDF-1.4 file is your invoice.\n", b"Regards\n", "text"),
        (b"Notes: a file starting with %PDF- is a PDF\n", b"", "text"),
    ],
)
def test_a_pdf_header_after_the_start_counts_only_with_a_pdf_trailer(head: bytes, tail: bytes, expected: str) -> None:
    """Before the fix, a text that merely mentioned "%PDF-" in its first kilobyte went to ghostscript and failed as
    "not a valid PDF"."""
    assert sniff_format(head, tail) == expected


def test_sniff_empty() -> None:
    with pytest.raises(RenderError, match=r"^empty document$"):
        sniff_format(b"")


async def test_valid_tiff_validates(dense_tiff: bytes, tmp_path: Path) -> None:
    path = tmp_path / "fax.tif"
    path.write_bytes(dense_tiff)

    assert await validate_fax_tiff(path) == 2


@pytest.mark.parametrize("keep", [0.1, 0.3, 0.5, 0.8, 0.95, 0.999])
async def test_truncated_tiff_is_rejected(dense_tiff: bytes, tmp_path: Path, keep: float) -> None:
    path = tmp_path / "fax.tif"
    path.write_bytes(dense_tiff[: int(len(dense_tiff) * keep)])

    with pytest.raises(
        RenderError, match=r"^rendered fax (is corrupt|is cut short|has (page data|a tag value) past the end)"
    ):
        await validate_fax_tiff(path)


@pytest.mark.parametrize("damage", ["zeros", "ones", "noise"])
@pytest.mark.parametrize("where", [0.2, 0.5, 0.9])
async def test_corrupted_page_data_is_rejected(dense_tiff: bytes, tmp_path: Path, damage: str, where: float) -> None:
    path = tmp_path / "fax.tif"
    path.write_bytes(dense_tiff)
    offset, length = _first_strip(path)
    start = offset + int(length * where)
    filler = {"zeros": b"\x00" * 16, "ones": b"\xff" * 16, "noise": bytes.fromhex("5a3c96e1" * 4)}[damage]
    corrupted = bytearray(dense_tiff)
    corrupted[start : start + 16] = filler
    path.write_bytes(corrupted)

    # Pillow decodes such a page without complaint; only libtiff's decoder warnings reveal the damage. What libtiff
    # said goes to the log: the job's error text names no library.
    assert LibTiff().decode(bytes(corrupted)).startswith("bad Fax4Decode")
    with pytest.raises(RenderError) as caught:
        await validate_fax_tiff(path)
    assert str(caught.value) == "rendered fax is corrupt"


async def test_wrong_width_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "narrow.tif"
    Image.new("1", (1000, 1400), 1).save(path, compression="group4", dpi=(204, 196))

    with pytest.raises(RenderError) as caught:
        await validate_fax_tiff(path)

    assert str(caught.value) == "rendered fax page 1 is 1000 px wide, not 1728"


async def test_greyscale_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "grey.tif"
    Image.new("L", (1728, 2292), 255).save(path, compression="tiff_lzw", dpi=(204, 196))

    with pytest.raises(RenderError) as caught:
        await validate_fax_tiff(path)

    assert str(caught.value) == "rendered fax page 1 is not bilevel"


async def test_missing_resolution_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "nodpi.tif"
    Image.new("1", (1728, 2292), 1).save(path, compression="group4", dpi=(72, 72))

    with pytest.raises(RenderError, match="has resolution 72x72 dpi, not a fax resolution"):
        await validate_fax_tiff(path)


async def test_the_page_check_decodes_the_bytes_it_is_sent(dense_tiff: bytes, tmp_path: Path) -> None:
    # The checker is given the bytes the fax is assembled from, not a path: a converter that can still write its
    # output directory cannot swap a page after it passed. It sees no directory of the job's at all.
    checker = _PageChecker(default_converters().sandbox, tmp_path, Limits(cpu_seconds=30))
    try:
        whole = await checker.submit(dense_tiff)
        cut = await checker.submit(dense_tiff[: len(dense_tiff) // 2])
        assert await whole == "ok 2"
        assert (await cut).startswith("bad ")
    finally:
        await checker.close()
    assert _names(tmp_path) == ["pagecheck"]
    assert set(_names(tmp_path / "pagecheck")) <= {".tmp"}  # its own directory, and nothing written there


async def test_not_a_tiff_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "fax.tif"
    path.write_bytes(b"%PDF-1.4\n")

    with pytest.raises(RenderError, match=r"^rendered fax is not a TIFF file"):
        await validate_fax_tiff(path)
