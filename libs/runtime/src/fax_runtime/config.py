"""Settings common to every service, read once from ``FAX_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

# One request in ten is traced by default: enough to see where time goes, cheap on the intake's hot path.
DEFAULT_TRACE_SAMPLE_RATIO = 0.1


class ConfigError(ValueError):
    """A setting is missing or malformed."""


def env_str(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ConfigError(f"{name} is required")
    return default


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def env_ratio(env: Mapping[str, str], name: str, default: float) -> float:
    """A number from 0 to 1."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:  # also NaN
        raise ConfigError(f"{name} must be a number from 0 to 1, got {raw!r}")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


class S3Settings(msgspec.Struct, frozen=True, kw_only=True):
    endpoint: str
    access_key: str = msgspec.field(default="")
    secret_key: str = msgspec.field(default="")
    bucket: str = "fax"
    secure: bool = False

    def __repr__(self) -> str:  # keep the secret out of logs
        return f"S3Settings(endpoint={self.endpoint!r}, bucket={self.bucket!r}, secure={self.secure})"


class RuntimeSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the shared infrastructure is."""

    database_url: str
    amqp_url: str
    s3: S3Settings
    sandbox: str = "auto"  # FAX_SANDBOX: auto | bwrap | none, how converters are isolated (fax_runtime.sandbox)
    # FAX_TRACE_SAMPLE_RATIO: share of the traces a process starts that are recorded (fax_runtime.telemetry).
    trace_sample_ratio: float = DEFAULT_TRACE_SAMPLE_RATIO

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimeSettings:
        env = os.environ if env is None else env
        return cls(
            database_url=env_str(env, "FAX_DATABASE_URL"),
            amqp_url=env_str(env, "FAX_AMQP_URL"),
            s3=S3Settings(
                endpoint=env_str(env, "FAX_S3_ENDPOINT"),
                access_key=env_str(env, "FAX_S3_ACCESS_KEY", ""),
                secret_key=env_str(env, "FAX_S3_SECRET_KEY", ""),
                bucket=env_str(env, "FAX_S3_BUCKET", "fax"),
                secure=env_bool(env, "FAX_S3_SECURE", False),
            ),
            sandbox=env_str(env, "FAX_SANDBOX", "auto"),
            trace_sample_ratio=env_ratio(env, "FAX_TRACE_SAMPLE_RATIO", DEFAULT_TRACE_SAMPLE_RATIO),
        )
