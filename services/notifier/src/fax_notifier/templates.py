"""Email and SMS texts: ``string.Template`` per kind, a subject, a text body and an HTML body.

Values are escaped for the HTML body only; a missing value renders as an empty string rather than failing a send.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from string import Template

import msgspec

from fax_notifier.domain import Kind


class RenderedMessage(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    text: str
    html: str


class _Texts(msgspec.Struct, frozen=True):
    subject: str
    text: str
    html: str
    sms: str


_HTML = Template(
    '<!doctype html><html><body style="font-family: sans-serif">'
    "<h2>$title</h2><table>$rows</table><p>$footer</p></body></html>"
)

_TEXTS: dict[Kind, _Texts] = {
    Kind.OUTBOUND_SUCCESS: _Texts(
        subject="Fax to $to_number sent ($pages pages)",
        text=(
            "Your fax to $to_number was delivered.\n\n"
            "Job: $job_id\nFrom: $from_number\nTo: $to_number\nPages: $pages\nAttempts: $attempts\n"
        ),
        html="Your fax to $to_number was delivered.",
        sms="$name: fax to $to_number delivered ($pages pages). Job $job_id",
    ),
    Kind.OUTBOUND_FAILURE: _Texts(
        subject="Fax to $to_number failed",
        text=(
            "Your fax to $to_number could not be delivered: $error\n\n"
            "Job: $job_id\nFrom: $from_number\nTo: $to_number\nAttempts: $attempts\n"
        ),
        html="Your fax to $to_number could not be delivered: $error",
        sms="$name: fax to $to_number failed: $error. Job $job_id",
    ),
    Kind.INBOUND_RECEIVED: _Texts(
        subject="Fax received from $from_number ($pages pages)",
        text="A fax from $from_number to $to_number was received.\n\nFax: $job_id\nPages: $pages\n",
        html="A fax from $from_number to $to_number was received.",
        sms="$name: fax received from $from_number ($pages pages)",
    ),
    Kind.INBOUND_FAILURE: _Texts(
        subject="Incoming fax from $from_number failed",
        text="A fax from $from_number to $to_number could not be received: $error\n\nFax: $job_id\n",
        html="A fax from $from_number to $to_number could not be received: $error",
        sms="$name: incoming fax from $from_number failed: $error",
    ),
    Kind.INTAKE_REJECTED: _Texts(
        subject="Your email to fax was not accepted",
        text="Your email to $to_number was not sent as a fax: $error\n",
        html="Your email to $to_number was not sent as a fax: $error",
        sms="$name: email to fax $to_number rejected: $error",
    ),
}

_ROWS = (
    ("Job", "job_id"),
    ("From", "from_number"),
    ("To", "to_number"),
    ("Pages", "pages"),
    ("Attempts", "attempts"),
    ("Error", "error"),
)


class _Blanks(dict[str, str]):
    """A missing placeholder renders empty instead of leaking ``$name`` into a customer's message."""

    def __missing__(self, key: str) -> str:
        return ""


def _values(context: Mapping[str, object]) -> _Blanks:
    return _Blanks({key: "" if value is None else str(value) for key, value in context.items()})


def render_email(kind: Kind, context: Mapping[str, object]) -> RenderedMessage:
    """Subject, text and HTML of ``kind`` filled from ``context``."""
    texts = _TEXTS[kind]
    values = _values(context)
    escaped = _Blanks({key: html.escape(value) for key, value in values.items()})
    rows = "".join(
        f'<tr><th align="left">{label}</th><td>{escaped[key]}</td></tr>' for label, key in _ROWS if escaped.get(key)
    )
    subject = Template(texts.subject).safe_substitute(values)
    body_html = _HTML.substitute(
        title=html.escape(subject),
        rows=rows,
        footer=Template(texts.html).safe_substitute(escaped),
    )
    # A header must be one line: an error text with newlines would otherwise break the message.
    return RenderedMessage(
        subject=" ".join(subject.split()), text=Template(texts.text).safe_substitute(values), html=body_html
    )


def render_sms(kind: Kind, context: Mapping[str, object]) -> str:
    """The one-line SMS text of ``kind``."""
    return " ".join(Template(_TEXTS[kind].sms).safe_substitute(_values(context)).split())
