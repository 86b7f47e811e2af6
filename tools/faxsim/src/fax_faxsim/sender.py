"""``faxsim send``: place an inbound fax call to the platform, as a fax machine on the telephone network would."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fax_faxsim.simulator import STATION_IDENT, FaxSimulator
from fax_media.call import FaxCall
from fax_media.sip_call import G711_PAYLOAD_TYPES, ask_for_t38, signalling_host, until_call_ends
from fax_media.t30 import FaxOptions, TransmissionOutcome
from fax_render.render import render_to_fax_tiff
from fax_sip import CallFailed, SessionDescription, SipUri


@dataclass(frozen=True)
class SendResult:
    sip_status: int  # 200 when the call was answered
    reason: str
    outcome: TransmissionOutcome | None  # None when the call was never answered
    ended_by: str = ""  # "callee" when the platform's BYE ended the call, "faxsim" when we did


async def send_fax(
    simulator: FaxSimulator,
    document: Path,
    *,
    to_number: str,
    from_number: str,
    target: str,
    t38: bool = True,
    from_name: str = "faxsim",
) -> SendResult:
    """Call ``to_number`` at ``target`` (the platform's SIP endpoint, as ``call_uri`` takes it) and send ``document``.

    Anything the fetcher can render (PDF, TIFF, images, text) is rendered to TIFF-F first, so the pages sent are
    exactly those a test can compare with what the platform stored.
    """
    with tempfile.TemporaryDirectory(prefix="faxsim-send-") as tmp:
        tiff = Path(tmp) / "send.tif"
        await render_to_fax_tiff(document, tiff)
        settings = simulator.settings
        media = await FaxCall.open(
            simulator.dsp,
            simulator.media_ports,
            calling=True,
            send_file=tiff,
            options=FaxOptions(local_ident=STATION_IDENT),
            max_duration=settings.max_call_seconds,
        )
        try:
            offer = SessionDescription.audio_only(settings.sip_host, media.rtp_port, list(G711_PAYLOAD_TYPES))
            try:
                call = await simulator.user_agent.invite(
                    call_uri(to_number, target), from_number=from_number, from_name=from_name, offer=offer
                )
            except CallFailed as failure:
                return SendResult(failure.status, failure.reason, None)
            audio = call.remote_sdp.audio
            if audio is None:
                await call.hangup()
                return SendResult(488, "the platform answered without audio", None)
            media.start_audio(audio.host, audio.port, audio.payload_types[0], signalling_host=signalling_host(call))
            if t38 and settings.force != "g711":
                await ask_for_t38(call, media, settings.sip_host)
            outcome = await until_call_ends(call, media)
            ended_by = "callee" if call.termination_reason == "remote-bye" else "faxsim"
            await call.hangup()
            return SendResult(200, "OK", outcome, ended_by)
        finally:
            await media.close()


def call_uri(to_number: str, target: str) -> str:
    """The Request-URI for calling ``to_number`` at ``target``: ``host:port`` (UDP) or a SIP URI naming its
    transport (``sip:host:port;transport=tcp``, ``sips:host:port``)."""
    if target.lower().startswith(("sip:", "sips:")):
        uri = SipUri.parse(target)
        return str(SipUri(to_number, uri.host, uri.port, uri.transport, uri.secure))
    return f"sip:{to_number}@{target}"


def run_send(document: Path, to_number: str, from_number: str, target: str, t38: bool, simulator: FaxSimulator) -> int:
    async def main() -> int:
        await simulator.start()
        try:
            result = await send_fax(
                simulator, document, to_number=to_number, from_number=from_number, target=target, t38=t38
            )
        finally:
            await simulator.close()
        if result.outcome is None:
            print(f"call refused: {result.sip_status} {result.reason}")
            return 1
        outcome = result.outcome
        print(
            f"{'sent' if outcome.success else 'failed'}: {outcome.pages_sent} page(s), {outcome.result_text}, "
            f"{outcome.bit_rate} bit/s, T.38 {'yes' if outcome.t38_used else 'no'}"
        )
        return 0 if outcome.success else 1

    return asyncio.run(main())
