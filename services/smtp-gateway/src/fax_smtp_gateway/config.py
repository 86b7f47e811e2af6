"""smtp_gateway settings."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from fax_runtime.config import RuntimeSettings, env_int, env_str


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    runtime: RuntimeSettings
    health_host: str = "127.0.0.1"
    health_port: int = 8004

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            runtime=RuntimeSettings.from_env(env),
            health_host=env_str(env, "FAX_SMTP_GATEWAY_HEALTH_HOST", "127.0.0.1"),
            health_port=env_int(env, "FAX_SMTP_GATEWAY_HEALTH_PORT", 8004),
        )
