"""What the faxbox store hands back."""

from __future__ import annotations

from typing import Any

import msgspec


class FaxboxRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored faxbox: its name, its two addresses and ``settings``, every other field of the Kazoo document."""

    id: str
    account_id: str
    name: str
    smtp_email: str  # the generated address, <id>.<smtp domain>
    custom_smtp_email_address: str | None
    settings: dict[str, Any]
    revision: int
