"""SMTP gateway settings (``FAX_SMTP_GATEWAY_*`` and the intake limits)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from fax_runtime.config import RuntimeSettings, env_bool, env_int, env_str


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    runtime: RuntimeSettings
    host: str = "127.0.0.1"
    port: int = 19025
    max_message_bytes: int = 10 * 1024 * 1024
    max_sessions: int = 50
    # Recipients (faxes) one message may have; RCPT beyond it gets 452 4.5.3 and the client sends them later.
    max_recipients: int = 100
    tls_cert: str | None = None
    tls_key: str | None = None
    # A faxbox with an empty smtp_permission_list refuses everyone unless this (or its own smtp_allow_all) is set.
    allow_all: bool = False
    health_host: str = "127.0.0.1"
    health_port: int = 8004

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            runtime=RuntimeSettings.from_env(env),
            host=env_str(env, "FAX_SMTP_GATEWAY_HOST", "127.0.0.1"),
            port=env_int(env, "FAX_SMTP_GATEWAY_PORT", 19025),
            max_message_bytes=env_int(env, "FAX_SMTP_MAX_MESSAGE_BYTES", 10 * 1024 * 1024),
            max_sessions=env_int(env, "FAX_SMTP_MAX_SESSIONS", 50),
            max_recipients=env_int(env, "FAX_SMTP_MAX_RECIPIENTS", 100),
            tls_cert=env_str(env, "FAX_SMTP_TLS_CERT", "") or None,
            tls_key=env_str(env, "FAX_SMTP_TLS_KEY", "") or None,
            allow_all=env_bool(env, "FAX_SMTP_ALLOW_ALL", False),
            health_host=env_str(env, "FAX_SMTP_GATEWAY_HEALTH_HOST", "127.0.0.1"),
            health_port=env_int(env, "FAX_SMTP_GATEWAY_HEALTH_PORT", 8004),
        )
