"""A fax and its documents in one request: ``multipart/mixed`` (Kazoo's curl example), ``/related`` or ``/form-data``.

Litestar parses only form-data, and only into a handler's ``data``; every flavour is parsed here from the raw body
with the standard library's MIME parser, so the three are read the same way. Pure functions, no I/O.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass
from typing import Any

import msgspec

from fax_runtime.db import holds_nul

MULTIPART_TYPES = ("multipart/mixed", "multipart/related", "multipart/form-data")
JSON_TYPES = ("application/json", "text/json")
# What the fetcher can render (it sniffs the bytes again); octet-stream is taken on trust and sniffed there.
DOCUMENT_TYPES = frozenset(
    {
        "application/pdf",
        "application/postscript",
        "application/octet-stream",
        "application/rtf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "image/tiff",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/bmp",
        "text/plain",
        "text/rtf",
    }
)


class MultipartError(ValueError):
    """A body that is not a usable fax upload; ``status`` is 400 (malformed) or 415 (unsupported media)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Document:
    content_type: str
    body: bytes
    filename: str | None = None


@dataclass(frozen=True)
class FaxUpload:
    data: dict[str, Any]
    documents: list[Document]


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_multipart(content_type: str) -> bool:
    return media_type(content_type).startswith("multipart/")


def parse_fax_upload(content_type: str, body: bytes) -> FaxUpload:
    """The Kazoo document (the JSON part's ``data``) and the document parts, in the order they were sent."""
    kind = media_type(content_type)
    if kind not in MULTIPART_TYPES:
        raise MultipartError(415, f"{kind} is not supported; use multipart/mixed or multipart/form-data")
    if "boundary=" not in content_type.lower():
        raise MultipartError(400, "the multipart Content-Type has no boundary")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise MultipartError(400, "the multipart body is malformed")
    data: dict[str, Any] | None = None
    documents: list[Document] = []
    for part in message.iter_parts():
        part_type = part.get_content_type()
        payload = part.get_payload(decode=True) or b""
        if part_type in JSON_TYPES and data is None:
            data = _kazoo_data(payload)
        elif part_type in DOCUMENT_TYPES:
            if not payload:
                raise MultipartError(400, f"the {part_type} part is empty")
            documents.append(Document(part_type, payload, part.get_filename()))
        else:
            raise MultipartError(415, f"{part_type} documents cannot be faxed")
    if data is None:
        raise MultipartError(400, "the multipart body has no application/json part with the fax document")
    if not documents:
        raise MultipartError(400, "the multipart body has no document to fax")
    return FaxUpload(data, documents)


def _kazoo_data(payload: bytes) -> dict[str, Any]:
    try:
        decoded = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        raise MultipartError(400, "malformed JSON in the application/json part") from None
    if not isinstance(decoded, dict):
        raise MultipartError(400, "the JSON part must be an object")
    # Kazoo's envelope {"data": {...}}; a bare fax document is accepted too (portals send either).
    inner = decoded.get("data", decoded)
    if not isinstance(inner, dict):
        raise MultipartError(400, "the JSON part's data must be an object")
    if holds_nul(decoded):
        raise MultipartError(400, "the JSON part cannot contain NUL characters")
    return inner
