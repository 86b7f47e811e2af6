"""Thin event handlers: read what the event is about, plan its deliveries once per outcome, send the new ones."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import msgspec

from fax_contracts import (
    DocumentFailed,
    InboundFailed,
    InboundReceived,
    IntakeRejected,
    TransmissionCompleted,
    TransmissionFailed,
)
from fax_notifier.dispatcher import Dispatcher
from fax_notifier.domain import (
    Channel,
    Kind,
    PlannedDelivery,
    account_callback,
    inbound_callback,
    inbound_email_recipients,
    inbound_sms_recipients,
    msg_code,
    outbound_callback,
    outbound_email_recipients,
    outbound_sms_recipients,
    plan_callback,
    plan_messages,
    receipt,
    receipt_job_id,
    receive_fields,
    recipients,
)
from fax_notifier.store import NotifierStore
from fax_runtime import signing

log = logging.getLogger(__name__)


class FileLinks(msgspec.Struct, frozen=True, kw_only=True):
    """Signed links to received faxes' PDFs (the API serves them); they outlive every retry of the callback."""

    api_url: str
    key: bytes
    ttl_seconds: int

    def received_fax(self, fax_id: uuid.UUID) -> str:
        return signing.inbound_fax_link(self.key, self.api_url, fax_id.hex, "file", self.ttl_seconds)


class NotificationHandlers:
    def __init__(
        self,
        store: NotifierStore,
        dispatcher: Dispatcher,
        *,
        retry_for: dict[Channel, float],
        links: FileLinks,
        name: str = "Fax",
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._retry_for = retry_for
        self._links = links
        self._name = name

    async def on_transmission_completed(self, event: TransmissionCompleted) -> None:
        await self._outbound(event.event_id, event.job_id, success=True, error="", code="ok")

    async def on_transmission_failed(self, event: TransmissionFailed) -> None:
        if not event.final:  # an attempt with retries left: the job is not over, nobody is told yet
            return
        code = msg_code(success=False, error=event.error, result_code=event.result_code)
        await self._outbound(event.event_id, event.job_id, success=False, error=event.error, code=code)

    async def on_document_failed(self, event: DocumentFailed) -> None:
        code = msg_code(success=False, error=event.error, document_failed=True)
        await self._outbound(event.event_id, event.job_id, success=False, error=event.error, code=code)

    async def on_inbound_received(self, event: InboundReceived) -> None:
        settings = await self._faxbox(event.faxbox_id, event.account_id)
        context = self._inbound_context(event.fax_id, event.from_number, event.to_number, event.pages, "")
        planned = plan_messages(
            Kind.INBOUND_RECEIVED,
            context,
            inbound_email_recipients(settings),
            inbound_sms_recipients(settings),
            attach_fax_of=str(event.fax_id),
            tiff_key=event.tiff_key,
        )
        # The faxbox's own callback, else the account's Fax.to API-settings callback (its provisioned numbers).
        callback = inbound_callback(settings) or account_callback(
            await self._store.account_callback_url(event.account_id)
        )
        if callback is not None:
            fields = receive_fields(
                event.fax_id.hex,
                event.from_number,
                event.to_number,
                event.occurred_at,
                event.pages,
                self._links.received_fax(event.fax_id),
                await self._store.reception(event.fax_id),
            )
            planned += plan_callback(callback, fields, Kind.INBOUND_RECEIVED)
        await self._plan_and_send(f"inbound:{event.fax_id}", event.event_id, event.account_id, None, planned)

    async def on_inbound_failed(self, event: InboundFailed) -> None:
        settings = await self._faxbox(event.faxbox_id, event.account_id)
        context = self._inbound_context(event.fax_id, event.from_number, event.to_number, event.pages, event.error)
        planned = plan_messages(
            Kind.INBOUND_FAILURE, context, inbound_email_recipients(settings), inbound_sms_recipients(settings)
        )
        await self._plan_and_send(f"inbound:{event.fax_id}", event.event_id, event.account_id, None, planned)

    async def on_intake_rejected(self, event: IntakeRejected) -> None:
        context = {"name": self._name, "to_number": event.to_number, "error": event.error, "from_number": event.sender}
        planned = plan_messages(Kind.INTAKE_REJECTED, context, recipients(event.sender), [])
        await self._plan_and_send(f"event:{event.event_id}", event.event_id, event.account_id, None, planned)

    async def _outbound(self, event_id: uuid.UUID, job_id: uuid.UUID, *, success: bool, error: str, code: str) -> None:
        job = await self._store.job(job_id)
        if job is None:
            log.warning("no job %s for event %s: nothing to notify", job_id, event_id)
            return
        kind = Kind.OUTBOUND_SUCCESS if success else Kind.OUTBOUND_FAILURE
        error = error or job.error_message
        context = {
            "name": self._name,
            "job_id": str(job.id),
            "to_number": job.to_number,
            "from_number": job.from_number,
            "pages": job.pages or 0,
            "attempts": job.attempts,
            "error": error,
        }
        planned = plan_messages(
            kind,
            context,
            outbound_email_recipients(job.request, job.faxbox_settings),
            outbound_sms_recipients(job.request, job.faxbox_settings),
            attach_fax_of=str(job.id) if job.tiff_key or success else None,
            tiff_key=job.tiff_key,
        )
        message = "Fax sent" if success else error or "Fax failed"
        planned += plan_callback(
            outbound_callback(job.request, job.faxbox_settings),
            receipt(receipt_job_id(job.request, job.id, job.int_id), success=success, code=code, message=message),
            kind,
        )
        await self._plan_and_send(f"job:{job.id}", event_id, job.account_id, job.id, planned)

    async def _plan_and_send(
        self,
        subject: str,
        event_id: uuid.UUID,
        account_id: str,
        job_id: uuid.UUID | None,
        planned: list[PlannedDelivery],
    ) -> None:
        """Plan the outcome's deliveries once per ``subject`` (a finished job, a received fax: whoever plans it
        first, its event or the reconciler), and send those that are new."""
        new = await self._store.plan(subject, event_id, account_id, job_id, planned, self._retry_for)
        await self._dispatcher.send_new(new)

    async def _faxbox(self, faxbox_id: str | None, account_id: str) -> dict[str, Any] | None:
        return await self._store.faxbox_settings(faxbox_id, account_id) if faxbox_id else None

    def _inbound_context(
        self, fax_id: uuid.UUID, from_number: str, to_number: str, pages: int, error: str
    ) -> dict[str, Any]:
        return {
            "name": self._name,
            "job_id": str(fax_id),
            "from_number": from_number,
            "to_number": to_number,
            "pages": pages,
            "error": error,
        }
