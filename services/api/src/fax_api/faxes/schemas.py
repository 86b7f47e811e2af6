"""The Kazoo fax documents, for the OpenAPI description only: validation is done by hand (``faxes.rules``) so that
every failing field is named."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

Recipients = str | list[str]


class Callback(msgspec.Struct, omit_defaults=True):
    url: str | None = None
    method: Annotated[str, msgspec.Meta(pattern="^(post|put)$")] = "post"
    type: Annotated[str, msgspec.Meta(pattern="^(json|www-url-form-encoded)$")] = "json"


class Recipient(msgspec.Struct, omit_defaults=True):
    send_to: Recipients | None = None


class FaxDocument(msgspec.Struct, omit_defaults=True):
    url: str
    method: Annotated[str, msgspec.Meta(pattern="^(get|post)$")] = "get"
    host: str | None = None
    referer: str | None = None
    content_type: str | None = None
    content: Annotated[str, msgspec.Meta(max_length=256)] | None = None


class FaxNotifications(msgspec.Struct, omit_defaults=True):
    email: Recipient | None = None
    sms: Recipient | None = None


class OutgoingFax(msgspec.Struct, omit_defaults=True):
    """A Kazoo outbound fax (for ``kazoo_body(OutgoingFax)`` on the faxes routes)."""

    to_number: str
    document: FaxDocument
    from_number: str | None = None
    from_name: str | None = None
    to_name: str | None = None
    fax_identity: str | None = None
    fax_header: str | None = None
    fax_timezone: str | None = None
    retries: Annotated[int, msgspec.Meta(ge=1, le=4)] = 1
    notifications: FaxNotifications | None = None
    callback: Callback | None = None
    faxbox_id: str | None = None


class OutgoingFaxPatch(msgspec.Struct, omit_defaults=True):
    """Any subset of a queued fax's fields, merged into it; ``null`` removes a field. Attempts start over."""

    to_number: str | None = None
    document: dict[str, Any] | None = None
    from_number: str | None = None
    from_name: str | None = None
    to_name: str | None = None
    fax_identity: str | None = None
    fax_header: str | None = None
    fax_timezone: str | None = None
    retries: Annotated[int, msgspec.Meta(ge=1, le=4)] | None = None
    notifications: FaxNotifications | None = None
    callback: Callback | None = None


class OutboxAction(msgspec.Struct):
    """``{"data": {"action": "resubmit"}}`` (Kazoo's example puts ``action`` beside ``data``: accepted too)."""

    action: Annotated[str, msgspec.Meta(pattern="^resubmit$")]
