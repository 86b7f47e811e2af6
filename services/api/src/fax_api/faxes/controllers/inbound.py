"""Kazoo ``/v2/accounts/{account_id}/faxes``, inbound side: inbox (received or failed), incoming (being received)
and the smtplog (mail to the SMTP gateway: the faxes it queued, and why any could not be). Rows are written by the
receiving services."""

from __future__ import annotations

from litestar import Controller, Request, Response, delete, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from fax_api.faxes.attachments import MEDIA_TYPES, attachment_response, no_attachment, no_pdf_copy, wanted_format
from fax_api.faxes.rows import InboundFax
from fax_api.faxes.rules import (
    INBOX_STATES,
    INCOMING_STATES,
    inbound_summary,
    inbound_view,
    smtplog_summary,
    smtplog_view,
)
from fax_api.faxes.store import FaxStore
from fax_api.web.auth import authorized_account
from fax_api.web.injection import Injected
from fax_api.web.kazoo import bad_identifier, envelope, parse_id, revision_of
from fax_api.web.openapi import KAZOO
from fax_api.web.paging import KeysetPage, keyset_listing, keyset_page

FOLDERS = {"inbox": INBOX_STATES, "incoming": INCOMING_STATES}
_DEPENDENCIES = {"caller": Provide(authorized_account), "page": Provide(keyset_page, sync_to_thread=False)}


def _answer(request: Request, fax: InboundFax) -> Response:
    data = inbound_view(fax)
    return envelope(request, data, revision=revision_of(fax.revision, data))


class _InboundFolder(Controller):
    """One folder of inbound faxes; subclasses name it (``folder``) and give their path."""

    dependencies = _DEPENDENCIES
    tags = ["faxes"]
    security = KAZOO.security
    folder = "inbox"

    @get("/", summary="List the folder's faxes, newest first", operation_class=KAZOO.operation(400))
    async def list_faxes(
        self,
        request: Request,
        caller: NamedDependency[str],
        faxes: Injected[FaxStore],
        page: NamedDependency[KeysetPage],
    ) -> Response:
        rows = await faxes.page_inbound(caller, FOLDERS[self.folder], page.start_id(), page.limit)
        return keyset_listing(request, page, rows, inbound_summary)

    @get("/{fax_id:str}", summary="A fax of the folder", operation_class=KAZOO.operation(404))
    async def get_fax(
        self, request: Request, caller: NamedDependency[str], fax_id: FromPath[str], faxes: Injected[FaxStore]
    ) -> Response:
        fax = await faxes.get_inbound(caller, parse_id(fax_id), FOLDERS[self.folder])
        if fax is None:
            raise bad_identifier(fax_id)
        return _answer(request, fax)

    @delete(
        "/{fax_id:str}",
        status_code=200,
        summary="Remove a fax and its documents",
        operation_class=KAZOO.operation(404),
    )
    async def delete_fax(
        self, request: Request, caller: NamedDependency[str], fax_id: FromPath[str], faxes: Injected[FaxStore]
    ) -> Response:
        fax = await faxes.delete_inbound(caller, parse_id(fax_id), FOLDERS[self.folder])
        if fax is None:
            raise bad_identifier(fax_id)
        return _answer(request, fax)

    @get(
        "/{fax_id:str}/attachment",
        summary="The received fax: image/tiff (default) or application/pdf, as the Accept header asks",
        media_type="image/tiff",
        operation_class=KAZOO.operation(404, 406, produces=MEDIA_TYPES.values()),
    )
    async def get_attachment(
        self, request: Request, caller: NamedDependency[str], fax_id: FromPath[str], faxes: Injected[FaxStore]
    ) -> Response:
        fmt = wanted_format(request)
        fax_uuid = parse_id(fax_id)
        fax = await faxes.get_inbound(caller, fax_uuid, FOLDERS[self.folder])
        if fax is None:
            raise bad_identifier(fax_id)
        key = fax.tiff_key if fmt == "tiff" else fax.pdf_key
        body = await faxes.read_document(key) if key else None
        if body is None:
            if fmt == "pdf" and fax.tiff_key and await faxes.has_document(fax.tiff_key):
                raise no_pdf_copy(fax_id)
            raise no_attachment(fax_id)
        return attachment_response(request, fax_uuid, fmt, body)

    @delete(
        "/{fax_id:str}/attachment",
        status_code=200,
        summary="Remove a fax's documents; the record stays and says attachment_deleted",
        operation_class=KAZOO.operation(404),
    )
    async def delete_attachment(
        self, request: Request, caller: NamedDependency[str], fax_id: FromPath[str], faxes: Injected[FaxStore]
    ) -> Response:
        fax = await faxes.remove_inbound_attachment(caller, parse_id(fax_id), FOLDERS[self.folder])
        if fax is None:
            raise bad_identifier(fax_id)
        return _answer(request, fax)


class InboxController(_InboundFolder):
    path = "/v2/accounts/{account_id:str}/faxes/inbox"
    folder = "inbox"


class IncomingController(_InboundFolder):
    path = "/v2/accounts/{account_id:str}/faxes/incoming"
    folder = "incoming"


class SmtpLogController(Controller):
    path = "/v2/accounts/{account_id:str}/faxes/smtplog"
    dependencies = _DEPENDENCIES
    tags = ["faxes"]
    security = KAZOO.security

    @get(
        "/",
        summary="Mail to the account's faxboxes: the fax each queued, or why it could not, newest first",
        operation_class=KAZOO.operation(400),
    )
    async def list_smtplog(
        self,
        request: Request,
        caller: NamedDependency[str],
        faxes: Injected[FaxStore],
        page: NamedDependency[KeysetPage],
    ) -> Response:
        rows = await faxes.page_smtplog(caller, page.start_id(), page.limit)
        return keyset_listing(request, page, rows, smtplog_summary)

    @get("/{attempt_id:str}", summary="One smtplog entry", operation_class=KAZOO.operation(404))
    async def get_smtplog(
        self,
        request: Request,
        caller: NamedDependency[str],
        attempt_id: FromPath[str],
        faxes: Injected[FaxStore],
    ) -> Response:
        entry = await faxes.get_smtplog(caller, parse_id(attempt_id))
        if entry is None:
            raise bad_identifier(attempt_id)
        data = smtplog_view(entry)
        # An entry is written once and never changed: its revision is always the first.
        return envelope(request, data, revision=revision_of(1, data))
