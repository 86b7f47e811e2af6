"""SDP (RFC 4566) for fax calls: G.711 audio (RFC 3551 types 0 and 8) and T.38 over UDPTL (T.38 Annex D)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

PCMU, PCMA = 0, 8
_RTPMAP = {PCMU: "PCMU/8000", PCMA: "PCMA/8000"}


class SdpError(ValueError):
    pass


@dataclass(frozen=True)
class AudioStream:
    host: str
    port: int
    payload_types: list[int]
    ptime: int = 20


@dataclass(frozen=True)
class T38Stream:
    host: str
    port: int
    max_datagram: int = 400
    max_buffer: int = 2000
    version: int = 0
    max_bit_rate: int = 14400
    rate_management: str = "transferredTCF"
    error_correction: str = "t38UDPRedundancy"


@dataclass(frozen=True)
class SessionDescription:
    """One media stream that is on: ``audio`` or ``t38`` (a stream offered with port 0 counts as off)."""

    origin_host: str
    audio: AudioStream | None = None
    t38: T38Stream | None = None
    session_id: int = field(default_factory=lambda: secrets.randbelow(2**31))

    @classmethod
    def audio_only(cls, host: str, port: int, payload_types: list[int]) -> SessionDescription:
        return cls(origin_host=host, audio=AudioStream(host, port, list(payload_types)))

    @classmethod
    def t38_only(cls, host: str, port: int, *, max_datagram: int = 400) -> SessionDescription:
        return cls(origin_host=host, t38=T38Stream(host, port, max_datagram=max_datagram))

    def encode(self, version: int = 1) -> bytes:
        lines = [
            "v=0",
            f"o=fax {self.session_id} {version} IN IP4 {self.origin_host}",
            "s=fax",
            f"c=IN IP4 {self.origin_host}",
            "t=0 0",
        ]
        if self.audio is not None:
            audio = self.audio
            lines.append(f"m=audio {audio.port} RTP/AVP {' '.join(str(pt) for pt in audio.payload_types)}")
            if audio.host != self.origin_host:
                lines.append(f"c=IN IP4 {audio.host}")
            lines += [f"a=rtpmap:{pt} {_RTPMAP[pt]}" for pt in audio.payload_types if pt in _RTPMAP]
            lines += [f"a=ptime:{audio.ptime}", "a=sendrecv"]
        if self.t38 is not None:
            t38 = self.t38
            lines.append(f"m=image {t38.port} udptl t38")
            if t38.host != self.origin_host:
                lines.append(f"c=IN IP4 {t38.host}")
            lines += [
                f"a=T38FaxVersion:{t38.version}",
                f"a=T38MaxBitRate:{t38.max_bit_rate}",
                f"a=T38FaxRateManagement:{t38.rate_management}",
                f"a=T38FaxMaxBuffer:{t38.max_buffer}",
                f"a=T38FaxMaxDatagram:{t38.max_datagram}",
                f"a=T38FaxUdpEC:{t38.error_correction}",
            ]
        return ("\r\n".join(lines) + "\r\n").encode()

    @classmethod
    def parse(cls, body: bytes) -> SessionDescription:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SdpError("SDP is not UTF-8") from None
        session_host = ""
        origin_host = ""
        media: list[dict] = []
        for raw in text.splitlines():
            line = raw.strip()
            if len(line) < 2 or line[1] != "=":
                continue
            kind, value = line[0], line[2:]
            if kind == "o":
                fields = value.split()
                origin_host = fields[5] if len(fields) >= 6 else ""
            elif kind == "c":
                host = value.split()[-1].split("/")[0]
                if media:
                    media[-1]["host"] = host
                else:
                    session_host = host
            elif kind == "m":
                fields = value.split()
                if len(fields) < 4 or not fields[1].split("/")[0].isdigit():
                    raise SdpError(f"bad m= line {line!r}")
                media.append(
                    {
                        "type": fields[0],
                        "port": int(fields[1].split("/")[0]),
                        "proto": fields[2].lower(),
                        "formats": fields[3:],
                        "attrs": {},
                    }
                )
            elif kind == "a" and media:
                name, _, attr = value.partition(":")
                media[-1]["attrs"][name.lower()] = attr.strip()
        audio: AudioStream | None = None
        t38: T38Stream | None = None
        for item in media:
            host = item.get("host", session_host)
            if item["port"] == 0 or not host:
                continue
            attrs = item["attrs"]
            if item["type"] == "audio" and audio is None:
                payload_types = [int(fmt) for fmt in item["formats"] if fmt.isdigit()]
                ptime = int(attrs["ptime"]) if attrs.get("ptime", "").isdigit() else 20
                audio = AudioStream(host, item["port"], payload_types, ptime)
            elif item["type"] == "image" and item["proto"] == "udptl" and "t38" in item["formats"] and t38 is None:
                t38 = T38Stream(
                    host,
                    item["port"],
                    max_datagram=_int(attrs.get("t38faxmaxdatagram"), 400),
                    max_buffer=_int(attrs.get("t38faxmaxbuffer"), 2000),
                    version=_int(attrs.get("t38faxversion"), 0),
                    max_bit_rate=_int(attrs.get("t38maxbitrate"), 14400),
                    rate_management=attrs.get("t38faxratemanagement", "transferredTCF"),
                    error_correction=attrs.get("t38faxudpec", "t38UDPRedundancy"),
                )
        return cls(origin_host=origin_host or session_host, audio=audio, t38=t38)


def _int(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() else default
