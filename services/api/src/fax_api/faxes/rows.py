"""What the faxes store hands back: received faxes and smtplog entries (outbound jobs are ``fax_jobs``' rows)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

import msgspec

InboundState = Literal["receiving", "received", "failed"]


class InboundSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One line of an inbox or incoming listing."""

    id: uuid.UUID
    status: InboundState
    from_number: str
    to_number: str
    pages: int
    created_at: dt.datetime


class InboundFax(msgspec.Struct, frozen=True, kw_only=True):
    """A received fax, or one being received, as the transmitter recorded it."""

    id: uuid.UUID
    account_id: str
    faxbox_id: str | None  # None once its faxbox was removed
    status: InboundState
    call_id: str
    from_number: str
    from_name: str
    to_number: str
    remote_station_id: str
    pages: int
    tiff_key: str | None  # None until received, or once its attachment was removed
    pdf_key: str | None
    rx_result: dict[str, Any]  # spandsp's statistics, in the shape of an outbound job's tx_result
    error_message: str
    revision: int
    created_at: dt.datetime
    completed_at: dt.datetime | None


class SmtpLogEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A mail to one of the account's faxboxes: the job it queued, or why it could not."""

    id: uuid.UUID
    account_id: str
    faxbox_id: str | None
    faxbox_name: str
    from_address: str
    to_address: str
    number: str
    content_type: str
    filename: str
    errors: list[str]
    job_id: uuid.UUID | None
    created_at: dt.datetime
