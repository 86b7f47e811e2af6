"""The Kazoo faxbox documents, for the OpenAPI description only: validation is done by hand (``faxboxes.rules``) so
that every failing field is named."""

from __future__ import annotations

from typing import Annotated

import msgspec

from fax_api.faxes.schemas import Callback, Recipient

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class NotificationSet(msgspec.Struct, omit_defaults=True):
    callback: Callback | None = None
    email: Recipient | None = None
    sms: Recipient | None = None


class Notifications(msgspec.Struct, omit_defaults=True):
    inbound: NotificationSet | None = None
    outbound: NotificationSet | None = None


class Media(msgspec.Struct, omit_defaults=True):
    fax_option: bool | None = None


class Faxbox(msgspec.Struct, omit_defaults=True):
    """A Kazoo faxbox. ``smtp_permission_list`` entries are regular expressions matched against the sender."""

    name: Name
    caller_id: str | None = None
    caller_name: str = "Kazoo Fax Printer"
    custom_smtp_email_address: str | None = None
    fax_header: str = "Kazoo Fax Printer"
    fax_identity: str | None = None
    fax_timezone: str | None = None
    media: Media | None = None
    notifications: Notifications | None = None
    retries: Annotated[int, msgspec.Meta(ge=1, le=4)] = 1
    smtp_permission_list: list[str] = []


class FaxboxPatch(msgspec.Struct, omit_defaults=True):
    """Any subset of a faxbox's fields, merged into the stored one; ``null`` removes a field."""

    name: Name | None = None
    caller_id: str | None = None
    caller_name: str | None = None
    custom_smtp_email_address: str | None = None
    fax_header: str | None = None
    fax_identity: str | None = None
    fax_timezone: str | None = None
    media: Media | None = None
    notifications: Notifications | None = None
    retries: Annotated[int, msgspec.Meta(ge=1, le=4)] | None = None
    smtp_permission_list: list[str] | None = None
