import pytest

from fax_sip.digest import digest_response, parse_challenge
from fax_sip.message import NameAddr, SipParseError, SipUri, parse_message
from fax_sip.sdp import SessionDescription

INVITE = (
    b"INVITE sip:+15551230000@127.0.0.1:5070 SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc;rport\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKdef, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKghi\r\n"
    b'f: "Demo Sender" <sip:+15550001000@127.0.0.1>;tag=1234\r\n'
    b"t: <sip:+15551230000@127.0.0.1:5070>\r\n"
    b"i: call-1@127.0.0.1\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Subject: a folded\r\n  header\r\n"
    b"c: application/sdp\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\r\ntrailing garbage"
)


def test_a_request_with_compact_and_folded_headers_parses() -> None:
    message = parse_message(INVITE)
    assert message.method == "INVITE"
    assert message.uri == "sip:+15551230000@127.0.0.1:5070"
    assert message.branch == "z9hG4bKabc"
    assert len(message.get_all("via")) == 3
    assert message.cseq == (7, "INVITE")
    assert message.get("subject") == "a folded header"
    assert message.body == b"v=0\r"  # Content-Length counts, the rest of the datagram is not ours
    caller = NameAddr.parse(message.get("from"))
    assert (caller.display, caller.uri, caller.tag) == ("Demo Sender", "sip:+15550001000@127.0.0.1", "1234")


def test_encoding_round_trips() -> None:
    message = parse_message(INVITE)
    again = parse_message(message.encode())
    assert again.headers == message.headers and again.body == message.body


@pytest.mark.parametrize(
    "datagram",
    [b"", b"INVITE sip:x SIP/3.0\r\n\r\n", b"SIP/2.0 abc OK\r\n\r\n", b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n"],
)
def test_malformed_messages_are_refused(datagram: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_message(datagram)


def test_uris() -> None:
    assert SipUri.parse("sip:+1555@127.0.0.1:5070;transport=udp") == SipUri("+1555", "127.0.0.1", 5070)
    assert SipUri.parse("sip:trunk.example.com") == SipUri("", "trunk.example.com", 5060)


def test_sdp_round_trip_for_audio_and_t38() -> None:
    audio = SessionDescription.parse(SessionDescription.audio_only("127.0.0.1", 40000, [0, 8]).encode())
    assert audio.audio is not None and audio.t38 is None
    assert (audio.audio.host, audio.audio.port, audio.audio.payload_types) == ("127.0.0.1", 40000, [0, 8])
    t38 = SessionDescription.parse(SessionDescription.t38_only("127.0.0.2", 40002, max_datagram=320).encode())
    assert t38.audio is None and t38.t38 is not None
    assert (t38.t38.host, t38.t38.port, t38.t38.max_datagram) == ("127.0.0.2", 40002, 320)


def test_a_disabled_stream_is_off() -> None:
    sdp = (
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"
        b"m=image 4000 udptl t38\r\na=T38FaxMaxDatagram:200\r\n"
    )
    parsed = SessionDescription.parse(sdp)
    assert parsed.audio is None
    assert parsed.t38 is not None and parsed.t38.port == 4000 and parsed.t38.max_datagram == 200


def test_digest_matches_rfc_2617_example() -> None:
    # RFC 2617 §3.5, the worked example (MD5, qop=auth).
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    value = digest_response(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle Of Life",
        cnonce="0a4f113b",
    )
    assert 'response="6629fae49393a05397450978507c4ef1"' in value
    assert "nc=00000001" in value and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in value


def test_digest_sha256_matches_rfc_7616_example() -> None:
    # RFC 7616 §3.9.1 (SHA-256, qop=auth).
    challenge = parse_challenge(
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    value = digest_response(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert 'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"' in value
