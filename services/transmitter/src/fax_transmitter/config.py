"""Transmitter settings (``FAX_*``, ``FAX_TRANSMITTER_*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from fax_runtime.config import ConfigError, RuntimeSettings, env_bool, env_int, env_str

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


class SipLineConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How the ``sip`` line reaches the telephone network (a trunk, a PBX, or faxsim on the embedded default)."""

    bind: tuple[str, int] = ("127.0.0.1", 5060)
    contact_host: str | None = None
    trunk: tuple[str, int] = ("127.0.0.1", 5070)
    username: str | None = None
    password: str | None = None
    register: bool = False
    media_host: str = "127.0.0.1"
    media_ports: tuple[int, int] = (40000, 40999)
    t38: bool = True
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
        return cls(
            bind=bind,
            contact_host=env_str(env, "FAX_SIP_CONTACT_HOST", "") or None,
            trunk=host_port(env_str(env, "FAX_SIP_TRUNK", "127.0.0.1:5070"), "FAX_SIP_TRUNK", 5060),
            username=env_str(env, "FAX_SIP_USERNAME", "") or None,
            password=env_str(env, "FAX_SIP_PASSWORD", "") or None,
            register=env_bool(env, "FAX_SIP_REGISTER", False),
            media_host=env_str(env, "FAX_RTP_HOST", "") or env_str(env, "FAX_SIP_CONTACT_HOST", "") or bind[0],
            media_ports=(first, last),
            t38=env_bool(env, "FAX_T38", True),
            ring_timeout_s=env_int(env, "FAX_RING_TIMEOUT", 60),
            dsp_workers=dsp_workers,
            dsp_realtime=env_bool(env, "FAX_DSP_REALTIME", True),
        )


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
    call_lease_s: int = 60  # renewed every third of it while a call runs
    drain_s: int = 900  # how long a stopping transmitter lets its calls finish
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
