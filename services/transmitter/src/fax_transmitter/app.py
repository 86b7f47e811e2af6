"""Composition root of the transmitter."""

from __future__ import annotations

import asyncio
import contextlib

from faststream import AckPolicy

from fax_contracts import DocumentReady
from fax_runtime.broker import event_queue, events_exchange
from fax_runtime.worker import WorkerContext, WorkerSpec
from fax_transmitter.config import TransmitterSettings
from fax_transmitter.handlers import Transmitter
from fax_transmitter.store import TransmitterStore

SERVICE = "transmitter"


def create_worker(settings: TransmitterSettings) -> WorkerSpec:
    async def wire(context: WorkerContext) -> None:
        transmitter = Transmitter(TransmitterStore(context.pool), context.blobs, settings)
        context.broker.subscriber(
            event_queue(SERVICE, DocumentReady), events_exchange, ack_policy=AckPolicy.NACK_ON_ERROR
        )(transmitter.on_document_ready)
        sweeper = asyncio.create_task(transmitter.retry_due_jobs(), name="retry-sweeper")

        async def stop_sweeper() -> None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

        context.on_close.append(stop_sweeper)

    return WorkerSpec(name=SERVICE, consumes=[DocumentReady], wire=wire)
