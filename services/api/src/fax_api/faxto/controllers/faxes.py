"""Fax.to faxes: send (the cost reserved with the job), cost, status and history; received faxes and their signed
links."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from fax_api.faxto import rules, views
from fax_api.faxto.controllers import DEPENDENCIES, TAGS
from fax_api.faxto.dependencies import FaxtoCall
from fax_api.faxto.sending import FaxSender, fax_sender
from fax_api.faxto.store import FaxtoStore
from fax_api.web.faxto import FaxtoError
from fax_api.web.injection import Injected
from fax_api.web.openapi import FAXTO, FILE, INTEGER, STRING, form_body, query_parameter
from fax_api.web.paging import NUMBERED_PAGE_QUERY, NumberedPage
from fax_runtime import signing
from fax_runtime.numbers import NotE164, e164

_SEND_BODY = form_body(
    {"fax_number": STRING, "document_id": STRING, "file": FILE, "tsi_number": STRING, "delete_file": STRING,
     "callback_url": STRING},
    required=("fax_number",),
    description="document_id of an uploaded file, or the document itself as a multipart 'file' part",
)  # fmt: skip
_FAX_NUMBER = query_parameter("fax_number", required=True, description="in international format, e.g. +441224459292")
_SEND_QUERY = (
    _FAX_NUMBER,
    query_parameter("document_id", INTEGER, required=True, description="an uploaded file's document_id"),
    query_parameter("tsi_number"),
    query_parameter("delete_file", description="1, true or yes: remove the file once the fax is queued"),
    query_parameter("callback_url"),
)


class FaxtoFaxesController(Controller):
    path = "/api"
    tags = TAGS
    security = FAXTO.security
    dependencies = {**DEPENDENCIES, "sender": Provide(fax_sender, sync_to_thread=False)}

    @post(["/v2/fax", "/v1/fax"], status_code=200, operation_class=FAXTO.operation(402, 404, 422, body=_SEND_BODY))
    async def send(self, call: NamedDependency[FaxtoCall], sender: Injected[FaxSender]) -> dict[str, Any]:
        """Send ``document_id`` (or an uploaded ``file``) to ``fax_number``; the cost is reserved now, charged
        when the fax completes and given back if it fails. Answers the job's ``fax_job_id`` (an integer)."""
        return views.sent(await sender.send(call))

    @get(["/v2/fax", "/v1/fax"], operation_class=FAXTO.operation(400, 402, 404, 422, query=_SEND_QUERY))
    async def send_by_get(self, call: NamedDependency[FaxtoCall], sender: Injected[FaxSender]) -> dict[str, Any]:
        """The same send, its parameters in the query string ("a POST or GET call", the text's Encoding)."""
        return views.sent(await sender.send(call))

    @get("/v2/fax/{document_id:int}/costs", operation_class=FAXTO.operation(400, 404, query=(_FAX_NUMBER,)))
    async def cost(
        self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore], document_id: FromPath[int]
    ) -> dict[str, Any]:
        number = rules.fax_number(call.values)
        document = await faxto.document(call.user.account_id, rules.document_id(document_id))
        if document is None:
            raise FaxtoError(404, "Document not found")
        return {"status": "success", "cost": views.money(rules.send_cost(number, document.total_pages))}

    @get("/v2/fax/{fax_job_id:str}/status", operation_class=FAXTO.operation(404))
    async def status(
        self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore], fax_job_id: FromPath[str]
    ) -> dict[str, Any]:
        account_id, job_id = call.user.account_id, rules.fax_job_id(fax_job_id)
        job = await faxto.job(account_id, job_id) if job_id is not None else None
        if job is None:
            raise FaxtoError(404, "Fax job not found")
        return {
            "status": "success",
            "message": views.status_message(job),
            "user_cash_balance": views.money(await faxto.balance(account_id)),
        }

    @get("/v2/fax-history", operation_class=FAXTO.operation())
    async def history(self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore]) -> dict[str, Any]:
        jobs = await faxto.history(call.user.account_id)
        return {"status": "success", "history": [views.history_entry(job) for job in jobs]}

    @get(
        ["/v2/incoming-faxes", "/v2/incoming-faxes/{recipient:str}"],
        operation_class=FAXTO.operation(400, query=NUMBERED_PAGE_QUERY),
    )
    async def incoming(
        self,
        request: Request,
        call: NamedDependency[FaxtoCall],
        faxto: Injected[FaxtoStore],
        link_signing_key: Injected[bytes],
        recipient: FromPath[str | None] = None,
    ) -> dict[str, Any]:
        """Received faxes (all, or those to ``recipient``), paged; preview_file and file_url are signed links."""
        page = NumberedPage.asked(call.values)
        try:
            number = e164(recipient) if recipient is not None else None
        except NotE164 as exc:
            raise FaxtoError(400, f"recipient: {exc}") from None
        total, faxes = await faxto.received(call.user.account_id, number, page.per_page, page.offset)
        base = str(request.base_url).rstrip("/")
        inbox = [views.incoming_entry(fax, base, link_signing_key) for fax in faxes]
        return {"status": "success", "inbox": inbox, "meta": {"pagination": page.meta(request, total, len(inbox))}}

    @get("/v2/signed/inbound/{fax_id:str}/{kind:str}", include_in_schema=False)
    async def signed_inbound(
        self,
        request: Request,
        faxto: Injected[FaxtoStore],
        link_signing_key: Injected[bytes],
        fax_id: FromPath[str],
        kind: FromPath[str],
    ) -> Response:
        """A received fax's PDF (``file``: attachment; ``preview``: inline) for a valid, unexpired signed link."""
        query = request.query_params
        if kind not in ("file", "preview") or not signing.valid(
            link_signing_key, request.url.path, query.get("expires", ""), query.get("signature", "")
        ):
            raise FaxtoError(403, "The link is invalid or has expired")
        try:
            fax = await faxto.received_fax(uuid.UUID(fax_id))
        except ValueError:
            fax = None
        key = fax and (fax.pdf_key or fax.tiff_key)
        body = await faxto.received_fax_document(key) if key else None
        if fax is None or body is None:
            raise FaxtoError(404, "Fax not found")
        is_pdf = key == fax.pdf_key
        disposition = "inline" if kind == "preview" else "attachment"
        filename = f"{fax.id.hex}.{'pdf' if is_pdf else 'tiff'}"
        return Response(
            body,
            media_type="application/pdf" if is_pdf else "image/tiff",
            headers={"Content-Disposition": f'{disposition}; filename="{filename}"'},
        )
