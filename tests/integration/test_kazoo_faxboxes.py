"""Kazoo faxboxes against the real API and Postgres: every curl example of the spec, defaults, validation,
custom addresses unique across accounts, paging, and what a removal leaves behind."""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.kazoo_api import SMTP_DOMAIN, KazooApi, Tenant, kazoo_api_fixture  # noqa: F401

# shared/ sits beside the repository (CI clones it there too).
# The six curl examples of spec/kazoo-faxboxes-api.txt, transcribed: the spec lives outside the repository.
SPEC_EXAMPLES = [
    ("GET", "http://{SERVER}:8000/v2/accounts/{ACCOUNT_ID}/faxboxes"),
    ("PUT", "http://{SERVER}:8000/v2/accounts/{ACCOUNT_ID}/faxboxes"),
    ("GET", "http://{SERVER}:8000/v2/accounts/{ACCOUNT_ID}/faxboxes/{FAXBOX_ID}"),
    ("POST", "http://{SERVER}:8000/v2/accounts/{ACCOUNT_ID}/faxboxes/{FAXBOX_ID}"),
    ("PATCH", "http://{SERVER}:8000/v2/accounts/{ACCOUNT_ID}/faxboxes/{FAXBOX_ID}"),
    ("DELETE", "http://{SERVER}:8000/v2/accounts/{ACCOUNT_ID}/faxboxes/{FAXBOX_ID}"),
]
DEFAULTS = {
    "attempts": 0,
    "caller_name": "Kazoo Fax Printer",
    "fax_header": "Kazoo Fax Printer",
    "media": {},
    "retries": 1,
    "smtp_permission_list": [],
}


def spec_examples() -> list[tuple[str, str]]:
    return list(SPEC_EXAMPLES)


def curl(api: KazooApi, method: str, url: str, token: str, account_id: str, faxbox_id: str = "", body=None) -> dict:
    """The spec's curl command as written (no Content-Type; ``-d`` makes it form-encoded, as Kazoo clients do)."""
    url = (
        url.replace("http://{SERVER}:8000", api.url)
        .replace("{ACCOUNT_ID}", account_id)
        .replace("{FAXBOX_ID}", faxbox_id)
    )
    command = ["curl", "-s", "-X", method, "-H", f"X-Auth-Token: {token}", url]
    if body is not None:
        command[1:1] = ["-d", json.dumps(body)]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout)


def test_every_curl_example_of_the_spec(kazoo_api: KazooApi) -> None:
    a = kazoo_api.a
    examples = spec_examples()
    assert [m for m, _ in examples] == ["GET", "PUT", "GET", "POST", "PATCH", "DELETE"]
    run = {}
    for method, url in examples:
        run[(method, "{FAXBOX_ID}" in url)] = url

    listing = curl(kazoo_api, "GET", run[("GET", False)], a.auth_token, a.account_id)
    assert listing["status"] == "success" and listing["auth_token"] == a.auth_token
    assert a.faxbox_id in [row["id"] for row in listing["data"]]
    assert listing["page_size"] == len(listing["data"])

    # As printed, the create example sends no document: the answer names the missing field.
    bare = curl(kazoo_api, "PUT", run[("PUT", False)], a.auth_token, a.account_id)
    assert bare["status"] == "error" and bare["error"] == "400"
    assert "name" in json.dumps(bare["data"])

    created = curl(kazoo_api, "PUT", run[("PUT", False)], a.auth_token, a.account_id, body={"data": {"name": "Sales"}})
    assert created["status"] == "success", created
    box = created["data"]
    assert box["name"] == "Sales" and {k: box[k] for k in DEFAULTS} == DEFAULTS
    assert box["smtp_email_address"] == f"{box['id']}.{SMTP_DOMAIN}"
    assert re.fullmatch(r"\d+-[0-9a-f]{32}", created["revision"])

    fetched = curl(kazoo_api, "GET", run[("GET", True)], a.auth_token, a.account_id, box["id"])
    assert fetched["data"] == box

    # The replace example as printed sends no document either: refused, nothing changed.
    bare = curl(kazoo_api, "POST", run[("POST", True)], a.auth_token, a.account_id, box["id"])
    assert bare["error"] == "400" and "name" in bare["data"]
    # The patch example as printed changes nothing and answers the faxbox as it is.
    unchanged = curl(kazoo_api, "PATCH", run[("PATCH", True)], a.auth_token, a.account_id, box["id"])
    assert unchanged["status"] == "success" and unchanged["data"] == box

    replaced = curl(
        kazoo_api,
        "POST",
        run[("POST", True)],
        a.auth_token,
        a.account_id,
        box["id"],
        body={"data": {"name": "Sales 2", "caller_id": "15551230000", "retries": 3, "attempts": 7}},
    )
    assert replaced["status"] == "success", replaced
    assert replaced["data"]["name"] == "Sales 2" and replaced["data"]["caller_id"] == "15551230000"
    assert replaced["data"]["retries"] == 3 and replaced["data"]["attempts"] == 0  # the system owns attempts
    assert replaced["revision"] != created["revision"]

    patched = curl(
        kazoo_api,
        "PATCH",
        run[("PATCH", True)],
        a.auth_token,
        a.account_id,
        box["id"],
        body={"data": {"fax_header": "Sales Dept"}},
    )
    assert patched["status"] == "success", patched
    assert patched["data"]["fax_header"] == "Sales Dept" and patched["data"]["caller_id"] == "15551230000"
    assert patched["data"]["name"] == "Sales 2"

    removed = curl(kazoo_api, "DELETE", run[("DELETE", True)], a.auth_token, a.account_id, box["id"])
    assert removed["status"] == "success" and removed["data"]["id"] == box["id"]
    gone = curl(kazoo_api, "GET", run[("GET", True)], a.auth_token, a.account_id, box["id"])
    assert gone["error"] == "404" and gone["message"] == "bad_identifier"


def test_every_failing_field_is_named(kazoo_api: KazooApi) -> None:
    a = kazoo_api.a
    bad = {
        "name": "x" * 129,
        "caller_id": 15551234567,
        "retries": "three",
        "media": {"fax_option": "yes"},
        "smtp_permission_list": [r".*@example\.com", "(unclosed", 42],
        "notifications": {
            "inbound": {"callback": {"method": "get", "type": "xml", "url": "ftp://x"}, "email": {"send_to": 5}},
            "outbound": {"sms": {"send_to": ["+15551234567", 7]}, "email": "not an object"},
        },
    }
    answer = kazoo_api.call("PUT", f"/v2/accounts/{a.account_id}/faxboxes", a.auth_token, {"data": bad})
    assert answer.status_code == 400
    body = answer.json()
    assert body["status"] == "error" and body["error"] == "400"
    assert body["data"] == {
        "name": {"maxLength": {"message": "Value is longer than 128 characters", "target": 128}},
        "caller_id": {"type": {"message": "Value is not of type string", "target": "string"}},
        "retries": {"type": {"message": "Value is not of type integer", "target": "integer"}},
        "media.fax_option": {"type": {"message": "Value is not of type boolean", "target": "boolean"}},
        "smtp_permission_list.1": {
            "format": {
                "message": "Value is not an RE2 regular expression: missing ): (unclosed",
                "target": "re2",
            }
        },
        "smtp_permission_list.2": {"type": {"message": "Value is not of type string", "target": "string"}},
        "notifications.inbound.callback.method": {
            "enum": {"message": "Value not found in enumerated list of values", "target": ["post", "put"]}
        },
        "notifications.inbound.callback.type": {
            "enum": {
                "message": "Value not found in enumerated list of values",
                "target": ["json", "www-url-form-encoded"],
            }
        },
        "notifications.inbound.callback.url": {
            "pattern": {"message": "unsupported URL scheme 'ftp': only http and https"}
        },
        "notifications.inbound.email.send_to": {
            "type": {"message": "Value is not of type string or array of strings", "target": "string,array"}
        },
        "notifications.outbound.sms.send_to": {
            "type": {"message": "Value is not of type string or array of strings", "target": "string,array"}
        },
        "notifications.outbound.email": {"type": {"message": "Value is not of type object", "target": "object"}},
    }
    missing = kazoo_api.call("PUT", f"/v2/accounts/{a.account_id}/faxboxes", a.auth_token, {"data": {}})
    assert missing.status_code == 400
    assert missing.json()["data"] == {"name": {"required": {"message": "Field is required but missing"}}}
    assert kazoo_api.sql("SELECT count(*) AS n FROM faxboxes WHERE name = $1", "x" * 129)[0]["n"] == 0


@pytest.mark.parametrize(
    ("entries", "field", "says"),
    [
        ([r"(a)\1"], "smtp_permission_list.0", "backreferences are not supported"),
        ([r"ok@x\.test", r"(?=a).*@x\.test"], "smtp_permission_list.1", "lookaround is not supported"),
        ([r"(?<!a)b@x\.test"], "smtp_permission_list.0", "lookaround is not supported"),
        ([r"a{1001}"], "smtp_permission_list.0", "invalid repetition size"),
        (["a" * 1025], "smtp_permission_list.0", "longer than 1024 characters"),
        ([f"u{n}@x.test" for n in range(101)], "smtp_permission_list", "more than 100 entries"),
    ],
)
def test_permission_patterns_the_gateway_cannot_run_in_linear_time_are_refused(
    kazoo_api: KazooApi, entries: list[str], field: str, says: str
) -> None:
    """Caught: any Python regex was accepted, including ones the gateway could not match in bounded time."""
    a = kazoo_api.a
    document = {"name": "Guarded", "smtp_permission_list": entries}
    answer = kazoo_api.call("PUT", f"/v2/accounts/{a.account_id}/faxboxes", a.auth_token, {"data": document})
    assert answer.status_code == 400, answer.text
    [(_rule, error)] = answer.json()["data"][field].items()
    assert says in error["message"], error


def test_a_pattern_that_backtracks_in_python_is_fine_in_re2(kazoo_api: KazooApi) -> None:
    a = kazoo_api.a
    document = {"name": "Linear", "smtp_permission_list": ["(a+)+$", r".*@example\.com"]}
    answer = kazoo_api.call("PUT", f"/v2/accounts/{a.account_id}/faxboxes", a.auth_token, {"data": document})
    assert (
        answer.status_code == 201 and answer.json()["data"]["smtp_permission_list"] == document["smtp_permission_list"]
    )


def test_settings_keep_the_shape_the_notifier_and_gateway_read(kazoo_api: KazooApi) -> None:
    a = kazoo_api.a
    doc = {
        "name": "Notified",
        "smtp_permission_list": [r".*@corp\.example"],
        "notifications": {
            "inbound": {"email": {"send_to": "in@corp.example"}, "callback": {"url": "https://cb.example/in"}},
            "outbound": {"sms": {"send_to": ["+15550009999"]}, "callback": {"url": "https://cb.example/out"}},
        },
        "custom_field": {"kept": True},
    }
    answer = kazoo_api.call("PUT", f"/v2/accounts/{a.account_id}/faxboxes", a.auth_token, {"data": doc})
    assert answer.status_code == 201, answer.text
    box_id = answer.json()["data"]["id"]
    [row] = kazoo_api.sql("SELECT settings, name, smtp_email FROM faxboxes WHERE id = $1", box_id)
    settings = json.loads(row["settings"])
    assert settings["notifications"] == doc["notifications"]
    assert settings["smtp_permission_list"] == doc["smtp_permission_list"]
    assert settings["custom_field"] == {"kept": True} and settings["retries"] == 1
    assert "name" not in settings and row["smtp_email"] == f"{box_id}.{SMTP_DOMAIN}"

    # PATCH merges objects recursively; null removes a field.
    patched = kazoo_api.call(
        "PATCH",
        f"/v2/accounts/{a.account_id}/faxboxes/{box_id}",
        a.auth_token,
        {"data": {"notifications": {"inbound": {"callback": None}, "outbound": {"email": {"send_to": "o@x.example"}}}}},
    ).json()["data"]
    assert patched["notifications"]["inbound"] == {"email": {"send_to": "in@corp.example"}}
    assert patched["notifications"]["outbound"]["sms"] == {"send_to": ["+15550009999"]}
    assert patched["notifications"]["outbound"]["email"] == {"send_to": "o@x.example"}

    # A PATCH that makes the document invalid changes nothing.
    refused = kazoo_api.call(
        "PATCH", f"/v2/accounts/{a.account_id}/faxboxes/{box_id}", a.auth_token, {"data": {"name": ""}}
    )
    assert refused.status_code == 400 and "name" in refused.json()["data"]
    assert kazoo_api.call("GET", f"/v2/accounts/{a.account_id}/faxboxes/{box_id}", a.auth_token).json()["data"] == (
        patched
    )


def test_custom_address_is_unique_across_accounts_whatever_its_case(kazoo_api: KazooApi) -> None:
    a, b = kazoo_api.a, kazoo_api.b
    first = kazoo_api.call(
        "PUT",
        f"/v2/accounts/{a.account_id}/faxboxes",
        a.auth_token,
        {"data": {"name": "Custom", "custom_smtp_email_address": "Fax@Unique.Example"}},
    )
    assert first.status_code == 201, first.text
    assert first.json()["data"]["custom_smtp_email_address"] == "fax@unique.example"
    a_box = first.json()["data"]["id"]

    for address in ("fax@unique.example", "FAX@UNIQUE.EXAMPLE"):
        clash = kazoo_api.call(
            "PUT",
            f"/v2/accounts/{b.account_id}/faxboxes",
            b.auth_token,
            {"data": {"name": "Thief", "custom_smtp_email_address": address}},
        )
        assert clash.status_code == 400
        assert clash.json()["data"] == {
            "custom_smtp_email_address": {"unique": {"message": "Value is already in use", "cause": address.lower()}}
        }
        for secret in (a.account_id, a_box, "Custom", a.account_name):
            assert secret not in clash.text

    # Nor may another faxbox take a generated address, or B take it by replacing its own box.
    generated = f"{a_box}.{SMTP_DOMAIN}"
    steal = kazoo_api.call(
        "POST",
        f"/v2/accounts/{b.account_id}/faxboxes/{b.faxbox_id}",
        b.auth_token,
        {"data": {"name": "B's box", "custom_smtp_email_address": generated}},
    )
    assert steal.status_code == 400 and "unique" in steal.json()["data"]["custom_smtp_email_address"]

    # The owner may keep its own address on a replace; once released, another account may claim it.
    keep = kazoo_api.call(
        "POST",
        f"/v2/accounts/{a.account_id}/faxboxes/{a_box}",
        a.auth_token,
        {"data": {"name": "Custom", "custom_smtp_email_address": "fax@unique.example"}},
    )
    assert keep.status_code == 200, keep.text
    release = kazoo_api.call(
        "PATCH",
        f"/v2/accounts/{a.account_id}/faxboxes/{a_box}",
        a.auth_token,
        {"data": {"custom_smtp_email_address": None}},
    )
    assert release.status_code == 200 and "custom_smtp_email_address" not in release.json()["data"]
    claimed = kazoo_api.call(
        "PATCH",
        f"/v2/accounts/{b.account_id}/faxboxes/{b.faxbox_id}",
        b.auth_token,
        {"data": {"custom_smtp_email_address": "fax@unique.example"}},
    )
    assert claimed.status_code == 200, claimed.text


def test_listing_pages_with_start_keys(kazoo_api: KazooApi) -> None:
    b = kazoo_api.b
    for n in range(4):
        assert (
            kazoo_api.call(
                "PUT", f"/v2/accounts/{b.account_id}/faxboxes", b.auth_token, {"data": {"name": f"Box {n}"}}
            ).status_code
            == 201
        )
    everything = kazoo_api.call("GET", f"/v2/accounts/{b.account_id}/faxboxes", b.auth_token).json()
    assert "next_start_key" not in everything
    all_ids = [row["id"] for row in everything["data"]]
    assert len(all_ids) >= 5 and all_ids == sorted(all_ids)

    seen, start_key = [], None
    while True:
        params = {"page_size": 2, **({"start_key": start_key} if start_key else {})}
        page = kazoo_api.call("GET", f"/v2/accounts/{b.account_id}/faxboxes", b.auth_token, params=params).json()
        assert page["page_size"] == len(page["data"]) <= 2
        seen += [row["id"] for row in page["data"]]
        start_key = page.get("next_start_key")
        if start_key is None:
            break
    assert seen == all_ids
    bad = kazoo_api.call("GET", f"/v2/accounts/{b.account_id}/faxboxes", b.auth_token, params={"page_size": 0})
    assert bad.status_code == 400 and bad.json()["status"] == "error"


def test_removing_a_faxbox_unassigns_its_numbers(kazoo_api: KazooApi) -> None:
    a = kazoo_api.a
    made = kazoo_api.call(
        "PUT", f"/v2/accounts/{a.account_id}/faxboxes", a.auth_token, {"data": {"name": "Numbered"}}
    ).json()["data"]
    kazoo_api.sql(
        "INSERT INTO phone_numbers (e164, account_id, faxbox_id) VALUES ('+15557770001', $1, $2)",
        a.account_id,
        made["id"],
    )
    removed = kazoo_api.call("DELETE", f"/v2/accounts/{a.account_id}/faxboxes/{made['id']}", a.auth_token)
    assert removed.status_code == 200 and removed.json()["data"]["name"] == "Numbered"
    [number] = kazoo_api.sql("SELECT account_id, faxbox_id FROM phone_numbers WHERE e164 = '+15557770001'")
    assert number == {"account_id": a.account_id, "faxbox_id": None}
    again = kazoo_api.call("DELETE", f"/v2/accounts/{a.account_id}/faxboxes/{made['id']}", a.auth_token)
    assert again.status_code == 404


def test_concurrent_claims_of_one_address_leave_exactly_one_owner(kazoo_api: KazooApi) -> None:
    tenants = [kazoo_api.a, kazoo_api.b] * 4
    address = "race@claims.example"

    def claim(tenant: Tenant) -> int:
        return kazoo_api.call(
            "PUT",
            f"/v2/accounts/{tenant.account_id}/faxboxes",
            tenant.auth_token,
            {"data": {"name": "Racer", "custom_smtp_email_address": address}},
        ).status_code

    with ThreadPoolExecutor(len(tenants)) as pool:
        statuses = sorted(pool.map(claim, tenants))
    assert statuses == [201] + [400] * (len(tenants) - 1)
    assert kazoo_api.sql("SELECT count(*) AS n FROM faxboxes WHERE custom_smtp_email_address = $1", address) == [
        {"n": 1}
    ]
