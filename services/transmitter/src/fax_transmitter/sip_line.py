"""The ``sip`` line: outbound fax calls over a SIP trunk (or faxsim), G.711 first and T.38 when the far end agrees.

One user agent and one DSP loop serve every call of the process. A call is placed with an audio offer (PCMU and
PCMA); once answered, we ask to move to T.38 with a re-INVITE (when enabled) and stay on G.711 if the far end
refuses with 488. A far end that asks for T.38 itself is accepted the same way. The call ends when T.30 finishes
(we hang up) or the far end hangs up (T.30 is terminated and reports what it got).

Each answered call's dialog is handed to the caller (``CallRequest.on_answered``) to be saved: a process killed
with calls up sends no BYE, so its successor (or the sweeper) ends them with ``hang_up_abandoned``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from fax_media.call import FaxCall, PortRange
from fax_media.dsp_loop import DspLoop
from fax_media.sip_call import (
    G711_PAYLOAD_TYPES,
    accept_t38_reinvite,
    ask_for_t38,
    chosen_payload_type,
    signalling_host,
    until_call_ends,
)
from fax_media.t30 import TransmissionOutcome
from fax_sip import Call, CallFailed, IncomingCall, SessionDescription, SipSettings, SipUserAgent
from fax_transmitter.lines import AnsweredCall, CallRequest
from fax_transmitter.outcome import call_not_answered

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SipLineSettings:
    sip: SipSettings
    trunk: str  # host:port the calls go to (a trunk, a PBX or faxsim)
    media_ports: tuple[int, int]
    media_host: str = "127.0.0.1"
    t38: bool = True
    ring_timeout: float = 60.0
    max_call_seconds: float = 1800.0
    dsp_workers: int | None = None  # media worker processes (fax_media.dsp_loop); None = one per core
    dsp_realtime: bool = True


class SipLine:
    """Implements ``fax_transmitter.lines.Line``. Inbound calls go to ``answer_with``'s handler (else: 404)."""

    def __init__(self, settings: SipLineSettings) -> None:
        self.settings = settings
        self.dsp = DspLoop(name="transmitter-dsp", workers=settings.dsp_workers, realtime=settings.dsp_realtime)
        self.ports = PortRange(settings.media_host, *settings.media_ports)
        self.user_agent = SipUserAgent(settings.sip, on_incoming=self._refuse)
        self._media_host = settings.media_host
        self._hangups: set[asyncio.Task[None]] = set()

    def answer_with(self, handler: Callable[[IncomingCall], Awaitable[None]]) -> None:
        self.user_agent.on_incoming = handler

    async def start(self) -> None:
        self.dsp.start()
        await self.user_agent.start()

    async def close(self) -> None:
        for task in list(self._hangups):
            task.cancel()
        await asyncio.gather(*self._hangups, return_exceptions=True)
        await self.user_agent.close()
        self.dsp.stop()

    @property
    def owner(self) -> str | None:
        # An unspecified address names no one process: calls marked with it are nobody's to end at start.
        if self.user_agent.contact_host in ("0.0.0.0", "::"):
            return None
        return self.user_agent.contact()

    def hang_up_abandoned(self, calls: Iterable[AnsweredCall]) -> None:
        for call in calls:
            if call.media_host == self._media_host:
                # Until the BYE lands, the far end streams into these ports: new calls take others meanwhile.
                self.ports.rest(call.media_ports)
            task = asyncio.create_task(self._hang_up(call), name=f"bye-{call.dialog.call_id}")
            self._hangups.add(task)
            task.add_done_callback(self._hangups.discard)

    async def _hang_up(self, call: AnsweredCall) -> None:
        try:
            status = await self.user_agent.end_dialog(call.dialog)
        except Exception:
            log.exception("could not end call %s left up by a stopped transmitter", call.dialog.call_id)
            return
        log.info("call %s left up by a stopped transmitter: BYE answered %d", call.dialog.call_id, status)

    @staticmethod
    async def _refuse(incoming: IncomingCall) -> None:
        await incoming.reject(404, "Not Found")

    async def place_call(self, request: CallRequest) -> TransmissionOutcome:
        media = await FaxCall.open(
            self.dsp,
            self.ports,
            calling=True,
            send_file=request.tiff,
            options=request.options,
            max_duration=self.settings.max_call_seconds,
            on_page=request.on_page,
        )
        try:
            offer = SessionDescription.audio_only(self._media_host, media.rtp_port, list(G711_PAYLOAD_TYPES))
            try:
                call = await self.user_agent.invite(
                    f"sip:{request.to_number}@{self.settings.trunk}",
                    from_number=request.from_number,
                    from_name=request.from_name,
                    offer=offer,
                    ring_timeout=self.settings.ring_timeout,
                )
            except CallFailed as failure:
                return call_not_answered(failure.status, failure.reason)
            if request.on_answered is not None:
                request.on_answered(answered_call(call, media, self._media_host))
            try:
                return await self._run_answered_call(call, media)
            finally:
                with contextlib.suppress(Exception):
                    await call.hangup()
        finally:
            await media.close()

    async def _run_answered_call(self, call: Call, media: FaxCall) -> TransmissionOutcome:
        audio = call.remote_sdp.audio
        payload_type = chosen_payload_type(audio.payload_types if audio else [])
        if audio is None or payload_type is None:
            raise CallFailed(488, "the far end answered without G.711 audio")
        call.on_reinvite = lambda offer: accept_t38_reinvite(offer, media, self._media_host, call)
        media.start_audio(audio.host, audio.port, payload_type, signalling_host=signalling_host(call))
        if self.settings.t38:
            await ask_for_t38(call, media, self._media_host)
        return await until_call_ends(call, media)


def answered_call(call: Call, media: FaxCall, media_host: str) -> AnsweredCall:
    """``call`` as data, to be saved while it is up."""
    return AnsweredCall(dialog=call.identity(), media_host=media_host, media_ports=(media.rtp_port, media.udptl_port))
