"""Phone numbers as the platform stores and matches them: E.164, a ``+`` and 7 to 15 digits.

One rule wherever a number enters (the called number of a SIP call, the APIs, the SMTP gateway's
``{number}@...``), so a number provisioned as ``+12048134700`` is the same number whether a trunk delivers
``12048134700`` or a client writes ``+1 (204) 813-4700``:

- spaces, ``-``, ``.``, ``(``, ``)`` and ``/`` are dropped, and so is a URI parameter (``;npdi``);
- ``+`` and digits: international already;
- ``00`` and digits: the international call prefix of most countries, which stands for the ``+``;
- any other leading ``0``: a national number (``020 7946 0958``) names no country, so it is refused;
- other digits: E.164 without its ``+``, the way SIP trunks deliver numbers; the ``+`` is added.

A national number without a leading 0 (North America's ten digits, ``2048134700``) cannot be told from an
international one and is read as one (``+2048134700``): such numbers must be given with their country code.
"""

from __future__ import annotations

import re

MIN_DIGITS = 7  # the shortest numbers in service (+290 XXXX, Saint Helena)
MAX_DIGITS = 15  # E.164's limit
_SEPARATORS = re.compile(r"[\s\-.()/]")


class NotE164(ValueError):
    """A number that cannot be read as an international one; the message says why, in words a client can act on."""


def e164(raw: str) -> str:
    """``raw`` as E.164 (``+`` and digits), or NotE164."""
    written = _SEPARATORS.sub("", raw.split(";", 1)[0])
    international = written.startswith("+")
    digits = written[1:] if international else written
    if not digits.isdigit() or not digits.isascii():
        raise NotE164(f"{raw!r} is not a phone number")
    if not international and digits.startswith("00"):
        digits = digits[2:]
    elif not international and digits.startswith("0"):
        raise NotE164(f"{raw!r} is a national number: give it in international form, with its country code")
    if digits.startswith("0"):
        raise NotE164(f"{raw!r} is not an international number: no country code starts with 0")
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise NotE164(f"{raw!r} is not an international number: E.164 numbers have {MIN_DIGITS} to 15 digits")
    return f"+{digits}"
