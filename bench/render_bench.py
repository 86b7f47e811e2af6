"""How much the fetcher's rendering costs over a bare ghostscript run on the same documents.

    uv run python bench/render_bench.py [--repeat 5]

"Ours" is `fax_render.render.render_to_fax_tiff` as the fetcher runs it: ghostscript in the converter sandbox
(bubblewrap where it works, see the first line printed) with the page count first, the full decode of every page by
the sandboxed page checker, and the join into one file. "Bare gs" is the one ghostscript command with the same
device, resolution and page size, run directly. Both documents are generated on the spot: a 50-page text PDF and a
10-page PDF of full-page photos (noise, so nothing compresses away).

The two are run alternately, ours then bare, `--repeat` times, so both see the same load on a shared machine;
figures are medians of wall-clock time, and the ratio is the median of each pair's ratio. Ours runs inside one
event loop, as in the fetcher: an `asyncio.run` per render would add the start and stop of a loop (about 60 ms
here) that the service never pays.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from PIL import Image

from fax_render.render import RenderOptions, default_converters, render_to_fax_tiff

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


async def seconds(run: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(compare(args.repeat))


async def compare(repeat: int) -> None:
    converters = default_converters()
    print(f"converter sandbox: {converters.sandbox.status.detail}")
    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
        work = Path(tmp)
        documents = {
            "50-page text PDF": text_pdf(work / "text.pdf"),
            "10-page image PDF": image_pdf(work / "images.pdf"),
        }
        print(f"{'document':<20} {'ours (s)':>9} {'bare gs (s)':>12} {'ours / gs':>10}")
        for name, pdf in documents.items():
            out = work / "out.tif"

            async def ours(pdf: Path = pdf, out: Path = out) -> object:
                return await render_to_fax_tiff(pdf, out, options=RenderOptions(), converters=converters)

            async def bare(pdf: Path = pdf, out: Path = out) -> object:
                # The anchor blocks the loop on purpose: nothing else runs on it, and this is the bare command.
                return subprocess.run([*BARE_GS, f"-sOutputFile={out}", str(pdf)], check=True, capture_output=True)  # noqa: ASYNC221

            pairs = [(await seconds(ours), await seconds(bare)) for _ in range(repeat)]
            ours_s = statistics.median(pair[0] for pair in pairs)
            bare_s = statistics.median(pair[1] for pair in pairs)
            ratio = statistics.median(pair[0] / pair[1] for pair in pairs)
            print(f"{name:<20} {ours_s:>9.2f} {bare_s:>12.2f} {ratio:>10.2f}")


if __name__ == "__main__":
    main()
