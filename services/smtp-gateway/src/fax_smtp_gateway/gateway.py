"""The SMTP server: RCPT decides who may fax where, DATA turns the mail into fax jobs; every fax queued and every
refusal is logged (the smtplog).

A mail is accepted (250) only after its jobs and their events are committed, so an accepted mail is never lost;
anything that goes wrong before that is a 4xx the sender's server will retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
import uuid
from typing import Any

import asyncpg
from aiosmtpd.smtp import SMTP, Envelope, Session

from fax_contracts import IntakeRejected
from fax_jobs import FaxJob, JobStore, upload_keys
from fax_runtime.outbox import enqueue
from fax_runtime.permission_list import sender_permitted
from fax_runtime.sql import load_queries
from fax_smtp_gateway.config import Settings
from fax_smtp_gateway.intake import (
    Document,
    IntakeRefused,
    Mail,
    Recipient,
    accepted_reply,
    clip_reply,
    parse_recipient,
    read_mail,
    split_address,
)

log = logging.getLogger(__name__)
Q = load_queries("fax_smtp_gateway")

NO_ATTACHMENT = "550 5.7.0 Nothing to fax: attach a PDF, TIFF, image or Office document"
TRY_LATER = "451 4.3.0 The message could not be handled now; try again later"


class GatewayStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def faxbox_for(self, domain: str, address: str) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(Q["faxbox_for_domain"], domain, address)
        return dict(row) if row else None

    async def log_refusal(
        self,
        *,
        sender: str,
        to: str,
        errors: list[str],
        faxbox: dict[str, Any] | None = None,
        number: str = "",
        content_type: str = "",
        filename: str = "",
        tell_sender: bool = False,
    ) -> None:
        """An smtplog row; with ``tell_sender`` also fax.intake.rejected (the notifier emails the sender why).

        Only permitted senders are told: answering strangers would turn the gateway into a backscatter source.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                Q["log_refusal"], uuid.uuid4(), faxbox["account_id"] if faxbox else None,
                faxbox["id"] if faxbox else None, faxbox["name"] if faxbox else "", sender, to, number, content_type,
                filename, errors, None,
            )  # fmt: skip
            if tell_sender and faxbox is not None and sender:
                await enqueue(
                    conn,
                    IntakeRejected(
                        event_id=uuid.uuid4(), occurred_at=dt.datetime.now(dt.UTC), account_id=faxbox["account_id"],
                        faxbox_id=faxbox["id"], sender=sender, to_number=number, error="; ".join(errors),
                    ),
                )  # fmt: skip

    async def queue_fax(
        self,
        jobs: JobStore,
        *,
        sender: str,
        recipient: Recipient,
        faxbox: dict[str, Any],
        request: dict[str, Any],
        documents: list[Document],
        content_type: str,
    ) -> FaxJob:
        """Queue the fax of one recipient of a mail with its smtplog entry, which names it: both commit or neither
        does (the documents, stored first, are removed again then)."""
        job_id = uuid.uuid4()
        uploads = [(document.data, document.content_type) for document in documents]
        async with jobs.submitting(upload_keys(job_id, len(documents)), uploads) as submission:
            job = await submission.add(faxbox["account_id"], request, job_id=job_id)
            await submission.connection.execute(
                Q["log_accepted"], uuid.uuid4(), faxbox["account_id"], faxbox["id"], faxbox["name"], sender,
                recipient.address, recipient.number, content_type,
                ", ".join(document.filename for document in documents), job_id,
            )  # fmt: skip
        return job


class FaxIntake:
    """aiosmtpd handler."""

    def __init__(self, store: GatewayStore, jobs: JobStore, settings: Settings) -> None:
        self._store = store
        self._jobs = jobs
        self._settings = settings

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        sender = envelope.mail_from or ""
        if len(envelope.rcpt_tos) >= self._settings.max_recipients:
            return f"452 4.5.3 Too many recipients: at most {self._settings.max_recipients} faxes per message"
        try:
            _, domain = split_address(address)
        except IntakeRefused as refused:
            await self._store.log_refusal(sender=sender, to=address, errors=[refused.reason])
            return refused.reply
        # The faxbox first: a refusal at a known faxbox belongs in its account's smtplog.
        faxbox = await self._store.faxbox_for(domain, address.lower())
        if faxbox is None:
            await self._store.log_refusal(sender=sender, to=address, errors=[f"no faxbox at {domain}"])
            return f"550 5.1.1 No faxbox at {domain}"
        try:
            recipient = parse_recipient(address)
        except IntakeRefused as refused:
            await self._store.log_refusal(sender=sender, to=address, faxbox=faxbox, errors=[refused.reason],
                                          tell_sender=self._permitted(sender, faxbox))  # fmt: skip
            return refused.reply
        declared = envelope.__dict__.get("declared_size")
        if declared is not None and declared > self._settings.max_message_bytes:
            await self.log_oversize(envelope, [(recipient, faxbox)], declared)
            return f"552 5.3.4 Message size exceeds the fixed maximum of {self._settings.max_message_bytes} bytes"
        if not self._permitted(sender, faxbox):
            reason = f"{sender or 'an empty sender'} is not permitted to send faxes"
            await self._store.log_refusal(sender=sender, to=address, faxbox=faxbox, number=recipient.number,
                                          errors=[reason])  # fmt: skip
            return f"550 5.7.1 {sender or 'This sender'} may not send faxes through this faxbox"
        envelope.rcpt_tos.append(address)
        targets: list[tuple[Recipient, dict[str, Any]]] = envelope.__dict__.setdefault("fax_targets", [])
        targets.append((recipient, faxbox))
        return "250 OK"

    def _permitted(self, sender: str, faxbox: dict[str, Any]) -> bool:
        settings = faxbox["settings"] or {}
        allow_all = bool(settings.get("smtp_allow_all")) or self._settings.allow_all
        permissions = list(settings.get("smtp_permission_list") or [])
        return sender_permitted(sender, permissions, faxbox["owner_email"], allow_all)

    async def log_oversize(
        self, envelope: Envelope, targets: list[tuple[Recipient, dict[str, Any]]], size: int | None
    ) -> None:
        reason = f"message larger than {self._settings.max_message_bytes} bytes" + (f" ({size})" if size else "")
        for recipient, faxbox in targets:
            await self._store.log_refusal(
                sender=envelope.mail_from or "",
                to=recipient.address,
                faxbox=faxbox,
                number=recipient.number,
                errors=[reason],
                tell_sender=self._permitted(envelope.mail_from or "", faxbox),
            )

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        targets: list[tuple[Recipient, dict[str, Any]]] = envelope.__dict__.get("fax_targets", [])
        sender = envelope.mail_from or ""
        raw = envelope.original_content or (envelope.content if isinstance(envelope.content, bytes) else b"")
        try:
            # Parsing a large mail takes CPU time: off the loop, so other sessions are served meanwhile.
            mail: Mail = await asyncio.to_thread(read_mail, raw)
        except IntakeRefused as refused:
            for recipient, faxbox in targets:
                await self._store.log_refusal(
                    sender=sender, to=recipient.address, faxbox=faxbox, number=recipient.number,
                    errors=[refused.reason], tell_sender=True,
                )  # fmt: skip
            return refused.reply
        # Decide for every recipient before storing anything, so a refusal never follows a queued fax.
        planned: list[tuple[Recipient, dict[str, Any], list[Document]]] = []
        for recipient, faxbox in targets:
            settings = faxbox["settings"] or {}
            faxed = mail.documents
            if not faxed and settings.get("smtp_text_body_as_fax"):
                if mail.text_problem:
                    await self._store.log_refusal(
                        sender=sender, to=recipient.address, faxbox=faxbox, number=recipient.number,
                        content_type=mail.content_type, errors=[mail.text_problem], tell_sender=True,
                    )  # fmt: skip
                    return f"554 5.6.0 Nothing to fax: {mail.text_problem}"
                if mail.text:
                    faxed = [Document(mail.text.encode(), "text/plain", "message.txt")]
            if not faxed:
                skipped = mail.skipped
                await self._store.log_refusal(
                    sender=sender, to=recipient.address, faxbox=faxbox, number=recipient.number,
                    content_type=mail.content_type, filename=", ".join(skipped),
                    errors=["no faxable attachment" + (f" (skipped: {', '.join(skipped)})" if skipped else "")],
                    tell_sender=True,
                )  # fmt: skip
                return NO_ATTACHMENT
            planned.append((recipient, faxbox, faxed))
        job_ids: list[str] = []
        for recipient, faxbox, faxed in planned:
            settings = faxbox["settings"] or {}
            try:
                job = await self._store.queue_fax(
                    self._jobs,
                    sender=sender,
                    recipient=recipient,
                    faxbox=faxbox,
                    request=_job_request(recipient, faxbox, settings, sender, mail.subject),
                    documents=faxed,
                    content_type=mail.content_type,
                )
            except Exception:
                log.exception("mail from %s to %s could not be queued", sender, recipient.address)
                await self._store.log_refusal(
                    sender=sender, to=recipient.address, faxbox=faxbox, number=recipient.number,
                    content_type=mail.content_type, errors=["could not queue the fax (a storage failure)"],
                )  # fmt: skip
                if not job_ids:
                    return "451 4.3.0 Could not queue the fax; try again later"
                # Some faxes of this mail are queued: a 4xx would make the sender resend, and fax them twice.
                # The failure is in the smtplog instead.
                continue
            job_ids.append(job.id.hex)
            log.info("mail from %s: fax %s to %s queued (%d document(s))", sender, job_ids[-1], recipient.number,
                     len(faxed))  # fmt: skip
        return accepted_reply(job_ids)

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd's answer to a handler that raised: a temporary failure, never the exception's own text."""
        log.error("SMTP session failed: %s", error, exc_info=error)
        return TRY_LATER


def _job_request(
    recipient: Recipient, faxbox: dict[str, Any], settings: dict[str, Any], sender: str, subject: str
) -> dict[str, Any]:
    """A Kazoo fax request made from the faxbox: its caller id, name, header and identity, and its retries."""
    request: dict[str, Any] = {
        "document": {},
        "to_number": recipient.number,
        "from_number": str(settings.get("caller_id") or ""),
        "from_name": str(settings.get("caller_name") or ""),
        "retries": int(settings.get("retries") or 3),
        "faxbox_id": faxbox["id"],
        "subject": subject,
        "source": "smtp",
        # The sender hears how it went; the faxbox's own outbound list is added by the notifier.
        "notifications": {"email": {"send_to": [sender]}} if sender else {},
    }
    for field in ("fax_header", "fax_identity", "fax_timezone"):
        if settings.get(field):
            request[field] = settings[field]
    return request


class SessionLimit:
    """At most ``limit`` SMTP sessions at once; the next one gets 421 and is closed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0


def smtp_factory(handler: FaxIntake, settings: Settings, limit: SessionLimit) -> type[SMTP]:
    tls: ssl.SSLContext | None = None
    if settings.tls_cert and settings.tls_key:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(settings.tls_cert, settings.tls_key)

    class CappedSMTP(SMTP):
        def __init__(self) -> None:
            super().__init__(
                handler,
                data_size_limit=settings.max_message_bytes,
                enable_SMTPUTF8=True,
                tls_context=tls,
                ident="fax-platform smtp-gateway",
            )
            self._counted = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if limit.active >= limit.limit:
                transport.write(b"421 4.3.2 Too many connections, try again later\r\n")  # type: ignore[attr-defined]
                transport.close()
                return
            limit.active += 1
            self._counted = True
            super().connection_made(transport)

        async def smtp_MAIL(self, arg: str | None) -> None:
            # A declared SIZE over the limit is refused at RCPT instead of MAIL, once the faxbox is known, so the
            # refusal lands in that faxbox's smtplog.
            declared = None
            if arg:
                kept = []
                for word in arg.split():
                    if word.upper().startswith("SIZE=") and word[5:].isdigit():
                        declared = int(word[5:])
                    else:
                        kept.append(word)
                arg = " ".join(kept)
            await super().smtp_MAIL(arg)
            if self.envelope.mail_from is not None:
                self.envelope.__dict__["declared_size"] = declared

        async def push(self, status: str | bytes) -> None:
            if isinstance(status, str) and status.startswith("552 Error: Too much mail data"):
                with contextlib.suppress(Exception):
                    await handler.log_oversize(self.envelope, self.envelope.__dict__.get("fax_targets", []), None)
            # Every reply, aiosmtpd's own too (it echoes unknown commands), within RFC 5321's line length.
            await super().push(clip_reply(status))

        def connection_lost(self, error: Exception | None) -> None:
            if self._counted:
                limit.active -= 1
                self._counted = False
            super().connection_lost(error)

    return CappedSMTP
