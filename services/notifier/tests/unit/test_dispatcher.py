"""The dispatcher's bookkeeping with fakes for the store and the transports: sent, retried, given up."""

from __future__ import annotations

import json
import uuid
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs

import pytest

from fax_notifier.dispatcher import DELIVERY_ID_HEADER, SIGNATURE_HEADER, Dispatcher
from fax_notifier.domain import Channel, Kind, verify
from fax_notifier.store import ClaimedDelivery
from fax_notifier.transport import Outcome, SendResult
from fax_runtime.transient import RetryPolicy


class FakeStore:
    def __init__(self, away: int = 0) -> None:
        self.finished: list[tuple[int, str, str]] = []
        self.retried: list[tuple[int, str, float]] = []
        self.away = away  # Postgres is away for that many writes

    async def finish(self, delivery: ClaimedDelivery, status: str, detail: str) -> None:
        if self.away:
            self.away -= 1
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        self.finished.append((delivery.id, status, detail))

    async def retry_later(self, delivery: ClaimedDelivery, detail: str, interval: float) -> None:
        self.retried.append((delivery.id, detail, interval))

    async def callback_secret(self, account_id: str) -> str:
        return "s3cret"


class FakeMailer:
    def __init__(self, *results: SendResult) -> None:
        self.results = list(results)
        self.sent: list[tuple[EmailMessage, str]] = []

    async def send(self, message: EmailMessage, recipient: str) -> SendResult:
        self.sent.append((message, recipient))
        return self.results.pop(0)


class FakeHttp:
    def __init__(self, result: SendResult) -> None:
        self.result = result
        self.requests: list[tuple[str, str, bytes, dict[str, str]]] = []

    async def request(self, method: str, url: str, *, data: bytes, headers: dict[str, str]) -> SendResult:
        self.requests.append((method, url, data, headers))
        return self.result


class NoAttachments:
    async def for_job(self, job_id: str, tiff: str | None = None) -> None:
        return None


def _dispatcher(store: FakeStore, mailer: Any = None, http: Any = None) -> Dispatcher:
    return Dispatcher(
        store,  # type: ignore[arg-type]
        mailer or FakeMailer(),
        http or FakeHttp(SendResult(Outcome.SENT)),
        None,
        NoAttachments(),  # type: ignore[arg-type]
        sender="fax@x.example",
        callback_retry_interval=900,
        message_retry_interval=600,
        lease=300,
    )


def _delivery(channel: Channel, recipient: str, payload: dict[str, Any], *, expired: bool = False) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=7,
        delivery_key=KEY,
        event_id=uuid.uuid4(),
        channel=channel,
        recipient=recipient,
        kind=Kind.OUTBOUND_SUCCESS,
        account_id="acct",
        job_id=uuid.uuid4(),
        payload=payload,
        attempts=1,
        expired=expired,
    )


KEY = uuid.UUID("6f1c1a52-8d6e-4a0e-9d8c-2b1e3a4f5d60")
EMAIL = {"context": {"to_number": "+1555", "pages": 1}, "attach_fax_of": "j", "tiff_key": None}


async def test_email_sent_is_finished() -> None:
    store, mailer = FakeStore(), FakeMailer(SendResult(Outcome.SENT, "250 ok"))
    await _dispatcher(store, mailer).deliver(_delivery(Channel.EMAIL, "a@x.example", EMAIL))
    assert store.finished == [(7, "sent", "250 ok")] and store.retried == []
    assert mailer.sent[0][0]["To"] == "a@x.example"


async def test_transient_failure_is_rescheduled_on_the_channel_interval() -> None:
    store = FakeStore()
    await _dispatcher(store, FakeMailer(SendResult(Outcome.RETRY, "421 busy"))).deliver(
        _delivery(Channel.EMAIL, "a@x.example", EMAIL)
    )
    assert store.retried == [(7, "421 busy", 600)] and store.finished == []


async def test_transient_failure_after_the_deadline_gives_up() -> None:
    store = FakeStore()
    await _dispatcher(store, FakeMailer(SendResult(Outcome.RETRY, "421 busy"))).deliver(
        _delivery(Channel.EMAIL, "a@x.example", EMAIL, expired=True)
    )
    assert store.finished == [(7, "failed", "gave up after 1 attempts: 421 busy")]


async def test_a_crashing_send_is_retried_not_lost() -> None:
    class Broken:
        async def send(self, message: EmailMessage, recipient: str) -> SendResult:
            raise RuntimeError("boom")

    store = FakeStore()
    await _dispatcher(store, Broken()).deliver(_delivery(Channel.EMAIL, "a@x.example", EMAIL))
    assert store.retried == [(7, "RuntimeError: boom", 600)]


async def test_callback_is_signed_and_uses_the_callback_interval() -> None:
    store, http = FakeStore(), FakeHttp(SendResult(Outcome.RETRY, "HTTP 503"))
    payload = {"method": "put", "body_type": "json", "fields": {"fax_job_id": "j", "status": "success"}}
    await _dispatcher(store, http=http).deliver(_delivery(Channel.CALLBACK, "https://x.example/cb", payload))
    method, url, body, headers = http.requests[0]
    assert (method, url) == ("put", "https://x.example/cb")
    assert verify("s3cret", headers[SIGNATURE_HEADER], body, now=int(headers[SIGNATURE_HEADER][2:12]))
    assert store.retried == [(7, "HTTP 503", 900)]


async def test_sms_without_a_provider_fails_rather_than_retrying_for_two_days() -> None:
    store = FakeStore()
    await _dispatcher(store).deliver(_delivery(Channel.SMS, "+15551234567", {"context": {}}))
    assert store.finished[0][1] == "failed"


async def test_every_callback_carries_its_delivery_id_in_a_header_and_in_the_signed_body() -> None:
    """Before the fix callbacks carried nothing a receiver could deduplicate a resend by."""
    store, http = FakeStore(), FakeHttp(SendResult(Outcome.RETRY, "HTTP 503"))
    payload = {"method": "post", "body_type": "json", "fields": {"fax_job_id": "j", "status": "success"}}
    dispatcher = _dispatcher(store, http=http)
    for _ in range(2):  # a retry of the same notification
        await dispatcher.deliver(_delivery(Channel.CALLBACK, "https://x.example/cb", payload))

    for _, _, body, headers in http.requests:
        assert headers[DELIVERY_ID_HEADER] == str(KEY)
        assert json.loads(body) == {"fax_job_id": "j", "status": "success", "delivery_id": str(KEY)}
        assert verify("s3cret", headers[SIGNATURE_HEADER], body, now=int(headers[SIGNATURE_HEADER][2:12]))
    form = {**payload, "body_type": "form"}
    await dispatcher.deliver(_delivery(Channel.CALLBACK, "https://x.example/cb", form))
    assert parse_qs(http.requests[-1][2].decode())["delivery_id"] == [str(KEY)]


async def test_a_sent_delivery_is_closed_even_if_postgres_blips_as_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the fix the close failed once and was given up: the delivery stayed claimed, and was sent again when
    its lease ran out."""
    from fax_notifier import dispatcher

    monkeypatch.setattr(dispatcher, "UNBOUNDED", RetryPolicy(first_delay_s=0.001, give_up_after_s=None))
    store = FakeStore(away=3)
    http = FakeHttp(SendResult(Outcome.SENT, "HTTP 200"))
    payload = {"method": "post", "body_type": "json", "fields": {"fax_job_id": "j"}}

    await _dispatcher(store, http=http).deliver(_delivery(Channel.CALLBACK, "https://x.example/cb", payload))

    assert (len(http.requests), store.finished, store.retried) == (1, [(7, "sent", "HTTP 200")], [])
