"""Kazoo authentication against the real API and Postgres: user_auth and api_auth round trips, the API key,
users, expiry and revocation."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid

import asyncpg
import httpx

from fax_api.accounts.rules import credentials_hashes, verify_password
from fax_api.demo import ensure_demo_tenant
from tests.integration.kazoo_api import KazooApi, kazoo_api_fixture  # noqa: F401
from tests.integration.stack import REPO, infra_env, running_stack


def md5_credentials(username: str, password: str) -> str:
    """As Kazoo's docs make it: ``echo -n 'username:password' | md5sum``."""
    out = subprocess.run(["md5sum"], input=f"{username}:{password}", capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def curl_put(api: KazooApi, path: str, body: dict) -> tuple[int, dict]:
    """Kazoo's curl example: ``curl -X PUT -d '{"data": ...}'`` with no Content-Type header of its own."""
    out = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", "-X", "PUT", "-d", json.dumps(body), f"{api.url}{path}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    text, _, status = out.stdout.rpartition("\n")
    return int(status), json.loads(text)


def works_for(api: KazooApi, token: str, account_id: str) -> bool:
    return api.call("GET", f"/v2/accounts/{account_id}/faxboxes", token).status_code == 200


def test_user_auth_round_trip_with_the_demo_user(kazoo_api: KazooApi) -> None:
    a = kazoo_api.a
    credentials = md5_credentials(a.username, a.password)
    status, answer = curl_put(
        kazoo_api, "/v2/user_auth", {"data": {"credentials": credentials, "account_name": a.account_name}}
    )
    assert status == 201, answer
    assert answer["status"] == "success"
    assert answer["data"]["account_id"] == a.account_id and answer["data"]["owner_id"] == a.user_id
    token = answer["auth_token"]
    assert token and token != a.auth_token and works_for(kazoo_api, token, a.account_id)
    # Only the digest of the token is stored, and it expires.
    [row] = kazoo_api.sql(
        "SELECT method, user_id, expires_at > now() + interval '50 minutes' AS lives FROM auth_tokens "
        "WHERE token_sha256 = $1",
        hashlib.sha256(token.encode()).digest(),
    )
    assert row == {"method": "user_auth", "user_id": a.user_id, "lives": True}
    in_clear = kazoo_api.sql("SELECT count(*) AS n FROM auth_tokens t WHERE row_to_json(t)::text LIKE $1", f"%{token}%")
    assert in_clear == [{"n": 0}]

    # The account name is matched whatever its case; SHA-1 credentials and a number of the account work too.
    sha = hashlib.sha1(f"{a.username}:{a.password}".encode()).hexdigest()
    for data in (
        {"credentials": credentials, "account_name": a.account_name.upper()},
        {"credentials": sha, "method": "sha", "account_name": a.account_name},
        {"credentials": credentials, "phone_number": "+15550001000"},
        {"credentials": credentials, "phone_number": "1 555 000 1000"},  # the same number, written otherwise
    ):
        status, answer = curl_put(kazoo_api, "/v2/user_auth", {"data": data})
        assert status == 201 and answer["data"]["account_id"] == a.account_id, (data, answer)


def test_wrong_credentials_are_401_in_kazoos_envelope(kazoo_api: KazooApi) -> None:
    a, b = kazoo_api.a, kazoo_api.b
    attempts = [
        {"credentials": md5_credentials(a.username, "wrong-password"), "account_name": a.account_name},
        # Right credentials, another account's name: credentials only count inside their account.
        {"credentials": md5_credentials(a.username, a.password), "account_name": b.account_name},
        {"credentials": md5_credentials(a.username, a.password), "account_name": "No such account"},
    ]
    for data in attempts:
        status, answer = curl_put(kazoo_api, "/v2/user_auth", {"data": data})
        assert status == 401
        assert answer["status"] == "error" and answer["error"] == "401"
        assert answer["message"] == "invalid_credentials" and answer["data"] == {"message": "invalid credentials"}
        assert a.account_id not in json.dumps(answer)
    status, answer = curl_put(kazoo_api, "/v2/user_auth", {"data": {"method": "rot13"}})
    assert status == 400
    assert set(answer["data"]) == {"credentials", "method", "account_name"}


def test_api_auth_round_trip_and_key_rotation(kazoo_api: KazooApi) -> None:
    b = kazoo_api.b
    fetched = kazoo_api.call("GET", f"/v2/accounts/{b.account_id}/api_key", b.auth_token)
    assert fetched.status_code == 200 and fetched.json()["data"] == {"api_key": b.api_key}
    assert len(b.api_key) == 64 and int(b.api_key, 16) >= 0

    status, answer = curl_put(kazoo_api, "/v2/api_auth", {"data": {"api_key": b.api_key}})
    assert status == 201, answer
    assert answer["data"]["account_id"] == b.account_id and "owner_id" not in answer["data"]
    key_token = answer["auth_token"]
    assert works_for(kazoo_api, key_token, b.account_id)

    rotated = kazoo_api.call("PUT", f"/v2/accounts/{b.account_id}/api_key", b.auth_token)
    assert rotated.status_code == 201
    new_key = rotated.json()["data"]["api_key"]
    assert new_key != b.api_key and len(new_key) == 64
    # The old key and the tokens obtained with it stop working; the user's own token does not.
    status, answer = curl_put(kazoo_api, "/v2/api_auth", {"data": {"api_key": b.api_key}})
    assert status == 401 and answer["message"] == "invalid_credentials"
    assert not works_for(kazoo_api, key_token, b.account_id)
    assert works_for(kazoo_api, b.auth_token, b.account_id)
    status, answer = curl_put(kazoo_api, "/v2/api_auth", {"data": {"api_key": new_key}})
    assert status == 201 and works_for(kazoo_api, answer["auth_token"], b.account_id)
    kazoo_api.b.api_key = new_key

    status, answer = curl_put(kazoo_api, "/v2/api_auth", {"data": {}})
    assert status == 400 and answer["data"] == {"api_key": {"required": {"message": "Field is required but missing"}}}


def test_expired_missing_and_unknown_tokens_are_401(kazoo_api: KazooApi) -> None:
    b = kazoo_api.b
    expired = "expired-token-for-the-test"
    kazoo_api.sql(
        "INSERT INTO auth_tokens (token_sha256, account_id, method, expires_at) "
        "VALUES ($1, $2, 'api_auth', now() - interval '1 second')",
        hashlib.sha256(expired.encode()).digest(),
        b.account_id,
    )
    for token in (expired, "never-issued", None):
        answer = kazoo_api.call("GET", f"/v2/accounts/{b.account_id}/faxboxes", token)
        assert answer.status_code == 401
        assert answer.json()["message"] == "invalid_credentials" and b.faxbox_id not in answer.text


def test_users_crud_never_shows_a_password(kazoo_api: KazooApi) -> None:
    b = kazoo_api.b
    base = f"/v2/accounts/{b.account_id}/users"
    created = kazoo_api.call(
        "PUT",
        base,
        b.auth_token,
        {"data": {"username": "Carol", "password": "carol-secret-1", "email": "carol@b.example", "first_name": "C"}},
    )
    assert created.status_code == 201, created.text
    carol = created.json()["data"]
    assert carol["username"] == "carol" and carol["first_name"] == "C" and "password" not in created.text
    [row] = kazoo_api.sql("SELECT password_scrypt, md5_credentials FROM users WHERE id = $1", carol["id"])
    assert row["password_scrypt"].startswith("scrypt$") and verify_password("carol-secret-1", row["password_scrypt"])
    assert row["md5_credentials"] == md5_credentials("carol", "carol-secret-1")

    duplicate = kazoo_api.call("PUT", base, b.auth_token, {"data": {"username": "CAROL", "password": "another-pw"}})
    assert duplicate.status_code == 400 and "unique" in duplicate.json()["data"]["username"]
    invalid = kazoo_api.call("PUT", base, b.auth_token, {"data": {"username": "", "password": "short"}})
    assert invalid.status_code == 400 and set(invalid.json()["data"]) == {"username", "password"}

    listed = kazoo_api.call("GET", base, b.auth_token).json()
    assert {u["username"] for u in listed["data"]} >= {"bob", "carol"} and "password" not in json.dumps(listed)

    status, answer = curl_put(
        kazoo_api,
        "/v2/user_auth",
        {"data": {"credentials": md5_credentials("carol", "carol-secret-1"), "account_name": b.account_name}},
    )
    assert status == 201
    carol_token = answer["auth_token"]

    # Renaming needs the password (the credentials hash covers the username); with it, the new name logs in.
    rename = kazoo_api.call("POST", f"{base}/{carol['id']}", b.auth_token, {"data": {"username": "caroline"}})
    assert rename.status_code == 400 and "password" in rename.json()["data"]
    renamed = kazoo_api.call(
        "POST", f"{base}/{carol['id']}", b.auth_token, {"data": {"username": "caroline", "password": "carol-secret-2"}}
    )
    assert renamed.status_code == 200 and renamed.json()["data"]["username"] == "caroline"
    status, _ = curl_put(
        kazoo_api,
        "/v2/user_auth",
        {"data": {"credentials": md5_credentials("caroline", "carol-secret-2"), "account_name": b.account_name}},
    )
    assert status == 201
    # POST replaces the whole user: fields left out are cleared.
    fetched = kazoo_api.call("GET", f"{base}/{carol['id']}", b.auth_token).json()["data"]
    assert fetched == {"id": carol["id"], "username": "caroline", "email": "", "first_name": "", "last_name": ""}

    # Removing a user revokes the tokens it obtained.
    assert works_for(kazoo_api, carol_token, b.account_id)
    removed = kazoo_api.call("DELETE", f"{base}/{carol['id']}", b.auth_token)
    assert removed.status_code == 200
    assert not works_for(kazoo_api, carol_token, b.account_id)
    assert kazoo_api.call("GET", f"{base}/{carol['id']}", b.auth_token).status_code == 404


async def test_demo_tenant_is_stable_and_completed_after_an_upgrade(database_url: str) -> None:
    """Every start returns the same tenant; one seeded before users and API keys existed gets them added."""
    first = await ensure_demo_tenant(database_url, "fax.demo.example")
    assert await ensure_demo_tenant(database_url, "fax.demo.example") == first
    assert first.faxbox_email == f"{first.faxbox_id}.fax.demo.example" and first.username == "demo"
    conn = await asyncpg.connect(database_url)
    try:
        [user] = await conn.fetch("SELECT username, md5_credentials FROM users WHERE account_id = $1", first.account_id)
        assert user["md5_credentials"] == credentials_hashes("demo", first.password)[0]
        assert await conn.fetchval("SELECT api_key FROM accounts WHERE id = $1", first.account_id) == first.api_key
        # As an older version left it: no user, no API key or account name in the seed.
        await conn.execute("DELETE FROM users")
        await conn.execute("DELETE FROM devstack_seed WHERE key IN ('account_name', 'api_key', 'username', 'password')")
        upgraded = await ensure_demo_tenant(database_url, "fax.demo.example")
        assert (upgraded.account_id, upgraded.auth_token, upgraded.faxbox_id) == (
            first.account_id,
            first.auth_token,
            first.faxbox_id,
        )
        assert upgraded.api_key == first.api_key and upgraded.password != first.password
        stored = await conn.fetchval("SELECT md5_credentials FROM users WHERE account_id = $1", first.account_id)
        assert stored == credentials_hashes("demo", upgraded.password)[0]
    finally:
        await conn.close()


def test_the_embedded_defaults_credentials_log_in(infra) -> None:
    """``make run``'s credentials.env: the demo user and API key get tokens that reach the demo faxbox."""
    state_dir = REPO / ".devstack" / f"test-auth-{uuid.uuid4().hex[:8]}"
    env = {
        **infra_env(infra),
        "FAX_LINE": "loopback",
    }
    with running_stack(state_dir, env) as stack:
        creds = stack.credentials
        credentials = md5_credentials(creds["FAX_USERNAME"], creds["FAX_PASSWORD"])
        by_user = httpx.put(
            f"{stack.api_url}/v2/user_auth",
            content=json.dumps({"data": {"credentials": credentials, "account_name": creds["FAX_ACCOUNT_NAME"]}}),
            timeout=10,
        )
        by_key = httpx.put(
            f"{stack.api_url}/v2/api_auth", content=json.dumps({"data": {"api_key": creds["FAX_API_KEY"]}}), timeout=10
        )
        for answer in (by_user, by_key):
            assert answer.status_code == 201, answer.text
            assert answer.json()["data"]["account_id"] == creds["FAX_ACCOUNT_ID"]
            box = httpx.get(
                f"{stack.api_url}/v2/accounts/{creds['FAX_ACCOUNT_ID']}/faxboxes/{creds['FAX_FAXBOX_ID']}",
                headers={"X-Auth-Token": answer.json()["auth_token"]},
                timeout=10,
            )
            assert box.status_code == 200, box.text
            assert box.json()["data"]["smtp_email_address"] == creds["FAX_FAXBOX_EMAIL"]
            assert box.json()["data"]["smtp_permission_list"] == [r".*@example\.com"]
