"""Composition root of the transmitter: the line (``sip`` or ``loopback``), the job handler and the sweepers."""

from __future__ import annotations

import asyncio
import contextlib

from faststream import AckPolicy

from fax_contracts import DocumentReady
from fax_jobs import AttemptJobStore
from fax_runtime.broker import event_queue, events_exchange
from fax_runtime.sandbox import Sandbox
from fax_runtime.worker import WorkerContext, WorkerSpec
from fax_sip import SipSettings, TlsSettings
from fax_transmitter.config import TransmitterSettings
from fax_transmitter.handlers import Transmitter
from fax_transmitter.inbound import FaxReceiver, HeldReceptions, InboundStore
from fax_transmitter.lines import AnsweredCall, Line, LoopbackLine
from fax_transmitter.sip_line import SipLine, SipLineSettings

SERVICE = "transmitter"


def build_line(
    settings: TransmitterSettings, context: WorkerContext, sandbox: Sandbox, receptions: HeldReceptions
) -> Line:
    if settings.line == "loopback":
        return LoopbackLine(settings.loopback_received_dir)
    sip = settings.sip
    tls = TlsSettings(cert_file=sip.tls_cert, key_file=sip.tls_key, ca_file=sip.tls_ca, verify=sip.tls_verify)
    line = SipLine(
        SipLineSettings(
            sip=SipSettings(
                bind_host=sip.bind[0],
                bind_port=sip.bind[1],
                tls_port=sip.tls_port,
                tls=tls,
                contact_host=sip.contact_host,
                user="fax",
            ),
            trunks=sip.trunks,
            inbound_allow=sip.inbound_allow,
            media_host=sip.media_host,
            media_ports=sip.media_ports,
            ring_timeout=float(sip.ring_timeout_s),
            dsp_workers=sip.dsp_workers or None,
            dsp_realtime=sip.dsp_realtime,
        )
    )
    receiver = FaxReceiver(
        receptions,
        context.blobs,
        line.dsp,
        line.ports,
        media_host=sip.media_host,
        station_ident=settings.station_ident,
        sandbox=sandbox,
    )
    line.answer_with(receiver.on_incoming)
    return line


def create_worker(settings: TransmitterSettings) -> WorkerSpec:
    async def wire(context: WorkerContext) -> None:
        # Probing bubblewrap starts a process: off the event loop. FAX_SANDBOX=bwrap without it stops the start here.
        sandbox = await asyncio.to_thread(Sandbox.from_setting, settings.runtime.sandbox)
        # Any transmitter, whatever its line, ends the receptions a gone one left; a SIP line also holds its own.
        receptions = HeldReceptions(InboundStore(context.pool), settings.call_lease_s)
        line = build_line(settings, context, sandbox, receptions)
        await line.start()
        transmitter = Transmitter(
            AttemptJobStore(context.pool, AnsweredCall), context.blobs, settings, line, receptions=receptions
        )
        await transmitter.end_predecessors_calls()
        context.broker.subscriber(
            event_queue(SERVICE, DocumentReady), events_exchange, ack_policy=AckPolicy.NACK_ON_ERROR
        )(transmitter.on_document_ready)
        sweeper = asyncio.create_task(transmitter.sweep(), name="sweeper")

        async def stop() -> None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await transmitter.drain(settings.drain_s)
            await line.close()

        context.on_close.append(stop)

    return WorkerSpec(name=SERVICE, consumes=[DocumentReady], wire=wire)
