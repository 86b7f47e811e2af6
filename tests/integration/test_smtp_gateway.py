"""Email to fax against the running platform: real mail over SMTP (smtplib and swaks) to the gateway.

The demo faxbox (as ``make run`` seeds it) accepts mail from ``.*@example\\.com``; its address is
``FAX_FAXBOX_EMAIL``, so a fax to +15551230000 is mailed to ``15551230000@<that address>``.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import smtplib
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import httpx
import pytest
from PIL import Image, ImageSequence

from fax_contracts import decode_event
from fax_faxsim.records import tiff_path
from tests.integration.documents import make_pdf
from tests.integration.stack import REPO, RunningStack, infra_env, running_stack


@pytest.fixture(scope="module")
def stack(infra) -> Iterator[RunningStack]:
    env = {
        **infra_env(infra, bucket=f"smtp-{uuid.uuid4().hex[:8]}"),
        "FAX_LINE": "sip",  # the mailed fax goes to faxsim over real SIP
        "FAX_SMTP_MAX_MESSAGE_BYTES": str(2 * 1024 * 1024),
        "FAX_SMTP_MAX_SESSIONS": "3",
    }
    with running_stack(REPO / ".devstack" / f"test-smtp-{uuid.uuid4().hex[:8]}", env) as running:
        running.credentials["FAX_S3_BUCKET"] = env["FAX_S3_BUCKET"]
        running.credentials["FAX_DATABASE_URL"] = env["FAX_DATABASE_URL"]
        yield running


def _smtp_port(stack: RunningStack) -> int:
    return int(stack.api_url.rsplit(":", 1)[1]) + 8  # running_stack's SMTP intake port


def _mail(sender: str, to: str, *, pdf: Path | None = None, subject: str = "A fax", body: str = "Please fax") -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(body)
    if pdf is not None:
        message.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf", filename=pdf.name)
    return message.as_bytes(policy=policy.SMTP)  # CRLF line ends, as SMTP wants them


ROW_BYTES = 1728 // 8  # one fax row, 1 bit per pixel


def _pages(data: bytes) -> list[bytes]:
    with Image.open(io.BytesIO(data)) as image:
        return [page.convert("1").tobytes() for page in ImageSequence.Iterator(image)]


def _send(stack: RunningStack, sender: str, to: str, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", _smtp_port(stack), timeout=30) as client:
        client.sendmail(sender, [to], data)


def _api(stack: RunningStack, path: str) -> dict:
    account = stack.credentials["FAX_ACCOUNT_ID"]
    response = httpx.get(
        f"{stack.api_url}/v2/accounts/{account}/faxes{path}",
        headers={"X-Auth-Token": stack.credentials["FAX_AUTH_TOKEN"]},
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _smtplog_errors(stack: RunningStack, to: str) -> list[str]:
    for entry in _api(stack, "/smtplog"):
        if entry.get("to") == to:
            detail = _api(stack, f"/smtplog/{entry['id']}")
            return detail.get("errors", [])
    return []


def test_a_permitted_senders_pdf_becomes_a_delivered_fax(stack: RunningStack, tmp_path: Path) -> None:
    to = f"15551230000@{stack.credentials['FAX_FAXBOX_EMAIL']}"
    _send(stack, "alice@example.com", to, _mail("alice@example.com", to, pdf=make_pdf(tmp_path / "f.pdf"),
                                                subject="Quarterly report"))  # fmt: skip
    deadline = time.monotonic() + 180
    while True:
        done = [job for job in _api(stack, "/outbox") if job.get("to") == "+15551230000"]
        if done:
            break
        assert time.monotonic() < deadline, "the mailed fax never finished"
        time.sleep(0.5)
    job = _api(stack, f"/outbox/{done[0]['id']}")
    assert job["status"] == "completed" and job["tx_result"]["pages_sent"] == 2
    assert job["subject"] == "Quarterly report" and job["faxbox_id"] == stack.credentials["FAX_FAXBOX_ID"]
    # The faxbox supplies the caller id, the header and the retries (demo faxbox: 15550001000, "Demo Faxbox", 3).
    assert (job["from_number"], job["fax_header"], job["retries"]) == ("15550001000", "Demo Faxbox", 3)
    assert job["notifications"]["email"]["send_to"] == ["alice@example.com"]
    # faxsim received exactly the pages the fetcher rendered from the attachment.
    received_dir = stack.state_dir / "faxsim" / "received"
    records = [json.loads(p.read_text()) for p in received_dir.glob("*.json")]
    mine = [r for r in records if r["to_number"] == "+15551230000"]
    assert len(mine) == 1 and mine[0]["pages"] == 2
    rendered = stack.sent_fax(job["id"])
    # The faxbox's header line ("Demo Faxbox") is printed above each page, as a fax machine does: spandsp adds
    # rows on top, and below them the page is the rendered one, pixel for pixel.
    sent_pages, got_pages = _pages(rendered), _pages(tiff_path(received_dir, mine[0]["call_id"]).read_bytes())
    assert len(got_pages) == len(sent_pages) == 2
    for sent, got in zip(sent_pages, got_pages, strict=True):
        header_bytes = len(got) - len(sent)
        assert 0 < header_bytes <= 64 * ROW_BYTES and header_bytes % ROW_BYTES == 0
        assert got[header_bytes:] == sent
        assert got[:header_bytes] != b"\xff" * header_bytes  # the header line carries ink


def test_a_mail_that_queued_faxes_is_in_the_smtplog_with_each_fax(stack: RunningStack, tmp_path: Path) -> None:
    """A mail to two numbers queues two faxes; the smtplog has one entry for each recipient, without errors, naming
    the fax it queued (before, only refusals were logged: a mail that queued a fax left no entry)."""
    box = stack.credentials["FAX_FAXBOX_EMAIL"]
    recipients = [f"15551230010@{box}", f"15551230011@{box}"]
    mail = _mail("dave@example.com", ", ".join(recipients), pdf=make_pdf(tmp_path / "report.pdf"))
    with smtplib.SMTP("127.0.0.1", _smtp_port(stack), timeout=30) as client:
        client.ehlo()
        client.mail("dave@example.com")
        for to in recipients:
            assert client.rcpt(to)[0] == 250
        code, reply = client.data(mail)
    assert code == 250, reply
    queued = reply.decode().removeprefix("OK fax ").removesuffix(" queued").split()
    assert len(queued) == 2

    entries = {entry["to"]: entry for entry in _api(stack, "/smtplog") if entry["to"] in recipients}
    assert set(entries) == set(recipients)
    logged = []
    for to in recipients:
        entry = _api(stack, f"/smtplog/{entries[to]['id']}")
        assert entry["errors"] == [] and entry["from"] == "dave@example.com"
        assert entry["faxbox_id"] == stack.credentials["FAX_FAXBOX_ID"] and entry["number"] == f"+{to.split('@')[0]}"
        assert entry["filename"] == "report.pdf"
        logged.append(entry["job_id"])
        fax = httpx.get(  # the entry's fax is the fax queued for that number
            f"{stack.api_url}/v2/accounts/{stack.credentials['FAX_ACCOUNT_ID']}/faxes/outgoing/{entry['job_id']}",
            headers={"X-Auth-Token": stack.credentials["FAX_AUTH_TOKEN"]},
        )
        if fax.status_code == 404:  # already sent
            fax = httpx.get(
                f"{stack.api_url}/v2/accounts/{stack.credentials['FAX_ACCOUNT_ID']}/faxes/outbox/{entry['job_id']}",
                headers={"X-Auth-Token": stack.credentials["FAX_AUTH_TOKEN"]},
            )
        assert fax.status_code == 200 and fax.json()["data"]["to_number"] == entry["number"]
    assert sorted(logged) == sorted(queued)


@pytest.mark.parametrize(
    ("sender", "local", "domain", "code", "error"),
    [
        ("mallory@evil.test", "15551230000", None, 550, "is not permitted"),
        ("alice@example.com", "15551230000", "nobox.fax.localhost", 550, "no faxbox"),
        ("alice@example.com", "12ab", None, 553, "invalid fax number"),
    ],
)
def test_refusals_at_rcpt_name_their_reason_and_are_logged(
    stack: RunningStack, sender: str, local: str, domain: str | None, code: int, error: str
) -> None:
    to = f"{local}@{domain or stack.credentials['FAX_FAXBOX_EMAIL']}"
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _send(stack, sender, to, _mail(sender, to))
    reply_code, reply = refused.value.recipients[to]
    assert reply_code == code, reply
    if domain is None:  # refusals at a known faxbox show in its account's smtplog
        assert any(error in text for text in _smtplog_errors(stack, to))


def test_a_mail_without_attachment_is_refused_and_logged(stack: RunningStack) -> None:
    to = f"15551230001@{stack.credentials['FAX_FAXBOX_EMAIL']}"
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(stack, "bob@example.com", to, _mail("bob@example.com", to))
    assert refused.value.smtp_code == 550
    assert any("no faxable attachment" in text for text in _smtplog_errors(stack, to))
    # A permitted sender is told why (fax.intake.rejected, which the notifier turns into an email to bob).
    assert _intake_rejections(stack, "bob@example.com") >= 1


def test_strangers_are_not_answered_by_email(stack: RunningStack) -> None:
    assert _intake_rejections(stack, "mallory@evil.test") == 0


def _intake_rejections(stack: RunningStack, sender: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(stack.credentials["FAX_DATABASE_URL"])
        try:
            rows = await conn.fetch("SELECT payload FROM outbox WHERE routing_key = 'fax.intake.rejected.v1'")
        finally:
            await conn.close()
        return sum(1 for row in rows if decode_event(row["payload"]).sender == sender)

    return asyncio.run(count())


def test_an_oversize_mail_is_refused_by_size(stack: RunningStack) -> None:
    to = f"15551230002@{stack.credentials['FAX_FAXBOX_EMAIL']}"
    data = _mail("bob@example.com", to, body="x" * (3 * 1024 * 1024))
    # smtplib declares the size (MAIL FROM ... SIZE=n): the gateway refuses it at RCPT, once it knows the faxbox.
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _send(stack, "bob@example.com", to, data)
    assert refused.value.recipients[to][0] == 552
    assert any("message larger than" in text for text in _smtplog_errors(stack, to))


def test_sessions_beyond_the_cap_get_421_and_the_others_still_work(stack: RunningStack) -> None:
    held = [socket.create_connection(("127.0.0.1", _smtp_port(stack))) for _ in range(3)]
    try:
        for connection in held:
            assert connection.recv(512).startswith(b"220")
        extra = socket.create_connection(("127.0.0.1", _smtp_port(stack)))
        assert extra.recv(512).startswith(b"421")
        extra.close()
    finally:
        for connection in held:
            connection.close()
    time.sleep(0.5)
    with smtplib.SMTP("127.0.0.1", _smtp_port(stack), timeout=10) as client:
        assert client.ehlo()[0] == 250
        assert "size" in client.esmtp_features


def test_a_backtracking_permission_pattern_blocks_no_other_session(stack: RunningStack) -> None:
    """Caught: the entry ``(a+)+$`` froze the whole gateway, for every tenant, for longer with each character of
    the sender (9 s at 25). On RE2 the sender is refused at once, and another session gets its banner meanwhile."""
    account, token = stack.credentials["FAX_ACCOUNT_ID"], stack.credentials["FAX_AUTH_TOKEN"]
    created = httpx.put(
        f"{stack.api_url}/v2/accounts/{account}/faxboxes",
        headers={"X-Auth-Token": token},
        json={"data": {"name": "Backtracking", "smtp_permission_list": ["(a+)+$"]}},
    )
    assert created.status_code == 201, created.text
    to = f"15551230009@{created.json()['data']['smtp_email_address']}"
    sender = "a" * 40 + "!@evil.test"  # 2^40 backtracking steps in Python's re
    with smtplib.SMTP("127.0.0.1", _smtp_port(stack), timeout=30) as attacker:
        attacker.ehlo()
        assert attacker.mail(sender)[0] == 250
        verdict: list[tuple[int, bytes]] = []
        rcpt = threading.Thread(target=lambda: verdict.append(attacker.rcpt(to)))
        rcpt.start()
        time.sleep(0.3)  # the RCPT is on its way, or already answered
        with socket.create_connection(("127.0.0.1", _smtp_port(stack)), timeout=10) as other:
            assert other.recv(512).startswith(b"220")  # another tenant's session is served meanwhile
        rcpt.join(30)
    assert verdict and verdict[0][0] == 550 and b"may not send" in verdict[0][1]


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed (make setup installs it)")
def test_swaks_sends_a_fax_too(stack: RunningStack, tmp_path: Path) -> None:
    to = f"15551230003@{stack.credentials['FAX_FAXBOX_EMAIL']}"
    pdf = make_pdf(tmp_path / "swaks.pdf")
    sent = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(_smtp_port(stack)), "--from", "carol@example.com",
         "--to", to, "--attach-type", "application/pdf", "--attach", f"@{pdf}", "--header", "Subject: via swaks"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "250 OK fax" in sent.stdout
