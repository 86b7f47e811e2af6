"""Every 2xx to our INVITE gets an ACK (RFC 3261 §13.2.2.4), also the copies that arrive before the dialog exists.

A far end whose 200 OK is repeated back to back (or whose retransmission crosses the first one on the way) used to
get one ACK for the first copy only: the copy that found the transaction already answered, or the dialog not yet
built, was dropped. Found with SIPp (tests/integration/test_sip_peers.py).
"""

from __future__ import annotations

import asyncio
import socket

from fax_sip import SessionDescription, SipSettings, SipUserAgent
from fax_sip.message import parse_message, response_to


async def _acks_for(copies_at_once: int, copies_later: int) -> int:
    loop = asyncio.get_running_loop()
    far_end = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far_end.bind(("127.0.0.1", 0))
    far_end.setblocking(False)
    ua = SipUserAgent(SipSettings(bind_port=0, t1=0.05))
    await ua.start()
    try:
        target = f"sip:+15551230000@127.0.0.1:{far_end.getsockname()[1]}"
        offer = SessionDescription.audio_only("127.0.0.1", 40000, [0])
        calling = asyncio.ensure_future(ua.invite(target, from_number="+15550001000", offer=offer))
        data, caller = await asyncio.wait_for(loop.sock_recvfrom(far_end, 65535), 2)
        ok = response_to(parse_message(data), 200, "OK", to_tag="far")
        ok.add("contact", f"<{target}>")
        ok.add("content-type", "application/sdp")
        ok.body = SessionDescription.audio_only("127.0.0.1", 40002, [0]).encode()
        for _ in range(copies_at_once):
            far_end.sendto(ok.encode(), caller)
        call = await asyncio.wait_for(calling, 2)
        for _ in range(copies_later):
            await asyncio.sleep(0.05)
            far_end.sendto(ok.encode(), caller)
        acks = 0
        while True:
            try:
                data, _ = await asyncio.wait_for(loop.sock_recvfrom(far_end, 65535), 0.3)
            except TimeoutError:
                break
            acks += parse_message(data).method == "ACK"
        call.terminate("test over")
        return acks
    finally:
        await ua.close()
        far_end.close()


async def test_a_2xx_repeated_back_to_back_gets_an_ack_for_each_copy() -> None:
    assert await _acks_for(copies_at_once=3, copies_later=0) == 3


async def test_a_2xx_retransmitted_after_the_call_is_up_is_acked_again() -> None:
    assert await _acks_for(copies_at_once=1, copies_later=2) == 3
