"""Images and plain text to fax pages, and fax pages to previews; run as ``python -m fax_render.raster`` in the
converter sandbox (`fax_runtime.sandbox`).

Decoders for hostile images are where crashes, hangs and memory blow-ups live, so the fetcher never runs them in
its own process: `render.py` starts this module sandboxed, with a memory limit and a timeout, and a crash or kill
costs only the child. ``pages`` writes each page into the working directory as a 1728 px wide, bilevel TIFF at
204 x `y_dpi`, compressed as the job wants (G4, or G3 2-D), named ``page-NNNNN.tif``; ``previews`` draws one PNG per
page of a fax, ``preview-N.png``.

Exit status 0 prints the page count; exit status 2 prints the job's error text on stderr (what was wrong with the
document, never a path or a library's message).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

FAX_WIDTH_PX = 1728
FAX_X_DPI = 204
# Legal is the longest page an image becomes: a taller image (a long screenshot) is shrunk to fit, not cropped.
MAX_PAGE_HEIGHT_INCHES = 14.0
TEXT_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf",
)
TEXT_POINT_SIZE = 10
# The fax line width by A4 length: at 204 x 196 dpi exactly the 1728 x 2292 page ghostscript draws PDFs on.
TEXT_PAGE_INCHES = (FAX_WIDTH_PX / FAX_X_DPI, 2292 / 196)
TEXT_MARGIN_INCHES = 0.5
IMAGE_FORMATS = {"tiff": "TIFF", "png": "PNG", "jpeg": "JPEG", "gif": "GIF", "bmp": "BMP"}
IMAGE_MODES = ("auto", "dither", "threshold")
COMPRESSIONS = {"group4": {}, "group3": {"tiffinfo": {292: 5}}}  # T4Options 5: 2-D coding, EOLs byte-aligned


class RasterError(Exception):
    """str(error) is the job's error text."""


def image_pages(
    source: Path,
    fmt: str,
    out_dir: Path,
    *,
    y_dpi: int,
    image_mode: str,
    max_pixels: int,
    max_pages: int,
    compression: str = "group4",
) -> int:
    """Write one fax page per image frame (TIFF) or per image (others); return the page count."""
    # The explicit check below refuses every frame over the cap before it is decoded, with the image's dimensions
    # in the error; Pillow's own check would only raise at twice the cap, with a vaguer text.
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(source, formats=[IMAGE_FORMATS[fmt]]) as image:
            # A GIF's frames are an animation, not pages.
            frames = getattr(image, "n_frames", 1) if fmt == "tiff" else 1
            if frames > max_pages:
                raise RasterError(f"document has {frames} pages, more than the {max_pages} page limit")
            for index in range(frames):
                image.seek(index)
                width, height = image.size
                if width * height > max_pixels:
                    raise RasterError(
                        f"image is {width} x {height} pixels, more than the {max_pixels // 1_000_000} megapixel limit"
                    )
                image.load()
                page = fit_to_fax_page(image, y_dpi=y_dpi, image_mode=image_mode, is_jpeg=fmt == "jpeg")
                _save_page(page, out_dir, index + 1, y_dpi, compression)
            return frames
    except RasterError:
        raise
    except Image.DecompressionBombError:
        raise RasterError(f"image too large to decode (limit {max_pixels // 1_000_000} megapixels)") from None
    except MemoryError:
        raise RasterError("could not convert document: it needs more memory than the conversion limit") from None
    except Exception as error:
        # What the decoder said is for the log (stderr, read by the fetcher), not for the job's error text.
        print(f"{type(error).__name__}: {_short(error)}", file=sys.stderr)
        raise RasterError(f"could not convert document: not a valid {fmt.upper()} image") from None


def fit_to_fax_page(image: Image.Image, *, y_dpi: int, image_mode: str, is_jpeg: bool = False) -> Image.Image:
    """One bilevel page, 1728 px wide at 204 x `y_dpi`, keeping the image's physical aspect ratio.

    Transparent pixels become white paper, JPEGs are turned upright by their EXIF orientation, landscape images
    are rotated to portrait, and an image taller than a legal page is shrunk to fit it and centred.
    """
    bilevel_source = image.mode == "1"
    if is_jpeg:
        image = ImageOps.exif_transpose(image) or image
    x_src, y_src = _source_dpi(image)
    image = _shrink_for_page(image, y_dpi)
    grey = _flatten_to_grey(image)
    # Physical aspect (height / width); fax pixels are not square at standard and superfine resolution.
    aspect = (grey.height / y_src) / (grey.width / x_src)
    if aspect < 1:
        grey = grey.transpose(Image.Transpose.ROTATE_90)
        aspect = 1 / aspect
    width = FAX_WIDTH_PX
    height = max(1, round(FAX_WIDTH_PX / FAX_X_DPI * aspect * y_dpi))
    max_height = round(MAX_PAGE_HEIGHT_INCHES * y_dpi)
    if height > max_height:
        width = max(1, round(FAX_WIDTH_PX * max_height / height))
        height = max_height
    scaled = grey.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    if width != FAX_WIDTH_PX:
        canvas = Image.new("L", (FAX_WIDTH_PX, height), 255)
        canvas.paste(scaled, ((FAX_WIDTH_PX - width) // 2, 0))
        scaled = canvas
    threshold = image_mode == "threshold" or (image_mode == "auto" and bilevel_source)
    if threshold:
        return scaled.point(lambda value: 255 if value >= 128 else 0, mode="1")
    return scaled.convert("1", dither=Image.Dither.FLOYDSTEINBERG)


def _shrink_for_page(image: Image.Image, y_dpi: int) -> Image.Image:
    """Reduce a huge image by a whole factor before anything else copies it: a 10,000 x 10,000 RGBA PNG then costs
    its decoded 400 MB once, not again for each conversion on the way to grey (it took 1.5 GB)."""
    target = max(FAX_WIDTH_PX, round(MAX_PAGE_HEIGHT_INCHES * y_dpi))
    factor = min(image.width, image.height) // target
    if factor < 2 or image.mode not in ("1", "L", "LA", "RGB", "RGBA", "P", "I", "F", "I;16"):
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.reduce(factor)


def _source_dpi(image: Image.Image) -> tuple[float, float]:
    dpi = image.info.get("dpi")
    try:
        x_dpi, y_dpi = (float(value) for value in dpi)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return 1.0, 1.0
    if x_dpi <= 0 or y_dpi <= 0:
        return 1.0, 1.0
    return x_dpi, y_dpi


def _flatten_to_grey(image: Image.Image) -> Image.Image:
    """Greyscale on white paper: alpha (and palette transparency) is composited over white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # Pillow clips 16-bit samples converting to "L"; scale them into 8 bits first.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    if image.mode == "F":
        image = image.convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Grey composited over white paper, one channel at a time (compositing in RGBA took four times the memory).
        paper = Image.new("L", image.size, 255)
        paper.paste(image.convert("L"), mask=image.getchannel("A"))
        return paper
    return image.convert("L")


def text_pages(
    source: Path,
    out_dir: Path,
    *,
    y_dpi: int,
    max_pages: int,
    max_bytes: int = 10 * 1024 * 1024,
    compression: str = "group4",
) -> int:
    """Paginate UTF-8 text in a monospace font, A4 length with half-inch margins; return the page count."""
    raw = source.read_bytes()[: max_bytes + 1]
    if len(raw) > max_bytes:
        raise RasterError(f"text document larger than {max_bytes // (1024 * 1024)} MB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RasterError(f"could not convert document: text is not valid UTF-8 (byte {error.start})") from None
    font_path = next((path for path in TEXT_FONT_CANDIDATES if Path(path).exists()), None)
    if font_path is None:
        raise RasterError("plain text needs the DejaVu Sans Mono font (Debian package fonts-dejavu-core)")
    # Text is laid out with square pixels at 204 dpi, then resampled to the job's resolution like any image.
    font = ImageFont.truetype(font_path, round(TEXT_POINT_SIZE * FAX_X_DPI / 72))
    page_w, page_h = (round(inches * FAX_X_DPI) for inches in TEXT_PAGE_INCHES)
    margin = round(TEXT_MARGIN_INCHES * FAX_X_DPI)
    char_w = font.getlength("M")
    ascent, descent = font.getmetrics()
    line_h = round((ascent + descent) * 1.15)
    columns = int((page_w - 2 * margin) // char_w)
    rows = (page_h - 2 * margin) // line_h
    # Laid out before anything is drawn, and no further than one page past the limit: 100,000 form feeds fail at
    # once instead of drawing 500 pages first.
    sheets = list(itertools.islice(_paginate(text, columns, rows), max_pages + 1))
    if len(sheets) > max_pages:
        raise RasterError(f"document has more than {max_pages} pages, the limit")
    count = 0
    for lines in sheets:
        count += 1
        page = Image.new("L", (page_w, page_h), 255)
        draw = ImageDraw.Draw(page)
        for row, line in enumerate(lines):
            draw.text((margin, margin + row * line_h), line, font=font, fill=0)
        page.info["dpi"] = (FAX_X_DPI, FAX_X_DPI)
        _save_page(fit_to_fax_page(page, y_dpi=y_dpi, image_mode="threshold"), out_dir, count, y_dpi, compression)
    return count


def _paginate(text: str, columns: int, rows: int) -> Iterator[list[str]]:
    """Pages of at most `rows` lines: tabs expanded, long lines wrapped, form feeds start a new page."""
    for sheet in text.replace("\r\n", "\n").replace("\r", "\n").split("\f"):
        lines: list[str] = []
        for line in sheet.split("\n"):
            line = "".join(char if char.isprintable() else " " for char in line.expandtabs(8))
            # textwrap is quadratic-ish on a line without spaces: wrap a very long line a screenful at a time.
            step = columns * 64
            for start in range(0, max(len(line), 1), step):
                segment = line[start : start + step]
                lines.extend(textwrap.wrap(segment, columns, drop_whitespace=False, replace_whitespace=False) or [""])
        while lines and lines[-1] == "":
            lines.pop()
        for start in range(0, max(len(lines), 1), rows):
            yield lines[start : start + rows]


def _save_page(page: Image.Image, out_dir: Path, number: int, y_dpi: int, compression: str) -> None:
    page.save(
        out_dir / f"page-{number:05d}.tif",
        format="TIFF",
        compression=compression,
        dpi=(FAX_X_DPI, y_dpi),
        **COMPRESSIONS[compression],
    )


def previews(tiff: Path, out_dir: Path, *, width: int) -> int:
    """One greyscale PNG per fax page, `width` px wide, with square pixels whatever the fax resolution."""
    with Image.open(tiff, formats=["TIFF"]) as image:
        frames = getattr(image, "n_frames", 1)
        for index in range(frames):
            image.seek(index)
            x_dpi, y_dpi = (float(value) for value in image.info.get("dpi", (FAX_X_DPI, FAX_X_DPI)))
            height = max(1, round(image.height * width / image.width * x_dpi / y_dpi))
            preview = image.convert("L").resize((width, height), Image.Resampling.BOX)
            preview.save(out_dir / f"preview-{index + 1}.png", format="PNG", optimize=True)
    return frames


def _short(error: BaseException) -> str:
    return (str(error) or type(error).__name__).splitlines()[0][:120]


def main(argv: list[str] | None = None) -> int:
    """Command line for the child process; see the module docstring for the protocol."""
    parser = argparse.ArgumentParser(prog="python -m fax_render.raster")
    commands = parser.add_subparsers(dest="command", required=True)
    pages = commands.add_parser("pages", help="a document's pages as fax pages")
    pages.add_argument("--format", required=True, choices=[*IMAGE_FORMATS, "text"])
    pages.add_argument("--y-dpi", type=int, required=True)
    pages.add_argument("--image-mode", choices=IMAGE_MODES, default="auto")
    pages.add_argument("--compression", choices=list(COMPRESSIONS), default="group4")
    pages.add_argument("--max-pixels", type=int, required=True)
    pages.add_argument("--max-pages", type=int, required=True)
    pages.add_argument("source", type=Path)
    drawn = commands.add_parser("previews", help="PNG previews of a fax's pages")
    drawn.add_argument("--width", type=int, required=True)
    drawn.add_argument("source", type=Path)
    args = parser.parse_args(argv)
    out_dir = Path.cwd()
    try:
        if args.command == "previews":
            count = previews(args.source, out_dir, width=args.width)
        elif args.format == "text":
            count = text_pages(
                args.source, out_dir, y_dpi=args.y_dpi, max_pages=args.max_pages, compression=args.compression
            )
        else:
            count = image_pages(
                args.source,
                args.format,
                out_dir,
                y_dpi=args.y_dpi,
                image_mode=args.image_mode,
                max_pixels=args.max_pixels,
                max_pages=args.max_pages,
                compression=args.compression,
            )
    except RasterError as error:
        print(error, file=sys.stderr)
        return 2
    except MemoryError:
        print("could not convert document: it needs more memory than the conversion limit", file=sys.stderr)
        return 2
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
