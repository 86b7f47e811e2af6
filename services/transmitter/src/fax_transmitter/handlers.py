"""Sends a job's fax: claim the attempt, place the call on the configured line, record the result.

A claim commits before dialling and takes a lease the call renews while it runs; the broker message is acked once
the claim is made, so many calls run at once in one process. A transmitter that dies leaves leases that run out,
and the sweeper of any transmitter ends those attempts as failed (retrying them if attempts remain). It also leaves
its answered calls up at the far end, which keeps streaming into its media ports: each answered call is saved with
its attempt, and whoever ends the attempt (the sweeper, or at once the dead process's successor on the same SIP
address) hangs the call up.

What a call established is recorded until it commits, with the lease renewed meanwhile: each page the far end
confirms, then the outcome. Postgres away as a call ends delays the record, never loses it; and an attempt whose
every page was confirmed is never dialled again, even if its transmitter dies before the outcome is written (the
reaper completes it). The one window left is between the far end's confirmation of the last page (its MCF) and the
commit of that page's record, a database round trip after it: a transmitter killed within it, or one that dies
while Postgres is away at that moment, leaves an attempt that is dialled again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
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
from fax_runtime.transient import UNBOUNDED, RetryPolicy, retry_transient
from fax_transmitter.config import TransmitterSettings
from fax_transmitter.inbound import HeldReceptions
from fax_transmitter.leases import keep_lease
from fax_transmitter.lines import AnsweredCall, CallRequest, CallRoute, Line
from fax_transmitter.media_policy import attempt_log
from fax_transmitter.options import fax_options_for
from fax_transmitter.outcome import RetryDelays, call_not_made, record_call, retry_delay_s, should_retry, tx_result

log = logging.getLogger(__name__)

# Reading the fax from S3 before dialling: an outage of minutes is waited out (the lease renewed meanwhile); after
# that the attempt fails as not made, and is retried later if attempts remain.
DOCUMENT_READ = RetryPolicy(give_up_after_s=600.0)
ATTEMPT_BROKE = "transmitter error: the call could not be placed"


class Transmitter:
    def __init__(
        self,
        jobs: AttemptJobs[AnsweredCall],
        blobs: BlobStore,
        settings: TransmitterSettings,
        line: Line,
        *,
        receptions: HeldReceptions | None = None,
    ) -> None:
        """``receptions``: the receptions this process holds, and the store that ends those any transmitter left
        behind (the sweeper's other half); None only where receptions are not the concern (tests of sending)."""
        self._jobs = jobs
        self._receptions = receptions
        self._blobs = blobs
        self._settings = settings
        self._line = line
        self._calls: set[asyncio.Task[None]] = set()
        self._saves: set[asyncio.Task[None]] = set()
        # The jobs whose attempt this process runs, until its outcome is recorded: never reaped by our own sweeper.
        self._running: set[uuid.UUID] = set()
        self._sweep_failed_at: float | None = None
        self._delays = RetryDelays(
            busy_s=settings.retry_delay_busy_s,
            no_answer_s=settings.retry_delay_no_answer_s,
            other_s=settings.retry_delay_s,
        )

    async def end_predecessors_calls(self) -> None:
        """At start, before any call: end the attempts and receptions whose calls a dead predecessor on our SIP
        address left up, and hang those calls up, so the far end stops streaming into ports we are about to use."""
        owner = self._line.owner
        if owner is None:
            return
        calls = [ended.call for ended in await self._jobs.reap_abandoned_attempts(predecessor=owner) if ended.call]
        if self._receptions is not None:
            calls += await self._receptions.reap_abandoned(predecessor=owner)
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
        self._running.add(job_id)
        metrics = default_metrics()
        metrics.job_transitions.labels("processing").inc()
        metrics.calls_active.labels("outbound").inc()
        began = time.monotonic()
        lease_s = self._settings.call_lease_s
        heartbeat = asyncio.create_task(
            keep_lease(lambda: self._jobs.renew_lease(job_id, attempt, lease_s), lease_s, f"job {job_id}")
        )
        progress: asyncio.Queue[int] = asyncio.Queue()
        reporter = asyncio.create_task(self._report_progress(job_id, attempt, progress))
        routes: list[CallRoute] = []
        try:
            try:
                outcome = await self._place_call(job_id, attempt, job, progress.put_nowait, routes.append)
            except Exception:
                # The attempt is claimed: whatever broke, it must end recorded, or the job would hang in 'processing'.
                # The exception (a path, an S3 key, a library's words) goes to the log, not to the fax's owner.
                log.exception("job %s: attempt %d could not be made", job_id, attempt)
                outcome = call_not_made(ATTEMPT_BROKE)
            finally:
                metrics.calls_active.labels("outbound").dec()
            # The confirmed pages first, then the outcome; the lease is renewed until both have committed.
            await progress.join()
            retry = await self._record_outcome(job, outcome, routes[-1] if routes else None)
        finally:
            heartbeat.cancel()
            reporter.cancel()
            self._running.discard(job_id)
        record_call(metrics, "outbound", outcome, retry=retry, seconds=time.monotonic() - began)
        metrics.job_state_seconds.labels("processing").observe(time.monotonic() - began)
        metrics.job_transitions.labels("completed" if outcome.success else "pending" if retry else "failed").inc()

    async def _record_outcome(self, job: ClaimedAttempt, outcome: TransmissionOutcome, route: CallRoute | None) -> bool:
        """Record how the attempt ended, until it commits; whether the job is tried again."""
        job_id, attempt = job.id, job.attempts
        elapsed = int((dt.datetime.now(dt.UTC) - job.created_at).total_seconds())
        result = tx_result(
            outcome, time_elapsed=elapsed, attempt=attempt, route=route, earlier=attempt_log(job.tx_result)
        )
        if outcome.success:
            await retry_transient(
                lambda: self._jobs.record_success(job_id, attempt, result),
                what=f"job {job_id}: recording its delivery",
                policy=UNBOUNDED,
            )
            log.info("job %s: sent %d page(s) at %d bit/s", job_id, outcome.pages_sent, outcome.bit_rate)
            return False
        retry = should_retry(outcome, attempt=attempt, retries=job.retries)
        delay = retry_delay_s(outcome, self._delays)
        await retry_transient(
            lambda: self._jobs.record_failure(job_id, attempt, result, retry, delay),
            what=f"job {job_id}: recording its failed attempt",
            policy=UNBOUNDED,
        )
        log.info("job %s: attempt %d failed (%s); retry=%s", job_id, attempt, outcome.result_text, retry)
        return retry

    async def _report_progress(self, job_id: uuid.UUID, attempt: int, pages: asyncio.Queue[int]) -> None:
        # One consumer per call keeps the progress events in page order.
        while True:
            pages_sent = await pages.get()
            try:
                # Until it commits: a page recorded as confirmed is what keeps a delivered fax from being redialled.
                await retry_transient(
                    functools.partial(self._jobs.record_progress, job_id, attempt, pages_sent),
                    what=f"job {job_id}: recording page {pages_sent}",
                    policy=UNBOUNDED,
                )
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
            await retry_transient(
                lambda: self._blobs.download(job.tiff_key, tiff),
                what=f"job {job_id}: reading its fax from S3",
                policy=DOCUMENT_READ,
            )
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
                await self.sweep_once(held_back_s=int(poll_seconds))
            except asyncio.CancelledError:
                raise
            except Exception:
                self._sweep_failed_at = time.monotonic()
                log.warning("sweep failed; trying again in %.0f s", poll_seconds, exc_info=True)
            await asyncio.sleep(poll_seconds)

    async def sweep_once(self, held_back_s: int) -> None:
        # After an outage every live transmitter's leases may have run out while none could renew them; they get one
        # lease period to renew before anything is taken for abandoned.
        failed_at = self._sweep_failed_at
        if failed_at is None or time.monotonic() - failed_at > self._settings.call_lease_s:
            abandoned = await self._jobs.reap_abandoned_attempts(running=frozenset(self._running))
            for ended in abandoned:
                if ended.completed:
                    log.info("job %s: every page was confirmed before its transmitter stopped: delivered", ended.job_id)
            calls = [ended.call for ended in abandoned if ended.call]
            if self._receptions is not None:
                calls += await self._receptions.reap_abandoned()
            self._line.hang_up_abandoned(calls)
        due = await self._jobs.due_jobs(self._settings.retry_delay_s, held_back_s=held_back_s)
        for job_id in due:
            await self.start_attempt(job_id)

    async def drain(self, grace_s: float) -> None:
        """Let calls in progress finish, and receptions be filed (a stopping pod). Calls still up after ``grace_s``
        are cut here, receptions by the line's close; their leases run out for a sweeper to record."""
        receiving = self._receptions.tasks if self._receptions is not None else frozenset()
        if self._calls or receiving:
            log.info(
                "waiting up to %.0f s for %d call(s) and %d reception(s) to finish",
                grace_s,
                len(self._calls),
                len(receiving),
            )
            _, pending = await asyncio.wait(self._calls | receiving, timeout=grace_s)
            cut = pending - receiving
            for task in cut:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*cut, return_exceptions=True)
