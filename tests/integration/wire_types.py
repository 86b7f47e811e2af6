"""The Fax.to and VoipNow answers typed as their texts' example responses show them: integers where the text shows
integers, strings where it shows strings. ``decode(answer, Type)`` fails on ``"fax_job_id": "3219c5d6..."`` as the
JSON decoder of a typed client (C#, Java, Go) would; unknown fields are ignored, as such clients ignore them.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


def decode(answer: Any, kind: type[T]) -> T:
    """``answer`` (decoded JSON) as ``kind``; msgspec.ValidationError names the field of the wrong type."""
    return msgspec.convert(answer, kind, strict=True)


class PhpDate(msgspec.Struct):
    date: str
    timezone_type: int
    timezone: str


class Sent(msgspec.Struct):
    status: str
    fax_job_id: int
    user_cash_balance: float
    cost: float


class FaxStatus(msgspec.Struct):
    status: str
    message: str
    user_cash_balance: float


class HistoryEntry(msgspec.Struct):
    id: int
    created: PhpDate
    document_id: int
    document: str
    recipient: str
    status: str


class History(msgspec.Struct):
    status: str
    history: list[HistoryEntry]


class Document(msgspec.Struct):
    filename: str
    filename_uploaded: str
    orig_filename: str
    file_extension: str
    total_pages: int
    filesize: int
    preview_in_storage: int
    preview_file: str
    preview_image: None
    s3: None
    user_id: int
    updated_at: str
    created_at: str
    id: int


class Uploaded(msgspec.Struct):
    status: str
    document_id: int
    document: Document


class FileEntry(msgspec.Struct):
    id: int
    filename: str
    pages: int
    size: int
    uploaded: str


class ProvisionedNumber(msgspec.Struct):
    id: int
    didid: int
    did_group_id: int
    country_code: str
    city_name: str
    area_code: str
    number: str
    type: str
    trunk_id: int


class Provisioned(msgspec.Struct):
    status: str
    message: str
    data: ProvisionedNumber


class Links(msgspec.Struct):
    previous: str | None = None
    next: str | None = None


class Pagination(msgspec.Struct):
    total: int
    count: int
    per_page: int
    current_page: int
    total_pages: int
    links: Links


class Meta(msgspec.Struct):
    pagination: Pagination


class NumberEntry(msgspec.Struct):
    id: int
    order_reference: str | None
    country_code: str
    country: str
    city_name: str | None
    area_code: str
    did_group_id: int
    did_number: str
    expiration_date: str
    status: str


class Numbers(msgspec.Struct):
    status: str
    numbers: list[NumberEntry]
    meta: Meta


class InboxEntry(msgspec.Struct):
    id: int
    did_id: int
    filename: str
    filesize: str
    number: str
    sender: str
    total_pages: int
    created_at: PhpDate
    preview_file: str
    file_url: str


class Inbox(msgspec.Struct):
    status: str
    inbox: list[InboxEntry]
    meta: Meta


class FaxtoFailure(msgspec.Struct, forbid_unknown_fields=True):
    """Fax.to's error answer: nothing else in it (no Kazoo envelope)."""

    status: str
    message: str


class VoipNowCreated(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    uid: str


class VoipNowErrorBody(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    message: str


class VoipNowError(msgspec.Struct, forbid_unknown_fields=True):
    error: VoipNowErrorBody
