"""A small asyncio SIP user agent (RFC 3261 over UDP, TCP and TLS) for fax endpoints: calls both ways, re-INVITE to
T.38, CANCEL, digest authentication (MD5 and SHA-256), OPTIONS and REGISTER. No third-party SIP stack is used: none
does T.38 or handles UDP retransmission correctly (see the project's NOTES)."""

from fax_sip.message import TCP, TLS, TRANSPORTS, UDP, Hop, NameAddr, SipMessage, SipUri, parse_message
from fax_sip.sdp import PCMA, PCMU, AudioStream, SessionDescription, T38Stream
from fax_sip.transport import Flow, TlsSettings, TransportError
from fax_sip.ua import (
    Call,
    CallFailed,
    Credentials,
    DialogIdentity,
    IncomingCall,
    Registration,
    SipSettings,
    SipUserAgent,
)

__all__ = [
    "PCMA",
    "PCMU",
    "TCP",
    "TLS",
    "TRANSPORTS",
    "UDP",
    "AudioStream",
    "Call",
    "CallFailed",
    "Credentials",
    "DialogIdentity",
    "Flow",
    "Hop",
    "IncomingCall",
    "NameAddr",
    "Registration",
    "SessionDescription",
    "SipMessage",
    "SipSettings",
    "SipUri",
    "SipUserAgent",
    "T38Stream",
    "TlsSettings",
    "TransportError",
    "parse_message",
]
