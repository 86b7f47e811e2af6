"""Sends a job's fax: claim the attempt, place the call on the configured line, record the result."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

from fax_contracts import DocumentReady
from fax_runtime.blobs import BlobStore
from fax_transmitter.config import TransmitterSettings
from fax_transmitter.lines import CallRequest, Line
from fax_transmitter.loopback import TransmissionOutcome
from fax_transmitter.options import fax_options_for
from fax_transmitter.outcome import call_not_made, should_retry, tx_result
from fax_transmitter.store import TransmitterStore

log = logging.getLogger(__name__)


class Transmitter:
    def __init__(self, store: TransmitterStore, blobs: BlobStore, settings: TransmitterSettings, line: Line) -> None:
        self._store = store
        self._blobs = blobs
        self._settings = settings
        self._line = line

    async def on_document_ready(self, event: DocumentReady) -> None:
        await self.attempt(event.job_id)

    async def attempt(self, job_id: uuid.UUID) -> None:
        job = await self._store.claim_attempt(job_id)
        if job is None:
            log.info("job %s: not waiting to be sent; nothing to do", job_id)
            return
        attempt = job["attempts"]
        try:
            outcome = await self._place_call(job_id, attempt, job)
        except Exception as exc:
            # The attempt is claimed: whatever broke, it must end recorded, or the job would hang in 'processing'.
            log.exception("job %s: attempt %d could not be made", job_id, attempt)
            outcome = call_not_made(f"transmitter error: {exc}")
        elapsed = int((dt.datetime.now(dt.UTC) - job["created_at"]).total_seconds())
        result = tx_result(outcome, time_elapsed=elapsed)
        if outcome.success:
            await self._store.record_success(job_id, attempt, result)
            log.info("job %s: sent %d page(s) at %d bit/s", job_id, outcome.pages_sent, outcome.bit_rate)
        else:
            retry = should_retry(outcome, attempt=attempt, retries=job["retries"])
            await self._store.record_failure(job_id, attempt, result, retry)
            log.info("job %s: attempt %d failed (%s); retry=%s", job_id, attempt, outcome.result_text, retry)

    async def _place_call(self, job_id: uuid.UUID, attempt: int, job: dict[str, Any]) -> TransmissionOutcome:
        request = job["request"]
        options = fax_options_for(request, self._settings.station_ident)
        with tempfile.TemporaryDirectory(prefix="fax-tx-") as tmp:
            tiff = Path(tmp) / "fax.tif"
            await self._blobs.download(job["tiff_key"], tiff)
            return await self._line.place_call(
                CallRequest(
                    job_id=job_id,
                    attempt=attempt,
                    to_number=job["to_number"],
                    from_number=job["from_number"] or "",
                    from_name=str(request.get("from_name") or ""),
                    tiff=tiff,
                    options=options,
                )
            )

    async def retry_due_jobs(self, poll_seconds: float = 5.0) -> None:
        """Retries failed attempts once their delay has passed (runs until cancelled)."""
        while True:
            try:
                for job_id in await self._store.due_retries(self._settings.retry_delay_s):
                    await self.attempt(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retry sweep failed")
            await asyncio.sleep(poll_seconds)
