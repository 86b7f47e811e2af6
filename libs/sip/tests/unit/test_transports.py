"""Calls over TCP and TLS between two user agents on loopback (short T1), and what RFC 3261 §18 asks of each:
one connection reused both ways, no retransmissions over a stream, failures of the transport told at once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import trustme

from fax_sip import CallFailed, IncomingCall, SessionDescription, SipSettings, SipUserAgent, TlsSettings
from fax_sip.message import Via, parse_message, response_to
from fax_sip.transport import StreamFramer

AUDIO = SessionDescription.audio_only("127.0.0.1", 40000, [0])


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A test CA and a certificate for 127.0.0.1 it signed; and a certificate from another CA."""
    folder = tmp_path_factory.mktemp("tls")
    authority, stranger = trustme.CA(), trustme.CA()
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "stranger": folder / "stranger.pem"}
    authority.cert_pem.write_to_path(str(paths["ca"]))
    authority.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(paths["cert"]))
    stranger.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(paths["stranger"]))
    return {name: str(path) for name, path in paths.items()}


class Answerer:
    def __init__(self) -> None:
        self.incoming: list[IncomingCall] = []
        self.calls: list = []

    async def __call__(self, incoming: IncomingCall) -> None:
        self.incoming.append(incoming)
        if incoming.to_number.endswith("486"):
            await incoming.reject(486, "Busy Here")
            return
        await incoming.ringing()
        call = await incoming.answer(SessionDescription.audio_only("127.0.0.1", 40100, [0]))

        async def on_reinvite(offer: SessionDescription) -> SessionDescription | None:
            return SessionDescription.t38_only("127.0.0.1", 40102) if offer.t38 is not None else None

        call.on_reinvite = on_reinvite
        self.calls.append(call)


@pytest.fixture
async def tls_pair(certificates: dict[str, str]) -> AsyncIterator[tuple[SipUserAgent, SipUserAgent, Answerer]]:
    answerer = Answerer()
    tls = TlsSettings(cert_file=certificates["cert"], ca_file=certificates["ca"])
    callee = SipUserAgent(SipSettings(bind_port=0, tls_port=0, tls=tls, user="callee", t1=0.05), on_incoming=answerer)
    caller = SipUserAgent(SipSettings(bind_port=0, tls_port=0, tls=tls, user="caller", t1=0.05))
    await callee.start()
    await caller.start()
    yield caller, callee, answerer
    await caller.close()
    await callee.close()


@pytest.mark.parametrize("scheme", ["sip:{n}@127.0.0.1:{tcp};transport=tcp", "sips:{n}@127.0.0.1:{tls}"])
async def test_a_call_over_a_stream_uses_one_connection_both_ways(tls_pair, scheme: str) -> None:
    caller, callee, answerer = tls_pair
    target = scheme.format(n="+15551230000", tcp=callee.port, tls=callee.tls_port)
    call = await caller.invite(target, from_number="+15550001000", offer=AUDIO)
    transport = "tls" if target.startswith("sips") else "tcp"
    assert Via.parse(answerer.incoming[0].request.top_via).transport == transport
    assert answerer.incoming[0].request.get("contact").startswith("<sips:" if transport == "tls" else "<sip:")
    answer = await call.reinvite(SessionDescription.t38_only("127.0.0.1", 40002))
    assert answer.t38 is not None and answer.t38.port == 40102
    # The callee ends the call: its BYE comes back over the connection the caller opened.
    await answerer.calls[0].hangup()
    assert await asyncio.wait_for(call.wait_terminated(), 2) == "remote-bye"
    assert caller.transports.open_connections() == callee.transports.open_connections() == 1


async def test_a_refusal_over_tcp_is_acked_once_and_nothing_is_retransmitted(tls_pair) -> None:
    caller, callee, _ = tls_pair
    with pytest.raises(CallFailed) as busy:
        await caller.invite(f"sip:+15551230486@127.0.0.1:{callee.port};transport=tcp", from_number="+1", offer=AUDIO)
    assert busy.value.status == 486 and not busy.value.unreachable


async def test_a_certificate_from_an_unknown_authority_is_refused(certificates: dict[str, str]) -> None:
    impostor = SipUserAgent(
        SipSettings(bind_port=0, tls_port=0, tls=TlsSettings(cert_file=certificates["stranger"]), t1=0.05),
        on_incoming=Answerer(),
    )
    caller = SipUserAgent(SipSettings(bind_port=0, tls=TlsSettings(ca_file=certificates["ca"]), t1=0.05))
    await impostor.start()
    await caller.start()
    try:
        with pytest.raises(CallFailed) as refused:
            await caller.invite(f"sips:+1555@127.0.0.1:{impostor.tls_port}", from_number="+1", offer=AUDIO)
        assert refused.value.status == 503 and refused.value.unreachable
        assert "certificate" in refused.value.reason
    finally:
        await caller.close()
        await impostor.close()


async def test_a_refused_connection_fails_the_call_at_once() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        caller = SipUserAgent(SipSettings(bind_port=0, t1=0.5))
        await caller.start()
        try:
            with pytest.raises(CallFailed) as refused:
                await asyncio.wait_for(
                    caller.invite(f"sip:+1555@127.0.0.1:{port};transport=tcp", from_number="+1", offer=AUDIO), 2
                )
        finally:
            await caller.close()
    assert refused.value.status == 503 and refused.value.unreachable


async def _silent_tcp_server() -> tuple[asyncio.Server, list[bytes]]:
    received: list[bytes] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = StreamFramer()
        while data := await reader.read(65536):
            received.extend(framer.feed(data))

    return await asyncio.start_server(swallow, "127.0.0.1", 0), received


async def test_over_tcp_an_unanswered_invite_is_sent_once_then_times_out() -> None:
    server, received = await _silent_tcp_server()
    caller = SipUserAgent(SipSettings(bind_port=0, t1=0.02))
    await caller.start()
    try:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(CallFailed) as timeout:
            await caller.invite(f"sip:+1555@127.0.0.1:{port};transport=tcp", from_number="+1", offer=AUDIO)
        assert timeout.value.status == 408 and timeout.value.unreachable  # timer B still runs over TCP
        assert [parse_message(m).method for m in received] == ["INVITE"]  # timer A does not
    finally:
        await caller.close()
        server.close()


async def test_a_silent_next_hop_is_given_up_after_the_response_timeout_and_cancelled_when_it_rings() -> None:
    far_end = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far_end.bind(("127.0.0.1", 0))
    far_end.setblocking(False)
    loop = asyncio.get_running_loop()
    caller = SipUserAgent(SipSettings(bind_port=0, t1=0.5))
    await caller.start()
    try:
        target = f"sip:+1555@127.0.0.1:{far_end.getsockname()[1]}"
        began = loop.time()
        with pytest.raises(CallFailed) as silent:
            await caller.invite(target, from_number="+1", offer=AUDIO, response_timeout=0.3)
        assert silent.value.unreachable and silent.value.status == 408
        assert loop.time() - began < 1.0  # not timer B's 32 s
        data, address = await asyncio.wait_for(loop.sock_recvfrom(far_end, 65535), 1)
        invite = parse_message(data)
        far_end.sendto(response_to(invite, 180, "Ringing", to_tag="late").encode(), address)
        methods = []
        async with asyncio.timeout(3):
            while "CANCEL" not in methods:
                data, _ = await loop.sock_recvfrom(far_end, 65535)
                methods.append(parse_message(data).method)
    finally:
        await caller.close()
        far_end.close()


async def test_our_2xx_goes_once_over_tcp_and_a_call_never_acked_is_ended() -> None:
    callee = SipUserAgent(SipSettings(bind_port=0, user="callee", t1=0.02), on_incoming=Answerer())
    await callee.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", callee.port)
        local = writer.get_extra_info("sockname")
        writer.write(
            (
                f"INVITE sip:+1555@127.0.0.1:{callee.port};transport=tcp SIP/2.0\r\n"
                f"Via: SIP/2.0/TCP 127.0.0.1:{local[1]};branch=z9hG4bKt1;rport\r\n"
                "From: <sip:raw@127.0.0.1>;tag=raw\r\nTo: <sip:+1555@127.0.0.1>\r\nCall-ID: raw-1\r\n"
                f"CSeq: 1 INVITE\r\nContact: <sip:raw@127.0.0.1:{local[1]};transport=tcp>\r\n"
                f"Content-Type: application/sdp\r\nContent-Length: {len(AUDIO.encode())}\r\n\r\n"
            ).encode()
            + AUDIO.encode()
        )
        framer = StreamFramer()
        seen: list = []
        async with asyncio.timeout(5):  # 64*T1 = 1.28 s without an ACK, then the callee hangs up
            while not any(m.method == "BYE" for m in seen):
                seen += [parse_message(m) for m in framer.feed(await reader.read(65536)) if m != StreamFramer.PING]
        statuses = [m.status for m in seen if not m.is_request]
        assert statuses.count(200) == 1, statuses  # no timer-G-style repeats of the 2xx over a stream
        assert Via.parse(seen[0].top_via).params["rport"] == str(local[1])  # RFC 3581, stamped on arrival
        writer.close()
    finally:
        await callee.close()


async def test_a_keepalive_ping_is_answered_with_a_pong() -> None:
    ua = SipUserAgent(SipSettings(bind_port=0, t1=0.05))
    await ua.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", ua.port)
        writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), 2) == b"\r\n"
        writer.close()
    finally:
        await ua.close()


async def test_out_of_dialog_requests_from_addresses_not_admitted_get_403() -> None:
    answerer = Answerer()
    callee = SipUserAgent(SipSettings(bind_port=0, user="callee", t1=0.05), on_incoming=answerer)
    refused: list[tuple[str, str]] = []
    callee.admit = lambda address: address == "127.0.0.1"
    callee.on_refused = lambda request, flow: refused.append((request.method, flow.remote[0]))
    stranger = SipUserAgent(SipSettings(bind_host="127.0.0.2", bind_port=0, t1=0.05))
    friend = SipUserAgent(SipSettings(bind_host="127.0.0.1", bind_port=0, t1=0.05))
    for ua in (callee, stranger, friend):
        await ua.start()
    try:
        for transport in ("udp", "tcp"):
            target = f"sip:+1555@127.0.0.1:{callee.port};transport={transport}"
            with pytest.raises(CallFailed) as forbidden:
                await stranger.invite(target, from_number="+1", offer=AUDIO)
            assert forbidden.value.status == 403
            call = await friend.invite(target, from_number="+1", offer=AUDIO)
            await call.hangup()
        assert (await stranger.options(f"sip:127.0.0.1:{callee.port}")).status == 403
        assert refused == [("INVITE", "127.0.0.2"), ("INVITE", "127.0.0.2"), ("OPTIONS", "127.0.0.2")]
        assert len(answerer.incoming) == 2  # only the friend's calls reached the application
    finally:
        for ua in (friend, stranger, callee):
            await ua.close()
