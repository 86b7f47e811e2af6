"""Reading Kazoo request envelopes, and describing them in the OpenAPI document.

Kazoo clients (its own curl examples) send JSON without a JSON content type, so handlers read the raw body as
JSON whatever the header says. Litestar cannot see such a body in a handler's signature; ``kazoo_body`` gives the
operation its request body schema instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

from fax_api.web.kazoo import KazooError


async def read_kazoo_envelope(request: Request, *, data_required: bool = True) -> dict[str, Any]:
    """The request body's JSON object, decoded once: every route reads its body through here.

    An empty body is an empty envelope, ``{"data": {}}`` (Kazoo's own curl examples send no body: validation then
    names each required field). Anything else must be a JSON object whose ``data``, when present (or required), is an
    object.
    """
    body = await request.body()
    if not body.strip():
        return {"data": {}}
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise KazooError(400, "invalid request body", {"message": "malformed JSON"}) from None
    data = decoded.get("data", None if data_required else {}) if isinstance(decoded, dict) else None
    if not isinstance(data, dict):
        raise KazooError(
            400, "invalid request body", {"message": "the request must be a JSON object with a data object"}
        )
    return {**decoded, "data": data}


async def read_kazoo_data(request: Request) -> dict[str, Any]:
    """The ``data`` object of a ``{"data": {...}}`` request body; an empty body is an empty document."""
    return (await read_kazoo_envelope(request))["data"]


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    """``schema`` with every ``#/$defs/...`` reference replaced by its definition (the documents have no cycles)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline(value, definitions) for value in schema]
    return schema


def envelope_schema(document: type) -> dict[str, Any]:
    """The JSON schema of ``{"data": <document>}``."""
    schema = msgspec.json.schema(document)
    inner = _inline(schema, schema.get("$defs", {}))
    return {"type": "object", "required": ["data"], "properties": {"data": inner}}


def kazoo_body(document: type, *, required: bool = True) -> type[Operation]:
    """An ``operation_class`` whose request body is a Kazoo envelope around ``document``."""
    body = RequestBody(
        content={"application/json": OpenAPIMediaType(schema=envelope_schema(document))},  # type: ignore[arg-type]
        required=required,
        description=f'Kazoo envelope: {{"data": {document.__name__}}}. Read as JSON whatever the Content-Type.',
    )

    @dataclass
    class KazooBodyOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    KazooBodyOperation.__name__ = f"{document.__name__}Operation"
    return KazooBodyOperation


# Documents, for the OpenAPI description only: validation is done by hand so that every failing field is named.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Recipients = str | list[str]


class Callback(msgspec.Struct, omit_defaults=True):
    url: str | None = None
    method: Annotated[str, msgspec.Meta(pattern="^(post|put)$")] = "post"
    type: Annotated[str, msgspec.Meta(pattern="^(json|www-url-form-encoded)$")] = "json"


class Recipient(msgspec.Struct, omit_defaults=True):
    send_to: Recipients | None = None


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


class User(msgspec.Struct, omit_defaults=True):
    """A user; ``password`` is required on create, optional on update (and required to change the username)."""

    username: str
    password: Annotated[str, msgspec.Meta(min_length=8)] | None = None
    email: str = ""
    first_name: str = ""
    last_name: str = ""


class UserAuth(msgspec.Struct, omit_defaults=True):
    """``credentials`` is the hex MD5 (or SHA-1 with ``method: sha``) of ``"username:password"``."""

    credentials: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    account_name: str | None = None
    phone_number: str | None = None
    method: Annotated[str, msgspec.Meta(pattern="^(md5|sha)$")] = "md5"


class ApiAuth(msgspec.Struct):
    api_key: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


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


STRING = Schema(type=OpenAPIType.STRING)
FILE = Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type]


def form_body(fields: dict[str, Schema], *, required: tuple[str, ...] = (), description: str = "") -> type[Operation]:
    """An ``operation_class`` whose body is these fields, as a URL-encoded form or as multipart/form-data."""
    schema = Schema(type=OpenAPIType.OBJECT, properties=fields, required=list(required) or None)
    body = RequestBody(
        content={
            "application/x-www-form-urlencoded": OpenAPIMediaType(schema=schema),
            "multipart/form-data": OpenAPIMediaType(schema=schema),
        },
        required=True,
        description=description or None,
    )

    @dataclass
    class FormBodyOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    return FormBodyOperation
