"""What the Fax.to store and sender hand back: typed rows, never a password hash. (Jobs are ``fax_jobs.FaxJob``.)"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

import msgspec

from fax_jobs import FaxJob

PreviewStatus = Literal["none", "pending", "ready", "failed"]


class FaxtoUser(msgspec.Struct, frozen=True, kw_only=True):
    """A Fax.to user; sub-users share their parent's account, and so its balance and faxes."""

    id: int
    account_id: str
    parent_id: int | None
    email: str
    api_key: str


class FaxtoDocument(msgspec.Struct, frozen=True, kw_only=True):
    """An uploaded file, kept to be faxed (by ``document_id``) as often as wanted."""

    id: int
    account_id: str
    user_id: int
    filename_uploaded: str
    file_extension: str
    content_type: str
    object_key: str
    filesize: int
    total_pages: int  # counted at upload, for pricing (billing.count_pages)
    # The fetcher draws the previews (fax.document.stored.v1); 'none': uploaded before previews existed.
    preview_status: PreviewStatus
    preview_error: str
    created_at: dt.datetime
    updated_at: dt.datetime


class ReceivedFax(msgspec.Struct, frozen=True, kw_only=True):
    """A received fax as Fax.to lists it."""

    id: uuid.UUID
    int_id: int
    to_number: str
    from_number: str
    pages: int
    tiff_key: str | None
    pdf_key: str | None
    created_at: dt.datetime
    did_id: int | None  # the Fax.to number it came in on, when it was provisioned through Fax.to
    filesize: int | None = None  # from S3; None once its documents were removed


class ReceivedFaxFile(msgspec.Struct, frozen=True, kw_only=True):
    """Where a received fax's documents are, for a signed link."""

    id: uuid.UUID
    account_id: str
    tiff_key: str | None
    pdf_key: str | None


class FaxtoNumber(msgspec.Struct, frozen=True, kw_only=True):
    """A number provisioned through Fax.to: its faxes arrive in the account's inbox."""

    id: int
    e164: str
    did_group_id: int
    expiration_date: dt.date
    created_at: dt.datetime


class SentFax(msgspec.Struct, frozen=True, kw_only=True):
    """A send's outcome: the job, its cost, and the balance left once that cost is reserved."""

    job: FaxJob
    cost: Decimal
    balance_left: Decimal
