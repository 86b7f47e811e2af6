"""A small asyncio SIP user agent (RFC 3261 over UDP) for fax endpoints: calls both ways, re-INVITE to T.38,
CANCEL, digest authentication (MD5 and SHA-256), OPTIONS and REGISTER. No third-party SIP stack is used: none does
T.38 or handles UDP retransmission correctly (see the project's NOTES)."""

from fax_sip.message import NameAddr, SipMessage, SipUri, parse_message
from fax_sip.sdp import PCMA, PCMU, AudioStream, SessionDescription, T38Stream
from fax_sip.ua import Call, CallFailed, DialogIdentity, IncomingCall, SipSettings, SipUserAgent

__all__ = [
    "PCMA",
    "PCMU",
    "AudioStream",
    "Call",
    "CallFailed",
    "DialogIdentity",
    "IncomingCall",
    "NameAddr",
    "SessionDescription",
    "SipMessage",
    "SipSettings",
    "SipUri",
    "SipUserAgent",
    "T38Stream",
    "parse_message",
]
