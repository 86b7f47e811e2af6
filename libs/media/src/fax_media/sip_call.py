"""The SIP side of a fax call, for any fax endpoint (the transmitter's line and reception, faxsim): which G.711
codec to answer with, moving a call to T.38 by re-INVITE (ours or the far end's), and waiting for the call to end.

A call starts on G.711 audio; either end may then ask to move it to T.38. The one asked switches its ``FaxCall``
when it accepts, the one asking when the answer carries T.38, and both stay on G.711 otherwise. The call ends when
T.30 finishes or the far end hangs up, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from fax_media.call import FaxCall
from fax_media.t30 import TransmissionOutcome
from fax_sip import Call, CallFailed, SessionDescription, T38Stream

log = logging.getLogger(__name__)

G711_PAYLOAD_TYPES = (0, 8)  # PCMU, PCMA: what we offer, in our order of preference


def chosen_payload_type(offered: Iterable[int]) -> int | None:
    """The first G.711 payload type of the far end's offer, or None when it offers no G.711."""
    return next((pt for pt in offered if pt in G711_PAYLOAD_TYPES), None)


def signalling_host(call: Call) -> str | None:
    """The host the far end's SIP comes from: where its media comes from too when it is behind NAT."""
    address = call.signalling_address
    return address[0] if address else None


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
        payload_type = chosen_payload_type(offer.audio.payload_types)
        if payload_type is not None:
            with contextlib.suppress(RuntimeError):  # the fax already ended: nothing to follow
                media.redirect_audio(offer.audio.host, offer.audio.port, signalling_host=far_host)
            return SessionDescription.audio_only(media_host, media.rtp_port, [payload_type])
    return None


async def ask_for_t38(call: Call, media: FaxCall, media_host: str) -> T38Stream | None:
    """Ask the far end to move ``call`` to T.38 (a re-INVITE) and switch ``media`` when it agrees: its T.38 stream,
    or None when the call stays on G.711."""
    try:
        answer = await call.reinvite(SessionDescription.t38_only(media_host, media.udptl_port))
    except CallFailed as refused:
        log.info("T.38 refused by the far end (%d %s): staying on G.711", refused.status, refused.reason)
        return None
    if answer.t38 is None:
        log.info("the far end answered our T.38 re-INVITE without T.38: staying on G.711")
        return None
    media.start_t38(
        answer.t38.host,
        answer.t38.port,
        far_max_datagram=answer.t38.max_datagram,
        signalling_host=signalling_host(call),
    )
    return answer.t38


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
