"""Two user agents calling each other over real UDP on loopback (short T1 so the timers run quickly)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator

import pytest

from fax_sip import CallFailed, IncomingCall, SessionDescription, SipSettings, SipUserAgent
from fax_sip.message import parse_message

PORTS = iter(range(36100, 36400, 2))


def _free_port() -> int:
    for port in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port")


class Answerer:
    """The far end: answers by the number dialled, and accepts or refuses T.38."""

    def __init__(self, accept_t38: bool = True) -> None:
        self.accept_t38 = accept_t38
        self.calls: list = []
        self.incoming: list[IncomingCall] = []

    async def __call__(self, incoming: IncomingCall) -> None:
        self.incoming.append(incoming)
        if incoming.to_number.endswith("486"):
            await incoming.reject(486, "Busy Here")
            return
        await incoming.ringing()
        if incoming.to_number.endswith("408"):
            await incoming.cancelled.wait()
            return
        call = await incoming.answer(SessionDescription.audio_only("127.0.0.1", 40100, [0]))

        async def on_reinvite(offer: SessionDescription) -> SessionDescription | None:
            if offer.t38 is None or not self.accept_t38:
                return None
            return SessionDescription.t38_only("127.0.0.1", 40102)

        call.on_reinvite = on_reinvite
        self.calls.append(call)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SipUserAgent, SipUserAgent, Answerer]]:
    answerer = Answerer()
    callee = SipUserAgent(SipSettings(bind_port=_free_port(), user="callee", t1=0.05), on_incoming=answerer)
    caller = SipUserAgent(SipSettings(bind_port=_free_port(), user="caller", t1=0.05))
    await callee.start()
    await caller.start()
    yield caller, callee, answerer
    await caller.close()
    await callee.close()


def _target(ua: SipUserAgent, number: str) -> str:
    return f"sip:{number}@127.0.0.1:{ua.port}"


async def test_a_call_moves_to_t38_and_either_side_can_hang_up(pair) -> None:
    caller, callee, answerer = pair
    progress: list[int] = []
    call = await caller.invite(
        _target(callee, "+15551230000"),
        from_number="+15550001000",
        from_name="Demo",
        on_progress=progress.append,
        offer=SessionDescription.audio_only("127.0.0.1", 40000, [0, 8]),
    )
    assert 180 in progress
    assert call.remote_sdp.audio is not None and call.remote_sdp.audio.port == 40100
    incoming = answerer.incoming[0]
    assert (incoming.from_number, incoming.from_name, incoming.to_number) == ("+15550001000", "Demo", "+15551230000")
    answer = await call.reinvite(SessionDescription.t38_only("127.0.0.1", 40002))
    assert answer.t38 is not None and answer.t38.port == 40102
    await call.hangup()
    assert await asyncio.wait_for(answerer.calls[0].wait_terminated(), 2) == "remote-bye"


async def test_a_refused_t38_reinvite_is_488_and_the_call_stays_up(pair) -> None:
    caller, callee, answerer = pair
    answerer.accept_t38 = False
    call = await caller.invite(
        _target(callee, "+15551230038"), from_number="+1555", offer=SessionDescription.audio_only("127.0.0.1", 1, [0])
    )
    with pytest.raises(CallFailed) as refused:
        await call.reinvite(SessionDescription.t38_only("127.0.0.1", 40002))
    assert refused.value.status == 488
    assert not call.terminated
    await answerer.calls[0].hangup()
    assert await asyncio.wait_for(call.wait_terminated(), 2) == "remote-bye"


async def test_busy_is_a_call_failure_with_its_status(pair) -> None:
    caller, callee, _ = pair
    with pytest.raises(CallFailed) as busy:
        await caller.invite(
            _target(callee, "+15551230486"),
            from_number="+1555",
            offer=SessionDescription.audio_only("127.0.0.1", 1, [0]),
        )
    assert busy.value.status == 486


async def test_no_answer_is_cancelled_after_the_ring_timeout(pair) -> None:
    caller, callee, answerer = pair
    with pytest.raises(CallFailed) as no_answer:
        await caller.invite(
            _target(callee, "+15551230408"),
            from_number="+1555",
            ring_timeout=0.5,
            offer=SessionDescription.audio_only("127.0.0.1", 1, [0]),
        )
    assert no_answer.value.status == 408
    assert answerer.incoming[0].cancelled.is_set()


async def test_an_unanswered_invite_is_retransmitted_then_times_out() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", _free_port()))
    silent.setblocking(False)
    caller = SipUserAgent(SipSettings(bind_port=_free_port(), t1=0.02))
    await caller.start()
    try:
        with pytest.raises(CallFailed) as timeout:
            await caller.invite(
                f"sip:+1555@127.0.0.1:{silent.getsockname()[1]}",
                from_number="+1",
                ring_timeout=10,
                offer=SessionDescription.audio_only("127.0.0.1", 1, [0]),
            )
        assert timeout.value.status == 408
        received = []
        while True:
            try:
                received.append(parse_message(silent.recv(65535)))
            except BlockingIOError:
                break
        invites = [m for m in received if m.method == "INVITE"]
        # Timer A doubles from T1 until timer B (64*T1): sent at 0, 1, 3, 7, 15, 31 and 63 T1, with one branch.
        assert len(invites) == 7
        assert len({m.branch for m in invites}) == 1
    finally:
        await caller.close()
        silent.close()


async def test_options_is_answered_with_what_we_allow(pair) -> None:
    _, callee, _ = pair
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.sendto(
        (
            f"OPTIONS sip:127.0.0.1:{callee.port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKo1\r\n"
            f"From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode(),
        ("127.0.0.1", callee.port),
    )
    probe.settimeout(2)
    response = parse_message(await asyncio.to_thread(probe.recv, 65535))
    probe.close()
    assert response.status == 200
    assert "INVITE" in response.get("allow") and "BYE" in response.get("allow")


async def test_a_successor_on_the_same_address_ends_a_dialog_its_dead_predecessor_left_up(pair) -> None:
    caller, callee, answerer = pair
    call = await caller.invite(
        _target(callee, "+15551230000"), from_number="+1555", offer=SessionDescription.audio_only("127.0.0.1", 1, [0])
    )
    saved = call.identity()  # what the transmitter keeps with the attempt
    await call.reinvite(SessionDescription.t38_only("127.0.0.1", 40002))  # requests the saved CSeq cannot know of
    assert saved.signalling_address == ("127.0.0.1", callee.port)
    # The caller dies mid-call: no BYE, its socket simply goes away.
    caller.forget(call)
    await caller.close()
    await asyncio.sleep(0.01)  # the transport closes its socket on the next turn of the loop
    successor = SipUserAgent(SipSettings(bind_port=caller.settings.bind_port, user="caller", t1=0.05))
    await successor.start()
    try:
        assert successor.contact() == saved.contact  # how it knows the dialog was its predecessor's
        assert await successor.end_dialog(saved) == 200
        assert await asyncio.wait_for(answerer.calls[0].wait_terminated(), 2) == "remote-bye"
        unknown = dataclasses.replace(saved, call_id="gone@127.0.0.1")
        assert await successor.end_dialog(unknown) == 481
    finally:
        await successor.close()
