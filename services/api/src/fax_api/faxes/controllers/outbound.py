"""Kazoo ``/v2/accounts/{account_id}/faxes``, outbound side: create (by URL or upload), outgoing and outbox.

A queued job (attaching_files, pending) may be read, patched, replaced or removed; once the transmitter has claimed
it (processing) or it finished, changes answer 409 Conflict: the request itself is fine, the job's state forbids
it, and a client can tell that apart from a 400 about its body. Finished jobs live under outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from fax_api.config import ApiSettings
from fax_api.faxes.attachments import MEDIA_TYPES, attachment_response, no_attachment, no_pdf_copy, wanted_format
from fax_api.faxes.rules import (
    FaxValidationError,
    job_summary,
    job_view,
    revised_request,
    validate_fax_request,
)
from fax_api.faxes.schemas import OutboxAction, OutgoingFax, OutgoingFaxPatch
from fax_api.faxes.store import FaxStore
from fax_api.web.auth import authorized_account
from fax_api.web.callback_urls import check_kazoo_callback_urls
from fax_api.web.injection import Injected
from fax_api.web.kazoo import (
    KazooError,
    bad_identifier,
    envelope,
    merge_patch,
    parse_id,
    read_kazoo_data,
    read_kazoo_envelope,
    revision_of,
)
from fax_api.web.multipart import MultipartError, is_multipart, parse_fax_upload
from fax_api.web.openapi import KAZOO, kazoo_body, upload_body
from fax_api.web.paging import KeysetPage, keyset_listing, keyset_page
from fax_jobs import FINISHED_STATES, QUEUED_STATES, DocumentsGone, FaxJob, JobNotChangeable, JobStore
from fax_runtime.blobs import fax_pdf_key
from fax_runtime.network_guard import NetworkGuard

OUTBOX_ACTIONS = ["resubmit"]


def _validated(document: Any, *, require_document_url: bool = True) -> dict[str, Any]:
    try:
        return validate_fax_request(document, require_document_url=require_document_url)
    except FaxValidationError as exc:
        raise KazooError(400, "invalid data", exc.errors) from None


def _answer(request: Request, job: FaxJob, status_code: int = 200) -> Response:
    data = job_view(job)
    return envelope(request, data, revision=revision_of(job.revision, data), status_code=status_code)


def _not_changeable(fax_id: str, status: str) -> KazooError:
    return KazooError(
        409,
        "conflict",
        {"cause": status, "id": fax_id, "message": f"the fax is already {status}: it can no longer be changed"},
    )


class FaxesController(Controller):
    path = "/v2/accounts/{account_id:str}/faxes"
    dependencies = {"caller": Provide(authorized_account), "page": Provide(keyset_page, sync_to_thread=False)}
    tags = ["faxes"]
    security = KAZOO.security

    @put(
        ["/", "/outgoing"],
        status_code=201,
        summary="Create an outgoing fax from a document URL, or with the document uploaded in the same request",
        operation_class=KAZOO.operation(415, body=upload_body(OutgoingFax)),
    )
    async def create_fax(
        self,
        request: Request,
        caller: NamedDependency[str],
        jobs: Injected[JobStore],
        settings: Injected[ApiSettings],
        guard: Injected[NetworkGuard],
    ) -> Response:
        content_type = request.headers.get("content-type", "")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > settings.max_upload_bytes:
            raise _too_large(settings.max_upload_bytes)
        if not is_multipart(content_type):
            fax_request = _validated(await read_kazoo_data(request))
            await check_kazoo_callback_urls(guard, fax_request)
            job = await jobs.submit_job(caller, fax_request)
            return _answer(request, job, status_code=201)
        body = await request.body()
        if len(body) > settings.max_upload_bytes:
            raise _too_large(settings.max_upload_bytes)
        try:
            upload = parse_fax_upload(content_type, body)
        except MultipartError as exc:
            reason = "unsupported_media_type" if exc.status == 415 else "invalid request body"
            raise KazooError(exc.status, reason, {"message": str(exc)}) from None
        fax_request = _validated(upload.data, require_document_url=False)
        await check_kazoo_callback_urls(guard, fax_request)
        # The uploaded documents are the fax; a URL beside them would be a second, conflicting source.
        fax_request["document"].pop("url", None)
        job = await jobs.submit_job(caller, fax_request, [(d.body, d.content_type) for d in upload.documents])
        return _answer(request, job, status_code=201)

    @get(
        "/outgoing",
        summary="List outgoing faxes (attaching_files, pending or processing), newest first",
        operation_class=KAZOO.operation(400),
    )
    async def list_outgoing(
        self,
        request: Request,
        caller: NamedDependency[str],
        jobs: Injected[JobStore],
        page: NamedDependency[KeysetPage],
    ) -> Response:
        rows = await jobs.page_jobs(caller, QUEUED_STATES, page.start_id(), page.limit)
        return keyset_listing(request, page, rows, job_summary)

    @get("/outgoing/{fax_id:str}", summary="A queued outgoing fax", operation_class=KAZOO.operation(404))
    async def get_outgoing(
        self, request: Request, caller: NamedDependency[str], fax_id: FromPath[str], jobs: Injected[JobStore]
    ) -> Response:
        return await self._job(request, caller, fax_id, jobs, QUEUED_STATES)

    @post(
        "/outgoing/{fax_id:str}",
        status_code=200,
        summary="Replace a queued fax (409 once it is processing or finished); attempts start over",
        operation_class=KAZOO.operation(404, 409, body=kazoo_body(OutgoingFax)),
    )
    async def replace_outgoing(
        self,
        request: Request,
        caller: NamedDependency[str],
        fax_id: FromPath[str],
        jobs: Injected[JobStore],
        guard: Injected[NetworkGuard],
    ) -> Response:
        document = await read_kazoo_data(request)
        await check_kazoo_callback_urls(guard, document)
        return await self._revise(request, caller, fax_id, jobs, lambda _current: document)

    @patch(
        "/outgoing/{fax_id:str}",
        summary="Change some fields of a queued fax (409 once it is processing or finished)",
        operation_class=KAZOO.operation(404, 409, body=kazoo_body(OutgoingFaxPatch)),
    )
    async def patch_outgoing(
        self,
        request: Request,
        caller: NamedDependency[str],
        fax_id: FromPath[str],
        jobs: Injected[JobStore],
        guard: Injected[NetworkGuard],
    ) -> Response:
        changes = await read_kazoo_data(request)
        await check_kazoo_callback_urls(guard, changes)
        return await self._revise(request, caller, fax_id, jobs, lambda current: merge_patch(current, changes))

    @delete(
        "/outgoing/{fax_id:str}",
        status_code=200,
        summary="Remove a queued fax (409 once it is processing)",
        operation_class=KAZOO.operation(404, 409),
    )
    async def delete_outgoing(
        self, request: Request, caller: NamedDependency[str], fax_id: FromPath[str], jobs: Injected[JobStore]
    ) -> Response:
        try:
            job = await jobs.delete_queued_job(caller, parse_id(fax_id))
        except JobNotChangeable as exc:
            raise _not_changeable(fax_id, exc.status) from None
        if job is None:
            raise bad_identifier(fax_id)
        return _answer(request, job)

    @get("/outbox", summary="List sent or failed faxes, newest first", operation_class=KAZOO.operation(400))
    async def list_outbox(
        self,
        request: Request,
        caller: NamedDependency[str],
        jobs: Injected[JobStore],
        page: NamedDependency[KeysetPage],
    ) -> Response:
        rows = await jobs.page_jobs(caller, FINISHED_STATES, page.start_id(), page.limit)
        return keyset_listing(request, page, rows, job_summary)

    @get("/outbox/{fax_id:str}", summary="A sent or failed fax", operation_class=KAZOO.operation(404))
    async def get_outbox(
        self, request: Request, caller: NamedDependency[str], fax_id: FromPath[str], jobs: Injected[JobStore]
    ) -> Response:
        return await self._job(request, caller, fax_id, jobs, FINISHED_STATES)

    @put(
        "/outbox/{fax_id:str}",
        status_code=201,
        summary="Resubmit a sent or failed fax: a new job with the same request and documents",
        operation_class=KAZOO.operation(404, 409, body=kazoo_body(OutboxAction)),
    )
    async def resubmit_outbox(
        self, request: Request, caller: NamedDependency[str], fax_id: FromPath[str], jobs: Injected[JobStore]
    ) -> Response:
        body = await read_kazoo_envelope(request, data_required=False)
        action = body["data"].get("action", body.get("action"))
        if action != "resubmit":
            raise KazooError(
                400,
                "invalid data",
                {
                    "action": {
                        "enum": {"message": "Value not found in enumerated list of values", "target": OUTBOX_ACTIONS}
                    }
                },
            )
        try:
            job = await jobs.resubmit(caller, parse_id(fax_id))
        except DocumentsGone:
            raise KazooError(
                409, "conflict", {"message": "the fax's uploaded documents were removed; it cannot be sent again"}
            ) from None
        if job is None:
            raise bad_identifier(fax_id)
        return _answer(request, job, status_code=201)

    @delete(
        "/outbox/{fax_id:str}",
        status_code=200,
        summary="Remove a sent or failed fax and its documents",
        operation_class=KAZOO.operation(404),
    )
    async def delete_outbox(
        self, request: Request, caller: NamedDependency[str], fax_id: FromPath[str], jobs: Injected[JobStore]
    ) -> Response:
        try:
            job = await jobs.delete_finished_job(caller, parse_id(fax_id))
        except JobNotChangeable:
            job = None  # still queued: not in the outbox
        if job is None:
            raise bad_identifier(fax_id)
        return _answer(request, job)

    @get(
        "/outbox/{fax_id:str}/attachment",
        summary="The fax as sent: image/tiff (default) or application/pdf, as the Accept header asks",
        media_type="image/tiff",
        operation_class=KAZOO.operation(404, 406, produces=MEDIA_TYPES.values()),
    )
    async def get_outbox_attachment(
        self,
        request: Request,
        caller: NamedDependency[str],
        fax_id: FromPath[str],
        jobs: Injected[JobStore],
        faxes: Injected[FaxStore],
    ) -> Response:
        fmt = wanted_format(request)
        job_id = parse_id(fax_id)
        job = await jobs.get_job(caller, job_id, FINISHED_STATES)
        if job is None:
            raise bad_identifier(fax_id)
        if job.tiff_key is None:
            raise no_attachment(fax_id)
        key = job.tiff_key if fmt == "tiff" else fax_pdf_key(job.tiff_key)
        body = await faxes.read_document(key)
        if body is None:
            if fmt == "pdf" and await faxes.has_document(job.tiff_key):
                raise no_pdf_copy(fax_id)
            raise no_attachment(fax_id)
        return attachment_response(request, job_id, fmt, body)

    @delete(
        "/outbox/{fax_id:str}/attachment",
        status_code=200,
        summary="Remove a sent fax's documents; the record stays and says attachment_deleted",
        operation_class=KAZOO.operation(404),
    )
    async def delete_outbox_attachment(
        self, request: Request, caller: NamedDependency[str], fax_id: FromPath[str], jobs: Injected[JobStore]
    ) -> Response:
        job = await jobs.remove_job_attachment(caller, parse_id(fax_id))
        if job is None:
            raise bad_identifier(fax_id)
        return _answer(request, job)

    @staticmethod
    async def _job(
        request: Request,
        caller: str,
        fax_id: str,
        jobs: JobStore,
        states: tuple[str, ...],
    ) -> Response:
        job = await jobs.get_job(caller, parse_id(fax_id), states)
        if job is None:
            raise bad_identifier(fax_id)
        return _answer(request, job)

    @staticmethod
    async def _revise(
        request: Request,
        caller: str,
        fax_id: str,
        jobs: JobStore,
        build: Callable[[dict[str, Any]], Any],
    ) -> Response:
        try:
            job = await jobs.change_queued_job(
                caller, parse_id(fax_id), lambda current: revised_request(current, build(current))
            )
        except FaxValidationError as exc:
            raise KazooError(400, "invalid data", exc.errors) from None
        except JobNotChangeable as exc:
            raise _not_changeable(fax_id, exc.status) from None
        if job is None:
            raise bad_identifier(fax_id)
        return _answer(request, job)


def _too_large(limit: int) -> KazooError:
    return KazooError(413, "too_large", {"message": f"the request is larger than {limit} bytes"})
