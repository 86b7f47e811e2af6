"""API settings (``FAX_*`` and ``FAX_API_*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from fax_runtime.config import RuntimeSettings, env_int, env_str


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    runtime: RuntimeSettings
    host: str = "127.0.0.1"
    port: int = 8000
    # Health URLs of the other services; /healthz is 200 only when each answers 200 (set by the embedded default).
    ready_peers: tuple[str, ...] = ()
    smtp_domain: str = "fax.localhost"
    # Largest fax upload (multipart create) accepted; larger answers 413.
    max_upload_bytes: int = 20 * 1024 * 1024
    # Networks the guard lets tenant URLs reach (Fax.to remote files, callback URLs checked on write).
    allow_networks: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if env is None else env
        peers = tuple(p.strip() for p in env.get("FAX_API_READY_PEERS", "").split(",") if p.strip())
        return cls(
            runtime=RuntimeSettings.from_env(env),
            host=env_str(env, "FAX_API_HOST", "127.0.0.1"),
            port=env_int(env, "FAX_API_PORT", 8000),
            ready_peers=peers,
            smtp_domain=env_str(env, "FAX_SMTP_DOMAIN", "fax.localhost"),
            max_upload_bytes=env_int(env, "FAX_API_MAX_UPLOAD_BYTES", 20 * 1024 * 1024),
            allow_networks=env_str(env, "FAX_FETCH_ALLOW_NETWORKS", ""),
        )
