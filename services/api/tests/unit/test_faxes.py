import datetime as dt
import uuid

import msgspec
import pytest

from fax_api.faxes.rules import FaxValidationError, job_summary, job_view, validate_fax_request
from fax_api.web.kazoo import GREGORIAN_UNIX_OFFSET
from fax_jobs import FaxJob

KAZOO_EXAMPLE = {
    "document": {"url": "http://myserver.com/fax.pdf", "method": "get"},
    "retries": 3,
    "from_name": "Test Fax",
    "from_number": "18884732963",
    "to_name": "To Name",
    "to_number": "18884732963",
}


def test_kazoo_example_is_valid_and_kept() -> None:
    assert validate_fax_request(KAZOO_EXAMPLE) == KAZOO_EXAMPLE


def test_defaults_method_get_and_one_attempt() -> None:
    result = validate_fax_request({"document": {"url": "https://x/y.pdf"}, "to_number": "+15551234567"})
    assert result["document"]["method"] == "get" and result["retries"] == 1


def test_every_failing_field_is_reported() -> None:
    with pytest.raises(FaxValidationError) as caught:
        validate_fax_request(
            {
                "document": {"method": "delete", "content": "x" * 257},
                "retries": 9,
                "callback": {"method": "get", "type": "xml"},
                "notifications": {"email": {"send_to": 5}},
            }
        )
    errors = caught.value.errors
    assert errors["to_number"] == {"required": {"message": "Field is required but missing"}}
    assert "required" in errors["document.url"]
    assert "enum" in errors["document.method"]
    assert "maxLength" in errors["document.content"]
    assert "maximum" in errors["retries"]
    assert "enum" in errors["callback.method"] and "enum" in errors["callback.type"]
    assert "type" in errors["notifications.email.send_to"]


@pytest.mark.parametrize("url", ["ftp://host/file.pdf", "file:///etc/passwd", "javascript:alert(1)"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(FaxValidationError) as caught:
        validate_fax_request({"document": {"url": url}, "to_number": "1555"})
    assert "pattern" in caught.value.errors["document.url"]


def test_system_owned_fields_are_reset() -> None:
    doc = {**KAZOO_EXAMPLE, "attempts": 7, "tx_result": {"success": True}, "status": "completed"}
    result = validate_fax_request(doc)
    assert "attempts" not in result and "tx_result" not in result and "status" not in result


def _job(**overrides: object) -> FaxJob:
    row = {
        "id": uuid.UUID("0123456789abcdef0123456789abcdef"),
        "int_id": 1,
        "account_id": "acc",
        "status": "pending",
        "request": KAZOO_EXAMPLE,
        "to_number": "18884732963",
        "from_number": "18884732963",
        "retries": 3,
        "attempts": 0,
        "tiff_key": None,
        "pages": None,
        "tx_result": {},
        "revision": 1,
        "created_at": dt.datetime(2016, 4, 7, 12, 0, tzinfo=dt.UTC),
        "delivered_at": None,
    }
    row.update(overrides)
    return msgspec.convert(row, FaxJob)


def test_job_view_has_kazoo_fields_and_defaults() -> None:
    view = job_view(_job())
    assert view["id"] == "0123456789abcdef0123456789abcdef"
    assert view["status"] == "pending" and view["attempts"] == 0 and view["retries"] == 3
    assert view["delivered"] == "undefined" and view["fax_timezone"] == "undefined"
    assert view["created"] == int(dt.datetime(2016, 4, 7, 12, 0, tzinfo=dt.UTC).timestamp()) + GREGORIAN_UNIX_OFFSET
    assert view["tx_result"] == {
        "error_message": "",
        "fax_bad_rows": 0,
        "fax_error_correction": False,
        "fax_receiver_id": "",
        "fax_speed": 0,
        "pages_sent": 0,
        "success": False,
        "time_elapsed": 0,
    }
    assert view["document"] == KAZOO_EXAMPLE["document"]


def test_gregorian_seconds_match_kazoo_epoch() -> None:
    # 63626410973 in Kazoo's example is a date in March 2016 (Erlang calendar seconds).
    created = dt.datetime.fromtimestamp(63626410973 - GREGORIAN_UNIX_OFFSET, dt.UTC)
    assert (created.year, created.month) == (2016, 3)


def test_summary_row() -> None:
    assert job_summary(_job()) == {
        "id": "0123456789abcdef0123456789abcdef",
        "status": "pending",
        "created": job_view(_job())["created"],
        "from": "18884732963",
        "to": "18884732963",
    }
