import msgspec
import pytest

from fax_api.faxboxes.rows import FaxboxRecord
from fax_api.faxboxes.rules import (
    FaxboxValidationError,
    faxbox_document,
    faxbox_view,
    validate_faxbox,
)
from fax_api.web.kazoo import merge_patch


def test_defaults_of_the_spec_table_are_applied() -> None:
    name, custom, settings = validate_faxbox({"name": "Box"})
    assert (name, custom) == ("Box", None)
    assert settings == {
        "attempts": 0,
        "caller_name": "Kazoo Fax Printer",
        "fax_header": "Kazoo Fax Printer",
        "media": {},
        "retries": 1,
        "smtp_permission_list": [],
    }


def test_system_fields_are_not_taken_from_the_client() -> None:
    _, _, settings = validate_faxbox(
        {"name": "Box", "attempts": 3, "id": "forged", "smtp_email_address": "forged.example", "retries": 2}
    )
    assert settings["attempts"] == 0 and "id" not in settings and "smtp_email_address" not in settings
    assert settings["retries"] == 2


def test_custom_address_is_normalised_and_checked() -> None:
    assert validate_faxbox({"name": "B", "custom_smtp_email_address": " Fax@Corp.Example "})[1] == "fax@corp.example"
    assert validate_faxbox({"name": "B", "custom_smtp_email_address": "fax.corp.example"})[1] == "fax.corp.example"
    assert validate_faxbox({"name": "B", "custom_smtp_email_address": ""})[1] is None
    with pytest.raises(FaxboxValidationError) as caught:
        validate_faxbox({"name": "B", "custom_smtp_email_address": "not an address"})
    assert "format" in caught.value.errors["custom_smtp_email_address"]


@pytest.mark.parametrize(
    ("doc", "field", "rule"),
    [
        ({}, "name", "required"),
        ({"name": ""}, "name", "minLength"),
        ({"name": "x" * 129}, "name", "maxLength"),
        ({"name": 5}, "name", "type"),
        ({"name": "b", "retries": 0}, "retries", "minimum"),
        ({"name": "b", "retries": 5}, "retries", "maximum"),
        ({"name": "b", "retries": True}, "retries", "type"),
        ({"name": "b", "smtp_permission_list": "x"}, "smtp_permission_list", "type"),
        ({"name": "b", "smtp_permission_list": ["[a-"]}, "smtp_permission_list.0", "format"),
        ({"name": "b", "notifications": []}, "notifications", "type"),
        (
            {"name": "b", "notifications": {"outbound": {"callback": {"method": "GET"}}}},
            "notifications.outbound.callback.method",
            "enum",
        ),
        (
            {"name": "b", "notifications": {"inbound": {"sms": {"send_to": [1]}}}},
            "notifications.inbound.sms.send_to",
            "type",
        ),
        ({"name": "b", "media": {"fax_option": 1}}, "media.fax_option", "type"),
    ],
)
def test_each_rule_names_its_field(doc: dict, field: str, rule: str) -> None:
    with pytest.raises(FaxboxValidationError) as caught:
        validate_faxbox(doc)
    assert rule in caught.value.errors[field]


def test_send_to_takes_a_string_or_a_list_of_strings() -> None:
    for send_to in ("a@x.example", ["a@x.example", "b@x.example"], []):
        validate_faxbox({"name": "b", "notifications": {"inbound": {"email": {"send_to": send_to}}}})


def test_merge_patch_is_recursive_and_null_removes() -> None:
    current = {"name": "a", "notifications": {"inbound": {"email": {"send_to": "x"}, "sms": {"send_to": "1"}}}}
    patch = {"notifications": {"inbound": {"sms": None, "callback": {"url": "https://cb"}}}, "caller_id": "5"}
    assert merge_patch(current, patch) == {
        "name": "a",
        "caller_id": "5",
        "notifications": {"inbound": {"email": {"send_to": "x"}, "callback": {"url": "https://cb"}}},
    }
    assert current["notifications"]["inbound"]["sms"] == {"send_to": "1"}  # not modified in place


def test_view_round_trips_through_validation() -> None:
    name, custom, settings = validate_faxbox({"name": "Box", "custom_smtp_email_address": "a@b.example"})
    stored = {"id": "f1", "name": name, "custom_smtp_email_address": custom, "settings": settings, "smtp_email": "f1.d"}
    row = msgspec.convert({**stored, "account_id": "a1", "revision": 1}, FaxboxRecord)
    view = faxbox_view(row)
    assert view["id"] == "f1" and view["smtp_email_address"] == "f1.d" and view["custom_smtp_email_address"] == custom
    assert validate_faxbox(faxbox_document(row)) == (name, custom, settings)
