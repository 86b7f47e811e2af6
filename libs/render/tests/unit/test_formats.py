"""Every accepted format becomes a valid TIFF-F; the job's options pick resolution, compression and image mode."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from fax_render.render import (
    RenderError,
    RenderOptions,
    render_documents,
    render_to_fax_tiff,
    write_pdf_copy,
    write_previews,
)


def _pages(tiff: Path) -> list[dict[str, object]]:
    """Size, resolution and compression of every page, read back with Pillow."""
    pages = []
    with Image.open(tiff) as image:
        for index in range(image.n_frames):
            image.seek(index)
            x_dpi, y_dpi = (round(float(value)) for value in image.info["dpi"])
            pages.append(
                {
                    "size": image.size,
                    "dpi": (x_dpi, y_dpi),
                    "compression": image.info["compression"],
                    "black": image.convert("L").histogram()[0],
                }
            )
    return pages


def _write(path: Path, image: Image.Image, fmt: str, **params: object) -> Path:
    image.save(path, format=fmt, **params)
    return path


def _pdf(path: Path, postscript: str, paper: str = "a4") -> Path:
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", f"-sPAPERSIZE={paper}",
         f"-sOutputFile={path}", "-"],
        input=postscript.encode(),
        check=True,
        capture_output=True,
    )  # fmt: skip
    return path


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _photo(width: int, height: int) -> Image.Image:
    """A horizontal grey ramp: dithering turns it into a mix of black and white, a threshold into two halves."""
    ramp = Image.linear_gradient("L").rotate(90).resize((width, height))
    return Image.merge("RGB", (ramp, ramp, ramp))


async def test_png_with_alpha_is_flattened_on_white(tmp_path: Path) -> None:
    transparent_black = Image.new("RGBA", (800, 1000), (0, 0, 0, 0))
    source = _write(tmp_path / "upload", transparent_black, "PNG")

    rendered = await render_to_fax_tiff(source, tmp_path / "fax.tif")

    [page] = _pages(rendered.tiff_path)
    assert rendered.pages == 1
    assert page["size"] == (1728, round(1728 / 204 * 1000 / 800 * 196))
    assert page["dpi"] == (204, 196)
    assert page["compression"] == "group4"
    assert page["black"] == 0  # fully transparent black is paper, not ink


async def test_jpeg_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored landscape (1000 x 750) with orientation 6 ("rotate 90 CW to view"): upright it is portrait.
    exif = Image.Exif()
    exif[0x0112] = 6
    source = _write(tmp_path / "upload", _photo(1000, 750), "JPEG", exif=exif.tobytes())

    rendered = await render_to_fax_tiff(source, tmp_path / "fax.tif")

    [page] = _pages(rendered.tiff_path)
    assert page["size"] == (1728, round(1728 / 204 * 1000 / 750 * 196))


async def test_landscape_image_is_rotated_to_portrait(tmp_path: Path) -> None:
    source = _write(tmp_path / "upload", _photo(1000, 800), "BMP")

    rendered = await render_to_fax_tiff(source, tmp_path / "fax.tif")

    [page] = _pages(rendered.tiff_path)
    assert page["size"] == (1728, round(1728 / 204 * 1.25 * 196))


async def test_image_taller_than_legal_is_shrunk_and_centred(tmp_path: Path) -> None:
    source = _write(tmp_path / "upload", Image.new("L", (500, 2000), 0), "PNG")

    rendered = await render_to_fax_tiff(source, tmp_path / "fax.tif")

    [page] = _pages(rendered.tiff_path)
    assert page["size"] == (1728, 14 * 196)
    with Image.open(rendered.tiff_path) as image:
        left, _top, right, _bottom = Image.eval(image.convert("L"), lambda value: 255 - value).getbbox() or (0, 0, 0, 0)
    assert abs(left - (1728 - right)) <= 1 and right - left == round(14 * 196 / 4 * 204 / 196)


async def test_gif_renders_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("P", (400, 500), colour) for colour in (0, 1, 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    (tmp_path / "upload").write_bytes(buffer.getvalue())

    rendered = await render_to_fax_tiff(tmp_path / "upload", tmp_path / "fax.tif")

    assert rendered.pages == 1


@pytest.mark.parametrize(("mode", "compression"), [("L", "tiff_lzw"), ("1", "packbits"), ("RGB", "tiff_deflate")])
async def test_multipage_tiff_of_any_kind_becomes_fax_pages(mode: str, compression: str, tmp_path: Path) -> None:
    pages = [Image.new(mode, (850, 1100), 0 if index % 2 else "white") for index in range(3)]
    source = tmp_path / "upload"
    pages[0].save(
        source, format="TIFF", save_all=True, append_images=pages[1:], compression=compression, dpi=(100, 100)
    )

    rendered = await render_to_fax_tiff(source, tmp_path / "fax.tif")

    result = _pages(rendered.tiff_path)
    assert [page["size"] for page in result] == [(1728, round(1728 / 204 * 1100 / 850 * 196))] * 3
    assert {page["compression"] for page in result} == {"group4"}


async def test_standard_resolution_fax_tiff_is_resampled_to_fine(tmp_path: Path) -> None:
    # A received fax: 1728 x 1100 at 204 x 98 is a letter-ish page; at fine it needs twice the rows.
    source = _write(tmp_path / "upload", Image.new("1", (1728, 1100), 1), "TIFF", compression="group3", dpi=(204, 98))

    rendered = await render_to_fax_tiff(source, tmp_path / "fax.tif")

    [page] = _pages(rendered.tiff_path)
    assert page["size"] == (1728, 2200)
    assert page["dpi"] == (204, 196)


async def test_photos_are_dithered_unless_thresholded(tmp_path: Path) -> None:
    source = _write(tmp_path / "upload", _photo(400, 500), "PNG")

    dithered = await render_to_fax_tiff(source, tmp_path / "dithered.tif")
    thresholded = await render_to_fax_tiff(
        source, tmp_path / "thresholded.tif", options=RenderOptions(image_mode="threshold")
    )

    # Thresholded: the dark half is solid black rows; dithered: black dots spread over the whole width.
    def black_in_last_column(tiff: Path) -> int:
        with Image.open(tiff) as image:
            column = image.convert("L").crop((1700, 0, 1728, image.height))
            return column.histogram()[0]

    assert black_in_last_column(tmp_path / "thresholded.tif") == 0
    assert black_in_last_column(tmp_path / "dithered.tif") > 0
    assert _pages(dithered.tiff_path)[0]["black"] != _pages(thresholded.tiff_path)[0]["black"]


async def test_plain_text_is_paginated(tmp_path: Path) -> None:
    lines = "\n".join(f"line {number} — Grüße" for number in range(1, 151))
    source = tmp_path / "upload"
    source.write_text(lines + "\fafter a form feed\n", encoding="utf-8")

    rendered = await render_to_fax_tiff(source, tmp_path / "fax.tif")

    result = _pages(rendered.tiff_path)
    # 150 lines at ~60 lines a page is three pages; the form feed starts a fourth.
    assert rendered.pages == 4
    assert {page["size"] for page in result} == {(1728, 2292)}
    assert all(page["black"] > 0 for page in result)


async def test_text_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "upload"
    source.write_bytes(b"plain ascii start " * 100 + b"\xff\xfe broken")

    with pytest.raises(RenderError, match=r"^could not convert document: text is not valid UTF-8"):
        await render_to_fax_tiff(source, tmp_path / "fax.tif")


@pytest.mark.parametrize(
    ("resolution", "y_dpi", "height"), [("standard", 98, 1146), ("fine", 196, 2292), ("superfine", 392, 4584)]
)
async def test_resolution_option_sets_tags_and_rows(resolution: str, y_dpi: int, height: int, tmp_path: Path) -> None:
    options = RenderOptions.from_request({"fax_resolution": resolution})
    pdf = _pdf(tmp_path / "doc.pdf", "showpage")
    image = _write(tmp_path / "image.png", Image.new("L", (850, 1100), 255), "PNG")

    rendered = await render_documents([pdf, image], tmp_path / "fax.tif", options=options)

    first, second = _pages(rendered.tiff_path)
    assert first["size"] == (1728, height)
    assert first["dpi"] == second["dpi"] == (204, y_dpi)
    assert second["size"] == (1728, round(1728 / 204 * 1100 / 850 * y_dpi))


async def test_without_ecm_pages_are_g3_2d(tmp_path: Path) -> None:
    options = RenderOptions.from_request({"fax_ecm": False})
    pdf = _pdf(tmp_path / "doc.pdf", "showpage showpage")

    rendered = await render_to_fax_tiff(pdf, tmp_path / "fax.tif", options=options)

    assert {page["compression"] for page in _pages(rendered.tiff_path)} == {"group3"}
    info = _run(["tiffinfo", str(rendered.tiff_path)])
    assert "2-d encoding" in info


@pytest.mark.parametrize("paper", ["letter", "a4", "legal", "11x17"])
async def test_pages_are_fitted_without_cropping(paper: str, tmp_path: Path) -> None:
    # A frame drawn 2 pt inside the page edge must survive on all four sides.
    frame = "clippath pathbbox /ury exch def /urx exch def /lly exch def /llx exch def " \
        "8 setlinewidth llx 6 add lly 6 add urx llx sub 12 sub ury lly sub 12 sub rectstroke showpage"  # fmt: skip
    pdf = _pdf(tmp_path / "doc.pdf", frame, paper=paper)

    rendered = await render_to_fax_tiff(pdf, tmp_path / "fax.tif")

    with Image.open(rendered.tiff_path) as image:
        ink = Image.eval(image.convert("L"), lambda value: 255 - value).getbbox()
    assert ink is not None
    left, top, right, bottom = ink
    # Touches one pair of edges: the page is fitted, not shrunk more than it must be.
    assert (left < 40 and right > 1688) or (top < 40 and bottom > 2252)
    assert right <= 1728 and bottom <= 2292
    assert right - left > 1000 and bottom - top > 1000


async def test_landscape_pdf_page_is_rotated(tmp_path: Path) -> None:
    # A landscape page with a wide black bar along its long side: rotated, the bar runs down the fax page.
    pdf = _pdf(tmp_path / "doc.pdf", "<< /PageSize [842 595] >> setpagedevice 0 0 842 60 rectfill showpage")

    rendered = await render_to_fax_tiff(pdf, tmp_path / "fax.tif")

    with Image.open(rendered.tiff_path) as image:
        ink = Image.eval(image.convert("L"), lambda value: 255 - value).getbbox()
    assert ink is not None
    left, top, right, bottom = ink
    assert bottom - top > 2 * (right - left)


async def test_documents_are_joined_in_order(tmp_path: Path) -> None:
    text = tmp_path / "a"
    text.write_text("first document\n")
    pdf = _pdf(tmp_path / "b", "showpage showpage")
    image = _write(tmp_path / "c", Image.new("RGB", (100, 100), "black"), "PNG")

    rendered = await render_documents([text, pdf, image], tmp_path / "fax.tif")

    result = _pages(rendered.tiff_path)
    assert rendered.pages == 4
    assert result[1]["black"] == result[2]["black"] == 0  # the blank PDF pages sit between text and image
    assert result[3]["size"] == (1728, round(1728 / 204 * 196))
    assert result[3]["black"] > 1728 * 1000


async def test_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    source = _write(tmp_path / "upload", Image.new("1", (3000, 3000)), "PNG")

    with pytest.raises(RenderError) as caught:
        await render_to_fax_tiff(source, tmp_path / "fax.tif", max_pixels=5_000_000)

    assert str(caught.value) == "image is 3000 x 3000 pixels, more than the 5 megapixel limit"


async def test_tiff_over_the_page_limit_is_refused(tmp_path: Path) -> None:
    pages = [Image.new("1", (100, 100)) for _ in range(4)]
    source = tmp_path / "upload"
    pages[0].save(source, format="TIFF", save_all=True, append_images=pages[1:])

    with pytest.raises(RenderError) as caught:
        await render_to_fax_tiff(source, tmp_path / "fax.tif", max_pages=3)

    assert str(caught.value) == "document has 4 pages, more than the 3 page limit"


async def test_office_documents_need_libreoffice(tmp_path: Path) -> None:
    if shutil.which("soffice") or shutil.which("libreoffice"):
        pytest.skip("LibreOffice is installed here")
    source = tmp_path / "upload"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        package.writestr("word/document.xml", "<w:document/>")
    source.write_bytes(buffer.getvalue())

    with pytest.raises(RenderError) as caught:
        await render_to_fax_tiff(source, tmp_path / "fax.tif")

    assert str(caught.value) == "Office documents need LibreOffice, which is not installed"


@pytest.mark.parametrize(
    "entries", [{"invoice.pdf": "%PDF-1.4"}, {"mimetype": "application/epub+zip", "content.opf": "<package/>"}]
)
async def test_other_zip_archives_are_not_office_documents(entries: dict[str, str], tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    (tmp_path / "upload").write_bytes(buffer.getvalue())

    with pytest.raises(RenderError, match=r"^unsupported document format: ZIP archive$"):
        await render_to_fax_tiff(tmp_path / "upload", tmp_path / "fax.tif")


async def test_pdf_copy_and_previews(tmp_path: Path) -> None:
    pdf = _pdf(tmp_path / "doc.pdf", "showpage showpage")
    rendered = await render_to_fax_tiff(pdf, tmp_path / "fax.tif", options=RenderOptions(y_dpi=98))

    await write_pdf_copy(rendered.tiff_path, tmp_path / "copy.pdf")
    previews = await write_previews(rendered.tiff_path, tmp_path)

    info = _run(["pdfinfo", str(tmp_path / "copy.pdf")])
    assert "Pages:           2" in info
    assert [path.name for path in previews] == ["preview-1.png", "preview-2.png"]
    with Image.open(previews[0]) as preview:
        # Square pixels: an A4 page, 864 px wide, is about 1193 px tall whatever the fax resolution.
        assert preview.format == "PNG"
        assert preview.width == 864 and abs(preview.height - 1193) <= 2


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"fax_resolution": "ultra"}, "unknown fax_resolution 'ultra' (standard, fine or superfine)"),
        ({"fax_ecm": "no"}, "fax_ecm must be true or false"),
        ({"fax_image_mode": "sepia"}, "unknown fax_image_mode 'sepia' (auto, dither or threshold)"),
    ],
)
def test_invalid_options_are_refused(request_fields: dict[str, object], message: str) -> None:
    with pytest.raises(RenderError) as caught:
        RenderOptions.from_request(request_fields)

    assert str(caught.value) == message


def test_default_options() -> None:
    assert RenderOptions.from_request({}) == RenderOptions(y_dpi=196, ecm=True, image_mode="auto")
