"""The SMTP gateway's limits against real Postgres and S3: the gateway runs in this process on loopback (no fetcher or
transmitter: accepted mail becomes queued jobs), and a raw client reads each reply line as sent.

Every reply stays within RFC 5321's 512 octets, a message's recipients are capped, and malformed mail is answered
with a reply code and a reason a person can act on, never a Python exception's text.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

import asyncpg
import pytest

from fax_api.demo import ensure_demo_tenant
from fax_devstack.infra import Endpoints
from fax_jobs import JobStore
from fax_runtime.blobs import BlobStore
from fax_runtime.config import RuntimeSettings, S3Settings
from fax_runtime.db import create_pool
from fax_smtp_gateway.config import Settings
from fax_smtp_gateway.gateway import FaxIntake, GatewayStore, SessionLimit, smtp_factory

DOMAIN = "limits.fax.test"
SENDER = "alice@example.com"  # the demo faxbox accepts .*@example\.com
PDF = b"%PDF-1.4\n1 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n%%EOF\n"


@dataclass
class Gateway:
    port: int
    faxbox_email: str
    account_id: str
    pool: asyncpg.Pool

    async def jobs(self) -> list[asyncpg.Record]:
        return await self.pool.fetch("SELECT to_number, request FROM fax_jobs WHERE account_id = $1", self.account_id)

    async def smtplog_errors(self) -> list[str]:
        rows = await self.pool.fetch("SELECT errors FROM smtplog WHERE account_id = $1", self.account_id)
        return [error for row in rows for error in row["errors"]]


@pytest.fixture
async def gateway(infra: Endpoints, database_url: str) -> AsyncIterator[Gateway]:
    demo = await ensure_demo_tenant(database_url, DOMAIN)
    s3 = S3Settings(
        endpoint=infra.s3_endpoint,
        access_key=infra.s3_access_key,
        secret_key=infra.s3_secret_key,
        bucket=infra.s3_bucket,
        secure=infra.s3_secure,
    )
    settings = Settings(runtime=RuntimeSettings(database_url=database_url, amqp_url=infra.amqp_url, s3=s3))
    pool = await create_pool(database_url)
    handler = FaxIntake(GatewayStore(pool), JobStore(pool, BlobStore(s3)), settings)
    server = await asyncio.get_running_loop().create_server(
        smtp_factory(handler, settings, SessionLimit(settings.max_sessions)), "127.0.0.1", 0
    )
    try:
        yield Gateway(server.sockets[0].getsockname()[1], demo.faxbox_email, demo.account_id, pool)
    finally:
        server.close()
        await server.wait_closed()
        await pool.close()


class RawClient:
    """An SMTP client that keeps each reply exactly as sent (lines with their CRLF)."""

    def __init__(self, port: int) -> None:
        self._socket = socket.create_connection(("127.0.0.1", port), timeout=30)
        self._file = self._socket.makefile("rb")
        self.banner = self.reply()

    def reply(self) -> list[bytes]:
        lines = []
        while True:
            line = self._file.readline()
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return lines

    def command(self, line: str | bytes) -> list[bytes]:
        self._socket.sendall((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def data(self, message: bytes) -> list[bytes]:
        assert self.command("DATA")[0].startswith(b"354")
        body = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in message.split(b"\r\n"))
        self._socket.sendall(body + b"\r\n.\r\n")
        return self.reply()

    def close(self) -> None:
        self._file.close()
        self._socket.close()


def _code(reply: list[bytes]) -> int:
    return int(reply[-1][:3])


def _text(reply: list[bytes]) -> str:
    return b"".join(reply).decode()


def _assert_fit(reply: list[bytes]) -> None:
    for line in reply:
        assert line.endswith(b"\r\n") and len(line) <= 512, line[:80]
    assert "Error: (" not in _text(reply) and "Traceback" not in _text(reply)


def _mail(*, subject: str = "A fax", attachment_name: str = "fax.pdf", body: str = "Please fax") -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, "fax", subject
    message.set_content(body)
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename=attachment_name)
    return message.as_bytes(policy=policy.SMTP)


def _session(gateway: Gateway, recipients: list[str], message: bytes) -> tuple[list[list[bytes]], list[bytes]]:
    """One mail: the RCPT replies and the DATA reply."""
    client = RawClient(gateway.port)
    try:
        assert _code(client.command("EHLO client.test")) == 250
        assert _code(client.command(f"MAIL FROM:<{SENDER}>")) == 250
        rcpts = [client.command(f"RCPT TO:<{to}>") for to in recipients]
        data = client.data(message) if any(_code(r) == 250 for r in rcpts) else []
        client.command("QUIT")
        return rcpts, data
    finally:
        client.close()


def _nested(depth: int) -> bytes:
    body = (
        b"Content-Type: application/pdf; name=f.pdf\r\nContent-Disposition: attachment; filename=f.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
    )
    for level in range(depth):
        boundary = f"b{level}".encode()
        body = (
            b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n--" + boundary + b"\r\n"
            + body + b"--" + boundary + b"--\r\n"
        )  # fmt: skip
    return f"From: {SENDER}\r\nSubject: deep\r\nMIME-Version: 1.0\r\n".encode() + body


async def test_recipients_beyond_the_cap_get_452_and_the_reply_stays_short(gateway: Gateway) -> None:
    """Caught: 1000 recipients queued 1000 faxes and got a 33 KB 250 reply (RFC 5321: 512 octets a line)."""
    recipients = [f"1555{n:07d}@{gateway.faxbox_email}" for n in range(1000)]
    rcpts, data = await asyncio.to_thread(_session, gateway, recipients, _mail())
    assert [_code(r) for r in rcpts] == [250] * 100 + [452] * 900
    assert rcpts[100][0].startswith(b"452 4.5.3 ")
    assert _code(data) == 250 and _text(data).startswith("250 OK fax ")
    for reply in [*rcpts, data]:
        _assert_fit(reply)
    jobs = await gateway.jobs()
    assert sorted(job["to_number"] for job in jobs) == [f"+1555{n:07d}" for n in range(100)]


@pytest.mark.parametrize("depth", [60, 1000])
async def test_deeply_nested_mime_is_refused_with_a_reason(gateway: Gateway, depth: int) -> None:
    """Caught: 500 Error: (RecursionError) maximum recursion depth exceeded ..."""
    to = f"15551230000@{gateway.faxbox_email}"
    _, data = await asyncio.to_thread(_session, gateway, [to], _nested(depth))
    assert _code(data) == 554 and _text(data).startswith("554 5.6.0 ") and "nested" in _text(data), data
    _assert_fit(data)
    assert await gateway.jobs() == []
    assert any("nested" in error for error in await gateway.smtplog_errors())
    # The same sender's next, ordinary mail goes through.
    _, data = await asyncio.to_thread(_session, gateway, [to], _nested(3))
    assert _code(data) == 250 and len(await gateway.jobs()) == 1


async def test_an_unknown_charset_in_a_faxed_body_is_refused_with_a_reason(gateway: Gateway) -> None:
    """Caught: 500 Error: (LookupError) unknown encoding: ..."""
    await gateway.pool.execute(
        "UPDATE faxboxes SET settings = settings || '{\"smtp_text_body_as_fax\": true}' WHERE account_id = $1",
        gateway.account_id,
    )
    message = (
        f"From: {SENDER}\r\nSubject: text\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nPlease fax this text\r\n"
    ).encode()
    _, data = await asyncio.to_thread(_session, gateway, [f"15551230000@{gateway.faxbox_email}"], message)
    assert _code(data) == 554 and _text(data).startswith("554 5.6.0 "), data
    assert "x-no-such-charset" in _text(data)
    _assert_fit(data)
    assert await gateway.jobs() == []


async def test_control_characters_in_headers_do_not_break_intake(gateway: Gateway) -> None:
    """Caught: a NUL in the subject or a file name reached Postgres, which refused it: a retry-forever 451, or
    500 with the database driver's exception text."""
    to = f"15551230000@{gateway.faxbox_email}"
    _, data = await asyncio.to_thread(_session, gateway, [to], _mail(subject="Report\x00 Q3\x07"))
    assert _code(data) == 250, data
    [job] = await gateway.jobs()
    assert job["request"]["subject"] == "Report Q3"
    message = _mail(attachment_name="notes\x00.zip").replace(b"application/pdf", b"application/zip")
    _, data = await asyncio.to_thread(_session, gateway, [to], message)
    assert _code(data) == 550 and _text(data).startswith("550 5.7.0 "), data
    assert any("notes.zip" in error for error in await gateway.smtplog_errors())


async def test_every_reply_fits_rfc_5321_and_names_no_exception(gateway: Gateway) -> None:
    """Caught: an unknown long command was echoed whole; a database failure answered with its exception text."""

    def talk() -> list[list[bytes]]:
        client = RawClient(gateway.port)
        try:
            replies = [client.banner, client.command("EHLO client.test"), client.command("X" * 500)]
            replies.append(client.command(f"MAIL FROM:<{SENDER}>"))
            return replies
        finally:
            client.close()

    replies = await asyncio.to_thread(talk)
    assert _code(replies[2]) == 500
    for reply in replies:
        _assert_fit(reply)

    await gateway.pool.close()  # Postgres is gone: RCPT cannot find the faxbox

    def rcpt_without_database() -> list[bytes]:
        client = RawClient(gateway.port)
        try:
            client.command("EHLO client.test")
            client.command(f"MAIL FROM:<{SENDER}>")
            return client.command(f"RCPT TO:<15551230000@{gateway.faxbox_email}>")
        finally:
            client.close()

    reply = await asyncio.to_thread(rcpt_without_database)
    assert _text(reply).startswith("451 4.3.0 "), reply  # temporary: the sender's server tries again
    _assert_fit(reply)
