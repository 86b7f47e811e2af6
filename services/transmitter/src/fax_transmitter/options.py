"""How a job asks to be sent, made safe for T.30. Pure functions, no I/O.

The TSI and the page header travel as fixed-size ASCII fields; a job's identity or header that does not fit is
trimmed rather than refused, because neither decides whether the fax arrives.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from importlib import resources
from pathlib import Path
from typing import Any

from fax_media.t30 import FaxOptions

MAX_IDENT_CHARS = 20  # T.30 TSI/CSI
MAX_HEADER_CHARS = 50  # spandsp's page header info field


def _ascii(text: str, limit: int) -> str:
    printable = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)
    return printable[:limit].rstrip()


def fax_options_for(request: dict[str, Any], station_ident: str = "") -> FaxOptions:
    """Options for sending the job whose Kazoo ``request`` is given."""
    ident = request.get("fax_identity") or request.get("from_number") or station_ident
    header = request.get("fax_header") or ""
    return FaxOptions(
        local_ident=_ascii(str(ident), MAX_IDENT_CHARS),
        page_header=_ascii(str(header), MAX_HEADER_CHARS),
        ecm=request.get("fax_ecm") is not False,  # on unless the job turns it off
        max_bit_rate=max_bit_rate(request.get("fax_max_speed")),
        # A job without a (known) zone gets UTC, not whatever zone the transmitter's host happens to be in.
        header_tz=header_timezone(request.get("fax_timezone")) or "UTC0",
    )


_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")


def header_timezone(name: Any) -> str:
    """The POSIX TZ string spandsp's header clock takes, for an IANA zone name such as "America/New_York"; "" when
    the job names none, "undefined" or an unknown zone.

    The string is the footer of the zone's TZif file. spandsp reads only alphabetic zone abbreviations, so quoted
    numeric ones ("<+04>-4") are renamed; the abbreviation is not printed, only the time.
    """
    if not isinstance(name, str) or not _ZONE_NAME.fullmatch(name):
        return ""
    return _posix_tz(name)


@functools.cache
def _posix_tz(name: str) -> str:
    data = _tzif(name)
    if not data.startswith(b"TZif") or data[4:5] < b"2":
        return ""
    footer = data.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode("ascii", "replace")
    names = iter(("ZZA", "ZZB"))
    return re.sub(r"<[^>]*>", lambda _: next(names, "ZZC"), footer)


def _tzif(name: str) -> bytes:
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / name
        if path.is_file():
            return path.read_bytes()
    try:
        return resources.files("tzdata").joinpath("zoneinfo", *name.split("/")).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, IsADirectoryError):
        return b""


def max_bit_rate(requested: Any) -> int:
    """The fastest modem a job allows (``fax_max_speed`` in bit/s): 14400 (V.17), 9600 (V.29) or 4800 (V.27ter).

    A speed between two modems' allows the slower one; an absent or unreadable value allows every modem.
    """
    try:
        speed = int(requested)
    except (TypeError, ValueError):
        return 14400
    return 14400 if speed >= 14400 else 9600 if speed >= 9600 else 4800
