"""SMS providers behind one interface: a Twilio-compatible Messages API and a generic HTTP JSON endpoint."""

from __future__ import annotations

import base64
import json
from string import Template
from typing import Protocol
from urllib.parse import urlencode

from fax_notifier.config import SmsSettings
from fax_notifier.http import GuardedHttp
from fax_notifier.transport import Outcome, SendResult


class SmsProvider(Protocol):
    async def send(self, to: str, text: str) -> SendResult: ...


def basic_auth(settings: SmsSettings) -> str:
    token = base64.b64encode(f"{settings.twilio_account_sid}:{settings.twilio_auth_token}".encode()).decode()
    return f"Basic {token}"


class TwilioSms:
    """``POST {base}/2010-04-01/Accounts/{sid}/Messages.json`` with form fields To, From, Body and basic auth."""

    def __init__(self, settings: SmsSettings, http: GuardedHttp) -> None:
        self._settings = settings
        self._http = http

    async def send(self, to: str, text: str) -> SendResult:
        s = self._settings
        url = f"{s.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/{s.twilio_account_sid}/Messages.json"
        body = urlencode({"To": to, "From": s.sender, "Body": text}).encode()
        result = await self._http.request(
            "POST",
            url,
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic_auth(s)},
        )
        return _permanent_on_client_error(result)


class HttpJsonSms:
    """POST a JSON body built from a template (``$to``, ``$from_number``, ``$text``, each a JSON string)."""

    def __init__(self, settings: SmsSettings, http: GuardedHttp) -> None:
        self._settings = settings
        self._http = http
        self._template = Template(settings.http_body_template)

    def body(self, to: str, text: str) -> bytes:
        values = {"to": json.dumps(to), "from_number": json.dumps(self._settings.sender), "text": json.dumps(text)}
        return self._template.substitute(values).encode()

    async def send(self, to: str, text: str) -> SendResult:
        headers = {"Content-Type": "application/json"}
        if self._settings.http_bearer_token:
            headers["Authorization"] = f"Bearer {self._settings.http_bearer_token}"
        result = await self._http.request("POST", self._settings.http_url, data=self.body(to, text), headers=headers)
        return _permanent_on_client_error(result)


def _permanent_on_client_error(result: SendResult) -> SendResult:
    """A provider's 4xx (bad number, bad credentials) won't heal by retrying; 429 (rate limit) will."""
    if (
        result.outcome is Outcome.RETRY
        and result.detail.startswith("HTTP 4")
        and not result.detail.startswith("HTTP 429")
    ):
        return SendResult(Outcome.FAILED, result.detail)
    return result


def create_sms_provider(settings: SmsSettings, http: GuardedHttp) -> SmsProvider | None:
    if settings.provider == "twilio":
        return TwilioSms(settings, http)
    if settings.provider == "http":
        return HttpJsonSms(settings, http)
    return None
