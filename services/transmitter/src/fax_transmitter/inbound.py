"""Receiving faxes: a call to one of our numbers is answered, received with spandsp and filed in the inbox.

The reception is visible under Kazoo's ``faxes/incoming`` from the moment we answer (status ``receiving``); when
the call ends its TIFF and a PDF copy go to S3 and the row becomes ``received`` (or ``failed``), with its event
committed in the same transaction. A call to a number nobody owns is refused before anything is stored. The
answered call is saved with the reception, so that a successor can hang up a call this process dies with.

The pages of a finished call are a known outcome: filing them is retried through S3 or Postgres being away until it
commits, with the TIFF kept in the call's temporary directory meanwhile, and a second run of the record (after a
commit whose answer was lost) changes nothing. Writes during the call (its pages so far, the answered call) never
hold up or end the call.

From the answer until its outcome commits a reception is held under a lease its transmitter renews
(``HeldReceptions``). A process that dies in the call or while a filing waits loses the TIFF: once the lease runs
out any transmitter's sweeper fails the reception as interrupted and hangs up its call (at once: a successor on the
same SIP address, at its start).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from fax_contracts import InboundFailed, InboundReceived
from fax_media.call import FaxCall, PortRange
from fax_media.dsp_loop import DspLoop
from fax_media.sip_call import accept_t38_reinvite, chosen_payload_type, signalling_host, until_call_ends
from fax_media.t30 import FaxOptions, TransmissionOutcome
from fax_runtime.blobs import BlobStore
from fax_runtime.metrics import default_metrics
from fax_runtime.numbers import NotE164, e164
from fax_runtime.outbox import enqueue
from fax_runtime.pdfcopy import PdfCopyError, tiff_to_pdf
from fax_runtime.sandbox import Sandbox
from fax_runtime.sql import load_queries
from fax_runtime.transient import UNBOUNDED, RetryPolicy, retry_transient
from fax_sip import AudioStream, IncomingCall, SessionDescription
from fax_transmitter.leases import keep_lease
from fax_transmitter.lines import AnsweredCall
from fax_transmitter.outcome import record_call
from fax_transmitter.sip_line import answered_call

log = logging.getLogger(__name__)
Q = load_queries("fax_transmitter")

# The job error of a call that broke in our hands: the exception is logged, never shown to the fax's owner.
RECEPTION_BROKE = "reception failed: the call could not be received"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rx_result(outcome: TransmissionOutcome) -> dict[str, Any]:
    """The reception's statistics in the shape of an outbound ``tx_result``."""
    return {
        "success": outcome.success,
        "error_message": "" if outcome.success else outcome.result_text,
        "pages_received": outcome.pages_sent,
        "fax_speed": outcome.bit_rate,
        "fax_error_correction": outcome.ecm_used,
        "fax_bad_rows": outcome.bad_rows,
        "remote_station_id": outcome.remote_ident,
        "result_code": outcome.result_code,
        "result_text": outcome.result_text,
        "fax_t38_used": outcome.t38_used,
        "fax_compression": outcome.compression,
        "fax_line_seconds": round(outcome.line_seconds, 1),
    }


@dataclass(frozen=True)
class Reception:
    """One call to one of our numbers, answered or about to be: whose fax it is and who sent it."""

    fax_id: uuid.UUID
    account_id: str
    faxbox_id: str | None
    call_id: str
    from_number: str
    from_name: str
    to_number: str


class InboundStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def number_owner(self, number: str) -> tuple[str, str | None] | None:
        row = await self._pool.fetchrow(Q["number_owner"], number)
        return (row["account_id"], row["faxbox_id"]) if row else None

    async def started(self, reception: Reception, *, lease_s: int) -> None:
        await self._pool.execute(
            Q["reception_started"],
            reception.fax_id,
            reception.account_id,
            reception.faxbox_id,
            reception.call_id,
            reception.from_number,
            reception.from_name,
            reception.to_number,
            lease_s,
        )

    async def renew_lease(self, fax_id: uuid.UUID, lease_s: int) -> None:
        await self._pool.execute(Q["renew_reception_lease"], fax_id, lease_s)

    async def page(self, fax_id: uuid.UUID, pages: int) -> None:
        await self._pool.execute(Q["reception_page"], fax_id, pages)

    async def answered(self, fax_id: uuid.UUID, call: AnsweredCall) -> None:
        await self._pool.execute(Q["reception_answered"], fax_id, call)

    async def reap_abandoned_receptions(
        self, *, predecessor: str | None = None, running: frozenset[uuid.UUID] = frozenset()
    ) -> list[AnsweredCall]:
        """Fail the receptions whose transmitter is gone (their lease ran out, or their call carries
        ``predecessor``'s SIP contact), except those in ``running``, each with its event; their answered calls."""
        calls: list[AnsweredCall] = []
        async with self._pool.acquire() as conn, conn.transaction():
            for row in await conn.fetch(Q["reap_abandoned_receptions"], predecessor, list(running)):
                log.warning("inbound fax %s: its transmitter stopped; failed as interrupted", row["id"])
                await enqueue(
                    conn,
                    InboundFailed(
                        event_id=uuid.uuid4(),
                        occurred_at=_now(),
                        fax_id=row["id"],
                        account_id=row["account_id"],
                        faxbox_id=row["faxbox_id"],
                        from_number=row["from_number"],
                        to_number=row["to_number"],
                        pages=row["pages"],
                        error=row["error_message"],
                    ),
                )
                if row["sip_call"] is not None:
                    calls.append(msgspec.convert(row["sip_call"], AnsweredCall))
        return calls

    async def received(
        self, reception: Reception, outcome: TransmissionOutcome, tiff_key: str, pdf_key: str | None
    ) -> bool:
        """Record the reception ``received``, with its event; False (and no event) if it was already finished."""
        async with self._pool.acquire() as conn, conn.transaction():
            filed = await conn.fetchval(
                Q["reception_received"],
                reception.fax_id,
                outcome.pages_sent,
                outcome.remote_ident,
                tiff_key,
                pdf_key,
                rx_result(outcome),
            )
            if filed is None:
                return False
            await enqueue(
                conn,
                InboundReceived(
                    event_id=uuid.uuid4(),
                    occurred_at=_now(),
                    fax_id=reception.fax_id,
                    account_id=reception.account_id,
                    faxbox_id=reception.faxbox_id,
                    from_number=reception.from_number,
                    to_number=reception.to_number,
                    pages=outcome.pages_sent,
                    tiff_key=tiff_key,
                ),
            )
        return True

    async def failed(self, reception: Reception, outcome: TransmissionOutcome | None, error: str) -> bool:
        """Record the reception ``failed``, with its event; False (and no event) if it was already finished."""
        pages = outcome.pages_sent if outcome else 0
        async with self._pool.acquire() as conn, conn.transaction():
            ended = await conn.fetchval(
                Q["reception_failed"],
                reception.fax_id,
                pages,
                outcome.remote_ident if outcome else "",
                rx_result(outcome) if outcome else {},
                error,
            )
            if ended is None:
                return False
            await enqueue(
                conn,
                InboundFailed(
                    event_id=uuid.uuid4(),
                    occurred_at=_now(),
                    fax_id=reception.fax_id,
                    account_id=reception.account_id,
                    faxbox_id=reception.faxbox_id,
                    from_number=reception.from_number,
                    to_number=reception.to_number,
                    pages=pages,
                    error=error,
                ),
            )
        return True


class HeldReceptions:
    """The receptions this process holds, from the answer until their outcome commits: each under a lease renewed
    every third of it, never taken by this process's own sweeper (a lease that ran out while Postgres was away is
    renewed by its holder), and waited for by a stopping transmitter's drain."""

    def __init__(self, store: InboundStore, lease_s: int) -> None:
        self.store = store
        self.lease_s = lease_s
        self._held: dict[uuid.UUID, asyncio.Task[Any]] = {}

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        """The tasks receiving or filing the receptions held now."""
        return frozenset(self._held.values())

    @contextlib.asynccontextmanager
    async def hold(self, fax_id: uuid.UUID) -> AsyncIterator[None]:
        """Hold a started reception (its lease taken by ``InboundStore.started``) for as long as the block runs."""
        task = asyncio.current_task()
        assert task is not None
        self._held[fax_id] = task
        keeper = asyncio.create_task(
            keep_lease(lambda: self.store.renew_lease(fax_id, self.lease_s), self.lease_s, f"inbound fax {fax_id}")
        )
        try:
            yield
        finally:
            keeper.cancel()
            del self._held[fax_id]

    async def reap_abandoned(self, *, predecessor: str | None = None) -> list[AnsweredCall]:
        """End the receptions a gone transmitter left (never ours); their calls, to hang up."""
        return await self.store.reap_abandoned_receptions(predecessor=predecessor, running=frozenset(self._held))


class FaxReceiver:
    """Answers inbound calls for the SIP line (its ``on_incoming``)."""

    def __init__(
        self,
        receptions: HeldReceptions,
        blobs: BlobStore,
        dsp: DspLoop,
        ports: PortRange,
        *,
        media_host: str,
        station_ident: str,
        sandbox: Sandbox,
        max_call_seconds: float = 1800.0,
        filing: RetryPolicy = UNBOUNDED,
    ) -> None:
        self._sandbox = sandbox
        self._store = receptions.store
        self._receptions = receptions
        self._blobs = blobs
        self._dsp = dsp
        self._ports = ports
        self._media_host = media_host
        self._station_ident = station_ident
        self._max_call_seconds = max_call_seconds
        self._filing = filing
        self._writes: set[asyncio.Task[None]] = set()

    async def on_incoming(self, incoming: IncomingCall) -> None:
        try:
            # Trunks deliver the called number as they please (12048134700); it is stored, matched and announced
            # as the number was provisioned: E.164.
            incoming.to_number = e164(incoming.to_number)
        except NotE164 as exc:
            log.info("inbound call %s: not our number: %s", incoming.call_id, exc)
            await incoming.reject(404, "Not Found")
            return
        try:
            owner = await self._store.number_owner(incoming.to_number)
        except Exception:
            log.exception("inbound call %s: could not look up %s", incoming.call_id, incoming.to_number)
            await incoming.reject(503, "Service Unavailable")
            return
        if owner is None:
            log.info("inbound call %s to %s: not our number", incoming.call_id, incoming.to_number)
            await incoming.reject(404, "Not Found")
            return
        audio = incoming.offer.audio
        payload_type = chosen_payload_type(audio.payload_types if audio else [])
        if audio is None or payload_type is None:
            await incoming.reject(488, "Not Acceptable Here")
            return
        account_id, faxbox_id = owner
        reception = Reception(
            fax_id=uuid.uuid4(),
            account_id=account_id,
            faxbox_id=faxbox_id,
            call_id=incoming.call_id,
            from_number=incoming.from_number,
            from_name=incoming.from_name,
            to_number=incoming.to_number,
        )
        await self._receive(incoming, reception, audio, payload_type)

    async def _receive(
        self, incoming: IncomingCall, reception: Reception, audio: AudioStream, payload_type: int
    ) -> None:
        """Answer the call, receive the fax and file it."""
        fax_id = reception.fax_id
        # The received TIFF stays here until the reception is filed, however long S3 or Postgres keeps that waiting.
        with tempfile.TemporaryDirectory(prefix="fax-rx-") as tmp:
            received = Path(tmp) / "fax.tif"
            media = await FaxCall.open(
                self._dsp,
                self._ports,
                calling=False,
                receive_file=received,
                options=FaxOptions(local_ident=self._station_ident),
                max_duration=self._max_call_seconds,
                on_page=lambda pages: self._write_aside(
                    self._store.page(fax_id, pages), f"inbound fax {fax_id}: recording page {pages}"
                ),
            )
            try:
                await self._store.started(reception, lease_s=self._receptions.lease_s)
            except Exception:
                # Not answered yet: the sending machine calls again later, as after a busy line.
                log.exception("inbound call %s: could not record the reception", incoming.call_id)
                await media.close()
                await incoming.reject(503, "Service Unavailable")
                return
            async with self._receptions.hold(fax_id):
                outcome: TransmissionOutcome | None = None
                broke = False
                saving: asyncio.Task[None] | None = None
                metrics = default_metrics()
                metrics.calls_active.labels("inbound").inc()
                began = time.monotonic()
                try:
                    call = await incoming.answer(
                        SessionDescription.audio_only(self._media_host, media.rtp_port, [payload_type])
                    )
                    call.on_reinvite = lambda offer: accept_t38_reinvite(offer, media, self._media_host, call)
                    media.start_audio(audio.host, audio.port, payload_type, signalling_host=signalling_host(call))
                    saving = self._save_answered_call(fax_id, answered_call(call, media, self._media_host))
                    outcome = await until_call_ends(call, media)
                    await call.hangup()
                except Exception:
                    log.exception("inbound call %s: reception broke", incoming.call_id)
                    broke = True
                finally:
                    await media.close()
                    metrics.calls_active.labels("inbound").dec()
                try:
                    if broke or outcome is None:
                        await self._end_failed(reception, outcome, RECEPTION_BROKE)
                        return
                    record_call(metrics, "inbound", outcome, retry=False, seconds=time.monotonic() - began)
                    await self._file(reception, outcome, received)
                finally:
                    if saving is not None:
                        saving.cancel()

    def _write_aside(self, write: Coroutine[Any, Any, object], what: str) -> asyncio.Task[None]:
        """Run a write off the call's path: the media never waits for Postgres, and a write that fails is logged,
        never the end of the call. Page progress is written so, once: the record that files the reception carries
        its pages."""

        async def run() -> None:
            try:
                await write
            except Exception as error:
                log.warning("%s failed: %s: %s", what, type(error).__name__, error)

        task = asyncio.create_task(run())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        task.add_done_callback(lambda _: write.close())  # cancelled before it began: not "never awaited"
        return task

    def _save_answered_call(self, fax_id: uuid.UUID, call: AnsweredCall) -> asyncio.Task[None]:
        # Until it commits (or the reception is filed): it is what lets our successor hang up a call we die with.
        what = f"inbound fax {fax_id}: saving the answered call"
        return self._write_aside(
            retry_transient(lambda: self._store.answered(fax_id, call), what=what, policy=self._filing), what
        )

    async def _file(self, reception: Reception, outcome: TransmissionOutcome, received: Path) -> None:
        """File a finished call: its pages (TIFF, PDF copy) in S3, then ``received`` with its event. Each step is
        retried through S3 or Postgres being away until it commits; any other error fails the reception."""
        fax_id = reception.fax_id
        if outcome.pages_sent == 0 or not await asyncio.to_thread(received.exists):
            await self._end_failed(reception, outcome, outcome.result_text)
            return
        # A call cut after some pages still delivered those pages: keep them, as a fax machine would print them.
        tiff_key = f"inbound/{fax_id}/fax.tif"
        try:
            await self._until_stored(fax_id, tiff_key, received, "image/tiff")
            pdf_key = await self._pdf_copy(fax_id, received)
            filed = await retry_transient(
                lambda: self._store.received(reception, outcome, tiff_key, pdf_key),
                what=f"inbound fax {fax_id}: recording it received",
                policy=self._filing,
            )
        except Exception:
            log.exception("inbound fax %s: could not be filed", fax_id)
            await self._end_failed(reception, outcome, "reception failed: the received fax could not be stored")
            return
        if not filed:
            log.warning("inbound fax %s: already finished; not filed again", fax_id)
            return
        log.info(
            "inbound fax %s: %d page(s) from %s to %s",
            fax_id,
            outcome.pages_sent,
            reception.from_number,
            reception.to_number,
        )

    async def _end_failed(self, reception: Reception, outcome: TransmissionOutcome | None, error: str) -> None:
        await retry_transient(
            lambda: self._store.failed(reception, outcome, error),
            what=f"inbound fax {reception.fax_id}: recording it failed",
            policy=self._filing,
        )

    async def _until_stored(self, fax_id: uuid.UUID, key: str, path: Path, content_type: str) -> None:
        await retry_transient(
            lambda: self._blobs.put_file(key, path, content_type=content_type),
            what=f"inbound fax {fax_id}: storing {key}",
            policy=self._filing,
        )

    async def _pdf_copy(self, fax_id: uuid.UUID, tiff: Path) -> str | None:
        # The pages come from whoever called: tiff2pdf reads them in the converter sandbox.
        pdf = tiff.with_suffix(".pdf")
        try:
            await tiff_to_pdf(self._sandbox, tiff, pdf)
        except PdfCopyError as error:
            log.warning("inbound fax %s: no PDF copy: %s", fax_id, error)
            return None
        key = f"inbound/{fax_id}/fax.pdf"
        await self._until_stored(fax_id, key, pdf, "application/pdf")
        return key
