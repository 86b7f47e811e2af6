"""A fax's attachment, outbound or inbound: TIFF (the fax itself) or PDF, as the request's Accept header asks."""

from __future__ import annotations

import uuid

from litestar import Request, Response

from fax_api.faxes.rules import attachment_format
from fax_api.web.kazoo import KazooError, request_id

MEDIA_TYPES = {"tiff": "image/tiff", "pdf": "application/pdf"}


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


def no_pdf_copy(fax_id: str) -> KazooError:
    """The fax is there but its PDF copy is not: it could not be made (the converter failed or timed out), or it is
    still being made for a fax sent right after it was ready. The API converts nothing itself."""
    message = "the fax has no PDF copy (not made yet, or it could not be made); it is available as image/tiff"
    return KazooError(406, "not_acceptable", {"cause": fax_id, "message": message})
