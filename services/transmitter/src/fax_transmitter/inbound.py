"""Receiving faxes: a call to one of our numbers is answered, received with spandsp and filed in the inbox.

The reception is visible under Kazoo's ``faxes/incoming`` from the moment we answer (status ``receiving``); when
the call ends its TIFF and a PDF copy go to S3 and the row becomes ``received`` (or ``failed``), with its event
committed in the same transaction. A call to a number nobody owns is refused before anything is stored. The
answered call is saved with the reception, so that a successor can hang up a call this process dies with.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import tempfile
import time
import uuid
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
from fax_sip import IncomingCall, SessionDescription
from fax_transmitter.lines import AnsweredCall
from fax_transmitter.outcome import record_call
from fax_transmitter.sip_line import answered_call

log = logging.getLogger(__name__)
Q = load_queries("fax_transmitter")


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


class InboundStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def number_owner(self, number: str) -> tuple[str, str | None] | None:
        row = await self._pool.fetchrow(Q["number_owner"], number)
        return (row["account_id"], row["faxbox_id"]) if row else None

    async def started(self, fax_id: uuid.UUID, account_id: str, faxbox_id: str | None, incoming: IncomingCall) -> None:
        await self._pool.execute(
            Q["reception_started"],
            fax_id,
            account_id,
            faxbox_id,
            incoming.call_id,
            incoming.from_number,
            incoming.from_name,
            incoming.to_number,
        )

    async def page(self, fax_id: uuid.UUID, pages: int) -> None:
        await self._pool.execute(Q["reception_page"], fax_id, pages)

    async def answered(self, fax_id: uuid.UUID, call: AnsweredCall) -> None:
        await self._pool.execute(Q["reception_answered"], fax_id, call)

    async def end_orphaned_receptions(self, owner: str) -> list[AnsweredCall]:
        """At start: fail the receptions whose call belongs to our SIP contact (a dead predecessor); their calls."""
        calls: list[AnsweredCall] = []
        async with self._pool.acquire() as conn, conn.transaction():
            for row in await conn.fetch(Q["orphaned_receptions"], owner):
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
                calls.append(msgspec.convert(row["sip_call"], AnsweredCall))
        return calls

    async def received(
        self,
        fax_id: uuid.UUID,
        account_id: str,
        faxbox_id: str | None,
        incoming: IncomingCall,
        outcome: TransmissionOutcome,
        tiff_key: str,
        pdf_key: str | None,
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                Q["reception_received"],
                fax_id,
                outcome.pages_sent,
                outcome.remote_ident,
                tiff_key,
                pdf_key,
                rx_result(outcome),
            )
            await enqueue(
                conn,
                InboundReceived(
                    event_id=uuid.uuid4(),
                    occurred_at=_now(),
                    fax_id=fax_id,
                    account_id=account_id,
                    faxbox_id=faxbox_id,
                    from_number=incoming.from_number,
                    to_number=incoming.to_number,
                    pages=outcome.pages_sent,
                    tiff_key=tiff_key,
                ),
            )

    async def failed(
        self,
        fax_id: uuid.UUID,
        account_id: str,
        faxbox_id: str | None,
        incoming: IncomingCall,
        outcome: TransmissionOutcome | None,
        error: str,
    ) -> None:
        pages = outcome.pages_sent if outcome else 0
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                Q["reception_failed"],
                fax_id,
                pages,
                outcome.remote_ident if outcome else "",
                rx_result(outcome) if outcome else {},
                error,
            )
            await enqueue(
                conn,
                InboundFailed(
                    event_id=uuid.uuid4(),
                    occurred_at=_now(),
                    fax_id=fax_id,
                    account_id=account_id,
                    faxbox_id=faxbox_id,
                    from_number=incoming.from_number,
                    to_number=incoming.to_number,
                    pages=pages,
                    error=error,
                ),
            )


class FaxReceiver:
    """Answers inbound calls for the SIP line (its ``on_incoming``)."""

    def __init__(
        self,
        store: InboundStore,
        blobs: BlobStore,
        dsp: DspLoop,
        ports: PortRange,
        *,
        media_host: str,
        station_ident: str,
        sandbox: Sandbox,
        max_call_seconds: float = 1800.0,
    ) -> None:
        self._sandbox = sandbox
        self._store = store
        self._blobs = blobs
        self._dsp = dsp
        self._ports = ports
        self._media_host = media_host
        self._station_ident = station_ident
        self._max_call_seconds = max_call_seconds

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
        fax_id = uuid.uuid4()
        with tempfile.TemporaryDirectory(prefix="fax-rx-") as tmp:
            received = Path(tmp) / "fax.tif"
            loop = asyncio.get_running_loop()
            media = await FaxCall.open(
                self._dsp,
                self._ports,
                calling=False,
                receive_file=received,
                options=FaxOptions(local_ident=self._station_ident),
                max_duration=self._max_call_seconds,
                on_page=lambda pages: loop.create_task(self._store.page(fax_id, pages)),
            )
            outcome: TransmissionOutcome | None = None
            metrics = default_metrics()
            metrics.calls_active.labels("inbound").inc()
            began = time.monotonic()
            try:
                await self._store.started(fax_id, account_id, faxbox_id, incoming)
                call = await incoming.answer(
                    SessionDescription.audio_only(self._media_host, media.rtp_port, [payload_type])
                )
                call.on_reinvite = lambda offer: accept_t38_reinvite(offer, media, self._media_host, call)
                media.start_audio(audio.host, audio.port, payload_type, signalling_host=signalling_host(call))
                await self._store.answered(fax_id, answered_call(call, media, self._media_host))
                outcome = await until_call_ends(call, media)
                await call.hangup()
            except Exception as exc:
                log.exception("inbound call %s: reception broke", incoming.call_id)
                await self._store.failed(fax_id, account_id, faxbox_id, incoming, outcome, f"reception failed: {exc}")
                return
            finally:
                await media.close()
                metrics.calls_active.labels("inbound").dec()
            record_call(metrics, "inbound", outcome, retry=False, seconds=time.monotonic() - began)
            await self._file(fax_id, account_id, faxbox_id, incoming, outcome, received)

    async def _file(
        self,
        fax_id: uuid.UUID,
        account_id: str,
        faxbox_id: str | None,
        incoming: IncomingCall,
        outcome: TransmissionOutcome,
        received: Path,
    ) -> None:
        if outcome.pages_sent == 0 or not await asyncio.to_thread(received.exists):
            await self._store.failed(fax_id, account_id, faxbox_id, incoming, outcome, outcome.result_text)
            return
        # A call cut after some pages still delivered those pages: keep them, as a fax machine would print them.
        tiff_key = f"inbound/{fax_id}/fax.tif"
        await self._blobs.put_file(tiff_key, received, content_type="image/tiff")
        pdf_key = await self._pdf_copy(fax_id, received)
        await self._store.received(fax_id, account_id, faxbox_id, incoming, outcome, tiff_key, pdf_key)
        log.info(
            "inbound fax %s: %d page(s) from %s to %s",
            fax_id,
            outcome.pages_sent,
            incoming.from_number,
            incoming.to_number,
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
        await self._blobs.put_file(key, pdf, content_type="application/pdf")
        return key
