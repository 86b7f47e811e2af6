"""How a job asks to be sent, made safe for T.30. Pure functions, no I/O.

The TSI and the page header travel as fixed-size ASCII fields; a job's identity or header that does not fit is
trimmed rather than refused, because neither decides whether the fax arrives.
"""

from __future__ import annotations

from typing import Any

from fax_transmitter.loopback import FaxOptions

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
    )


def max_bit_rate(requested: Any) -> int:
    """The fastest modem a job allows (``fax_max_speed`` in bit/s): 14400 (V.17), 9600 (V.29) or 4800 (V.27ter).

    A speed between two modems' allows the slower one; an absent or unreadable value allows every modem.
    """
    try:
        speed = int(requested)
    except (TypeError, ValueError):
        return 14400
    return 14400 if speed >= 14400 else 9600 if speed >= 9600 else 4800
