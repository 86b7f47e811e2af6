"""A faxbox's ``smtp_permission_list``: who may send faxes by email through it.

Each entry is an exact address (any case) or a regular expression matching the whole sender address. The
expressions are tenant input run on every RCPT the SMTP gateway sees, so they run on RE2 (``google-re2``), whose
matching time is linear in the address: a pattern such as ``(a+)+$``, which backtracks for hours in Python's ``re``,
answers at once. The API checks entries with `entry_problem` when a faxbox is written; the gateway matches with
`sender_permitted`. Both bound the list the same way.
"""

from __future__ import annotations

import functools
import re

import re2

MAX_ENTRIES = 100
MAX_ENTRY_LENGTH = 1024
# RE2 refuses to compile a program larger than this: a tenant's pattern cannot take the gateway's memory.
_MAX_PROGRAM_MEMORY = 1 << 20

_BACKREFERENCE = re.compile(r"invalid escape sequence: \\[1-9]")
_LOOKAROUND = re.compile(r"invalid perl operator: \(\?<?[=!]")


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a refused pattern is the tenant's error, answered to them; not an error log line
    options.max_mem = _MAX_PROGRAM_MEMORY
    return options


_OPTIONS = _options()


class _Unsupported(ValueError):
    pass


@functools.lru_cache(maxsize=4096)
def _compiled(entry: str) -> re2._Regexp:
    if len(entry) > MAX_ENTRY_LENGTH:
        raise _Unsupported(f"longer than {MAX_ENTRY_LENGTH} characters")
    try:
        return re2.compile(entry, _OPTIONS)
    except re2.error as error:
        raise _Unsupported(_explain(error)) from None


def _explain(error: re2.error) -> str:
    text = error.args[0].decode(errors="replace") if error.args and isinstance(error.args[0], bytes) else str(error)
    if _BACKREFERENCE.search(text):
        return f"backreferences are not supported ({text})"
    if _LOOKAROUND.search(text):
        return f"lookaround is not supported ({text})"
    return text


def list_problem(entries: list[object]) -> str:
    """Why the list as a whole is refused (its length), or ""."""
    return f"more than {MAX_ENTRIES} entries" if len(entries) > MAX_ENTRIES else ""


def entry_problem(entry: str) -> str:
    """Why ``entry`` cannot be a permission (not an RE2 expression, too long), or "". Addresses are expressions too."""
    try:
        _compiled(entry)
    except _Unsupported as unsupported:
        return str(unsupported)
    return ""


def sender_permitted(sender: str, entries: list[str], owner_email: str | None, allow_all: bool) -> bool:
    """Kazoo's smtp_permission_list: exact addresses (any case) or RE2 expressions matching the whole sender; the
    faxbox owner may always send. An empty list refuses everyone unless the faxbox allows all. Entries the API would
    refuse today (stored before it checked them) match nothing."""
    sender = sender.strip().strip("<>").lower()
    if not sender:
        return False
    if owner_email and sender == owner_email.strip().lower():
        return True
    if not entries:
        return allow_all
    for entry in entries[:MAX_ENTRIES]:
        if not isinstance(entry, str):
            continue
        if sender == entry.strip().lower():
            return True
        try:
            if _compiled(entry).fullmatch(sender):
                return True
        except _Unsupported:
            continue
    return False
