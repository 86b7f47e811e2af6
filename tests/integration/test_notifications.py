"""Notifications against real services on loopback: Postgres and S3 from the fixtures, an aiosmtpd SMTP server,
aiohttp receivers for callbacks and SMS providers. The notifier's handlers are driven directly with events."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import json
import re
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aio_pika
import aiohttp.web
import asyncpg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from PIL import Image

from fax_contracts import (
    EXCHANGE,
    DocumentFailed,
    InboundFailed,
    InboundReceived,
    IntakeRejected,
    TransmissionCompleted,
    TransmissionFailed,
    encode_event,
    routing_key,
)
from fax_devstack.infra import Endpoints
from fax_notifier.app import Notifier, create_worker
from fax_notifier.config import Settings, SmsSettings, SmtpSettings
from fax_notifier.domain import verify
from fax_notifier.store import NotifierStore
from fax_runtime.blobs import BlobStore
from fax_runtime.broker import create_broker, dead_letter_queue, declare_dead_letters, event_queue
from fax_runtime.config import RuntimeSettings, S3Settings
from fax_runtime.db import create_pool
from fax_runtime.worker import WorkerContext

REFUSED = "nobody@refused.example"


@dataclass
class SmtpSink:
    """Collects every message; refuses ``REFUSED`` with a permanent 550."""

    messages: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address == REFUSED:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    # aiosmtpd's Controller probes its own port after starting, so it needs a real one rather than 0.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@dataclass
class Receiver:
    """An HTTP endpoint recording requests; answers 500 to the first ``failures`` of them."""

    failures: int = 0
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        body = await request.read()
        self.requests.append((request.method, request.path, dict(request.headers), body))
        if len(self.requests) <= self.failures:
            return aiohttp.web.Response(status=500, text="not now")
        return aiohttp.web.json_response({"sid": "SM1", "status": "queued"}, status=201)


@pytest.fixture
async def http_receiver() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    app = aiohttp.web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield receiver, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def blobs(infra: Endpoints) -> BlobStore:
    return BlobStore(_s3(infra))


def _s3(infra: Endpoints) -> S3Settings:
    return S3Settings(
        endpoint=infra.s3_endpoint,
        access_key=infra.s3_access_key,
        secret_key=infra.s3_secret_key,
        bucket=infra.s3_bucket,
        secure=infra.s3_secure,
    )


def _settings(infra: Endpoints, database_url: str, smtp_port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "runtime": RuntimeSettings(database_url=database_url, amqp_url=infra.amqp_url, s3=_s3(infra)),
        "smtp": SmtpSettings(host="127.0.0.1", port=smtp_port, sender="fax@notify.example", timeout=10),
        "allow_networks": "127.0.0.0/8",
        "callback_retry_interval": 0.3,
        "message_retry_interval": 0.3,
    }
    values.update(overrides)
    return Settings(**values)


def two_page_fax_tiff() -> bytes:
    """A 2-page TIFF-F: bilevel, 1728 px wide, G4, 204x196 dpi."""
    pages = []
    for n in range(2):
        page = Image.new("1", (1728, 2200), 1)
        for row in range(200 + n * 100, 400 + n * 100):
            for col in range(300, 1400, 3):
                page.putpixel((col, row), 0)
        pages.append(page)
    out = io.BytesIO()
    pages[0].save(out, format="TIFF", compression="group4", dpi=(204, 196), save_all=True, append_images=pages[1:])
    return out.getvalue()


def pdf_page_count(pdf: bytes) -> int:
    """Page objects in a PDF (``/Type /Page``, not ``/Pages``): enough for tiff2pdf's plain output."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


async def _insert_job(
    pool: asyncpg.Pool, request: dict[str, Any], *, faxbox: dict[str, Any] | None = None, tiff_key: str | None = None
) -> tuple[uuid.UUID, str]:
    account_id = uuid.uuid4().hex
    job_id = uuid.uuid4()
    await pool.execute("INSERT INTO accounts (id, name) VALUES ($1, 'acme')", account_id)
    if faxbox is not None:
        faxbox_id = uuid.uuid4().hex
        await pool.execute(
            "INSERT INTO faxboxes (id, account_id, name, smtp_email, settings) VALUES ($1, $2, 'box', $3, $4::jsonb)",
            faxbox_id,
            account_id,
            f"{faxbox_id}@fax.example",
            faxbox,
        )
        request = {**request, "faxbox_id": faxbox_id}
    await pool.execute(
        "INSERT INTO fax_jobs (id, account_id, status, request, to_number, from_number, attempts, pages, tiff_key,"
        " error_message) VALUES ($1, $2, 'completed', $3::jsonb, '+15551230001', '+15559870002', 1, 2, $4, '')",
        job_id,
        account_id,
        request,
        tiff_key,
    )
    return job_id, account_id


async def _wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {seconds} s")
        await asyncio.sleep(0.05)


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def _completed(job_id: uuid.UUID, account_id: str) -> TransmissionCompleted:
    return TransmissionCompleted(
        event_id=uuid.uuid4(), occurred_at=_now(), job_id=job_id, account_id=account_id, attempt=1, pages_sent=2
    )


async def test_outbound_success_emails_each_recipient_once_with_the_fax_as_pdf(
    infra: Endpoints, database_url: str, pool: asyncpg.Pool, blobs: BlobStore, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    job_id, account_id = await _insert_job(
        pool,
        {"notifications": {"email": {"send_to": ["alice@customer.example", "not-an-address", REFUSED]}}},
        faxbox={"notifications": {"outbound": {"email": {"send_to": "ops@customer.example"}}}},
        tiff_key=None,
    )
    # Only the TIFF is stored: the notifier converts it with tiff2pdf.
    await blobs.put_bytes(f"jobs/{job_id}/fax.tif", two_page_fax_tiff(), "image/tiff")
    notifier = Notifier(_settings(infra, database_url, port), NotifierStore(pool), blobs)
    try:
        event = _completed(job_id, account_id)
        await notifier.handlers.on_transmission_completed(event)
        await notifier.handlers.on_transmission_completed(event)  # a redelivery sends nothing new

        delivered = sorted(rcpt for rcpts, _ in sink.messages for rcpt in rcpts)
        assert delivered == ["alice@customer.example", "ops@customer.example"]
        for _, raw in sink.messages:
            message = email.message_from_bytes(raw, policy=email.policy.default)
            assert message["Subject"] == "Fax to +15551230001 sent (2 pages)"
            assert message["From"] == "fax@notify.example"
            body = message.get_body(("plain",))
            assert body is not None and str(job_id) in body.get_content()
            attachments = list(message.iter_attachments())
            assert [a.get_filename() for a in attachments] == ["fax.pdf"]
            pdf = attachments[0].get_content()
            assert pdf.startswith(b"%PDF") and pdf_page_count(pdf) == 2

        rows = await pool.fetch(
            "SELECT recipient, status, attempts, last_error FROM notification_deliveries ORDER BY recipient"
        )
        outcome = {row["recipient"]: row["status"] for row in rows}
        assert outcome == {
            "alice@customer.example": "sent",
            "ops@customer.example": "sent",
            "not-an-address": "failed",
            REFUSED: "failed",
        }
        refused = next(row for row in rows if row["recipient"] == REFUSED)
        assert refused["attempts"] == 1 and "550" in refused["last_error"]  # permanent: not retried
        logged = await pool.fetchval("SELECT count(*) FROM notification_attempts")
        assert logged == 4
        assert await notifier.dispatcher.sweep() == 0  # nothing is left to retry
    finally:
        await notifier.close()


async def test_outbound_failure_notifies_only_when_final(
    infra: Endpoints, database_url: str, pool: asyncpg.Pool, blobs: BlobStore, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    job_id, account_id = await _insert_job(
        pool, {"notifications": {"email": {"send_to": "alice@customer.example"}}}, tiff_key=None
    )
    notifier = Notifier(_settings(infra, database_url, port), NotifierStore(pool), blobs)
    try:

        def failed(final: bool) -> TransmissionFailed:
            return TransmissionFailed(
                event_id=uuid.uuid4(),
                occurred_at=_now(),
                job_id=job_id,
                account_id=account_id,
                attempt=1,
                final=final,
                error="busy",
                result_code=486,
            )

        await notifier.handlers.on_transmission_failed(failed(final=False))
        assert sink.messages == []
        await notifier.handlers.on_transmission_failed(failed(final=True))
        assert len(sink.messages) == 1
        message = email.message_from_bytes(sink.messages[0][1], policy=email.policy.default)
        assert message["Subject"] == "Fax to +15551230001 failed"
        body = message.get_body(("html",))
        assert body is not None and "busy" in body.get_content()
        # No document was stored: the failure email goes out without an attachment rather than not at all.
        assert list(message.iter_attachments()) == []
    finally:
        await notifier.close()


@pytest.mark.parametrize(("body_type", "method"), [("json", "post"), ("www-url-form-encoded", "put")])
async def test_signed_callback_in_both_body_types(
    infra: Endpoints,
    database_url: str,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    smtp_sink: tuple[SmtpSink, int],
    http_receiver: tuple[Receiver, str],
    body_type: str,
    method: str,
) -> None:
    receiver, base = http_receiver
    job_id, account_id = await _insert_job(
        pool, {"callback": {"url": f"{base}/receipt", "method": method, "type": body_type}}
    )
    notifier = Notifier(_settings(infra, database_url, smtp_sink[1]), NotifierStore(pool), blobs)
    try:
        await notifier.handlers.on_document_failed(
            DocumentFailed(
                event_id=uuid.uuid4(), occurred_at=_now(), job_id=job_id, account_id=account_id, error="not a PDF"
            )
        )
    finally:
        await notifier.close()
    assert len(receiver.requests) == 1
    got_method, path, headers, body = receiver.requests[0]
    assert (got_method, path) == (method.upper(), "/receipt")
    if body_type == "json":
        assert headers["Content-Type"] == "application/json"
        fields = json.loads(body)
    else:
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    delivery_id = fields.pop("delivery_id")
    assert fields == {"fax_job_id": job_id.hex, "status": "failed", "msg_code": "file_error", "message": "not a PDF"}
    assert (
        headers["X-Fax-Delivery-Id"]
        == delivery_id
        == str(await pool.fetchval("SELECT delivery_key FROM notification_deliveries"))
    )
    secret = await pool.fetchval("SELECT callback_secret FROM accounts WHERE id = $1", account_id)
    assert len(secret) == 64
    assert verify(secret, headers["X-Fax-Signature"], body, now=int(time.time()))
    assert not verify("another secret", headers["X-Fax-Signature"], body, now=int(time.time()))


async def test_callback_retried_until_it_succeeds_exactly_once(
    infra: Endpoints,
    database_url: str,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    smtp_sink: tuple[SmtpSink, int],
    http_receiver: tuple[Receiver, str],
) -> None:
    receiver, base = http_receiver
    receiver.failures = 2
    job_id, account_id = await _insert_job(pool, {"callback": {"url": f"{base}/cb"}})
    settings = _settings(infra, database_url, smtp_sink[1], callback_retry_interval=0.2, sweep_interval=0.05)
    notifier = Notifier(settings, NotifierStore(pool), blobs)
    notifier.sweeper.start()
    event = _completed(job_id, account_id)
    try:
        await notifier.handlers.on_transmission_completed(event)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = await pool.fetchval("SELECT status FROM notification_deliveries")
            if status != "pending":
                break
            await asyncio.sleep(0.05)
        await notifier.handlers.on_transmission_completed(event)  # replayed after success: nothing new
        await asyncio.sleep(0.5)
    finally:
        await notifier.close()
    assert [r[0] for r in receiver.requests] == ["POST", "POST", "POST"]
    assert len({r[3] for r in receiver.requests}) == 1  # the same receipt each time
    outcomes = await pool.fetch("SELECT outcome FROM notification_attempts ORDER BY id")
    assert [row["outcome"] for row in outcomes] == ["retry", "retry", "sent"]
    row = await pool.fetchrow("SELECT status, attempts FROM notification_deliveries")
    assert (row["status"], row["attempts"]) == ("sent", 3)


async def test_callback_to_a_blocked_network_is_refused_not_retried(
    infra: Endpoints, database_url: str, pool: asyncpg.Pool, blobs: BlobStore, smtp_sink: tuple[SmtpSink, int]
) -> None:
    job_id, account_id = await _insert_job(pool, {"callback": {"url": "http://169.254.169.254/latest/meta-data"}})
    notifier = Notifier(_settings(infra, database_url, smtp_sink[1]), NotifierStore(pool), blobs)
    try:
        await notifier.handlers.on_transmission_completed(_completed(job_id, account_id))
    finally:
        await notifier.close()
    row = await pool.fetchrow("SELECT status, last_error FROM notification_deliveries")
    assert row["status"] == "failed" and "FAX_FETCH_ALLOW_NETWORKS" in row["last_error"]


# Each means 127.0.0.1 once normalised; forced into the database, as if written before the API checked them.
LOOPBACK_SPELLINGS = [
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{port}/x",  # full-width digits
    "http://127\u30020\u30020\u30021:{port}/",  # ideographic full stops
    "http://2130706433:{port}/",
    "http://127.1:{port}/",
    "http://0x7f.0.0.1:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://localhost:{port}/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/_x",
]


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
async def test_a_callback_to_loopback_in_any_spelling_never_connects_and_fails_once(
    infra: Endpoints,
    database_url: str,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    smtp_sink: tuple[SmtpSink, int],
    spelling: str,
) -> None:
    """Caught: full-width digits and ideographic dots reached loopback, the receiver's first bytes were stored in the
    delivery record; decimal and short forms were retried for 48 hours; file:// and gopher:// silently dropped."""
    connections: list[bytes] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(await reader.read(100))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    url = spelling.format(port=listener.sockets[0].getsockname()[1])
    job_id, account_id = await _insert_job(pool, {"callback": {"url": url}})
    settings = _settings(infra, database_url, smtp_sink[1], allow_networks="", callback_retry_interval=0.05)
    notifier = Notifier(settings, NotifierStore(pool), blobs)
    try:
        await notifier.handlers.on_transmission_completed(_completed(job_id, account_id))
        await asyncio.sleep(0.2)
        assert await notifier.dispatcher.sweep() == 0  # nothing left to retry
    finally:
        await notifier.close()
        listener.close()
    assert connections == []
    row = await pool.fetchrow("SELECT status, attempts, last_error FROM notification_deliveries")
    assert row["status"] == "failed" and row["attempts"] <= 1 and row["last_error"], dict(row)
    assert "secret" not in row["last_error"]


async def test_callback_gives_up_after_retry_for(
    infra: Endpoints,
    database_url: str,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    smtp_sink: tuple[SmtpSink, int],
    http_receiver: tuple[Receiver, str],
) -> None:
    receiver, base = http_receiver
    receiver.failures = 1000
    job_id, account_id = await _insert_job(pool, {"callback": {"url": f"{base}/cb"}})
    settings = _settings(infra, database_url, smtp_sink[1], callback_retry_interval=0.1, callback_retry_for=0.5)
    notifier = Notifier(settings, NotifierStore(pool), blobs)
    try:
        await notifier.handlers.on_transmission_completed(_completed(job_id, account_id))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and await pool.fetchval("SELECT status FROM notification_deliveries") == (
            "pending"
        ):
            await notifier.dispatcher.sweep()
            await asyncio.sleep(0.05)
    finally:
        await notifier.close()
    row = await pool.fetchrow("SELECT status, last_error FROM notification_deliveries")
    assert row["status"] == "failed" and row["last_error"].startswith("gave up")
    assert 2 <= len(receiver.requests) <= 10


@pytest.mark.parametrize("provider", ["twilio", "http"])
async def test_sms_providers(
    infra: Endpoints,
    database_url: str,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    smtp_sink: tuple[SmtpSink, int],
    http_receiver: tuple[Receiver, str],
    provider: str,
) -> None:
    receiver, base = http_receiver
    sms = SmsSettings(
        provider=provider,
        twilio_base_url=base,
        twilio_account_sid="AC123",
        twilio_auth_token="tok",
        sender="+15550000000",
        http_url=f"{base}/sms",
        http_bearer_token="bearer-1",
    )
    job_id, account_id = await _insert_job(
        pool, {"notifications": {"sms": {"send_to": ["+15557654321", "call me maybe"]}}}
    )
    notifier = Notifier(_settings(infra, database_url, smtp_sink[1], sms=sms), NotifierStore(pool), blobs)
    try:
        event = _completed(job_id, account_id)
        await notifier.handlers.on_transmission_completed(event)
        await notifier.handlers.on_transmission_completed(event)
    finally:
        await notifier.close()
    assert len(receiver.requests) == 1
    method, path, headers, body = receiver.requests[0]
    if provider == "twilio":
        assert (method, path) == ("POST", "/2010-04-01/Accounts/AC123/Messages.json")
        assert headers["Authorization"].startswith("Basic ")
        fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        assert fields["To"] == "+15557654321" and fields["From"] == "+15550000000"
        text = fields["Body"]
    else:
        assert (method, path) == ("POST", "/sms")
        assert headers["Authorization"] == "Bearer bearer-1"
        fields = json.loads(body)
        assert fields["to"] == "+15557654321"
        text = fields["text"]
    assert "+15551230001" in text and "delivered" in text
    statuses = dict(await pool.fetch("SELECT recipient, status FROM notification_deliveries"))
    assert statuses == {"+15557654321": "sent", "call me maybe": "failed"}


async def _faxbox(pool: asyncpg.Pool, settings: dict[str, Any]) -> tuple[str, str]:
    account_id, faxbox_id = uuid.uuid4().hex, uuid.uuid4().hex
    await pool.execute("INSERT INTO accounts (id, name) VALUES ($1, 'acme')", account_id)
    await pool.execute(
        "INSERT INTO faxboxes (id, account_id, name, smtp_email, settings) VALUES ($1, $2, 'box', $3, $4::jsonb)",
        faxbox_id,
        account_id,
        f"{faxbox_id}@fax.example",
        settings,
    )
    return account_id, faxbox_id


async def test_inbound_fax_emailed_and_called_back_to_the_faxbox(
    infra: Endpoints,
    database_url: str,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    smtp_sink: tuple[SmtpSink, int],
    http_receiver: tuple[Receiver, str],
) -> None:
    sink, port = smtp_sink
    receiver, base = http_receiver
    inbound = {"email": {"send_to": ["desk@customer.example"]}, "callback": {"url": f"{base}/in", "type": "json"}}
    account_id, faxbox_id = await _faxbox(pool, {"notifications": {"inbound": inbound}})
    fax_id = uuid.uuid4()
    key = f"inbound/{fax_id}/fax.tif"
    await blobs.put_bytes(key, two_page_fax_tiff(), "image/tiff")
    notifier = Notifier(_settings(infra, database_url, port), NotifierStore(pool), blobs)
    try:
        await notifier.handlers.on_inbound_received(
            InboundReceived(
                event_id=uuid.uuid4(),
                occurred_at=_now(),
                fax_id=fax_id,
                account_id=account_id,
                faxbox_id=faxbox_id,
                from_number="+15551112222",
                to_number="+15553334444",
                pages=2,
                tiff_key=key,
            )
        )
    finally:
        await notifier.close()
    assert [rcpts for rcpts, _ in sink.messages] == [["desk@customer.example"]]
    message = email.message_from_bytes(sink.messages[0][1], policy=email.policy.default)
    assert message["Subject"] == "Fax received from +15551112222 (2 pages)"
    (attachment,) = message.iter_attachments()
    assert pdf_page_count(attachment.get_content()) == 2
    (request,) = receiver.requests
    fields = json.loads(request[3])
    assert {k: fields[k] for k in ("uuid", "from", "to", "pages")} == {
        "uuid": fax_id.hex,
        "from": "+15551112222",
        "to": "+15553334444",
        "pages": "2",
    }
    assert fields["file"].startswith(f"http://127.0.0.1:8000/api/v2/signed/inbound/{fax_id.hex}/file?expires=")
    secret = await pool.fetchval("SELECT callback_secret FROM accounts WHERE id = $1", account_id)
    assert verify(secret, request[2]["X-Fax-Signature"], request[3], now=int(time.time()))


async def test_fax_to_a_number_without_a_faxbox_calls_the_accounts_faxto_callback(
    infra: Endpoints,
    database_url: str,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    http_receiver: tuple[Receiver, str],
) -> None:
    """A provisioned Fax.to number has no faxbox: the receive callback goes to the account's API-settings URL,
    url-encoded, with the reception's statistics from its inbox row."""
    receiver, base = http_receiver
    account_id, fax_id = uuid.uuid4().hex, uuid.uuid4()
    await pool.execute("INSERT INTO accounts (id, name) VALUES ($1, 'faxto')", account_id)
    await pool.execute(
        "INSERT INTO faxto_settings (account_id, callback_url) VALUES ($1, $2)", account_id, f"{base}/rx"
    )
    rx = {"remote_station_id": "SENDER 1", "fax_speed": 9600, "fax_error_correction": True,
          "fax_compression": "MR", "fax_line_seconds": 30.4}  # fmt: skip
    await pool.execute(
        "INSERT INTO inbound_faxes (id, account_id, status, to_number, from_number, pages, rx_result) "
        "VALUES ($1, $2, 'received', '+15553334444', '+15551112222', 1, $3::jsonb)",
        fax_id,
        account_id,
        rx,
    )
    notifier = Notifier(_settings(infra, database_url, 25), NotifierStore(pool), blobs)
    try:
        await notifier.handlers.on_inbound_received(
            InboundReceived(
                event_id=uuid.uuid4(),
                occurred_at=_now(),
                fax_id=fax_id,
                account_id=account_id,
                from_number="+15551112222",
                to_number="+15553334444",
                pages=1,
                tiff_key=f"inbound/{fax_id}/fax.tif",
            )
        )
    finally:
        await notifier.close()
    (request,) = receiver.requests
    method, path, headers, body = request
    assert (method, path, headers["Content-Type"]) == ("POST", "/rx", "application/x-www-form-urlencoded")
    fields = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    assert set(fields) == {"uuid", "from", "to", "time", "file", "rsid", "speed", "duration", "ecm", "pages",
                           "compression", "delivery_id"}  # fmt: skip
    assert (fields["uuid"], fields["rsid"], fields["speed"], fields["duration"], fields["ecm"]) == (
        fax_id.hex, "SENDER 1", "9600", "30", "1"
    )  # fmt: skip
    assert (fields["compression"], fields["pages"]) == ("MR", "1")


@pytest.mark.parametrize("kind", ["inbound_failure", "intake_rejected"])
async def test_inbound_failure_and_rejected_intake_emails(
    infra: Endpoints,
    database_url: str,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    smtp_sink: tuple[SmtpSink, int],
    kind: str,
) -> None:
    sink, port = smtp_sink
    account_id, faxbox_id = await _faxbox(
        pool, {"notifications": {"inbound": {"email": {"send_to": "desk@customer.example"}}}}
    )
    notifier = Notifier(_settings(infra, database_url, port), NotifierStore(pool), blobs)
    try:
        if kind == "inbound_failure":
            await notifier.handlers.on_inbound_failed(
                InboundFailed(
                    event_id=uuid.uuid4(),
                    occurred_at=_now(),
                    fax_id=uuid.uuid4(),
                    account_id=account_id,
                    faxbox_id=faxbox_id,
                    from_number="+15551112222",
                    to_number="+15553334444",
                    error="No fax tones",
                )
            )
            expected = (["desk@customer.example"], "Incoming fax from +15551112222 failed")
        else:
            await notifier.handlers.on_intake_rejected(
                IntakeRejected(
                    event_id=uuid.uuid4(),
                    occurred_at=_now(),
                    account_id=account_id,
                    faxbox_id=faxbox_id,
                    sender="someone@elsewhere.example",
                    to_number="+15553334444",
                    error="sender not permitted",
                )
            )
            expected = (["someone@elsewhere.example"], "Your email to fax was not accepted")
    finally:
        await notifier.close()
    assert len(sink.messages) == 1
    rcpts, raw = sink.messages[0]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert (rcpts, message["Subject"]) == expected
    body = message.get_body(("plain",))
    assert body is not None
    assert ("No fax tones" if kind == "inbound_failure" else "sender not permitted") in body.get_content()
    assert list(message.iter_attachments()) == []


async def test_worker_consumes_from_rabbitmq_and_a_redelivered_event_sends_nothing_new(
    infra: Endpoints, database_url: str, pool: asyncpg.Pool, blobs: BlobStore, smtp_sink: tuple[SmtpSink, int]
) -> None:
    """The wiring itself: queues on fax.events, the handler, the sweeper; the same event published twice."""
    sink, port = smtp_sink
    job_id, account_id = await _insert_job(pool, {"notifications": {"email": {"send_to": "alice@customer.example"}}})
    service = f"notifier-test-{uuid.uuid4().hex[:8]}"
    spec = create_worker(_settings(infra, database_url, port, attachment="none"), service)
    broker = create_broker(infra.amqp_url)
    context = WorkerContext(broker=broker, pool=pool, blobs=blobs)
    await spec.wire(context)
    connection = await aio_pika.connect(infra.amqp_url)
    try:
        await broker.start()
        await declare_dead_letters(broker, spec.name, spec.consumes)
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        event = _completed(job_id, account_id)
        for _ in range(2):
            await exchange.publish(
                aio_pika.Message(body=encode_event(event), content_type="application/json"),
                routing_key=routing_key(TransmissionCompleted),
            )
        await _wait_for(lambda: bool(sink.messages), 15)
        await asyncio.sleep(1.0)  # room for the second copy to be handled (and send nothing)
    finally:
        await broker.stop()
        for close in context.on_close:
            await close()
        for event_type in spec.consumes:
            for queue in (event_queue(service, event_type), dead_letter_queue(service, event_type)):
                await (await connection.channel()).queue_delete(queue.name)
        await connection.close()
    assert [rcpts for rcpts, _ in sink.messages] == [["alice@customer.example"]]


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for the relay."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_starttls_and_auth_to_the_relay(
    infra: Endpoints, database_url: str, pool: asyncpg.Pool, blobs: BlobStore, self_signed: tuple[Path, Path]
) -> None:
    """A relay that requires STARTTLS before AUTH PLAIN, with a self-signed certificate."""
    cert, key = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[str] = []

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = auth_data.login == b"mailer" and auth_data.password == b"pw"
        if ok:
            logins.append(mechanism)
        return AuthResult(success=ok)

    sink = SmtpSink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        authenticator=authenticate, auth_required=True,
    )  # fmt: skip
    controller.start()
    job_id, account_id = await _insert_job(pool, {"notifications": {"email": {"send_to": "alice@customer.example"}}})
    smtp = SmtpSettings(
        host="127.0.0.1", port=port, security="starttls", username="mailer", password="pw",
        sender="fax@notify.example", validate_certs=False,
    )  # fmt: skip
    notifier = Notifier(_settings(infra, database_url, port, smtp=smtp), NotifierStore(pool), blobs)
    try:
        await notifier.handlers.on_transmission_completed(_completed(job_id, account_id))
    finally:
        await notifier.close()
        controller.stop()
    assert logins and [rcpts for rcpts, _ in sink.messages] == [["alice@customer.example"]]


async def test_an_outcome_whose_event_was_lost_is_notified_once_by_the_reconciler(
    infra: Endpoints,
    database_url: str,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    smtp_sink: tuple[SmtpSink, int],
    http_receiver: tuple[Receiver, str],
) -> None:
    """Before the fix nothing planned the notifications of a job whose outcome event was dead-lettered: its
    callback never came. The event arriving late after all adds nothing."""
    receiver, base = http_receiver
    lost, account_id = await _insert_job(pool, {"callback": {"url": f"{base}/lost"}})
    told, _ = await _insert_job(pool, {"callback": {"url": f"{base}/told"}})
    await pool.execute("UPDATE fax_jobs SET updated_at = now() - interval '1 minute'")
    notifier = Notifier(_settings(infra, database_url, smtp_sink[1], reconcile_after=30.0), NotifierStore(pool), blobs)
    try:
        await notifier.handlers.on_transmission_completed(_completed(told, account_id))  # its event came
        assert await notifier.reconciler.reconcile() == 1
        assert await notifier.reconciler.reconcile() == 0
        await notifier.handlers.on_transmission_completed(_completed(lost, account_id))  # the lost event, late
    finally:
        await notifier.close()
    assert sorted(path for _, path, _, _ in receiver.requests) == ["/lost", "/told"]
    subjects = {row["subject"] for row in await pool.fetch("SELECT subject FROM notified_subjects")}
    assert subjects == {f"job:{lost}", f"job:{told}"}


async def test_a_reception_whose_event_was_lost_is_notified_by_the_reconciler(
    infra: Endpoints,
    database_url: str,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    smtp_sink: tuple[SmtpSink, int],
    http_receiver: tuple[Receiver, str],
) -> None:
    receiver, base = http_receiver
    account_id = uuid.uuid4().hex
    await pool.execute("INSERT INTO accounts (id, name) VALUES ($1, 'acme')", account_id)
    await pool.execute(
        "INSERT INTO faxto_settings (account_id, callback_url) VALUES ($1, $2)", account_id, f"{base}/received"
    )
    fax_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO inbound_faxes (id, account_id, status, call_id, from_number, to_number, pages, tiff_key,"
        " completed_at) VALUES ($1, $2, 'received', 'call-1', '+15550001111', '+15557770100', 2, $3,"
        " now() - interval '1 minute')",
        fax_id,
        account_id,
        f"inbound/{fax_id}/fax.tif",
    )
    notifier = Notifier(_settings(infra, database_url, smtp_sink[1], reconcile_after=30.0), NotifierStore(pool), blobs)
    try:
        assert await notifier.reconciler.reconcile() == 1
    finally:
        await notifier.close()
    ((_, path, _, body),) = receiver.requests
    fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert (path, fields["uuid"], fields["pages"]) == ("/received", fax_id.hex, "2")
