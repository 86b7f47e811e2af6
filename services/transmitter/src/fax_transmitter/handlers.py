"""Sends a job's fax: claim the attempt, place the call on the configured line, record the result.

A claim commits before dialling and takes a lease the call renews while it runs; the broker message is acked once
the claim is made, so many calls run at once in one process. A transmitter that dies leaves leases that run out,
and the sweeper of any transmitter ends those attempts as failed (retrying them if attempts remain). It also leaves
its answered calls up at the far end, which keeps streaming into its media ports: each answered call is saved with
its attempt, and whoever ends the attempt (the sweeper, or at once the dead process's successor on the same SIP
address) hangs the call up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from fax_contracts import DocumentReady
from fax_jobs import AttemptJobs, ClaimedAttempt
from fax_media.t30 import TransmissionOutcome
from fax_runtime.blobs import BlobStore
from fax_runtime.logs import fax_context
from fax_runtime.metrics import default_metrics
from fax_transmitter.config import TransmitterSettings
from fax_transmitter.inbound import InboundStore
from fax_transmitter.lines import AnsweredCall, CallRequest, CallRoute, Line
from fax_transmitter.media_policy import attempt_log
from fax_transmitter.options import fax_options_for
from fax_transmitter.outcome import RetryDelays, call_not_made, record_call, retry_delay_s, should_retry, tx_result

log = logging.getLogger(__name__)


class Transmitter:
    def __init__(
        self, jobs: AttemptJobs[AnsweredCall], blobs: BlobStore, settings: TransmitterSettings, line: Line
    ) -> None:
        self._jobs = jobs
        self._blobs = blobs
        self._settings = settings
        self._line = line
        self._calls: set[asyncio.Task[None]] = set()
        self._saves: set[asyncio.Task[None]] = set()
        self._delays = RetryDelays(
            busy_s=settings.retry_delay_busy_s,
            no_answer_s=settings.retry_delay_no_answer_s,
            other_s=settings.retry_delay_s,
        )

    async def end_predecessors_calls(self, inbound: InboundStore) -> None:
        """At start, before any call: end the attempts and receptions whose calls a dead predecessor on our SIP
        address left up, and hang those calls up, so the far end stops streaming into ports we are about to use."""
        owner = self._line.owner
        if owner is None:
            return
        calls = [ended.call for ended in await self._jobs.reap_abandoned_attempts(predecessor=owner) if ended.call]
        calls += await inbound.end_orphaned_receptions(owner)
        if calls:
            log.info("hanging up %d call(s) a stopped transmitter left up", len(calls))
        self._line.hang_up_abandoned(calls)

    async def on_document_ready(self, event: DocumentReady) -> None:
        await self.start_attempt(event.job_id)

    async def start_attempt(self, job_id: uuid.UUID) -> bool:
        """Claim the job's next attempt and run its call in the background; False when there is nothing to do."""
        job = await self._claim(job_id)
        if job is None:
            return False
        with fax_context(job_id):  # the task copies the context: its logs carry the job's id
            task = asyncio.create_task(self._run(job), name=f"fax-call-{job_id}")
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        return True

    async def attempt(self, job_id: uuid.UUID) -> None:
        """Claim and run the next attempt, returning once it is recorded."""
        job = await self._claim(job_id)
        if job is not None:
            with fax_context(job_id):
                await self._run(job)

    async def _claim(self, job_id: uuid.UUID) -> ClaimedAttempt | None:
        job = await self._jobs.claim_attempt(
            job_id,
            max_calls_per_account=self._settings.max_calls_per_account,
            lease_s=self._settings.call_lease_s,
        )
        if job is None:
            log.info("job %s: not claimable now (finished, claimed elsewhere, or a call limit holds it)", job_id)
        return job

    async def _run(self, job: ClaimedAttempt) -> None:
        job_id, attempt = job.id, job.attempts
        metrics = default_metrics()
        metrics.job_transitions.labels("processing").inc()
        metrics.calls_active.labels("outbound").inc()
        began = time.monotonic()
        heartbeat = asyncio.create_task(self._keep_lease(job_id, attempt))
        progress: asyncio.Queue[int] = asyncio.Queue()
        reporter = asyncio.create_task(self._report_progress(job_id, attempt, progress))
        routes: list[CallRoute] = []
        try:
            outcome = await self._place_call(job_id, attempt, job, progress.put_nowait, routes.append)
        except Exception as exc:
            # The attempt is claimed: whatever broke, it must end recorded, or the job would hang in 'processing'.
            log.exception("job %s: attempt %d could not be made", job_id, attempt)
            outcome = call_not_made(f"transmitter error: {exc}")
        finally:
            heartbeat.cancel()
            await progress.join()
            reporter.cancel()
            metrics.calls_active.labels("outbound").dec()
        elapsed = int((dt.datetime.now(dt.UTC) - job.created_at).total_seconds())
        result = tx_result(
            outcome,
            time_elapsed=elapsed,
            attempt=attempt,
            route=routes[-1] if routes else None,
            earlier=attempt_log(job.tx_result),
        )
        retry = False
        if outcome.success:
            await self._jobs.record_success(job_id, attempt, result)
            log.info("job %s: sent %d page(s) at %d bit/s", job_id, outcome.pages_sent, outcome.bit_rate)
        else:
            retry = should_retry(outcome, attempt=attempt, retries=job.retries)
            delay = retry_delay_s(outcome, self._delays)
            await self._jobs.record_failure(job_id, attempt, result, retry, delay)
            log.info("job %s: attempt %d failed (%s); retry=%s", job_id, attempt, outcome.result_text, retry)
        record_call(metrics, "outbound", outcome, retry=retry, seconds=time.monotonic() - began)
        metrics.job_state_seconds.labels("processing").observe(time.monotonic() - began)
        metrics.job_transitions.labels("completed" if outcome.success else "pending" if retry else "failed").inc()

    async def _keep_lease(self, job_id: uuid.UUID, attempt: int) -> None:
        lease = self._settings.call_lease_s
        while True:
            await asyncio.sleep(lease / 3)
            try:
                await self._jobs.renew_lease(job_id, attempt, lease)
            except Exception:
                log.exception("job %s: could not renew the call's lease", job_id)

    async def _report_progress(self, job_id: uuid.UUID, attempt: int, pages: asyncio.Queue[int]) -> None:
        # One consumer per call keeps the progress events in page order.
        while True:
            pages_sent = await pages.get()
            try:
                await self._jobs.record_progress(job_id, attempt, pages_sent)
            except Exception:
                log.exception("job %s: could not record progress", job_id)
            finally:
                pages.task_done()

    def _save_answered_call(self, job_id: uuid.UUID, attempt: int, call: AnsweredCall) -> None:
        async def save() -> None:
            try:
                await self._jobs.record_answered_call(job_id, attempt, call)
            except Exception:
                log.exception("job %s: could not save the answered call", job_id)

        # Off the call's path: the media must not wait for Postgres.
        task = asyncio.create_task(save())
        self._saves.add(task)
        task.add_done_callback(self._saves.discard)

    async def _place_call(
        self,
        job_id: uuid.UUID,
        attempt: int,
        job: ClaimedAttempt,
        on_page: Callable[[int], None],
        on_route: Callable[[CallRoute], None],
    ) -> TransmissionOutcome:
        request = job.request
        options = fax_options_for(request, self._settings.station_ident)
        with tempfile.TemporaryDirectory(prefix="fax-tx-") as tmp:
            tiff = Path(tmp) / "fax.tif"
            await self._blobs.download(job.tiff_key, tiff)
            return await self._line.place_call(
                CallRequest(
                    job_id=job_id,
                    attempt=attempt,
                    to_number=job.to_number,
                    from_number=job.from_number,
                    from_name=str(request.get("from_name") or ""),
                    tiff=tiff,
                    options=options,
                    on_page=on_page,
                    on_answered=lambda call: self._save_answered_call(job_id, attempt, call),
                    history=attempt_log(job.tx_result),
                    fax_option=job.fax_option,
                    on_route=on_route,
                )
            )

    async def sweep(self, poll_seconds: float = 5.0) -> None:
        """Ends abandoned attempts, then starts retries that are due and jobs a call limit held back (until
        cancelled)."""
        while True:
            try:
                abandoned = await self._jobs.reap_abandoned_attempts()
                self._line.hang_up_abandoned(ended.call for ended in abandoned if ended.call)
                due = await self._jobs.due_jobs(self._settings.retry_delay_s, held_back_s=int(poll_seconds))
                for job_id in due:
                    await self.start_attempt(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweep failed")
            await asyncio.sleep(poll_seconds)

    async def drain(self, grace_s: float) -> None:
        """Let calls in progress finish (a stopping pod); those still up after ``grace_s`` are cut, and their
        leases run out for the next sweep to record."""
        if self._calls:
            log.info("waiting up to %.0f s for %d call(s) to finish", grace_s, len(self._calls))
            _, pending = await asyncio.wait(set(self._calls), timeout=grace_s)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)
