from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from fax_runtime.permission_list import sender_permitted
from fax_smtp_gateway.intake import IntakeRefused, faxable_documents, parse_recipient


@pytest.mark.parametrize(
    ("address", "number"),
    [("+1 (555) 123-0000@box.fax.localhost", "+15551230000"), ("<15551230000@Box.Fax.Localhost>", "+15551230000"),
     ("44.20.7946.0958@box", "+442079460958")],
)  # fmt: skip
def test_the_local_part_is_the_number_in_e164(address: str, number: str) -> None:
    recipient = parse_recipient(address)
    assert recipient.number == number and recipient.domain == address.strip("<>").rpartition("@")[2].lower()


@pytest.mark.parametrize("address", ["12ab@box", "123@box", "1234567890123456@box", "@box", "15551230000"])
def test_what_is_not_a_number_is_refused_with_553(address: str) -> None:
    with pytest.raises(IntakeRefused) as refused:
        parse_recipient(address)
    assert refused.value.reply.startswith("553 5.1.3")


def test_permission_is_an_exact_address_or_a_whole_match_regex_or_the_owner() -> None:
    permissions = ["Boss@Corp.com", r".*@example\.com", "[invalid"]
    assert sender_permitted("boss@corp.com", permissions, None, allow_all=False)
    assert sender_permitted("ALICE@example.com", permissions, None, allow_all=False)
    assert not sender_permitted("alice@example.com.evil", permissions, None, allow_all=False)
    assert not sender_permitted("mallory@evil.test", permissions, None, allow_all=False)
    assert sender_permitted("owner@home.test", permissions, "Owner@Home.test", allow_all=False)
    assert not sender_permitted("", permissions, None, allow_all=True)


def test_an_empty_list_refuses_everyone_unless_all_are_allowed() -> None:
    assert not sender_permitted("alice@example.com", [], None, allow_all=False)
    assert sender_permitted("alice@example.com", [], None, allow_all=True)


def test_faxable_attachments_in_order_and_the_rest_named() -> None:
    message = EmailMessage()
    message.set_content("the body is not an attachment")
    message.add_attachment(b"%PDF-1.4 one", maintype="application", subtype="pdf", filename="one.pdf")
    message.add_attachment(b"zip", maintype="application", subtype="zip", filename="archive.zip")
    message.add_attachment(b"II*\x00two", maintype="application", subtype="octet-stream", filename="two.TIF")
    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes())
    documents, skipped = faxable_documents(parsed)
    assert [(d.filename, d.data) for d in documents] == [("one.pdf", b"%PDF-1.4 one"), ("two.TIF", b"II*\x00two")]
    assert skipped == ["archive.zip"]
