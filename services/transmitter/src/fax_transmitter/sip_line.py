"""The ``sip`` line: outbound fax calls over SIP trunks (or faxsim), G.711 first and T.38 when the far end agrees.

One user agent and one DSP loop serve every call of the process. A call tries the trunks in priority order
(``fax_transmitter.trunks``): one that times out, answers 408 or 5xx, or cannot be reached hands the call to the
next; an answer about the callee or an answered call stays with it. A call is placed with an audio offer (PCMU and
PCMA); once answered, we ask to move to T.38 with a re-INVITE when the attempt's media plan says so
(``fax_transmitter.media_policy``: the trunk's and the faxbox's T.38 policy, and what earlier attempts of the job
taught) and stay on G.711 if the far end refuses with 488, unless the trunk takes T.38 only. A far end that asks for
T.38 itself is accepted the same way. The call ends when T.30 finishes (we hang up) or the far end hangs up (T.30 is
terminated and reports what it got).

Each answered call's dialog is handed to the caller (``CallRequest.on_answered``) to be saved: a process killed
with calls up sends no BYE, so its successor (or the sweeper) ends them with ``hang_up_abandoned``. Which trunk and
media an attempt used goes to ``CallRequest.on_route``.
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
from fax_runtime.metrics import default_metrics
from fax_sip import Call, CallFailed, Flow, IncomingCall, SessionDescription, SipMessage, SipSettings, SipUserAgent
from fax_transmitter.config import TrunkConfig
from fax_transmitter.lines import AnsweredCall, CallRequest, CallRoute, TrunkTry
from fax_transmitter.media_policy import ONLY, PREFER, MediaPlan, effective_policy, faxbox_policy, plan_media
from fax_transmitter.outcome import call_not_answered, call_not_made
from fax_transmitter.trunks import InboundAllowList, Trunk, TrunkSet, fails_over, method_label

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SipLineSettings:
    sip: SipSettings
    trunks: tuple[TrunkConfig, ...]  # in priority order: carriers, PBXes, or faxsim
    media_ports: tuple[int, int]
    media_host: str = "127.0.0.1"
    inbound_allow: tuple[str, ...] = ()  # CIDRs allowed to call us besides the trunks' addresses
    ring_timeout: float = 60.0
    max_call_seconds: float = 1800.0
    channel_wait_s: float = 300.0  # how long a call waits for a free channel when every trunk is full
    dsp_workers: int | None = None  # media worker processes (fax_media.dsp_loop); None = one per core
    dsp_realtime: bool = True


class SipLine:
    """Implements ``fax_transmitter.lines.Line``. Inbound calls go to ``answer_with``'s handler (else: 404), from
    allowed addresses only (others: 403)."""

    def __init__(self, settings: SipLineSettings) -> None:
        self.settings = settings
        self.dsp = DspLoop(name="transmitter-dsp", workers=settings.dsp_workers, realtime=settings.dsp_realtime)
        self.ports = PortRange(settings.media_host, *settings.media_ports)
        self.user_agent = SipUserAgent(settings.sip, on_incoming=self._refuse)
        self.trunks = TrunkSet(settings.trunks)
        self.allow_list = InboundAllowList(settings.inbound_allow)
        self.user_agent.admit = self.allow_list.admits
        self.user_agent.on_refused = self._refused
        self._media_host = settings.media_host
        self._hangups: set[asyncio.Task[None]] = set()

    def answer_with(self, handler: Callable[[IncomingCall], Awaitable[None]]) -> None:
        self.user_agent.on_incoming = handler

    async def start(self) -> None:
        self.dsp.start()
        await self.allow_list.start(self.trunks)
        await self.user_agent.start()
        await self.trunks.start(self.user_agent)

    async def close(self) -> None:
        for task in list(self._hangups):
            task.cancel()
        await asyncio.gather(*self._hangups, return_exceptions=True)
        await self.trunks.close()
        await self.allow_list.close()
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

    @staticmethod
    def _refused(request: SipMessage, flow: Flow) -> None:
        log.info("refused SIP %s from %s: not on the inbound allow-list", request.method, flow.remote[0])
        default_metrics().sip_refused.labels(method_label(request.method)).inc()

    async def place_call(self, request: CallRequest) -> TransmissionOutcome:
        # ECM and the modem do not depend on the trunk: the media is set up once, for whichever trunk answers.
        options = plan_media(PREFER, request.history, request.options).options
        media = await FaxCall.open(
            self.dsp,
            self.ports,
            calling=True,
            send_file=request.tiff,
            options=options,
            max_duration=self.settings.max_call_seconds,
            on_page=request.on_page,
        )
        try:
            failed_over: list[TrunkTry] = []
            remaining = self.trunks.in_order()
            while remaining:
                trunk = await self.trunks.claim_channel(remaining, self.settings.channel_wait_s)
                if trunk is None:
                    return call_not_made("every trunk is at its channel limit")
                remaining.remove(trunk)
                try:
                    result = await self._through(trunk, request, media, tuple(failed_over))
                finally:
                    self.trunks.release_channel(trunk)
                if not isinstance(result, TrunkTry):
                    return result
                failed_over.append(result)
                if remaining:
                    log.info("trunk %s: %d %s; next trunk", trunk.name, result.sip_status, result.reason)
            last = failed_over[-1]
            return call_not_answered(last.sip_status, last.reason)
        finally:
            await media.close()

    async def _through(
        self, trunk: Trunk, request: CallRequest, media: FaxCall, failed_over: tuple[TrunkTry, ...]
    ) -> TransmissionOutcome | TrunkTry:
        """The attempt through one trunk: its outcome, or why it goes to the next trunk."""
        policy = effective_policy(trunk.config.t38, faxbox_policy(request.fax_option))
        plan = plan_media(policy, request.history, request.options)
        if request.on_route is not None:
            request.on_route(
                CallRoute(
                    trunk=trunk.name,
                    transport=trunk.transport,
                    failed_over=failed_over,
                    t38_policy=policy,
                    t38=plan.t38,
                    ecm=plan.options.ecm,
                    max_bit_rate=plan.options.max_bit_rate,
                    media_reason=plan.reason,
                )
            )
        offer = SessionDescription.audio_only(self._media_host, media.rtp_port, list(G711_PAYLOAD_TYPES))
        try:
            call = await self.user_agent.invite(
                trunk.config.target(request.to_number),
                from_number=request.from_number,
                from_name=request.from_name,
                offer=offer,
                ring_timeout=self.settings.ring_timeout,
                response_timeout=trunk.config.response_timeout_s,
                credentials=trunk.credentials,
            )
        except CallFailed as failure:
            if fails_over(failure):
                self.trunks.note_failure(trunk, failure)
                return TrunkTry(
                    trunk=trunk.name, transport=trunk.transport, sip_status=failure.status, reason=failure.reason
                )
            return call_not_answered(failure.status, failure.reason)
        if request.on_answered is not None:
            request.on_answered(answered_call(call, media, self._media_host))
        try:
            return await self._run_answered_call(call, media, plan)
        finally:
            with contextlib.suppress(Exception):
                await call.hangup()

    async def _run_answered_call(self, call: Call, media: FaxCall, plan: MediaPlan) -> TransmissionOutcome:
        audio = call.remote_sdp.audio
        payload_type = chosen_payload_type(audio.payload_types if audio else [])
        if audio is None or payload_type is None:
            raise CallFailed(488, "the far end answered without G.711 audio")
        call.on_reinvite = lambda offer: self._network_reinvite(offer, media, call, plan)
        media.start_audio(audio.host, audio.port, payload_type, signalling_host=signalling_host(call))
        if plan.t38 and await ask_for_t38(call, media, self._media_host) is None and plan.t38_policy == ONLY:
            return call_not_answered(488, "T.38 refused, and the trunk takes fax over T.38 only")
        return await until_call_ends(call, media)

    async def _network_reinvite(
        self, offer: SessionDescription, media: FaxCall, call: Call, plan: MediaPlan
    ) -> SessionDescription | None:
        if offer.t38 is not None and not plan.t38:
            log.info("call %s: refusing the network's T.38 re-INVITE: this attempt stays on G.711", call.call_id)
            return None
        return await accept_t38_reinvite(offer, media, self._media_host, call)


def answered_call(call: Call, media: FaxCall, media_host: str) -> AnsweredCall:
    """``call`` as data, to be saved while it is up."""
    return AnsweredCall(dialog=call.identity(), media_host=media_host, media_ports=(media.rtp_port, media.udptl_port))
