"""Settings from FAX_* variables."""

from __future__ import annotations

import pytest

from fax_notifier.config import Settings
from fax_runtime.config import ConfigError

BASE = {"FAX_DATABASE_URL": "postgresql://x/db", "FAX_AMQP_URL": "amqp://x/", "FAX_S3_ENDPOINT": "127.0.0.1:9000"}


def test_defaults_follow_faxto_retry_policy() -> None:
    settings = Settings.from_env(BASE)
    assert (settings.callback_retry_interval, settings.callback_retry_for) == (900, 48 * 3600)
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.security) == ("127.0.0.1", 25, "none")
    assert settings.attachment == "pdf" and settings.sms.provider == ""


def test_smtp_and_retry_settings() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "FAX_SMTP_HOST": "relay.example",
            "FAX_SMTP_SECURITY": "TLS",
            "FAX_SMTP_USERNAME": "u",
            "FAX_SMTP_PASSWORD": "secret-pw",
            "FAX_SMTP_FROM": "fax@example.com",
            "FAX_CALLBACK_RETRY_INTERVAL": "60",
            "FAX_CALLBACK_RETRY_FOR": "3600",
            "FAX_NOTIFY_ATTACHMENT": "tiff",
        }
    )
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.security) == ("relay.example", 465, "tls")
    assert settings.smtp.sender == "fax@example.com"
    assert (settings.callback_retry_interval, settings.callback_retry_for) == (60, 3600)
    assert (settings.message_retry_interval, settings.message_retry_for) == (60, 3600)
    assert settings.attachment == "tiff"
    assert "secret-pw" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"), [("FAX_SMTP_SECURITY", "ssl"), ("FAX_NOTIFY_ATTACHMENT", "png"), ("FAX_SMS_PROVIDER", "x")]
)
def test_bad_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({**BASE, name: value})


def test_the_claim_lease_and_the_reconciler_delay_are_settings() -> None:
    settings = Settings.from_env({**BASE, "FAX_NOTIFY_CLAIM_LEASE": "45", "FAX_NOTIFY_RECONCILE_AFTER": "90"})
    assert (settings.claim_lease, settings.reconcile_after) == (45, 90)
    assert (Settings.from_env(BASE).claim_lease, Settings.from_env(BASE).reconcile_after) == (300, 300)
    with pytest.raises(ConfigError, match="FAX_NOTIFY_CLAIM_LEASE"):
        Settings.from_env({**BASE, "FAX_NOTIFY_CLAIM_LEASE": "2"})
