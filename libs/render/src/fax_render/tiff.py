"""TIFF structure without decoding: read the pages' tags, check they are fax pages, join pages into one file.

A fax is assembled from pages the converters wrote one file each, already compressed as the job wants (G4, or G3
2-D). Joining them only copies each page's compressed strips and tags into one multi-page file: libtiff's tiffcp
and Pillow both decode and re-encode every page, which costs more than ghostscript's own rendering of a text page.
No library copies compressed TIFF pages as they are, hence this small reader and writer of baseline TIFF.
Decoding every page (the proof that a page is whole) is `fax_render.pagecheck`'s job, in the sandbox.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

FAX_WIDTH_PX = 1728
FAX_X_DPI = 204
FAX_Y_DPI_CHOICES = (98, 196, 392)
MAX_DIRECTORIES = 10_000

_TYPES = {1: "B", 2: "c", 3: "H", 4: "I", 5: "II", 6: "b", 7: "B", 8: "h", 9: "i", 10: "ii", 11: "f", 12: "d"}
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_COMPRESSIONS = {3: "group3", 4: "group4"}
_TILED = {322, 323, 324, 325}
NEW_SUBFILE_TYPE, IMAGE_WIDTH, IMAGE_LENGTH, BITS_PER_SAMPLE, COMPRESSION = 254, 256, 257, 258, 259
STRIP_OFFSETS, SAMPLES_PER_PIXEL, STRIP_BYTE_COUNTS = 273, 277, 279
X_RESOLUTION, Y_RESOLUTION, RESOLUTION_UNIT, PAGE_NUMBER = 282, 283, 296, 297


class TiffError(ValueError):
    """The file is not a readable baseline TIFF, or a page is not a fax page; str(error) says which."""


@dataclass(frozen=True)
class Entry:
    tag: int
    kind: int
    values: tuple[object, ...]


@dataclass(frozen=True)
class Page:
    """One directory: its entries by tag, and where its strips are in the file."""

    entries: dict[int, Entry]

    def value(self, tag: int, default: object = None) -> object:
        entry = self.entries.get(tag)
        return entry.values[0] if entry and entry.values else default

    def numbers(self, tag: int) -> tuple[int, ...]:
        entry = self.entries.get(tag)
        return tuple(int(value) for value in entry.values) if entry else ()  # type: ignore[call-overload]

    def dpi(self, tag: int) -> float:
        entry = self.entries.get(tag)
        if entry is None or not entry.values:
            return 0.0
        numerator, denominator = entry.values[0]  # type: ignore[misc]
        per_unit = numerator / denominator if denominator else 0.0
        unit = self.value(RESOLUTION_UNIT, 2)
        return per_unit * 2.54 if unit == 3 else per_unit if unit == 2 else 0.0


def read_pages(data: bytes) -> list[Page]:
    """Every directory of a classic TIFF file (little- or big-endian); TiffError if its structure is broken."""
    if data[:4] == b"II*\x00":
        order = "<"
    elif data[:4] == b"MM\x00*":
        order = ">"
    else:
        raise TiffError("is not a TIFF file")
    pages: list[Page] = []
    offset = _unpack(order + "I", data, 4)[0]
    seen: set[int] = set()
    while offset:
        if offset in seen or len(pages) >= MAX_DIRECTORIES:
            raise TiffError("has directories that loop")
        seen.add(offset)
        (count,) = _unpack(order + "H", data, offset)
        entries = {}
        for index in range(count):
            tag, kind, number, field = _unpack(order + "HHI4s", data, offset + 2 + 12 * index)
            entries[tag] = Entry(tag, kind, _values(data, order, kind, number, field))
        pages.append(Page(entries))
        (offset,) = _unpack(order + "I", data, offset + 2 + 12 * count)
    if not pages:
        raise TiffError("has no pages")
    for page in pages:
        offsets, counts = page.numbers(STRIP_OFFSETS), page.numbers(STRIP_BYTE_COUNTS)
        if _TILED & page.entries.keys() or not offsets or len(offsets) != len(counts):
            raise TiffError("has a page without strips")
        if any(start + length > len(data) for start, length in zip(offsets, counts, strict=True)):
            raise TiffError("has page data past the end of the file")
    return pages


def check_fax_page(page: Page, number: int) -> None:
    """TiffError unless `page` is 1728 px wide, bilevel, G3 or G4 compressed, at a fax resolution."""
    width = page.value(IMAGE_WIDTH)
    if width != FAX_WIDTH_PX:
        raise TiffError(f"page {number} is {width} px wide, not {FAX_WIDTH_PX}")
    if page.value(BITS_PER_SAMPLE, 1) != 1 or page.value(SAMPLES_PER_PIXEL, 1) != 1:
        raise TiffError(f"page {number} is not bilevel")
    if page.value(COMPRESSION) not in _COMPRESSIONS:
        raise TiffError(f"page {number} is not G3/G4 compressed")
    x_dpi, y_dpi = page.dpi(X_RESOLUTION), page.dpi(Y_RESOLUTION)
    # 8 dots/mm is 203.2 dpi, so some writers round differently; spandsp maps nearby values to the same mode.
    if abs(x_dpi - FAX_X_DPI) > 1.5 or not any(abs(y_dpi - choice) <= 2 for choice in FAX_Y_DPI_CHOICES):
        raise TiffError(f"page {number} has resolution {x_dpi:g}x{y_dpi:g} dpi, not a fax resolution")


class FaxAssembler:
    """Writes one little-endian multi-page TIFF file from fax pages given in order, copying their compressed strips.

    Pages are added as their converters finish them (and their decode check passes) and written at once, so the fax
    is on disk when its last page has passed; `finish` then only fills in the page count every page carries.
    """

    def __init__(self, dest: Path) -> None:
        self._fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        self._size = 0
        self._write(b"II*\x00\x00\x00\x00\x00")
        self._link = 4  # where the offset of the next directory goes
        self._totals: list[int] = []  # where each page's PageNumber total sits, filled in by `finish`
        self.pages = 0

    def add(self, data: bytes) -> int:
        """Append every page of the TIFF file `data` (each must pass `check_fax_page`); return how many it had."""
        pages = read_pages(data)
        for offset, page in enumerate(pages, start=1):
            check_fax_page(page, self.pages + offset)
        view = memoryview(data)
        for page in pages:
            base, out = self._size, bytearray()
            offsets = []
            for start, length in zip(page.numbers(STRIP_OFFSETS), page.numbers(STRIP_BYTE_COUNTS), strict=True):
                offsets.append(base + len(out))
                out += view[start : start + length]  # one copy, not two
                out += b"\x00" * (len(out) % 2)
            entries = dict(page.entries)
            entries[STRIP_OFFSETS] = Entry(STRIP_OFFSETS, 4, tuple(offsets))
            entries[PAGE_NUMBER] = Entry(PAGE_NUMBER, 3, (self.pages, 0))
            entries[NEW_SUBFILE_TYPE] = Entry(NEW_SUBFILE_TYPE, 4, (2,))
            tags = sorted(entries)
            ordered = [entries[tag] for tag in tags]
            directory = base + len(out)
            link = _write_directory(out, ordered, base)
            self._write(out)
            os.pwrite(self._fd, struct.pack("<I", directory), self._link)
            self._link = link
            # PageNumber's two SHORTs sit inline in its entry: the second is the total, known only at the end.
            self._totals.append(directory + 2 + 12 * tags.index(PAGE_NUMBER) + 8 + 2)
            self.pages += 1
        return len(pages)

    def finish(self) -> None:
        """Fill in the page count and close the file."""
        total = struct.pack("<H", self.pages)
        for at in self._totals:
            os.pwrite(self._fd, total, at)
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += len(data)


def _write_directory(out: bytearray, entries: list[Entry], base: int) -> int:
    """Append a directory (and, after it, the values that do not fit in an entry) to `out`, which starts at `base`
    in the file; return where the directory's next-offset is in the file."""
    start = base + len(out)
    values_at = start + 2 + 12 * len(entries) + 4
    directory = bytearray(struct.pack("<H", len(entries)))
    extra = bytearray()
    for entry in entries:
        packed = _pack(entry)
        count = len(packed) // _SIZES[entry.kind]
        if len(packed) <= 4:
            field = packed.ljust(4, b"\x00")
        else:
            field = struct.pack("<I", values_at + len(extra))
            extra += packed + b"\x00" * (len(packed) % 2)
        directory += struct.pack("<HHI", entry.tag, entry.kind, count) + field
    out += directory + b"\x00\x00\x00\x00" + extra
    return start + 2 + 12 * len(entries)


def _values(data: bytes, order: str, kind: int, number: int, field: bytes) -> tuple[object, ...]:
    if kind not in _TYPES:
        return ()  # an unknown type: the entry is dropped on joining
    size = _SIZES[kind] * number
    if size <= 4:
        raw = field[:size]
    else:
        (at,) = struct.unpack(order + "I", field)
        if at + size > len(data):
            raise TiffError("has a tag value past the end of the file")
        raw = data[at : at + size]
    if kind in (1, 2, 7):
        return (bytes(raw),) if kind != 1 else tuple(raw)
    if kind in (5, 10):
        flat = struct.unpack(f"{order}{2 * number}{'I' if kind == 5 else 'i'}", raw)
        return tuple(zip(flat[::2], flat[1::2], strict=True))
    return struct.unpack(f"{order}{number}{_TYPES[kind]}", raw)


def _pack(entry: Entry) -> bytes:
    if entry.kind in (2, 7):
        return b"".join(entry.values)  # type: ignore[arg-type]
    if entry.kind in (5, 10):
        flat = [number for pair in entry.values for number in pair]  # type: ignore[union-attr]
        return struct.pack(f"<{len(flat)}{'I' if entry.kind == 5 else 'i'}", *flat)
    return struct.pack(f"<{len(entry.values)}{_TYPES[entry.kind]}", *entry.values)


def _unpack(fmt: str, data: bytes, offset: int) -> tuple:  # type: ignore[type-arg]
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error:
        raise TiffError("is cut short") from None
