"""How much the fetcher's rendering costs over a bare ghostscript run on the same documents.

    uv run python bench/render_bench.py [--repeat 5]

"Ours" is `fax_fetcher.render.render_to_fax_tiff`: page count check, ghostscript, tiffcp (join and compression)
and the full decode of every page (tiffinfo -D and Pillow). "Bare gs" is the one ghostscript command with the same
device, resolution and page size. Both documents are generated on the spot: a 50-page text PDF and a 10-page PDF
of full-page photos (noise, so nothing compresses away). Figures are medians of wall-clock time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from fax_fetcher.render import RenderOptions, render_to_fax_tiff

BARE_GS = [
    "gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dNOINTERPOLATE", "-sDEVICE=tiffg4", "-r204x196", "-g1728x2292",
    "-dFitPage", "-dFIXEDMEDIA",
]  # fmt: skip


def text_pdf(path: Path, pages: int = 50) -> Path:
    """`pages` A4 pages of 60 lines of Courier each, made by ghostscript's pdfwrite."""
    lines = []
    for page in range(1, pages + 1):
        lines.append("/Courier findfont 10 scalefont setfont")
        for row in range(60):
            text = f"Page {page} line {row + 1}: the quick brown fox jumps over the lazy dog 0123456789"
            lines.append(f"40 {800 - row * 12} moveto ({text}) show")
        lines.append("showpage")
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-sPAPERSIZE=a4", f"-sOutputFile={path}",
         "-"],
        input="\n".join(lines).encode(),
        check=True,
        capture_output=True,
    )  # fmt: skip
    return path


def image_pdf(path: Path, pages: int = 10) -> Path:
    """`pages` pages, each one 1700 x 2200 colour photo (noise over a gradient) at 200 dpi, JPEG-compressed."""
    images = []
    for page in range(pages):
        noise = Image.effect_noise((1700, 2200), 40 + page)
        ramp = Image.linear_gradient("L").resize((1700, 2200))
        images.append(Image.merge("RGB", (noise, ramp, Image.blend(noise, ramp, 0.5))))
    images[0].save(path, format="PDF", save_all=True, append_images=images[1:], resolution=200.0, quality=85)
    return path


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
        work = Path(tmp)
        documents = {
            "50-page text PDF": text_pdf(work / "text.pdf"),
            "10-page image PDF": image_pdf(work / "images.pdf"),
        }
        print(f"{'document':<20} {'ours (s)':>9} {'bare gs (s)':>12} {'ours / gs':>10}")
        for name, pdf in documents.items():
            out = work / "out.tif"

            def ours(pdf: Path = pdf, out: Path = out) -> object:
                return asyncio.run(render_to_fax_tiff(pdf, out, options=RenderOptions()))

            def bare(pdf: Path = pdf, out: Path = out) -> object:
                return subprocess.run([*BARE_GS, f"-sOutputFile={out}", str(pdf)], check=True, capture_output=True)

            ours_s = median_seconds(ours, args.repeat)
            bare_s = median_seconds(bare, args.repeat)
            print(f"{name:<20} {ours_s:>9.2f} {bare_s:>12.2f} {ours_s / bare_s:>10.2f}")


if __name__ == "__main__":
    main()
