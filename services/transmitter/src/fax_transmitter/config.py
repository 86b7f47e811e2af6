"""Transmitter settings (``FAX_*``, ``FAX_TRANSMITTER_*``)."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from fax_runtime.config import ConfigError, RuntimeSettings, env_bool, env_int, env_str
from fax_sip import SipUri
from fax_sip.message import SipParseError

LINES = ("sip", "loopback")
# A worker process per core is what pays; far more than the cores only adds processes that compete for them.
MAX_DSP_WORKERS = 64


def host_port(value: str, name: str, default_port: int) -> tuple[str, int]:
    """``host`` or ``host:port`` (a ``sip:`` prefix is tolerated), as the SIP settings take them."""
    text = value.removeprefix("sip:").split(";")[0]
    host, _, port = text.rpartition(":") if ":" in text else (text, "", str(default_port))
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}={value!r} is not host:port")
    return host, int(port)


T38_POLICIES = ("prefer", "only", "off")


class TrunkConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One trunk (a carrier, an SBC, a PBX, faxsim): where calls go and how that peer wants them.

    ``uri`` is normalised (``sip:host:port``, ``sip:host:port;transport=tcp|tls`` or ``sips:host:port``).
    ``channels`` bounds this transmitter's calls through the trunk at once; ``t38`` is ``prefer`` (ask for T.38, stay
    on G.711 if refused), ``only`` (a call whose T.38 is refused fails) or ``off`` (G.711 only). The dialled number
    loses ``strip_prefix`` and gains ``add_prefix``. The trunk is probed with OPTIONS every ``probe_interval_s``
    (0: never) and skipped while it does not answer; a call to it that hears nothing within ``response_timeout_s``
    goes to the next trunk.
    """

    name: str
    uri: str
    username: str | None = None
    password: str | None = None
    register: bool = False
    channels: int | None = None
    t38: str = "prefer"
    strip_prefix: str = ""
    add_prefix: str = ""
    probe_interval_s: float = 30.0
    response_timeout_s: float = 8.0

    def __repr__(self) -> str:  # keep the password out of logs
        return f"TrunkConfig(name={self.name!r}, uri={self.uri!r}, username={self.username!r})"

    @classmethod
    def at(cls, text: str, **settings: Any) -> TrunkConfig:
        """A trunk at ``text`` (as FAX_SIP_TRUNK writes one), with ``settings``: for tests and benchmarks."""
        uri = trunk_uri(text, "trunk")
        return cls(name=settings.pop("name", uri), uri=uri, **settings)

    @property
    def sip_uri(self) -> SipUri:
        return SipUri.parse(self.uri)

    def dial_number(self, number: str) -> str:
        """The number as this trunk wants it dialled."""
        if self.strip_prefix and number.startswith(self.strip_prefix):
            number = number[len(self.strip_prefix) :]
        return self.add_prefix + number

    def target(self, number: str) -> str:
        """The Request-URI calling ``number`` through this trunk."""
        uri = self.sip_uri
        return str(SipUri(self.dial_number(number), uri.host, uri.port, uri.transport, uri.secure))


class _TrunkEntry(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One ``[[trunk]]`` of FAX_SIP_TRUNKS_FILE, as written."""

    uri: str
    name: str | None = None
    username: str | None = None
    password: str | None = None
    register: bool | None = None
    channels: Annotated[int, msgspec.Meta(ge=1)] | None = None
    t38: Literal["prefer", "only", "off"] | None = None
    strip_prefix: str = ""
    add_prefix: str = ""
    probe_interval: Annotated[float, msgspec.Meta(ge=0)] | None = None
    response_timeout: Annotated[float, msgspec.Meta(gt=0)] | None = None


def trunk_uri(text: str, where: str) -> str:
    """A trunk as FAX_SIP_TRUNK or the trunks file writes it, normalised; a bare ``host[:port]`` is UDP."""
    text = text.strip()
    if not text.lower().startswith(("sip:", "sips:")):
        text = f"sip:{text}"
    try:
        uri = SipUri.parse(text)
    except SipParseError as error:
        raise ConfigError(f"{where}: {error}") from None
    if uri.user or not uri.host:
        raise ConfigError(f"{where}: {text!r} is not a trunk (host, port and transport only)")
    return str(uri)


class TrunkDefaults(msgspec.Struct, frozen=True, kw_only=True):
    """What a trunk the trunks file does not configure gets (FAX_SIP_USERNAME, FAX_SIP_PASSWORD, FAX_SIP_REGISTER,
    FAX_T38, FAX_SIP_TRUNK_TIMEOUT, FAX_SIP_PROBE_INTERVAL)."""

    username: str | None = None
    password: str | None = None
    register: bool = False
    t38: str = "prefer"
    response_timeout_s: float = 8.0
    probe_interval_s: float = 30.0

    def __repr__(self) -> str:
        return f"TrunkDefaults(username={self.username!r}, register={self.register}, t38={self.t38!r})"


def parse_trunks(listed: str, file: Path | None, defaults: TrunkDefaults) -> tuple[TrunkConfig, ...]:
    """The trunks in priority order: FAX_SIP_TRUNK's comma-separated list, each configured by the entry of the trunks
    file with the same URI; without the list, the file's entries in its order. Anything wrong names its entry."""
    entries = _read_trunks_file(file) if file is not None else []
    by_uri: dict[str, _TrunkEntry] = {}
    for index, entry in enumerate(entries, 1):
        uri = trunk_uri(entry.uri, f"{file}: trunk {index}")
        if uri in by_uri:
            raise ConfigError(f"{file}: trunk {index} ({uri}) is configured twice")
        by_uri[uri] = entry
    items = [item.strip() for item in listed.split(",")] if listed.strip() else []
    if not all(items):
        raise ConfigError(f"FAX_SIP_TRUNK={listed!r} has an empty entry")
    order = [trunk_uri(item, f"FAX_SIP_TRUNK entry {index} ({item!r})") for index, item in enumerate(items, 1)]
    if not order:
        order = list(by_uri)
    if not order:
        raise ConfigError("no trunk: set FAX_SIP_TRUNK (or FAX_SIP_TRUNKS_FILE)")
    if len(set(order)) != len(order):
        raise ConfigError(f"FAX_SIP_TRUNK={listed!r} names a trunk twice")
    for uri in by_uri:
        if uri not in order:
            raise ConfigError(f"{file}: the trunk {uri} is not in FAX_SIP_TRUNK={listed!r}")
    trunks = []
    for uri in order:
        entry = by_uri.get(uri) or _TrunkEntry(uri=uri)
        probe = entry.probe_interval
        trunks.append(
            TrunkConfig(
                name=entry.name or uri,
                uri=uri,
                username=entry.username if entry.username is not None else defaults.username,
                password=entry.password if entry.password is not None else defaults.password,
                register=entry.register if entry.register is not None else defaults.register,
                channels=entry.channels,
                t38=entry.t38 or defaults.t38,
                strip_prefix=entry.strip_prefix,
                add_prefix=entry.add_prefix,
                probe_interval_s=probe if probe is not None else defaults.probe_interval_s,
                response_timeout_s=entry.response_timeout or defaults.response_timeout_s,
            )
        )
    names = [trunk.name for trunk in trunks]
    if len(set(names)) != len(names):
        raise ConfigError(f"{file}: two trunks have the same name")
    return tuple(trunks)


def _read_trunks_file(path: Path) -> list[_TrunkEntry]:
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"FAX_SIP_TRUNKS_FILE={path}: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"FAX_SIP_TRUNKS_FILE={path}: not TOML: {error}") from None
    unknown = set(document) - {"trunk"}
    if unknown:
        raise ConfigError(f"{path}: unknown table or key {sorted(unknown)[0]!r}; trunks are [[trunk]] entries")
    raw = document.get("trunk", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: trunks are [[trunk]] entries")
    entries = []
    for index, item in enumerate(raw, 1):
        where = f"{path}: trunk {index}" + (f" ({item.get('uri')})" if isinstance(item, dict) and "uri" in item else "")
        try:
            entries.append(msgspec.convert(item, _TrunkEntry))
        except msgspec.ValidationError as error:
            raise ConfigError(f"{where}: {error}") from None
    return entries


class SipLineConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How the ``sip`` line reaches the telephone network (trunks, PBXes, or faxsim on the embedded default)."""

    bind: tuple[str, int] = ("127.0.0.1", 5060)
    contact_host: str | None = None
    trunks: tuple[TrunkConfig, ...] = (TrunkConfig(name="sip:127.0.0.1:5070", uri="sip:127.0.0.1:5070"),)
    tls_port: int | None = None  # a TLS listener on the bind address (when we have a certificate)
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    tls_verify: bool = True
    inbound_allow: tuple[str, ...] = ()  # CIDRs, besides the trunks' own addresses
    media_host: str = "127.0.0.1"
    media_ports: tuple[int, int] = (40000, 40999)
    ring_timeout_s: int = 60
    dsp_workers: int = 0  # media worker processes; 0 = one per core
    dsp_realtime: bool = True  # their DSP and pacer threads under SCHED_FIFO where the process may

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SipLineConfig:
        bind = host_port(env_str(env, "FAX_SIP_BIND", "127.0.0.1:5060"), "FAX_SIP_BIND", 5060)
        first, last = env_int(env, "FAX_RTP_PORT_MIN", 40000), env_int(env, "FAX_RTP_PORT_MAX", 40999)
        if not 0 < first < last < 65536:
            raise ConfigError(f"FAX_RTP_PORT_MIN..FAX_RTP_PORT_MAX must be a range of UDP ports: {first}..{last}")
        dsp_workers = env_int(env, "FAX_DSP_WORKERS", 0)
        if not 0 <= dsp_workers <= MAX_DSP_WORKERS:
            raise ConfigError(f"FAX_DSP_WORKERS must be 0 (one per core) to {MAX_DSP_WORKERS}, got {dsp_workers}")
        defaults = TrunkDefaults(
            username=env_str(env, "FAX_SIP_USERNAME", "") or None,
            password=env_str(env, "FAX_SIP_PASSWORD", "") or None,
            register=env_bool(env, "FAX_SIP_REGISTER", False),
            t38="prefer" if env_bool(env, "FAX_T38", True) else "off",
            response_timeout_s=_positive(env, "FAX_SIP_TRUNK_TIMEOUT", 8.0),
            probe_interval_s=_positive(env, "FAX_SIP_PROBE_INTERVAL", 30.0, zero=True),
        )
        trunks_file = env_str(env, "FAX_SIP_TRUNKS_FILE", "")
        listed = env_str(env, "FAX_SIP_TRUNK", "" if trunks_file else "127.0.0.1:5070")
        trunks = parse_trunks(listed, Path(trunks_file) if trunks_file else None, defaults)
        tls_cert = env_str(env, "FAX_SIP_TLS_CERT", "") or None
        tls_port = env_int(env, "FAX_SIP_TLS_PORT", 5061) if tls_cert else None
        if tls_port is not None and not 0 < tls_port < 65536:
            raise ConfigError(f"FAX_SIP_TLS_PORT={tls_port} is not a port")
        for name in ("FAX_SIP_TLS_CERT", "FAX_SIP_TLS_KEY", "FAX_SIP_TLS_CA"):
            path = env_str(env, name, "")
            if path and not Path(path).is_file():
                raise ConfigError(f"{name}={path}: no such file")
        return cls(
            bind=bind,
            contact_host=env_str(env, "FAX_SIP_CONTACT_HOST", "") or None,
            trunks=trunks,
            tls_port=tls_port,
            tls_cert=tls_cert,
            tls_key=env_str(env, "FAX_SIP_TLS_KEY", "") or None,
            tls_ca=env_str(env, "FAX_SIP_TLS_CA", "") or None,
            tls_verify=env_bool(env, "FAX_SIP_TLS_VERIFY", True),
            inbound_allow=_networks(env_str(env, "FAX_SIP_INBOUND_ALLOW", "")),
            media_host=env_str(env, "FAX_RTP_HOST", "") or env_str(env, "FAX_SIP_CONTACT_HOST", "") or bind[0],
            media_ports=(first, last),
            ring_timeout_s=env_int(env, "FAX_RING_TIMEOUT", 60),
            dsp_workers=dsp_workers,
            dsp_realtime=env_bool(env, "FAX_DSP_REALTIME", True),
        )


def _positive(env: Mapping[str, str], name: str, default: float, *, zero: bool = False) -> float:
    raw = env_str(env, name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < 0 or (value == 0 and not zero):
        raise ConfigError(f"{name} must be {'0 or more' if zero else 'more than 0'} seconds, got {raw!r}")
    return value


def _networks(text: str) -> tuple[str, ...]:
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"FAX_SIP_INBOUND_ALLOW: {item!r} is not an address or a CIDR network") from None
    return tuple(networks)


class TransmitterSettings(msgspec.Struct, frozen=True, kw_only=True):
    runtime: RuntimeSettings
    line: str = "sip"
    sip: SipLineConfig = SipLineConfig()
    loopback_received_dir: Path = Path(".devstack/loopback/received")
    station_ident: str = ""
    retry_delay_s: int = 60
    retry_delay_busy_s: int = 120
    retry_delay_no_answer_s: int = 300
    max_calls_per_account: int = 10
    call_lease_s: int = 60  # renewed every third of it while a call runs (a received fax: until it is filed)
    drain_s: int = 900  # how long a stopping transmitter lets its calls finish and its receptions be filed
    health_host: str = "127.0.0.1"
    health_port: int = 8002

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TransmitterSettings:
        env = os.environ if env is None else env
        line = env_str(env, "FAX_LINE", "sip")
        if line not in LINES:
            raise ConfigError(f"FAX_LINE={line!r} is not available; choose one of {', '.join(LINES)}")
        return cls(
            runtime=RuntimeSettings.from_env(env),
            line=line,
            sip=SipLineConfig.from_env(env) if line == "sip" else SipLineConfig(),
            loopback_received_dir=Path(env_str(env, "FAX_LOOPBACK_RECEIVED_DIR", ".devstack/loopback/received")),
            station_ident=env_str(env, "FAX_STATION_IDENT", ""),
            retry_delay_s=env_int(env, "FAX_RETRY_DELAY", 60),
            retry_delay_busy_s=env_int(env, "FAX_RETRY_DELAY_BUSY", 120),
            retry_delay_no_answer_s=env_int(env, "FAX_RETRY_DELAY_NO_ANSWER", 300),
            max_calls_per_account=env_int(env, "FAX_MAX_CALLS_PER_ACCOUNT", 10),
            call_lease_s=env_int(env, "FAX_CALL_LEASE", 60),
            drain_s=env_int(env, "FAX_TRANSMITTER_DRAIN", 900),
            health_host=env_str(env, "FAX_TRANSMITTER_HEALTH_HOST", "127.0.0.1"),
            health_port=env_int(env, "FAX_TRANSMITTER_HEALTH_PORT", 8002),
        )
