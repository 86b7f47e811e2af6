"""Email and SMS texts for every kind."""

from __future__ import annotations

import pytest

from fax_notifier.domain import Kind
from fax_notifier.mail import build_message
from fax_notifier.templates import render_email, render_sms

CONTEXT = {
    "name": "Fax",
    "job_id": "j-1",
    "to_number": "+15551230001",
    "from_number": "+15559870002",
    "pages": 2,
    "attempts": 1,
    "error": "",
}


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_renders_without_leftover_placeholders(kind: Kind) -> None:
    rendered = render_email(kind, {**CONTEXT, "error": "Line busy"})
    for text in (rendered.subject, rendered.text, rendered.html, render_sms(kind, CONTEXT)):
        assert "$" not in text
    assert "\n" not in rendered.subject


def test_success_texts() -> None:
    rendered = render_email(Kind.OUTBOUND_SUCCESS, CONTEXT)
    assert rendered.subject == "Fax to +15551230001 sent (2 pages)"
    assert "Job: j-1" in rendered.text
    assert "<td>j-1</td>" in rendered.html


def test_values_are_escaped_in_html_only_and_subjects_stay_one_line() -> None:
    rendered = render_email(Kind.OUTBOUND_FAILURE, {**CONTEXT, "to_number": "<b>\n1</b>", "error": "a < b"})
    assert "&lt;b&gt;" in rendered.html and "<b>" not in rendered.html
    assert "a < b" in rendered.text
    assert rendered.subject == "Fax to <b> 1</b> failed"


def test_missing_values_render_empty() -> None:
    assert render_sms(Kind.INBOUND_RECEIVED, {}) == ": fax received from ( pages)"


def test_message_has_text_html_and_attachment() -> None:
    rendered = render_email(Kind.OUTBOUND_SUCCESS, CONTEXT)
    message = build_message("fax@x.example", "a@x.example", rendered, ("fax.pdf", "application/pdf", b"%PDF-1.4"))
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "fax.pdf" and attachment.get_content() == b"%PDF-1.4"
