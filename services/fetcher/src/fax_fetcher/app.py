"""Composition root of the fetcher."""

from __future__ import annotations

import asyncio
import contextlib

from faststream import AckPolicy

from fax_contracts import DocumentStored, JobSubmitted
from fax_fetcher.config import FetcherSettings
from fax_fetcher.handlers import DocumentPreparer
from fax_fetcher.previews import DocumentPreviewer
from fax_fetcher.reconciler import StalledDocuments
from fax_fetcher.store import FetcherStore
from fax_jobs import DocumentJobStore
from fax_render.render import Converters, converter_sandbox
from fax_runtime.broker import event_queue, events_exchange
from fax_runtime.worker import WorkerContext, WorkerSpec

SERVICE = "fetcher"


def create_worker(settings: FetcherSettings) -> WorkerSpec:
    async def wire(context: WorkerContext) -> None:
        # Probing bubblewrap starts a process: off the event loop. FAX_SANDBOX=bwrap without it stops the start here.
        converters = Converters(
            await asyncio.to_thread(converter_sandbox, settings.runtime.sandbox),
            memory_bytes=settings.render_memory_bytes,
            file_bytes=settings.render_max_file_bytes,
        )
        preparer = DocumentPreparer(DocumentJobStore(context.pool), context.blobs, settings, converters)
        context.broker.subscriber(
            event_queue(SERVICE, JobSubmitted), events_exchange, ack_policy=AckPolicy.NACK_ON_ERROR
        )(preparer.on_job_submitted)
        previewer = DocumentPreviewer(FetcherStore(context.pool), context.blobs, settings, converters)
        context.broker.subscriber(
            event_queue(SERVICE, DocumentStored), events_exchange, ack_policy=AckPolicy.NACK_ON_ERROR
        )(previewer.on_document_stored)

        async def backlog() -> int:
            declared = await context.broker.declare_queue(event_queue(SERVICE, JobSubmitted))
            return declared.declaration_result.message_count or 0

        reconciler = StalledDocuments(
            DocumentJobStore(context.pool), preparer.on_job_submitted, backlog, after_s=settings.redrive_after_s
        )
        task = asyncio.create_task(reconciler.run(), name="stalled-documents")

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        context.on_close.append(stop)

    return WorkerSpec(name=SERVICE, consumes=[JobSubmitted, DocumentStored], wire=wire)
