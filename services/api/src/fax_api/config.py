"""API settings (``FAX_*``, ``FAX_API_*``, and the dialects' ``FAX_FAXTO_*`` and ``FAX_VOIPNOW_*``), read once."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TypeVar

import msgspec

from fax_runtime.config import ConfigError, RuntimeSettings, env_int, env_str

N = TypeVar("N", Decimal, float)


class FaxtoSettings(msgspec.Struct, frozen=True, kw_only=True):
    # What a newly registered Fax.to user may spend before any top-up.
    signup_credit: Decimal = Decimal(0)
    # How long file-generate-preview waits for the fetcher to draw a new file's previews, in seconds.
    preview_wait: float = 15.0


class VoipNowSettings(msgspec.Struct, frozen=True, kw_only=True):
    # Files and recipients one UAPI create-faxes request may carry.
    max_files: int = 10
    max_recipients: int = 50


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    runtime: RuntimeSettings
    host: str = "127.0.0.1"
    port: int = 8000
    # Processes serving the API (uvicorn workers), each with its own pool, token cache and outbox relay.
    workers: int = 1
    # How long a looked-up auth token is trusted without asking Postgres again (0: every request asks). A token
    # revoked by another API process, or deleted in the database, still works this long in this one.
    auth_cache_seconds: float = 5.0
    # Health URLs of the other services; /healthz is 200 only when each answers 200 (set by the embedded default).
    ready_peers: tuple[str, ...] = ()
    smtp_domain: str = "fax.localhost"
    # Largest fax upload (multipart create) accepted; larger answers 413.
    max_upload_bytes: int = 20 * 1024 * 1024
    # Networks the guard lets tenant URLs reach (Fax.to remote files, callback URLs checked on write).
    allow_networks: str = ""
    faxto: FaxtoSettings = FaxtoSettings()
    voipnow: VoipNowSettings = VoipNowSettings()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if env is None else env
        peers = tuple(p.strip() for p in env.get("FAX_API_READY_PEERS", "").split(",") if p.strip())
        return cls(
            runtime=RuntimeSettings.from_env(env),
            host=env_str(env, "FAX_API_HOST", "127.0.0.1"),
            port=env_int(env, "FAX_API_PORT", 8000),
            workers=_env_workers(env),
            auth_cache_seconds=_env_seconds(env, "FAX_API_AUTH_CACHE_SECONDS", 5.0),
            ready_peers=peers,
            smtp_domain=env_str(env, "FAX_SMTP_DOMAIN", "fax.localhost"),
            max_upload_bytes=env_int(env, "FAX_API_MAX_UPLOAD_BYTES", 20 * 1024 * 1024),
            allow_networks=env_str(env, "FAX_FETCH_ALLOW_NETWORKS", ""),
            faxto=FaxtoSettings(
                signup_credit=_env_number(env, "FAX_FAXTO_SIGNUP_CREDIT", Decimal(0), Decimal),
                preview_wait=_env_number(env, "FAX_FAXTO_PREVIEW_WAIT", 15.0, float),
            ),
            voipnow=VoipNowSettings(
                max_files=env_int(env, "FAX_VOIPNOW_MAX_FILES", 10),
                max_recipients=env_int(env, "FAX_VOIPNOW_MAX_RECIPIENTS", 50),
            ),
        )


def _env_workers(env: Mapping[str, str]) -> int:
    workers = env_int(env, "FAX_API_WORKERS", 1)
    if workers < 1:
        raise ConfigError(f"FAX_API_WORKERS must be at least 1, got {workers}")
    return workers


def _env_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    seconds = _env_number(env, name, default, float)
    if not seconds >= 0:  # also NaN
        raise ConfigError(f"{name} must be a number of seconds (0 or more), got {seconds}")
    return seconds


def _env_number(env: Mapping[str, str], name: str, default: N, number: Callable[[str], N]) -> N:
    raw = env_str(env, name, "")
    try:
        return number(raw) if raw else default
    except (ValueError, ArithmeticError):  # decimal.InvalidOperation is an ArithmeticError
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
