"""Fax.to faxes: send (the cost reserved with the job), cost, status and history; received faxes and their signed
links."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from fax_api.faxto import rules, views
from fax_api.faxto.billing import InsufficientBalance, submit_billed_job
from fax_api.faxto.controllers import DEPENDENCIES, TAGS
from fax_api.faxto.dependencies import FaxtoParams
from fax_api.faxto.rows import FaxtoUser
from fax_api.faxto.store import FaxtoStore
from fax_api.faxto.uploads import keep_upload
from fax_api.web.callback_urls import check_faxto_callback_url
from fax_api.web.faxto import FaxtoError
from fax_api.web.injection import Injected
from fax_api.web.openapi import FILE, STRING, form_body
from fax_api.web.paging import NumberedPage
from fax_jobs import JobStore
from fax_runtime import signing
from fax_runtime.network_guard import NetworkGuard
from fax_runtime.numbers import NotE164, e164

_SEND_BODY = form_body(
    {"api_key": STRING, "fax_number": STRING, "document_id": STRING, "file": FILE, "tsi_number": STRING,
     "delete_file": STRING, "callback_url": STRING},
    required=("api_key", "fax_number"),
    description="document_id of an uploaded file, or the document itself as a multipart 'file' part",
)  # fmt: skip


class FaxtoFaxesController(Controller):
    path = "/api"
    tags = TAGS
    dependencies = DEPENDENCIES

    @post(["/v2/fax", "/v1/fax"], status_code=200, operation_class=_SEND_BODY)
    async def send(
        self,
        params: NamedDependency[FaxtoParams],
        user: NamedDependency[FaxtoUser],
        faxto: Injected[FaxtoStore],
        jobs: Injected[JobStore],
        guard: Injected[NetworkGuard],
    ) -> dict[str, Any]:
        """Send ``document_id`` (or an uploaded ``file``) to ``fax_number``; the cost is reserved now, charged
        when the fax completes and given back if it fails. Answers the job's ``fax_job_id`` (an integer)."""
        return await self._send(params, user, faxto, jobs, guard)

    @get(["/v2/fax", "/v1/fax"])
    async def send_by_get(
        self,
        params: NamedDependency[FaxtoParams],
        user: NamedDependency[FaxtoUser],
        faxto: Injected[FaxtoStore],
        jobs: Injected[JobStore],
        guard: Injected[NetworkGuard],
    ) -> dict[str, Any]:
        """The same send, its parameters in the query string ("a POST or GET call", the text's Encoding)."""
        return await self._send(params, user, faxto, jobs, guard)

    @staticmethod
    async def _send(
        params: FaxtoParams, user: FaxtoUser, faxto: FaxtoStore, jobs: JobStore, guard: NetworkGuard
    ) -> dict[str, Any]:
        """Both send handlers: the parameters from wherever the request carries them."""
        number = rules.fax_number(params.values)
        if "file" in params.files:
            document = await keep_upload(faxto, user, params.files["file"])
        else:
            found = await faxto.document(user.account_id, rules.document_id(params.values.get("document_id")))
            if found is None:
                raise FaxtoError(404, "Document not found")
            document = found
        body = await faxto.document_bytes(rules.faxable(document))
        if body is None:
            raise FaxtoError(404, "The document's file is gone")
        tsi = rules.tsi_number(params.values)
        cost = rules.send_cost(number, document.total_pages)
        # The send's own callback_url, else the one in the account's API settings.
        callback_url = (
            await check_faxto_callback_url(guard, params.values)
            if "callback_url" in params.values
            else await faxto.callback_url(user.account_id)
        )
        request = rules.send_request(number, document, user, tsi, callback_url)
        try:
            job, left = await submit_billed_job(jobs, user.account_id, request, [(body, document.content_type)], cost)
        except InsufficientBalance as exc:
            raise FaxtoError(
                402,
                f"Insufficient balance: this fax costs {views.money(exc.cost)}, "
                f"the balance is {views.money(exc.balance)}",
            ) from None
        if rules.wants_file_deleted(params.values):
            # The job holds its own copy (jobs/<id>/upload-0), so the document can go at once.
            await faxto.delete_document(user.account_id, document.id)
        return {
            "status": "executed",
            "fax_job_id": job.int_id,
            "user_cash_balance": views.money(left),
            "cost": views.money(cost),
        }

    @get("/v2/fax/{document_id:int}/costs")
    async def cost(
        self,
        params: NamedDependency[FaxtoParams],
        user: NamedDependency[FaxtoUser],
        faxto: Injected[FaxtoStore],
        document_id: FromPath[int],
    ) -> dict[str, Any]:
        number = rules.fax_number(params.values)
        document = await faxto.document(user.account_id, document_id)
        if document is None:
            raise FaxtoError(404, "Document not found")
        return {"status": "success", "cost": views.money(rules.send_cost(number, document.total_pages))}

    @get("/v2/fax/{fax_job_id:str}/status")
    async def status(
        self, user: NamedDependency[FaxtoUser], faxto: Injected[FaxtoStore], fax_job_id: FromPath[str]
    ) -> dict[str, Any]:
        job_id = rules.fax_job_id(fax_job_id)
        job = await faxto.job(user.account_id, job_id) if job_id is not None else None
        if job is None:
            raise FaxtoError(404, "Fax job not found")
        return {
            "status": "success",
            "message": views.status_message(job),
            "user_cash_balance": views.money(await faxto.balance(user.account_id)),
        }

    @get("/v2/fax-history")
    async def history(self, user: NamedDependency[FaxtoUser], faxto: Injected[FaxtoStore]) -> dict[str, Any]:
        jobs = await faxto.history(user.account_id)
        return {"status": "success", "history": [views.history_entry(job) for job in jobs]}

    @get(["/v2/incoming-faxes", "/v2/incoming-faxes/{recipient:str}"])
    async def incoming(
        self,
        request: Request,
        params: NamedDependency[FaxtoParams],
        user: NamedDependency[FaxtoUser],
        faxto: Injected[FaxtoStore],
        link_signing_key: Injected[bytes],
        recipient: FromPath[str | None] = None,
    ) -> dict[str, Any]:
        """Received faxes (all, or those to ``recipient``), paged; preview_file and file_url are signed links."""
        page = NumberedPage.asked(params.values)
        try:
            number = e164(recipient) if recipient is not None else None
        except NotE164 as exc:
            raise FaxtoError(400, f"recipient: {exc}") from None
        total, faxes = await faxto.received(user.account_id, number, page.per_page, page.offset)
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
