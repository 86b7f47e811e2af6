"""Messages over TCP and TLS are cut from the byte stream by their Content-Length (RFC 3261 §18.3)."""

from __future__ import annotations

import pytest

from fax_sip.message import SipUri, Via, parse_message, stamp_top_via
from fax_sip.transport import MAX_BODY_BYTES, FramingError, StreamFramer

BYE = (
    b"BYE sip:fax@127.0.0.1:5060;transport=tcp SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKb1;rport\r\n"
    b"From: <sip:a@10.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>;tag=b\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\n"
    b"Content-Length: 0\r\n\r\n"
)
INVITE = (
    b"INVITE sip:+1555@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKi1\r\n"
    b"From: <sip:a@10.0.0.1>;tag=a\r\nTo: <sip:+1555@127.0.0.1>\r\nCall-ID: c2\r\nCSeq: 1 INVITE\r\n"
    b"l: 9\r\n\r\nv=0\r\ns=x\r"
)


def test_messages_split_anywhere_and_run_together_come_out_whole() -> None:
    stream = BYE + INVITE + BYE
    for cut in (1, 7, 50, len(BYE), len(BYE) + 3, len(stream) - 1):
        framer = StreamFramer()
        out = framer.feed(stream[:cut]) + framer.feed(stream[cut:])
        assert out == [BYE, INVITE, BYE], cut
    assert parse_message(INVITE).body == b"v=0\r\ns=x\r"  # the compact form of Content-Length counts too


def test_byte_by_byte() -> None:
    framer = StreamFramer()
    out = [message for byte in INVITE for message in framer.feed(bytes([byte]))]
    assert out == [INVITE]


def test_crlf_before_a_message_is_skipped_and_a_double_one_is_a_ping() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []  # could be the start of a ping
    assert framer.feed(b"\r\n") == [StreamFramer.PING]
    assert framer.feed(b"\r\n" + BYE) == [BYE]
    assert framer.feed(b"\r\n\r\n" + BYE) == [StreamFramer.PING, BYE]


@pytest.mark.parametrize(
    "garbage",
    [
        BYE.replace(b"Content-Length: 0\r\n", b""),  # a stream cannot be framed without it
        BYE.replace(b"Content-Length: 0", f"Content-Length: {MAX_BODY_BYTES + 1}".encode()),
        b"INVITE sip:x SIP/2.0\r\nX-Padding: " + b"a" * 20000,  # headers that never end
    ],
)
def test_unframeable_streams_are_refused(garbage: bytes) -> None:
    with pytest.raises(FramingError):
        StreamFramer().feed(garbage)


@pytest.mark.parametrize(
    ("uri", "transport", "port", "secure"),
    [
        ("sip:+1555@carrier.example", "udp", 5060, False),
        ("sip:carrier.example:5080;transport=TCP", "tcp", 5080, False),
        ("sip:carrier.example;transport=tls", "tls", 5061, False),
        ("sips:carrier.example", "tls", 5061, True),
        ("sips:+1555@carrier.example:5062;transport=tcp", "tls", 5062, True),
        ("sip:[2001:db8::1]:5070;transport=tcp", "tcp", 5070, False),
    ],
)
def test_a_uri_names_its_next_hop(uri: str, transport: str, port: int, secure: bool) -> None:
    parsed = SipUri.parse(uri)
    assert (parsed.transport, parsed.port, parsed.secure) == (transport, port, secure)
    assert SipUri.parse(str(parsed)) == parsed


def test_received_and_rport_record_where_a_request_came_from() -> None:
    request = parse_message(BYE)
    stamp_top_via(request, "192.0.2.7", 40123)
    via = Via.parse(request.top_via)
    assert (via.host, via.port, via.params["received"], via.params["rport"]) == ("10.0.0.1", 5060, "192.0.2.7", "40123")
