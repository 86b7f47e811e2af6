from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from fax_runtime.permission_list import sender_permitted
from fax_smtp_gateway.intake import (
    MAX_MIME_DEPTH,
    MAX_REPLY_OCTETS,
    IntakeRefused,
    accepted_reply,
    clip_reply,
    faxable_documents,
    parse_recipient,
    read_mail,
)


@pytest.mark.parametrize(
    ("address", "number"),
    [("+1 (555) 123-0000@box.fax.localhost", "+15551230000"), ("<15551230000@Box.Fax.Localhost>", "+15551230000"),
     ("44.20.7946.0958@box", "+442079460958"), ("0044 20 7946 0958@box", "+442079460958")],
)  # fmt: skip
def test_the_local_part_is_the_number_in_e164(address: str, number: str) -> None:
    recipient = parse_recipient(address)
    assert recipient.number == number and recipient.domain == address.strip("<>").rpartition("@")[2].lower()


@pytest.mark.parametrize(
    "address", ["12ab@box", "123@box", "1234567890123456@box", "@box", "15551230000", "020 7946 0958@box"]
)
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


def test_accepted_reply_names_the_faxes_that_fit_in_one_line() -> None:
    ids = [f"{n:032x}" for n in range(100)]
    assert accepted_reply(ids[:2]) == f"250 OK fax {ids[0]} {ids[1]} queued"
    reply = accepted_reply(ids)
    assert len(reply) <= MAX_REPLY_OCTETS and reply.startswith(f"250 OK fax {ids[0]} ")
    named = reply.removeprefix("250 OK fax ").split(" and ")[0].split()
    assert reply.endswith(f" and {100 - len(named)} more queued") and named == ids[: len(named)]


def test_replies_are_clipped_to_512_octets_with_crlf() -> None:
    assert clip_reply("250 OK") == b"250 OK"
    clipped = clip_reply("500 " + "é" * 400)
    assert len(clipped) <= MAX_REPLY_OCTETS and clipped.decode().endswith("...")


def test_read_mail_keeps_control_characters_out_of_what_is_stored() -> None:
    message = EmailMessage()
    message["Subject"] = "Q3\x00 report"
    message.set_content("body")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a\x00b.pdf")
    mail = read_mail(message.as_bytes())
    assert mail.subject == "Q3 report" and [d.filename for d in mail.documents] == ["ab.pdf"]


def test_read_mail_refuses_deep_nesting_and_names_an_unknown_charset() -> None:
    deep = b"Content-Type: text/plain\r\n\r\nx\r\n"
    for level in range(MAX_MIME_DEPTH):
        part = b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n%s--b%d--\r\n"
        deep = part % (level, level, deep, level)
    with pytest.raises(IntakeRefused) as refused:
        read_mail(deep)
    assert refused.value.reply.startswith("554 5.6.0 ")
    mail = read_mail(b"Content-Type: text/plain; charset=x-nope\r\n\r\nhello\r\n")
    assert mail.text == "" and "'x-nope'" in mail.text_problem
