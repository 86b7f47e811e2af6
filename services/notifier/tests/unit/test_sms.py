"""SMS provider request shapes and error classification."""

from __future__ import annotations

import json

from fax_notifier.config import SmsSettings
from fax_notifier.http import GuardedHttp
from fax_notifier.sms import HttpJsonSms, _permanent_on_client_error, basic_auth
from fax_notifier.transport import Outcome, SendResult
from fax_runtime.network_guard import NetworkGuard


def test_json_body_template_escapes_values() -> None:
    settings = SmsSettings(provider="http", sender="+1555", http_body_template='{"dst": $to, "msg": $text}')
    provider = HttpJsonSms(settings, GuardedHttp(NetworkGuard()))
    assert json.loads(provider.body("+1666", 'say "hi"\n')) == {"dst": "+1666", "msg": 'say "hi"\n'}


def test_basic_auth_header() -> None:
    assert basic_auth(SmsSettings(twilio_account_sid="AC1", twilio_auth_token="t")) == "Basic QUMxOnQ="


def test_client_errors_are_permanent_except_rate_limits() -> None:
    assert _permanent_on_client_error(SendResult(Outcome.RETRY, "HTTP 400 bad number")).outcome is Outcome.FAILED
    assert _permanent_on_client_error(SendResult(Outcome.RETRY, "HTTP 429 slow down")).outcome is Outcome.RETRY
    assert _permanent_on_client_error(SendResult(Outcome.RETRY, "HTTP 503")).outcome is Outcome.RETRY
