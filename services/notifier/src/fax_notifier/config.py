"""notifier settings, read once from ``FAX_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from fax_runtime.config import ConfigError, RuntimeSettings, env_bool, env_int, env_str


class SmtpSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The relay notification emails go through."""

    host: str = "127.0.0.1"
    port: int = 25
    # "starttls" upgrades a plain connection, "tls" is implicit TLS (port 465), "none" is plain (a local relay).
    security: str = "none"
    username: str = ""
    password: str = ""
    sender: str = "fax@localhost"
    timeout: float = 30.0
    validate_certs: bool = True

    def __repr__(self) -> str:  # keep the password out of logs
        return f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r})"


class SmsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Which SMS provider to use: "" (none), "twilio" or "http"."""

    provider: str = ""
    twilio_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    sender: str = ""
    http_url: str = ""
    # string.Template with $to, $from_number and $text, each substituted JSON-escaped (quotes included).
    http_body_template: str = '{"to": $to, "from": $from_number, "text": $text}'
    http_bearer_token: str = ""

    def __repr__(self) -> str:
        return f"SmsSettings(provider={self.provider!r})"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    runtime: RuntimeSettings
    health_host: str = "127.0.0.1"
    health_port: int = 8003
    smtp: SmtpSettings = msgspec.field(default_factory=SmtpSettings)
    sms: SmsSettings = msgspec.field(default_factory=SmsSettings)
    # "pdf" (converted from the TIFF when no PDF copy is stored), "tiff" or "none".
    attachment: str = "pdf"
    callback_retry_interval: float = 15 * 60.0
    callback_retry_for: float = 48 * 3600.0
    # Email and SMS retry transient failures on the same schedule as callbacks unless told otherwise.
    message_retry_interval: float = 15 * 60.0
    message_retry_for: float = 48 * 3600.0
    sweep_interval: float = 5.0
    # How long a claimed delivery stays invisible to the sweeper: longer than any single send may take. A delivery
    # whose notifier died before closing it is sent again (same delivery id) once it runs out.
    claim_lease: float = 300.0
    # An outcome with nothing planned this long after it happened (its event lost) is planned by the reconciler.
    reconcile_after: float = 300.0
    allow_networks: str = ""
    public_name: str = "Fax"
    # Where callback receivers reach the API: receive callbacks carry signed links to the fax's PDF under it.
    public_api_url: str = "http://127.0.0.1:8000"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        security = env_str(env, "FAX_SMTP_SECURITY", "none").lower()
        if security not in {"none", "starttls", "tls"}:
            raise ConfigError(f"FAX_SMTP_SECURITY must be none, starttls or tls, got {security!r}")
        attachment = env_str(env, "FAX_NOTIFY_ATTACHMENT", "pdf").lower()
        if attachment not in {"pdf", "tiff", "none"}:
            raise ConfigError(f"FAX_NOTIFY_ATTACHMENT must be pdf, tiff or none, got {attachment!r}")
        provider = env_str(env, "FAX_SMS_PROVIDER", "").lower()
        if provider not in {"", "twilio", "http"}:
            raise ConfigError(f"FAX_SMS_PROVIDER must be twilio or http, got {provider!r}")
        callback_interval = env_int(env, "FAX_CALLBACK_RETRY_INTERVAL", 15 * 60)
        claim_lease = env_int(env, "FAX_NOTIFY_CLAIM_LEASE", 300)
        if claim_lease < 10:
            raise ConfigError(f"FAX_NOTIFY_CLAIM_LEASE must be at least 10 seconds, got {claim_lease}")
        callback_for = env_int(env, "FAX_CALLBACK_RETRY_FOR", 48 * 3600)
        return cls(
            runtime=RuntimeSettings.from_env(env),
            health_host=env_str(env, "FAX_NOTIFIER_HEALTH_HOST", "127.0.0.1"),
            health_port=env_int(env, "FAX_NOTIFIER_HEALTH_PORT", 8003),
            smtp=SmtpSettings(
                host=env_str(env, "FAX_SMTP_HOST", "127.0.0.1"),
                port=env_int(env, "FAX_SMTP_PORT", 465 if security == "tls" else 25),
                security=security,
                username=env_str(env, "FAX_SMTP_USERNAME", ""),
                password=env_str(env, "FAX_SMTP_PASSWORD", ""),
                sender=env_str(env, "FAX_SMTP_FROM", "fax@localhost"),
                timeout=float(env_int(env, "FAX_SMTP_TIMEOUT", 30)),
                validate_certs=env_bool(env, "FAX_SMTP_VALIDATE_CERTS", True),
            ),
            sms=SmsSettings(
                provider=provider,
                twilio_base_url=env_str(env, "FAX_SMS_TWILIO_BASE_URL", "https://api.twilio.com"),
                twilio_account_sid=env_str(env, "FAX_SMS_TWILIO_ACCOUNT_SID", ""),
                twilio_auth_token=env_str(env, "FAX_SMS_TWILIO_AUTH_TOKEN", ""),
                sender=env_str(env, "FAX_SMS_FROM", ""),
                http_url=env_str(env, "FAX_SMS_HTTP_URL", ""),
                http_body_template=env_str(
                    env, "FAX_SMS_HTTP_BODY_TEMPLATE", '{"to": $to, "from": $from_number, "text": $text}'
                ),
                http_bearer_token=env_str(env, "FAX_SMS_HTTP_BEARER_TOKEN", ""),
            ),
            attachment=attachment,
            callback_retry_interval=float(callback_interval),
            callback_retry_for=float(callback_for),
            message_retry_interval=float(env_int(env, "FAX_NOTIFY_RETRY_INTERVAL", callback_interval)),
            message_retry_for=float(env_int(env, "FAX_NOTIFY_RETRY_FOR", callback_for)),
            sweep_interval=float(env_int(env, "FAX_NOTIFY_SWEEP_INTERVAL", 5)),
            claim_lease=float(claim_lease),
            reconcile_after=float(env_int(env, "FAX_NOTIFY_RECONCILE_AFTER", 300)),
            allow_networks=env_str(env, "FAX_FETCH_ALLOW_NETWORKS", ""),
            public_name=env_str(env, "FAX_NOTIFY_PUBLIC_NAME", "Fax"),
            public_api_url=env_str(env, "FAX_PUBLIC_API_URL", "http://127.0.0.1:8000").rstrip("/"),
        )
