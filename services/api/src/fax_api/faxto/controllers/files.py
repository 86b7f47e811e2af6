"""Fax.to files: upload (or have a URL fetched), list, remove, the Clean File record and signed page previews."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from fax_api.config import ApiSettings
from fax_api.faxto import rules, views
from fax_api.faxto.controllers import DEPENDENCIES, TAGS
from fax_api.faxto.dependencies import FaxtoCall
from fax_api.faxto.rows import FaxtoDocument
from fax_api.faxto.store import FaxtoStore
from fax_api.faxto.uploads import keep_remote_file, keep_upload
from fax_api.web.faxto import FaxtoError
from fax_api.web.injection import Injected
from fax_api.web.openapi import FAXTO, FILE, INTEGER, STRING, form_body, query_parameter
from fax_api.web.paging import positive
from fax_runtime import signing
from fax_runtime.network_guard import NetworkGuard

PREVIEW_POLL_SECONDS = 0.2
_FILES_BODY = form_body(
    {"file": FILE, "AddRemoteFile": STRING},
    description="a multipart 'file' part, or AddRemoteFile: a URL the platform fetches",
)

_DOCUMENT_ID = query_parameter("document_id", INTEGER, required=True, description="an uploaded file's document_id")


def _not_found() -> FaxtoError:
    return FaxtoError(404, "Document not found")


async def _document(faxto: FaxtoStore, call: FaxtoCall) -> FaxtoDocument:
    """The caller's account's document the call's ``document_id`` names."""
    document = await faxto.document(call.user.account_id, rules.document_id(call.values.get("document_id")))
    if document is None:
        raise _not_found()
    return document


class FaxtoFilesController(Controller):
    path = "/api/v2"
    tags = TAGS
    security = FAXTO.security
    dependencies = DEPENDENCIES

    @post("/files", status_code=200, operation_class=FAXTO.operation(body=_FILES_BODY))
    async def upload(
        self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore], guard: Injected[NetworkGuard]
    ) -> dict[str, Any]:
        remote = call.values.get("AddRemoteFile")
        if "file" in call.files:
            document = await keep_upload(faxto, call.user, call.files["file"])
        elif isinstance(remote, str) and remote.strip():
            document = await keep_remote_file(faxto, guard, call.user, remote.strip())
        else:
            raise FaxtoError(400, "A multipart 'file' part or an AddRemoteFile URL is required")
        return {"status": "success", "document_id": document.id, "document": views.document_view(document)}

    @get("/files", operation_class=FAXTO.operation())
    async def files(self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore]) -> list[dict[str, Any]]:
        return [views.file_entry(d) for d in await faxto.documents(call.user.account_id)]

    @delete("/files/{document_id:int}", status_code=200, operation_class=FAXTO.operation(404))
    async def delete_file(
        self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore], document_id: FromPath[int]
    ) -> dict[str, Any]:
        if not await faxto.delete_document(call.user.account_id, rules.document_id(document_id)):
            raise _not_found()
        return {"status": "success"}

    @get("/file-clean", operation_class=FAXTO.operation(400, 404, query=(_DOCUMENT_ID,)))
    async def clean(self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore]) -> dict[str, Any]:
        """The document as it will be faxed: its stored record with page count and fax file names (the example
        response of the spec's Clean File API). The document was checked and counted when it was uploaded."""
        document = await _document(faxto, call)
        return {"status": "success", **views.document_view(document), "server_document_id": None, "team_user_id": None}

    @get(
        "/file-generate-preview",
        operation_class=FAXTO.operation(
            400, 404, 422, 503, query=(_DOCUMENT_ID, query_parameter("page", INTEGER, description="default 1"))
        ),
    )
    async def preview(
        self,
        request: Request,
        call: NamedDependency[FaxtoCall],
        faxto: Injected[FaxtoStore],
        settings: Injected[ApiSettings],
        link_signing_key: Injected[bytes],
    ) -> dict[str, Any]:
        """A signed, expiring URL of a PNG of the document's page ``page`` (default 1) as it will be faxed.

        The fetcher draws the previews when the file is uploaded; this waits up to FAX_FAXTO_PREVIEW_WAIT seconds
        for them, then answers 503 (try again). A file that cannot be faxed answers 422 with the reason.
        """
        document = await _document(faxto, call)
        if document.preview_status == "none":
            await faxto.request_preview(call.user.account_id, document.id)
        deadline = time.monotonic() + settings.faxto.preview_wait
        while document.preview_status in ("none", "pending") and time.monotonic() < deadline:
            await asyncio.sleep(PREVIEW_POLL_SECONDS)
            drawn = await faxto.document(call.user.account_id, document.id)
            if drawn is None:
                raise _not_found()
            document = drawn
        rules.faxable(document)
        if document.preview_status != "ready":
            raise FaxtoError(503, "The preview is still being generated; try again in a few seconds")
        page = positive(call.values, "page", 1, document.total_pages)
        path = f"/api/v2/signed/document/{document.id}/preview-{page}.png"
        base = str(request.base_url).rstrip("/")
        return {"status": "success", "url": f"{base}{path}?{signing.signed_query(link_signing_key, path)}"}

    @get("/signed/document/{document_id:int}/{name:str}", include_in_schema=False)
    async def signed_preview(
        self,
        request: Request,
        faxto: Injected[FaxtoStore],
        link_signing_key: Injected[bytes],
        document_id: FromPath[int],
        name: FromPath[str],
    ) -> Response:
        """A page preview (``preview-<page>.png``) for a valid, unexpired signed link."""
        query = request.query_params
        if not signing.valid(link_signing_key, request.url.path, query.get("expires", ""), query.get("signature", "")):
            raise FaxtoError(403, "The link is invalid or has expired")
        page = name.removeprefix("preview-").removesuffix(".png")
        document = await faxto.document_by_id(document_id)
        body = None
        if document is not None and document.preview_status == "ready" and page.isdigit():
            body = await faxto.preview(document, int(page))
        if body is None:
            raise FaxtoError(404, "Preview not found")
        return Response(body, media_type="image/png", headers={"Content-Disposition": f'inline; filename="{name}"'})
