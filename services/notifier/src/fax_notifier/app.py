"""Composition root of the notifier: mailer, HTTP client, SMS provider, dispatcher, reconciler, sweeper and
subscribers."""

from __future__ import annotations

from faststream import AckPolicy

from fax_contracts import (
    DocumentFailed,
    InboundFailed,
    InboundReceived,
    IntakeRejected,
    TransmissionCompleted,
    TransmissionFailed,
)
from fax_notifier.attachments import FaxAttachments
from fax_notifier.config import Settings
from fax_notifier.dispatcher import Dispatcher, Sweeper
from fax_notifier.domain import Channel
from fax_notifier.handlers import FileLinks, NotificationHandlers
from fax_notifier.http import GuardedHttp
from fax_notifier.mail import Mailer, SmtpMailer
from fax_notifier.reconciler import UnnotifiedOutcomes
from fax_notifier.sms import create_sms_provider
from fax_notifier.store import NotifierStore
from fax_runtime import signing
from fax_runtime.blobs import BlobStore
from fax_runtime.broker import event_queue, events_exchange
from fax_runtime.network_guard import NetworkGuard
from fax_runtime.sandbox import Sandbox
from fax_runtime.worker import WorkerContext, WorkerSpec

SERVICE = "notifier"


class Notifier:
    """Everything the notifier runs, built from settings and the shared pool and blob store."""

    def __init__(
        self,
        settings: Settings,
        store: NotifierStore,
        blobs: BlobStore,
        mailer: Mailer | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        sandbox = sandbox or Sandbox.from_setting(settings.runtime.sandbox)
        self.http = GuardedHttp(NetworkGuard.from_setting(settings.allow_networks))
        self.dispatcher = Dispatcher(
            store,
            mailer if mailer is not None else SmtpMailer(settings.smtp),
            self.http,
            create_sms_provider(settings.sms, self.http),
            FaxAttachments(blobs, settings.attachment, sandbox),
            sender=settings.smtp.sender,
            callback_retry_interval=settings.callback_retry_interval,
            message_retry_interval=settings.message_retry_interval,
            lease=settings.claim_lease,
        )
        self.handlers = NotificationHandlers(
            store,
            self.dispatcher,
            retry_for={
                Channel.EMAIL: settings.message_retry_for,
                Channel.SMS: settings.message_retry_for,
                Channel.CALLBACK: settings.callback_retry_for,
            },
            links=FileLinks(
                api_url=settings.public_api_url,
                key=signing.signing_key(settings.runtime.s3.secret_key),
                # A receiver may fetch the file when the last retry of its callback finally gets through.
                ttl_seconds=int(settings.callback_retry_for) + 24 * 3600,
            ),
            name=settings.public_name,
        )
        self.reconciler = UnnotifiedOutcomes(
            store,
            self.handlers,
            after_s=settings.reconcile_after,
            # Outcomes older than the callbacks' retry period are past telling.
            horizon_s=max(settings.callback_retry_for, settings.message_retry_for),
        )
        self.sweeper = Sweeper(self.dispatcher, settings.sweep_interval, self.reconciler.reconcile)

    async def close(self) -> None:
        await self.sweeper.stop()
        await self.http.close()


CONSUMES = (TransmissionCompleted, TransmissionFailed, DocumentFailed, InboundReceived, InboundFailed, IntakeRejected)


def create_worker(settings: Settings, service: str = SERVICE) -> WorkerSpec:
    """The notifier as a worker; ``service`` names its queues (tests use their own)."""

    async def wire(context: WorkerContext) -> None:
        notifier = Notifier(settings, NotifierStore(context.pool), context.blobs)
        handlers = notifier.handlers
        by_event = {
            TransmissionCompleted: handlers.on_transmission_completed,
            TransmissionFailed: handlers.on_transmission_failed,
            DocumentFailed: handlers.on_document_failed,
            InboundReceived: handlers.on_inbound_received,
            InboundFailed: handlers.on_inbound_failed,
            IntakeRejected: handlers.on_intake_rejected,
        }
        for event_type, handler in by_event.items():
            context.broker.subscriber(
                event_queue(service, event_type), events_exchange, ack_policy=AckPolicy.NACK_ON_ERROR
            )(handler)
        notifier.sweeper.start()
        context.on_close.append(notifier.close)

    return WorkerSpec(name=service, consumes=list(CONSUMES), wire=wire)
