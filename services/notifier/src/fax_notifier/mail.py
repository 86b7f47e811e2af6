"""Notification email: building the MIME message and sending it through the SMTP relay with aiosmtplib."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import aiosmtplib

from fax_notifier.config import SmtpSettings
from fax_notifier.templates import RenderedMessage
from fax_notifier.transport import Outcome, SendResult

log = logging.getLogger(__name__)


def build_message(
    sender: str,
    recipient: str,
    rendered: RenderedMessage,
    attachment: tuple[str, str, bytes] | None,
    message_id: str | None = None,
) -> EmailMessage:
    """A multipart/alternative text+HTML message, with the fax as ``(filename, content_type, data)`` if given."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id or make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    if attachment is not None:
        filename, content_type, data = attachment
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


class Mailer(Protocol):
    async def send(self, message: EmailMessage, recipient: str) -> SendResult: ...


class SmtpMailer:
    """One SMTP session per message: simple and robust against a relay that drops idle connections."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, message: EmailMessage, recipient: str) -> SendResult:
        settings = self._settings
        try:
            errors, response = await aiosmtplib.send(
                message,
                sender=settings.sender,
                recipients=[recipient],
                hostname=settings.host,
                port=settings.port,
                username=settings.username or None,
                password=settings.password or None,
                use_tls=settings.security == "tls",
                start_tls=settings.security == "starttls",
                validate_certs=settings.validate_certs,
                timeout=settings.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return _classify_refusal(exc.recipients[0].code if exc.recipients else 550, str(exc))
        except aiosmtplib.SMTPResponseException as exc:
            return _classify_refusal(exc.code, f"{exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Connection refused, TLS failure, timeout: the relay may be back later.
            return SendResult(Outcome.RETRY, f"{type(exc).__name__}: {exc}")
        if recipient in errors:
            code, text = errors[recipient]
            return _classify_refusal(code, f"{code} {text}")
        return SendResult(Outcome.SENT, response)


def _classify_refusal(code: int, detail: str) -> SendResult:
    """SMTP 5xx is permanent (an invalid mailbox is reported, not retried forever); 4xx is "try again later"."""
    return SendResult(Outcome.FAILED if 500 <= code < 600 else Outcome.RETRY, detail)
