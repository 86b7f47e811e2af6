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

from fax_sip import Call, CallFailed, IncomingCall, SessionDescription, SipSettings, SipUserAgent
from fax_transmitter.lines import AnsweredCall, CallRequest
from fax_transmitter.loopback import TransmissionOutcome
from fax_transmitter.media import DspLoop, FaxCall, PortRange
from fax_transmitter.outcome import call_not_answered

log = logging.getLogger(__name__)

G711_PAYLOAD_TYPES = (0, 8)  # PCMU, PCMA: what we offer, in our order of preference


@dataclass(frozen=True)
class SipLineSettings:
    sip: SipSettings
    trunk: str  # host:port the calls go to (a trunk, a PBX or faxsim)
    media_ports: tuple[int, int]
    media_host: str = "127.0.0.1"
    t38: bool = True
    register: bool = False
    ring_timeout: float = 60.0
    max_call_seconds: float = 1800.0


class SipLine:
    """Implements ``fax_transmitter.lines.Line``. Inbound calls go to ``answer_with``'s handler (else: 404)."""

    def __init__(self, settings: SipLineSettings) -> None:
        self.settings = settings
        self.dsp = DspLoop(name="transmitter-dsp")
        self.ports = PortRange(settings.media_host, *settings.media_ports)
        self.user_agent = SipUserAgent(settings.sip, on_incoming=self._refuse)
        self._media_host = settings.media_host
        self._hangups: set[asyncio.Task[None]] = set()

    def answer_with(self, handler: Callable[[IncomingCall], Awaitable[None]]) -> None:
        self.user_agent.on_incoming = handler

    async def start(self) -> None:
        self.dsp.start()
        await self.user_agent.start()
        if self.settings.register:
            self.user_agent.register(f"sip:{self.settings.trunk}")

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
        payload_type = _chosen_payload_type(audio.payload_types if audio else [])
        if audio is None or payload_type is None:
            raise CallFailed(488, "the far end answered without G.711 audio")
        call.on_reinvite = lambda offer: accept_t38_reinvite(offer, media, self._media_host, call)
        media.start_audio(audio.host, audio.port, payload_type, signalling_host=signalling_host(call))
        if self.settings.t38:
            await self._ask_for_t38(call, media)
        return await until_call_ends(call, media)

    async def _ask_for_t38(self, call: Call, media: FaxCall) -> None:
        try:
            answer = await call.reinvite(SessionDescription.t38_only(self._media_host, media.udptl_port))
        except CallFailed as refused:
            log.info("T.38 refused by the far end (%d %s): staying on G.711", refused.status, refused.reason)
            return
        if answer.t38 is None:
            log.info("the far end answered our T.38 re-INVITE without T.38: staying on G.711")
            return
        media.start_t38(
            answer.t38.host,
            answer.t38.port,
            far_max_datagram=answer.t38.max_datagram,
            signalling_host=signalling_host(call),
        )


def answered_call(call: Call, media: FaxCall, media_host: str) -> AnsweredCall:
    """``call`` as data, to be saved while it is up."""
    return AnsweredCall(dialog=call.identity(), media_host=media_host, media_ports=(media.rtp_port, media.udptl_port))


def signalling_host(call: Call) -> str | None:
    """The host the far end's SIP comes from: where its media comes from too when it is behind NAT."""
    address = call.signalling_address
    return address[0] if address else None


def _chosen_payload_type(offered: list[int]) -> int | None:
    return next((pt for pt in offered if pt in G711_PAYLOAD_TYPES), None)


async def accept_t38_reinvite(
    offer: SessionDescription, media: FaxCall, media_host: str, call: Call
) -> SessionDescription | None:
    """A network-sent re-INVITE in ``call``: switch to T.38 when offered; keep audio for a plain refresh (following
    the far end if it moved); refuse the rest."""
    far_host = signalling_host(call)
    if offer.t38 is not None:
        try:
            media.start_t38(
                offer.t38.host, offer.t38.port, far_max_datagram=offer.t38.max_datagram, signalling_host=far_host
            )
        except RuntimeError:
            return None  # the fax already ended: a late re-INVITE has nothing left to move
        return SessionDescription.t38_only(media_host, media.udptl_port)
    if offer.audio is not None:
        payload_type = _chosen_payload_type(offer.audio.payload_types)
        if payload_type is not None:
            with contextlib.suppress(RuntimeError):  # the fax already ended: nothing to follow
                media.redirect_audio(offer.audio.host, offer.audio.port, signalling_host=far_host)
            return SessionDescription.audio_only(media_host, media.rtp_port, [payload_type])
    return None


async def until_call_ends(call: Call, media: FaxCall) -> TransmissionOutcome:
    """T.30's outcome, whether it finished by itself or the far end hung up first."""
    bye = asyncio.ensure_future(call.wait_terminated())
    try:
        done, _ = await asyncio.wait({bye, media.finished}, return_when=asyncio.FIRST_COMPLETED)
        if media.finished not in done:
            media.remote_hangup()
        return await media.finished
    finally:
        bye.cancel()
