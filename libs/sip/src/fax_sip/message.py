"""SIP messages (RFC 3261 §7, §20, §25): parsing, building and the header forms a user agent relies on."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

# RFC 3261 §7.3.3 compact forms, and the canonical spelling we write.
_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
}
_CANONICAL = {
    "via": "Via",
    "from": "From",
    "to": "To",
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "contact": "Contact",
    "content-length": "Content-Length",
    "content-type": "Content-Type",
    "max-forwards": "Max-Forwards",
    "www-authenticate": "WWW-Authenticate",
    "proxy-authenticate": "Proxy-Authenticate",
    "proxy-authorization": "Proxy-Authorization",
    "record-route": "Record-Route",
    "route": "Route",
    "p-asserted-identity": "P-Asserted-Identity",
    "user-agent": "User-Agent",
}
# Headers whose values may be folded into one line with commas (§7.3.1); others keep each line as it is.
_COMMA_LISTS = {"via", "route", "record-route", "contact", "allow", "supported"}

MAGIC_COOKIE = "z9hG4bK"


class SipParseError(ValueError):
    pass


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


@dataclass
class SipMessage:
    """A request (``method`` and ``uri`` set) or a response (``status`` set); header names are kept lower-case."""

    method: str = ""
    uri: str = ""
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # A response made up here for a transaction that got none (a timeout, a transport failure): never on the wire.
    local: bool = False

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    def get(self, name: str, default: str = "") -> str:
        name = name.lower()
        return next((value for key, value in self.headers if key == name), default)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        values: list[str] = []
        for key, value in self.headers:
            if key == name:
                values += split_header_list(value) if name in _COMMA_LISTS else [value]
        return values

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.headers.append((name.lower(), value))

    def add(self, name: str, value: str) -> None:
        self.headers.append((name.lower(), value))

    def remove(self, name: str) -> None:
        name = name.lower()
        self.headers = [(key, value) for key, value in self.headers if key != name]

    @property
    def call_id(self) -> str:
        return self.get("call-id")

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = self.get("cseq").partition(" ")
        try:
            return int(number), method.strip().upper()
        except ValueError:
            raise SipParseError(f"bad CSeq {self.get('cseq')!r}") from None

    @property
    def top_via(self) -> str:
        vias = self.get_all("via")
        if not vias:
            raise SipParseError("no Via")
        return vias[0]

    @property
    def branch(self) -> str:
        return header_params(self.top_via).get("branch", "")

    def encode(self) -> bytes:
        first = f"{self.method} {self.uri} SIP/2.0" if self.is_request else f"SIP/2.0 {self.status} {self.reason}"
        lines = [first]
        for key, value in self.headers:
            if key != "content-length":
                lines.append(f"{_CANONICAL.get(key, key.title())}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def parse_message(data: bytes) -> SipMessage:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("headers are not UTF-8") from None
    raw_lines = re.split(r"\r?\n", text)
    if not raw_lines or not raw_lines[0].strip():
        raise SipParseError("empty message")
    # Unfold continuation lines (§7.3.1).
    lines: list[str] = []
    for line in raw_lines[1:]:
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()
        elif line:
            lines.append(line)
    message = SipMessage()
    first = raw_lines[0].strip()
    if first.startswith("SIP/2.0 "):
        parts = first.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise SipParseError(f"bad status line {first!r}")
        message.status = int(parts[1])
        message.reason = parts[2] if len(parts) > 2 else ""
    else:
        parts = first.split(" ")
        if len(parts) != 3 or parts[2] != "SIP/2.0":
            raise SipParseError(f"bad request line {first!r}")
        message.method, message.uri = parts[0].upper(), parts[1]
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"bad header line {line!r}")
        key = name.strip().lower()
        message.headers.append((_COMPACT.get(key, key), value.strip()))
    length = message.get("content-length")
    if length:
        try:
            size = int(length)
        except ValueError:
            raise SipParseError(f"bad Content-Length {length!r}") from None
        if size > len(body):
            raise SipParseError("truncated body")
        body = body[:size]
    message.body = body
    for required in ("via", "from", "to", "call-id", "cseq"):
        if not message.get(required):
            raise SipParseError(f"missing {required} header")
    message.cseq  # noqa: B018 - validates the header
    return message


def split_header_list(value: str) -> list[str]:
    """Split a comma-separated header value, leaving commas inside quotes and <...> alone."""
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    for index, char in enumerate(value):
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "<":
            depth += 1
        elif not quoted and char == ">":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            parts.append(value[start:index].strip())
            start = index + 1
    parts.append(value[start:].strip())
    return [part for part in parts if part]


def header_params(value: str) -> dict[str, str]:
    """The ``;name=value`` parameters after a header's main value (outside <...>), names lower-cased."""
    end = value.rfind(">")
    tail = value[end + 1 :] if end >= 0 else value.partition(";")[1] + value.partition(";")[2]
    params: dict[str, str] = {}
    for item in tail.split(";"):
        name, _, val = item.strip().partition("=")
        if name:
            params[name.lower()] = val.strip().strip('"')
    return params


@dataclass(frozen=True)
class Via:
    """A Via header field value (§20.42): the transport and sent-by address of the hop that added it."""

    transport: str
    host: str
    port: int | None
    params: dict[str, str]

    @classmethod
    def parse(cls, value: str) -> Via:
        protocol, _, rest = value.strip().partition(" ")
        sent_by, _, _ = rest.strip().partition(";")
        match = re.fullmatch(r"\s*(\[[0-9A-Fa-f:.]+\]|[^:\s]+)\s*(?::\s*(\d+))?\s*", sent_by)
        if not protocol.upper().startswith("SIP/2.0/") or not match:
            raise SipParseError(f"bad Via {value!r}")
        host, port = match.groups()
        transport = protocol.rsplit("/", 1)[-1].lower()
        return cls(transport, host.strip("[]"), int(port) if port else None, header_params(rest))


def stamp_top_via(request: SipMessage, host: str, port: int) -> None:
    """Record where ``request`` really came from in its top Via (§18.2.1 ``received``, RFC 3581 ``rport``), so
    that its responses find their way back through NAT."""
    for index, (key, value) in enumerate(request.headers):
        if key != "via":
            continue
        parts = split_header_list(value)
        try:
            via = Via.parse(parts[0])
        except (SipParseError, IndexError):
            return
        top = parts[0]
        if via.host != host and "received" not in via.params:
            top += f";received={host}"
        if "rport" in via.params and not via.params["rport"]:
            top = re.sub(r";\s*rport(?=\s*;|\s*$)", f";rport={port}", top, count=1, flags=re.IGNORECASE)
        request.headers[index] = ("via", ", ".join([top, *parts[1:]]))
        return


@dataclass(frozen=True)
class NameAddr:
    """``"Display" <sip:user@host:port;params>;tag=...`` (§20.10 name-addr, or a bare addr-spec)."""

    uri: str
    display: str = ""
    tag: str = ""

    @classmethod
    def parse(cls, value: str) -> NameAddr:
        value = value.strip()
        if "<" in value:
            display, _, rest = value.partition("<")
            uri, _, _ = rest.partition(">")
            display = display.strip().strip('"')
        else:
            display, uri = "", value.split(";")[0]
        return cls(uri=uri.strip(), display=display, tag=header_params(value).get("tag", ""))

    def with_tag(self, tag: str) -> NameAddr:
        return NameAddr(self.uri, self.display, tag)

    def __str__(self) -> str:
        display = f'"{self.display}" ' if self.display else ""
        tag = f";tag={self.tag}" if self.tag else ""
        return f"{display}<{self.uri}>{tag}"


UDP, TCP, TLS = "udp", "tcp", "tls"
TRANSPORTS = (UDP, TCP, TLS)
DEFAULT_PORTS = {UDP: 5060, TCP: 5060, TLS: 5061}

_URI = re.compile(r"^(sips?):(?:([^@;?>]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:;?>\[\]]+)(?::(\d+))?([^?>]*)", re.IGNORECASE)


@dataclass(frozen=True)
class Hop:
    """Where a request goes next: a transport, a host (a name or an address) and a port (RFC 3263 §4, without
    NAPTR/SRV: the URI's ``transport`` parameter, else UDP; ``sips:`` is TLS)."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        """TCP and TLS carry a message whole or not at all: no retransmissions (RFC 3261 §17)."""
        return self.transport != UDP

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port};transport={self.transport}"


@dataclass(frozen=True)
class SipUri:
    """The routing parts of a ``sip:`` or ``sips:`` URI (§19.1): user, host, port and transport."""

    user: str
    host: str
    port: int = 5060
    transport: str = UDP
    secure: bool = False  # sips: TLS on every hop (§26.2.2)

    @classmethod
    def parse(cls, uri: str) -> SipUri:
        match = _URI.match(uri.strip())
        if not match:
            raise SipParseError(f"not a SIP URI: {uri!r}")
        scheme, user, host, port, params = match.groups()
        secure = scheme.lower() == "sips"
        transport = header_params(";" + params.lstrip(";")).get("transport", "").lower() if params else ""
        if secure:
            if transport not in ("", TCP, TLS):
                raise SipParseError(f"a sips: URI cannot use transport={transport}: {uri!r}")
            transport = TLS  # sips: over TCP is TLS
        transport = transport or UDP
        if transport not in TRANSPORTS:
            raise SipParseError(f"unsupported transport {transport!r} in {uri!r}")
        number = int(port) if port else DEFAULT_PORTS[transport]
        if not 0 < number < 65536:
            raise SipParseError(f"bad port in {uri!r}")
        return cls(user=user or "", host=host.strip("[]"), port=number, transport=transport, secure=secure)

    @property
    def hop(self) -> Hop:
        return Hop(self.transport, self.host, self.port)

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.secure:
            return f"sips:{user}{host}:{self.port}"
        transport = "" if self.transport == UDP else f";transport={self.transport}"
        return f"sip:{user}{host}:{self.port}{transport}"


def local_response(request: SipMessage, status: int, reason: str) -> SipMessage:
    """What the transaction user sees when a request got no response at all (§8.1.3.1: 408 or 503)."""
    response = response_to(request, status, reason)
    response.local = True
    return response


def response_to(request: SipMessage, status: int, reason: str, *, to_tag: str = "") -> SipMessage:
    """A response carrying the request's Via, From, To (tagged when asked), Call-ID and CSeq (§8.2.6.2)."""
    response = SipMessage(status=status, reason=reason)
    for value in request.get_all("via"):
        response.add("via", value)
    response.add("from", request.get("from"))
    to = request.get("to")
    if to_tag and "tag=" not in to:
        to = f"{to};tag={to_tag}"
    response.add("to", to)
    response.add("call-id", request.call_id)
    response.add("cseq", request.get("cseq"))
    return response
