"""What the outbound and inbound faxes routes share: ids, paging, attachments by Accept, OpenAPI bodies."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody

from fax_api.faxes.rules import attachment_format
from fax_api.web.kazoo import KazooError, bad_identifier, paged, request_id, requested_start_key
from fax_api.web.openapi import envelope_schema

MAX_PAGE_SIZE = 500
MEDIA_TYPES = {"tiff": "image/tiff", "pdf": "application/pdf"}


def parse_id(raw: str) -> uuid.UUID:
    """Kazoo ids are 32 hex digits (dashed UUIDs are accepted too); anything else is an unknown id."""
    try:
        return uuid.UUID(hex=raw)
    except ValueError:
        raise bad_identifier(raw) from None


def parse_start_key(raw: str) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(hex=requested_start_key(raw))
    except ValueError:
        raise KazooError(
            400,
            "invalid data",
            {"start_key": {"type": {"message": "Value is not a fax id (next_start_key of a listing)", "cause": raw}}},
        ) from None


def page(request: Request, rows: Sequence[Any], page_size: int, start_key: str, view: Callable[[Any], Any]) -> Response:
    """Kazoo paging over rows (dicts, or Structs such as fax_jobs' JobSummary) fetched with one extra row; keys are
    the ids as 32 hex digits."""
    keyed = [{"id": (row["id"] if isinstance(row, dict) else row.id).hex, "row": row} for row in rows]
    return paged(request, keyed, page_size, start_key, lambda keyed_row: view(keyed_row["row"]))


def wanted_format(request: Request) -> str:
    fmt = attachment_format(request.headers.get("accept", ""))
    if fmt is None:
        raise KazooError(
            406, "not_acceptable", {"message": "attachments are available as image/tiff or application/pdf"}
        )
    return fmt


def attachment_response(request: Request, fax_id: uuid.UUID, fmt: str, body: bytes) -> Response:
    return Response(
        content=body,
        media_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{fax_id.hex}.{"tif" if fmt == "tiff" else "pdf"}"',
            "X-Request-ID": request_id(request),
        },
    )


def no_attachment(fax_id: str) -> KazooError:
    return KazooError(404, "bad_identifier", {"cause": fax_id, "message": "the fax has no attachment (removed?)"})


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

    @dataclass
    class UploadOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    UploadOperation.__name__ = f"{document.__name__}UploadOperation"
    return UploadOperation
