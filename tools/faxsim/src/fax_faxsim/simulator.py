"""The simulated telephone network: answers SIP calls by the dial plan and receives faxes with spandsp.

Every call gets its own media (``FaxCall``) on the shared DSP loop, exactly as the transmitter's calls do, so what
faxsim measures is what a real fax machine behind a T.38 gateway would see. The caller decides whether to move the
call to T.38 (it sends the re-INVITE); faxsim accepts unless the dialled number is a G.711-only machine or it was
started with ``force="g711"``, and with ``force="t38"`` it asks for T.38 itself when the caller did not.

It listens on UDP and TCP at its SIP port, and on TLS at ``tls_port`` when given a certificate. With
``trunk_failure`` it plays a trunk in trouble instead: ``"503"`` refuses every call with 503 Service Unavailable
(and still answers OPTIONS, as an overloaded carrier does), ``"timeout"`` answers nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from fax_faxsim.dialplan import Behaviour, behaviour_for
from fax_faxsim.records import ReceivedFax, tiff_path, write_sidecar
from fax_media.call import FaxCall, PortRange
from fax_media.dsp_loop import DspLoop
from fax_media.sip_call import accept_t38_reinvite, ask_for_t38, chosen_payload_type, signalling_host, until_call_ends
from fax_media.t30 import FaxOptions, TransmissionOutcome
from fax_sip import Call, IncomingCall, SessionDescription, SipSettings, SipUserAgent, TlsSettings

log = logging.getLogger(__name__)

STATION_IDENT = "FAXSIM"


@dataclass(frozen=True)
class SimulatorSettings:
    sip_host: str = "127.0.0.1"
    sip_port: int = 5070
    media_ports: tuple[int, int] = (46000, 46999)
    received_dir: Path = Path(".devstack/faxsim/received")
    # Share of received media packets dropped on purpose (0..1): a lossy network for T.38 and G.711 tests.
    loss: float = 0.0
    force: str | None = None  # "g711": refuse T.38; "t38": ask for T.38 when the caller does not
    ring_seconds: float = 3600.0  # how long 0408 rings before giving up itself
    voice_seconds: float = 60.0  # how long 0404 stays on the line saying nothing
    t38_break_seconds: float = 2.0  # how long 0380 stays up once the call moved to T.38
    max_call_seconds: float = 900.0
    tls_port: int | None = None  # a TLS listener on sip_host (0: a free port); needs tls_cert
    tls_cert: str | None = None  # PEM certificate chain, with its key unless tls_key is given
    tls_key: str | None = None
    tls_ca: str | None = None  # the authorities trusted when faxsim calls a TLS target
    trunk_failure: str | None = None  # "503" or "timeout": a trunk in trouble (TRUNK_FAILURES)


TRUNK_FAILURES = ("503", "timeout")


class FaxSimulator:
    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self._dsp = DspLoop(name="faxsim-dsp")
        self._ports = PortRange(settings.sip_host, *settings.media_ports)
        if settings.trunk_failure not in (None, *TRUNK_FAILURES):
            raise ValueError(f"trunk_failure must be one of {TRUNK_FAILURES}: {settings.trunk_failure!r}")
        self._ua = SipUserAgent(
            SipSettings(
                bind_host=settings.sip_host,
                bind_port=settings.sip_port,
                tls_port=settings.tls_port,
                tls=TlsSettings(cert_file=settings.tls_cert, key_file=settings.tls_key, ca_file=settings.tls_ca),
                user="faxsim",
            ),
            on_incoming=self._on_incoming,
        )
        self._calls: set[asyncio.Task[None]] = set()
        self._silence: list[asyncio.BaseTransport | asyncio.Server] = []
        self._silent_port = settings.sip_port
        self.calls_up = 0  # answered and not ended yet

    async def start(self) -> None:
        self.settings.received_dir.mkdir(parents=True, exist_ok=True)
        self._dsp.start()
        if self.settings.trunk_failure == "timeout":
            await self._listen_in_silence()
            log.info("faxsim: a silent trunk on %s:%d", self.settings.sip_host, self._silent_port)
            return
        await self._ua.start()
        tls = f", TLS on port {self._ua.tls_port}" if self._ua.tls_port else ""
        log.info("faxsim listening for SIP on %s:%d (UDP, TCP%s)", self.settings.sip_host, self._ua.port, tls)

    async def _listen_in_silence(self) -> None:
        """Take every datagram and connection on the SIP port, and answer none of them."""
        loop = asyncio.get_running_loop()

        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(65536):
                pass
            writer.close()

        server = await asyncio.start_server(swallow, self.settings.sip_host, self.settings.sip_port)
        self._silent_port = server.sockets[0].getsockname()[1]
        udp, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(self.settings.sip_host, self._silent_port)
        )
        self._silence += [server, udp]

    async def close(self) -> None:
        for task in list(self._calls):
            task.cancel()
        await asyncio.gather(*self._calls, return_exceptions=True)
        for listener in self._silence:
            listener.close()
        await self._ua.close()
        self._dsp.stop()

    @property
    def user_agent(self) -> SipUserAgent:
        return self._ua

    @property
    def sip_port(self) -> int:
        """The UDP and TCP port it listens on (``settings.sip_port``, or the free one it took for 0)."""
        return self._silent_port if self.settings.trunk_failure == "timeout" else self._ua.port

    @property
    def dsp(self) -> DspLoop:
        return self._dsp

    @property
    def media_ports(self) -> PortRange:
        return self._ports

    async def _on_incoming(self, incoming: IncomingCall) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._calls.add(task)
        try:
            await self._answer_by_dial_plan(incoming)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("faxsim: call %s to %s failed", incoming.call_id, incoming.to_number)
        finally:
            if task is not None:
                self._calls.discard(task)

    async def _answer_by_dial_plan(self, incoming: IncomingCall) -> None:
        behaviour = behaviour_for(incoming.to_number)
        log.info(
            "faxsim: call %s from %s to %s: %s",
            incoming.call_id,
            incoming.from_number,
            incoming.to_number,
            behaviour.value,
        )
        if self.settings.trunk_failure == "503":
            await incoming.reject(503, "Service Unavailable")
            return
        if behaviour is Behaviour.BUSY:
            await incoming.reject(486, "Busy Here")
            return
        if behaviour is Behaviour.NETWORK_FAILURE:
            await incoming.reject(503, "Service Unavailable")
            return
        await incoming.ringing()
        if behaviour is Behaviour.NO_ANSWER:
            # The phone rings until the caller gives up (CANCEL) or, much later, the network does.
            try:
                await asyncio.wait_for(incoming.cancelled.wait(), self.settings.ring_seconds)
            except TimeoutError:
                await incoming.reject(480, "Temporarily Unavailable")
            return
        audio_offer = incoming.offer.audio
        if audio_offer is None:
            await incoming.reject(488, "Not Acceptable Here")
            return
        payload_type = chosen_payload_type(audio_offer.payload_types)
        if payload_type is None:
            await incoming.reject(488, "Not Acceptable Here")
            return
        receive_file = tiff_path(self.settings.received_dir, incoming.call_id)
        answered: list[Call] = []
        caller_media = [f"{audio_offer.host}:{audio_offer.port}"]

        def on_page(pages: int) -> None:
            if behaviour is Behaviour.HANG_UP_AFTER_FIRST_PAGE and pages >= 1 and answered:
                # Like a machine that jams after a page: it confirms the page (MCF), then the line drops.
                asyncio.get_running_loop().call_later(3.0, lambda: asyncio.ensure_future(answered[0].hangup()))

        media = await FaxCall.open(
            self._dsp,
            self._ports,
            calling=False,
            receive_file=receive_file,
            options=FaxOptions(local_ident=STATION_IDENT),
            max_duration=self.settings.max_call_seconds,
            on_page=on_page,
            receive_loss=self.settings.loss,
        )
        try:
            call = await incoming.answer(
                SessionDescription.audio_only(self.settings.sip_host, media.rtp_port, [payload_type])
            )
            answered.append(call)
            answered_at = time.time()
            media.start_audio(audio_offer.host, audio_offer.port, payload_type, signalling_host=signalling_host(call))
            if behaviour is Behaviour.VOICE:
                # A person (or a modem that never trains) answered: there is nothing to talk T.30 to.
                media.remote_hangup()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call.wait_terminated(), self.settings.voice_seconds)
                await call.hangup()
                return
            t38_allowed = behaviour is not Behaviour.AUDIO_ONLY_FAX and self.settings.force != "g711"
            switched: list[bool] = []

            async def on_reinvite(offer: SessionDescription) -> SessionDescription | None:
                if offer.t38 is not None and not t38_allowed:
                    return None
                answer = await accept_t38_reinvite(offer, media, self.settings.sip_host, call)
                if answer is not None and answer.t38 is not None and offer.t38 is not None:
                    switched.append(True)
                    caller_media.append(f"{offer.t38.host}:{offer.t38.port}")
                    if behaviour is Behaviour.T38_BREAKS:
                        # A gateway that takes T.38 and then loses the call: T.30 fails there, G.711 would work.
                        loop = asyncio.get_running_loop()
                        loop.call_later(self.settings.t38_break_seconds, lambda: asyncio.ensure_future(call.hangup()))
                return answer

            call.on_reinvite = on_reinvite
            if self.settings.force == "t38" and t38_allowed:
                asyncio.get_running_loop().call_later(
                    1.0,
                    lambda: None if switched else asyncio.ensure_future(self._ask_for_t38(call, media, caller_media)),
                )
            self.calls_up += 1
            try:
                outcome = await until_call_ends(call, media)
            finally:
                self.calls_up -= 1
            ended_at = time.time()
            ended_by = "caller" if call.termination_reason == "remote-bye" else "faxsim"
            await call.hangup()
            self._record(
                incoming,
                behaviour,
                receive_file,
                outcome,
                ended_by=ended_by,
                answered_at=answered_at,
                ended_at=ended_at,
                caller_media=caller_media,
            )
        finally:
            await media.close()

    async def _ask_for_t38(self, call: Call, media: FaxCall, caller_media: list[str]) -> None:
        stream = await ask_for_t38(call, media, self.settings.sip_host)
        if stream is not None:
            caller_media.append(f"{stream.host}:{stream.port}")

    def _record(
        self,
        incoming: IncomingCall,
        behaviour: Behaviour,
        tiff: Path,
        outcome: TransmissionOutcome,
        *,
        ended_by: str,
        answered_at: float,
        ended_at: float,
        caller_media: list[str],
    ) -> None:
        record = ReceivedFax(
            call_id=incoming.call_id,
            from_number=incoming.from_number,
            to_number=incoming.to_number,
            pages=outcome.pages_sent,
            remote_station_id=outcome.remote_ident,
            bit_rate=outcome.bit_rate,
            ecm=outcome.ecm_used,
            t38_used=outcome.t38_used,
            completion_code=outcome.result_code,
            completion_text=outcome.result_text,
            behaviour=behaviour.value,
            ended_by=ended_by,
            answered_at=answered_at,
            ended_at=ended_at,
            caller_media=caller_media,
        )
        write_sidecar(tiff, record)
        log.info("faxsim: received %d page(s) from %s (%s)", record.pages, record.from_number, record.completion_text)
