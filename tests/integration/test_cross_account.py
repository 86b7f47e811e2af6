"""Every route under ``/v2/accounts/{account_id}/`` refuses another account's token and tells it nothing.

Routes are enumerated from the app itself, so routes added later are covered without touching this file. Path ids
are real ids of the owning account (its faxbox, user, fax job), so a leak would show the owner's data.
"""

from __future__ import annotations

import re
import uuid

import pytest

from fax_api.app import create_app
from fax_api.config import ApiSettings
from tests.integration.kazoo_api import KazooApi, kazoo_api_fixture  # noqa: F401

ACCOUNT_PREFIX = "/v2/accounts/{account_id"
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
REFUSED = {401, 403, 404}
# Something each kind of route might accept, so a missing check would show as a change.
INTRUDER_BODY = {
    "data": {
        "name": "intruder",
        "username": "mallory",
        "password": "mallory-password",
        "to_number": "+15551112222",
        "document": {"url": "http://127.0.0.1:9/x.pdf"},
        "custom_smtp_email_address": "mallory@intruder.example",
    }
}


def account_routes() -> list[tuple[str, str]]:
    """(method, path template) for every handler of the app under /v2/accounts/{account_id}/."""
    settings = ApiSettings.from_env(
        {"FAX_DATABASE_URL": "postgresql://unused/x", "FAX_AMQP_URL": "amqp://unused", "FAX_S3_ENDPOINT": "unused:9"}
    )
    found = []
    for route in create_app(settings).routes:
        if route.path.startswith(ACCOUNT_PREFIX):
            found += [(method, route.path) for method in sorted(route.methods) if method not in ("OPTIONS", "HEAD")]
    return found


ROUTES = account_routes()


def owner_ids(api: KazooApi) -> dict[str, str]:
    """A real id of the owner (account a) for each kind of path parameter."""
    a = api.a
    job = api.call(
        "PUT",
        f"/v2/accounts/{a.account_id}/faxes",
        a.auth_token,
        {"data": {"to_number": "+15553334444", "document": {"url": "http://127.0.0.1:9/owner.pdf"}}},
    )
    assert job.status_code in (200, 201), job.text
    return {
        "account_id": a.account_id,
        "faxbox_id": a.faxbox_id,
        "user_id": a.user_id,
        "fax_id": job.json()["data"]["id"],
    }


def fill(template: str, ids: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name in ids:
            return ids[name]
        # A parameter this test does not know yet: a fax-ish one gets the job id, anything else the faxbox id.
        return ids["fax_id"] if "fax" in name and "faxbox" not in name else ids["faxbox_id"]

    return PARAM.sub(value, template)


def owner_state(api: KazooApi) -> dict:
    a = api.a
    return {
        "faxboxes": api.sql(
            "SELECT id, name, settings, custom_smtp_email_address, revision FROM faxboxes "
            "WHERE account_id = $1 ORDER BY id",
            a.account_id,
        ),
        "users": api.sql(
            "SELECT id, username, md5_credentials, revision FROM users WHERE account_id = $1 ORDER BY id", a.account_id
        ),
        "account": api.sql("SELECT name, api_key FROM accounts WHERE id = $1", a.account_id),
        "jobs": api.sql(
            "SELECT id, status, request::text FROM fax_jobs WHERE account_id = $1 ORDER BY id", a.account_id
        ),
        "numbers": api.sql(
            "SELECT e164, faxbox_id FROM phone_numbers WHERE account_id = $1 ORDER BY e164", a.account_id
        ),
    }


def test_the_app_has_account_routes_to_check() -> None:
    paths = {path for _, path in ROUTES}
    assert (
        any("/faxboxes" in p for p in paths) and any("/users" in p for p in paths) and any("/faxes" in p for p in paths)
    )


def test_another_accounts_token_learns_nothing(kazoo_api: KazooApi) -> None:
    a, b = kazoo_api.a, kazoo_api.b
    ids = owner_ids(kazoo_api)
    secrets = [a.account_id, a.faxbox_id, a.user_id, ids["fax_id"], a.api_key, a.auth_token, a.username, a.account_name]
    secrets += [
        row["smtp_email"] for row in kazoo_api.sql("SELECT smtp_email FROM faxboxes WHERE id = $1", a.faxbox_id)
    ]
    before = owner_state(kazoo_api)
    checked = 0
    for method, template in ROUTES:
        path = fill(template, ids)
        body = INTRUDER_BODY if method in ("PUT", "POST", "PATCH") else None
        for token in (b.auth_token, "not-a-token", None):
            answer = kazoo_api.call(method, path, token, body)
            assert answer.status_code in REFUSED, (method, path, token, answer.status_code, answer.text)
            leaked = [s for s in secrets if s in answer.text]
            assert not leaked, (method, path, leaked)
            checked += 1
        # No existence leak: an account that does not exist gets the very same answer.
        for_owner = kazoo_api.call(method, path, b.auth_token, body)
        missing = kazoo_api.call(method, fill(template, {**ids, "account_id": uuid.uuid4().hex}), b.auth_token, body)
        assert (missing.status_code, missing.json()["data"]) == (for_owner.status_code, for_owner.json()["data"])
        if method == "GET":
            # The substituted ids are the owner's own: its token is not refused on the same path.
            assert kazoo_api.call(method, path, a.auth_token).status_code not in (401, 403), path
    assert checked == 3 * len(ROUTES)
    assert owner_state(kazoo_api) == before


@pytest.mark.parametrize("prefix", ["/v2/accounts/{account_id}/faxboxes", "/v2/accounts/{account_id}/users"])
def test_another_accounts_ids_are_not_found_under_ones_own_account(kazoo_api: KazooApi, prefix: str) -> None:
    """B asking for A's faxbox or user under B's own account: 404, as for an id that never existed."""
    a, b = kazoo_api.a, kazoo_api.b
    for owned_elsewhere in (a.faxbox_id, a.user_id):
        answer = kazoo_api.call("GET", f"{prefix.format(account_id=b.account_id)}/{owned_elsewhere}", b.auth_token)
        assert answer.status_code == 404 and answer.json()["message"] == "bad_identifier"
        assert a.account_id not in answer.text
