"""Pure rules: recipients, addresses, Fax.to msg_code, callback bodies and signatures."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from urllib.parse import parse_qs

import pytest

from fax_notifier.domain import (
    Channel,
    Kind,
    account_callback,
    address_problem,
    callback_target,
    encode_callback_body,
    inbound_callback,
    msg_code,
    outbound_callback,
    outbound_email_recipients,
    phone_problem,
    plan_callback,
    plan_messages,
    receipt,
    receipt_job_id,
    receive_fields,
    recipients,
    sign,
    verify,
)


def test_send_to_is_a_string_or_a_list() -> None:
    assert recipients("a@x.example") == ["a@x.example"]
    assert recipients(["a@x.example", " ", "b@x.example", "a@x.example", 7]) == ["a@x.example", "b@x.example"]
    assert recipients(None) == []


def test_job_and_faxbox_recipients_are_merged_once() -> None:
    request = {"notifications": {"email": {"send_to": ["a@x.example", "b@x.example"]}}}
    faxbox = {"notifications": {"outbound": {"email": {"send_to": "b@x.example"}}}}
    assert outbound_email_recipients(request, faxbox) == ["a@x.example", "b@x.example"]
    assert outbound_email_recipients({}, None) == []


@pytest.mark.parametrize(
    ("address", "valid"),
    [("a@x.example", True), ("first.last+tag@sub.x.example", True), ("nope", False), ("a@b", False),
     ("a b@x.example", False), ("<a@x.example>", False)],
)  # fmt: skip
def test_invalid_addresses_are_recognised(address: str, valid: bool) -> None:
    assert (address_problem(address) == "") is valid


def test_invalid_recipients_are_planned_as_invalid_not_dropped() -> None:
    planned = plan_messages(Kind.OUTBOUND_SUCCESS, {}, ["a@x.example", "bad"], ["+15551234567", "call me"])
    assert [(p.channel, p.recipient, bool(p.invalid)) for p in planned] == [
        (Channel.EMAIL, "a@x.example", False),
        (Channel.EMAIL, "bad", True),
        (Channel.SMS, "+15551234567", False),
        (Channel.SMS, "call me", True),
    ]
    assert phone_problem("+1 (555) 123-4567") == ""


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"success": True}, "ok"),
        ({"success": False, "document_failed": True, "error": "busy"}, "file_error"),
        ({"success": False, "result_code": 486}, "busy"),
        ({"success": False, "error": "Line busy"}, "busy"),
        ({"success": False, "result_code": 2, "error": "T0 expired"}, "no_answer"),
        ({"success": False, "error": "No answer from the far end"}, "no_answer"),
        ({"success": False, "error": "Far end hung up"}, "hangup"),
        ({"success": False, "error": "Timed out waiting for initial communication"}, "no_answer"),
        ({"success": False, "error": "The call dropped prematurely"}, "hangup"),
        ({"success": False, "error": "Unexpected DCN"}, "unknown"),
    ],
)
def test_msg_code_classification(kwargs: dict[str, object], code: str) -> None:
    assert msg_code(**kwargs) == code  # type: ignore[arg-type]


def test_callback_target_defaults_and_normalises() -> None:
    assert callback_target({}) is None
    assert callback_target({"callback": {"url": ""}}) is None
    target = callback_target(
        {"callback": {"url": "https://x.example/cb", "method": "PUT", "type": "www-url-form-encoded"}}
    )
    assert target is not None and (target.method, target.body_type) == ("put", "form")
    target = callback_target({"callback": {"url": "https://x.example/cb", "method": "delete"}})
    assert target is not None and (target.method, target.body_type) == ("post", "json")


def test_callback_bodies_carry_the_faxto_receipt() -> None:
    fields = receipt("j1", success=False, code="busy", message="Line busy")
    body, content_type = encode_callback_body(fields, "json")
    assert content_type == "application/json"
    assert json.loads(body) == {"fax_job_id": "j1", "status": "failed", "msg_code": "busy", "message": "Line busy"}
    body, content_type = encode_callback_body(fields, "form")
    assert content_type == "application/x-www-form-urlencoded"
    assert parse_qs(body.decode()) == {"fax_job_id": ["j1"], "status": ["failed"], "msg_code": ["busy"],
                                       "message": ["Line busy"]}  # fmt: skip


def test_a_receipt_names_the_job_by_the_id_its_api_answered() -> None:
    """A Fax.to client matches the receipt against the integer fax_job_id its send returned; Kazoo's, the hex id."""
    job_id = uuid.uuid4()
    assert receipt_job_id({"to_number": "+1", "faxto": {"document_id": 3}}, job_id, 200) == "200"
    assert receipt_job_id({"to_number": "+1"}, job_id, 200) == job_id.hex


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    header = sign("s3cret", 1_700_000_000, b'{"a":1}')
    expected = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify("s3cret", header, b'{"a":1}', now=1_700_000_100)
    assert not verify("s3cret", header, b'{"a":2}', now=1_700_000_100)  # body changed
    assert not verify("other", header, b'{"a":1}', now=1_700_000_100)
    assert not verify("s3cret", header, b'{"a":1}', now=1_700_001_000)  # too old: a replay
    assert not verify("s3cret", "garbage", b'{"a":1}', now=1_700_000_000)


def test_faxbox_callbacks_fill_in_for_the_job() -> None:
    faxbox = {"notifications": {"outbound": {"callback": {"url": "https://box.example/out"}}}}
    own = {"callback": {"url": "https://job.example/cb"}}
    assert outbound_callback(own, faxbox).url == "https://job.example/cb"  # type: ignore[union-attr]
    assert outbound_callback({}, faxbox).url == "https://box.example/out"  # type: ignore[union-attr]
    assert outbound_callback({}, None) is None
    assert inbound_callback({"notifications": {"inbound": {"callback": {"url": "http://x.example/in"}}}}) is not None


def test_receive_fields_are_fax_tos_with_the_reception_statistics() -> None:
    received = dt.datetime(2026, 11, 23, 6, 30, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    reception = {"remote_station_id": "FAXSIM", "fax_speed": 14400, "fax_error_correction": True,
                 "fax_compression": "MMR", "fax_line_seconds": 41.6}  # fmt: skip
    fields = receive_fields("ab12", "+15551112222", "+15553334444", received, 2, "https://x/f.pdf", reception)
    assert fields == {
        "uuid": "ab12", "from": "+15551112222", "to": "+15553334444", "time": "2026-11-23 04:30:05",
        "file": "https://x/f.pdf", "rsid": "FAXSIM", "speed": "14400", "duration": "42", "ecm": "1", "pages": "2",
        "compression": "MMR",
    }  # fmt: skip
    bare = receive_fields("ab12", "", "+1555", received, 0, "", None)
    assert (bare["rsid"], bare["speed"], bare["duration"], bare["ecm"], bare["compression"]) == ("", "", "", "0", "")


def test_account_callback_posts_url_encoded() -> None:
    target = account_callback("https://app.example/fax")
    assert target is not None and (target.url, target.method, target.body_type) == (
        "https://app.example/fax",
        "post",
        "form",
    )
    assert account_callback(None) is None and account_callback("") is None


@pytest.mark.parametrize("url", ["ftp://x", "file:///etc/passwd", "gopher://127.0.0.1/", "http://2130706433/", 5])
def test_an_unusable_callback_url_is_planned_as_failed_with_its_reason(url: object) -> None:
    """Caught: such URLs were dropped without a word (or retried for 48 hours)."""
    target = callback_target({"callback": {"url": url}})
    assert target is not None and target.problem
    [planned] = plan_callback(target, {"a": "b"}, Kind.OUTBOUND_FAILURE)
    assert planned.invalid == target.problem
