"""The notifier's reconciler: plans the notifications of outcomes whose event never reached it.

Every finished job and every received (or failed) inbound fax is notified once: its deliveries are planned under
its subject (``job:<id>``, ``inbound:<id>``) when its event arrives. Were the event lost (dead-lettered, or gone
with a broker that lost its queues), nobody would hear of the outcome. Each pass takes what finished more than
``after_s`` ago with nothing planned for it, and plans it from the database as its event would have; an event that
arrives after all finds the subject planned and adds nothing.

A pass looks at what finished since the previous one (the first at what finished within ``horizon_s``: older news is
not worth sending), so it stays cheap however many jobs finished before.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from fax_contracts import DocumentFailed, InboundFailed, InboundReceived, TransmissionCompleted, TransmissionFailed
from fax_notifier.handlers import NotificationHandlers
from fax_notifier.store import NotifierStore

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UnnotifiedOutcomes:
    def __init__(self, store: NotifierStore, handlers: NotificationHandlers, *, after_s: float, horizon_s: float):
        self._store = store
        self._handlers = handlers
        self._after = dt.timedelta(seconds=after_s)
        self._since = _now() - dt.timedelta(seconds=horizon_s)

    async def reconcile(self) -> int:
        """One pass; how many outcomes were planned here."""
        until = _now() - self._after
        if until <= self._since:
            return 0
        planned = 0
        for job in await self._store.unnotified_jobs(self._since, until):
            log.warning("job %s finished %s with nothing planned for it; notifying now", job.id, job.status)
            common = {"event_id": uuid.uuid4(), "occurred_at": _now(), "job_id": job.id, "account_id": job.account_id}
            if job.status == "completed":
                await self._handlers.on_transmission_completed(
                    TransmissionCompleted(**common, attempt=job.attempts, pages_sent=job.pages or 0)
                )
            elif job.attempts == 0:  # failed before any attempt: its document could not be prepared
                await self._handlers.on_document_failed(DocumentFailed(**common, error=job.error_message))
            else:
                await self._handlers.on_transmission_failed(
                    TransmissionFailed(
                        **common, attempt=job.attempts, final=True, error=job.error_message, result_code=job.result_code
                    )
                )
            planned += 1
        for fax in await self._store.unnotified_receptions(self._since, until):
            log.warning("inbound fax %s ended %s with nothing planned for it; notifying now", fax.id, fax.status)
            common = {
                "event_id": uuid.uuid4(),
                "occurred_at": fax.completed_at,
                "fax_id": fax.id,
                "account_id": fax.account_id,
                "faxbox_id": fax.faxbox_id,
                "from_number": fax.from_number,
                "to_number": fax.to_number,
                "pages": fax.pages,
            }
            if fax.status == "received" and fax.tiff_key:
                await self._handlers.on_inbound_received(InboundReceived(**common, tiff_key=fax.tiff_key))
            else:
                await self._handlers.on_inbound_failed(InboundFailed(**common, error=fax.error_message))
            planned += 1
        # Only once every outcome up to ``until`` was planned: a pass that failed half-way starts there again.
        self._since = until
        return planned
