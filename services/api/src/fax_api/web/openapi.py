"""Request bodies in the OpenAPI document, for the routes that read their body themselves.

Litestar describes a body it decodes for the handler; these handlers read the raw request instead, so that each
dialect's own errors are kept (Kazoo's JSON whatever the Content-Type, multipart uploads, Fax.to's and UAPI's forms),
and give their operation its body with ``operation_class``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

STRING = Schema(type=OpenAPIType.STRING)
FILE = Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type]


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


def _operation_with(body: RequestBody, name: str) -> type[Operation]:
    """An ``operation_class`` whose operations carry ``body``."""

    @dataclass
    class BodyOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    BodyOperation.__name__ = name
    return BodyOperation


def kazoo_body(document: type, *, required: bool = True) -> type[Operation]:
    """An ``operation_class`` whose request body is a Kazoo envelope around ``document``."""
    body = RequestBody(
        content={"application/json": OpenAPIMediaType(schema=envelope_schema(document))},  # type: ignore[arg-type]
        required=required,
        description=f'Kazoo envelope: {{"data": {document.__name__}}}. Read as JSON whatever the Content-Type.',
    )
    return _operation_with(body, f"{document.__name__}Operation")


def upload_body(document: type) -> type[Operation]:
    """The create operation's body: a Kazoo JSON envelope, or multipart with that envelope and the document(s)."""
    envelope = envelope_schema(document)
    parts = {
        "type": "object",
        "required": ["content"],
        "description": "An application/json part with the Kazoo envelope, then one part per document "
        "(application/pdf, image/tiff, image/png, image/jpeg, text/plain, Office/ODF ...), sent in that order.",
        "properties": {"content": {"type": "array", "items": {"type": "string", "format": "binary"}}},
    }
    body = RequestBody(
        content={
            "application/json": OpenAPIMediaType(schema=envelope),  # type: ignore[arg-type]
            "multipart/mixed": OpenAPIMediaType(schema=parts),  # type: ignore[arg-type]
            "multipart/form-data": OpenAPIMediaType(schema=parts),  # type: ignore[arg-type]
        },
        required=True,
        description=f'Kazoo envelope {{"data": {document.__name__}}} (read as JSON whatever the Content-Type), or '
        "the same envelope and the document in one multipart/mixed or multipart/form-data request.",
    )
    return _operation_with(body, f"{document.__name__}UploadOperation")


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
    return _operation_with(body, "FormBodyOperation")
