"""Transmitter settings (``FAX_*``, ``FAX_TRANSMITTER_*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from fax_runtime.config import ConfigError, RuntimeSettings, env_int, env_str

LINES = ("loopback",)


class TransmitterSettings(msgspec.Struct, frozen=True, kw_only=True):
    runtime: RuntimeSettings
    line: str = "loopback"
    loopback_received_dir: Path = Path(".devstack/loopback/received")
    station_ident: str = ""
    retry_delay_s: int = 60
    health_host: str = "127.0.0.1"
    health_port: int = 8002

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TransmitterSettings:
        env = os.environ if env is None else env
        line = env_str(env, "FAX_LINE", "loopback")
        if line not in LINES:
            raise ConfigError(f"FAX_LINE={line!r} is not available; choose one of {', '.join(LINES)}")
        return cls(
            runtime=RuntimeSettings.from_env(env),
            line=line,
            loopback_received_dir=Path(env_str(env, "FAX_LOOPBACK_RECEIVED_DIR", ".devstack/loopback/received")),
            station_ident=env_str(env, "FAX_STATION_IDENT", ""),
            retry_delay_s=env_int(env, "FAX_RETRY_DELAY", 60),
            health_host=env_str(env, "FAX_TRANSMITTER_HEALTH_HOST", "127.0.0.1"),
            health_port=env_int(env, "FAX_TRANSMITTER_HEALTH_PORT", 8002),
        )
