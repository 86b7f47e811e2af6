"""The fetcher's reconciler: prepares again the documents of queued jobs nobody is preparing.

A job waits for its document in ``attaching_files`` or ``pending`` until the fetcher records a render. Its
``fax.job.submitted`` is what starts that; were the message lost (dead-lettered, or gone with a broker that lost its
queues), the job would wait for ever. Every ``poll_s``, the jobs that have waited ``after_s`` since they were last
submitted, changed or re-driven are taken (each by one fetcher: ``DocumentJobs.stalled_documents``) and prepared
here, as if their event had arrived. A job that was only slow is harmless to prepare twice: the first render recorded
wins, the other is removed (``DocumentPreparer``). While the fetcher's own queue still holds messages the pass is
skipped: a backlog is being worked through, and those jobs are in it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable

from fax_contracts import JobSubmitted
from fax_jobs import DocumentJobs
from fax_runtime.logs import fax_context

log = logging.getLogger(__name__)

Backlog = Callable[[], Awaitable[int]]


class StalledDocuments:
    def __init__(
        self,
        jobs: DocumentJobs,
        prepare: Callable[[JobSubmitted], Awaitable[None]],
        backlog: Backlog,
        *,
        after_s: int,
        poll_s: float = 5.0,
    ) -> None:
        self._jobs = jobs
        self._prepare = prepare
        self._backlog = backlog
        self._after_s = after_s
        self._poll_s = poll_s

    async def run(self) -> None:
        """Reconcile every ``poll_s`` until cancelled."""
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.reconcile()
            except Exception:
                log.warning("re-driving stalled documents failed; trying again in %.0f s", self._poll_s, exc_info=True)

    async def reconcile(self) -> int:
        """One pass: prepare each stalled job's document; how many were re-driven."""
        try:
            waiting = await self._backlog()
        except Exception:
            waiting = 0  # the broker is away: its messages cannot be handled now anyway, the jobs can
        if waiting:
            return 0
        stalled = await self._jobs.stalled_documents(self._after_s)
        for job in stalled:
            with fax_context(job.id):
                log.warning("job %s: no document %d s after it was queued; preparing it again", job.id, self._after_s)
                event = JobSubmitted(
                    event_id=uuid.uuid4(), occurred_at=dt.datetime.now(dt.UTC), job_id=job.id, account_id=job.account_id
                )
                try:
                    await self._prepare(event)
                except Exception:
                    # Taken again after another after_s; the other stalled jobs go on meanwhile.
                    log.warning("job %s: preparing it again failed", job.id, exc_info=True)
        return len(stalled)
