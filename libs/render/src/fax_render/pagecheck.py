"""Decode every strip of TIFF files with libtiff; run as ``python -m fax_render.pagecheck`` in the sandbox.

spandsp sends whatever strips libtiff hands it and reports success even when a page is truncated, and libtiff's fax
decoders only warn about bad code words (Pillow pads the rows and says nothing), so a page is whole only if libtiff
decodes all of it without a complaint. The files come from converters that ran on a tenant's document, so decoding
them is done here, in a sandboxed child, never in the fetcher.

The child reads one path per line on stdin and answers, for each, one line on stdout: ``ok <pages>`` or
``bad <what libtiff said>``. Staying up between files lets the fetcher check ghostscript's pages while ghostscript
still draws the next ones. This is a ctypes binding of the few libtiff calls that need (`TIFFOpen`,
`TIFFReadDirectory`, `TIFFReadEncodedStrip` and the two message handlers): tiffinfo -D does the same decode but
takes its files only on its command line.
"""

from __future__ import annotations

import ctypes
import re
import sys

# Harmless libtiff chatter; anything else means a page did not decode cleanly.
BENIGN = re.compile(r"Unknown field with tag|ASCII value for tag .* does not end in null byte")
MAX_PAGES = 10_000

_Handler = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)


class LibTiff:
    """The handful of libtiff calls a full decode needs, with its messages collected instead of printed."""

    def __init__(self) -> None:
        self._lib = _load("libtiff.so.6", "tiff")
        self._libc = _load("libc.so.6", "c")
        lib = self._lib
        lib.TIFFOpen.restype = ctypes.c_void_p
        lib.TIFFOpen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        lib.TIFFClose.argtypes = [ctypes.c_void_p]
        lib.TIFFReadDirectory.argtypes = [ctypes.c_void_p]
        lib.TIFFNumberOfStrips.argtypes = [ctypes.c_void_p]
        lib.TIFFNumberOfStrips.restype = ctypes.c_uint32
        lib.TIFFStripSize.argtypes = [ctypes.c_void_p]
        lib.TIFFStripSize.restype = ctypes.c_ssize_t
        lib.TIFFReadEncodedStrip.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_ssize_t]
        lib.TIFFReadEncodedStrip.restype = ctypes.c_ssize_t
        self._libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
        self.messages: list[str] = []
        # Kept referenced: a collected ctypes thunk would be reused for another callback.
        self._handler = _Handler(self._collect)
        lib.TIFFSetErrorHandler.argtypes = [_Handler]
        lib.TIFFSetWarningHandler.argtypes = [_Handler]
        lib.TIFFSetErrorHandler(self._handler)
        lib.TIFFSetWarningHandler(self._handler)

    def _collect(self, module: bytes | None, fmt: bytes | None, args: int | None) -> None:
        text = ctypes.create_string_buffer(512)
        self._libc.vsnprintf(text, len(text), fmt or b"", args)
        message = text.value.decode(errors="replace")
        if not BENIGN.search(message):
            self.messages.append(f"{(module or b'libtiff').decode(errors='replace')}: {message}")

    def decode(self, path: str) -> str:
        """``ok <pages>`` if every strip of every page decodes cleanly, else ``bad <first complaint>``."""
        self.messages.clear()
        handle = self._lib.TIFFOpen(path.encode(), b"r")
        if not handle:
            return f"bad {self.messages[0] if self.messages else 'not a TIFF file'}"
        pages = 0
        try:
            while True:
                pages += 1
                size = self._lib.TIFFStripSize(handle)
                buffer = ctypes.create_string_buffer(max(size, 1))
                for strip in range(self._lib.TIFFNumberOfStrips(handle)):
                    if self._lib.TIFFReadEncodedStrip(handle, strip, buffer, size) < 0 and not self.messages:
                        self.messages.append(f"strip {strip} of page {pages} is unreadable")
                if self.messages or pages >= MAX_PAGES or not self._lib.TIFFReadDirectory(handle):
                    break
        finally:
            self._lib.TIFFClose(handle)
        if self.messages:
            return f"bad {self.messages[0]}"
        return f"ok {pages}"


def _load(soname: str, name: str) -> ctypes.CDLL:
    """The library by its usual soname; find_library (which runs ldconfig, a process) only if that is missing."""
    try:
        return ctypes.CDLL(soname)
    except OSError:
        # Imported only here: it imports subprocess and shutil, ~10 ms of every checker's start otherwise.
        from ctypes.util import find_library

        return ctypes.CDLL(find_library(name) or soname)


def main() -> int:
    libtiff = LibTiff()
    for line in sys.stdin:
        path = line.rstrip("\n")
        if path:
            print(libtiff.decode(path).replace("\n", " "), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
