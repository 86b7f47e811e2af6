"""Input Postgres cannot take is the client's error, in its dialect's envelope and with a status its operation
documents: text holding a NUL character, wherever it comes in (a path id, a listing's start_key, a JSON body's key or
value at any depth, a Fax.to parameter or file name), and an id beyond bigint.

Schemathesis found the NUL cases answering 500 (asyncpg's CharacterNotInRepertoireError for text columns,
UntranslatableCharacterError for jsonb) once the handlers were reached with generated text; the ids beyond bigint
(asyncpg's DataError: out of int64 range) came up checking the other integer parameters the same way.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.kazoo_api import KazooApi, kazoo_api_fixture  # noqa: F401

NUL = "\x00"
# httpx escapes a file name; a client need not.
NUL_FILENAME = (
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
    b"%PDF-1.4\n%%EOF\n\r\n--b--\r\n"
)


def faxto_key(api: KazooApi) -> str:
    answer = httpx.post(
        f"{api.url}/api/v2/user",
        json={"email": f"nul-{uuid.uuid4().hex[:8]}@example.com", "password": "nul-password"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["api_key"]


@pytest.mark.parametrize("collection", ["faxboxes", "users"])
def test_a_path_id_with_nul_names_nothing(kazoo_api: KazooApi, collection: str) -> None:
    a = kazoo_api.a
    path = f"/v2/accounts/{a.account_id}/{collection}/{a.faxbox_id[:8]}%00x"
    for method, body in (("GET", None), ("DELETE", None), ("POST", {"data": {"name": "n", "username": "u"}})):
        answer = kazoo_api.call(method, path, a.auth_token, body)
        assert answer.status_code == 404, (method, answer.text)
        assert answer.json()["message"] == "bad_identifier"


@pytest.mark.parametrize("collection", ["faxboxes", "users"])
def test_a_start_key_with_nul_is_invalid_data(kazoo_api: KazooApi, collection: str) -> None:
    a = kazoo_api.a
    answer = kazoo_api.call("GET", f"/v2/accounts/{a.account_id}/{collection}", a.auth_token, params={"start_key": NUL})
    assert answer.status_code == 400, answer.text
    assert "start_key" in answer.json()["data"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/v2/api_auth", {"data": {"api_key": f"key{NUL}"}}),
        ("PUT", "/v2/user_auth", {"data": {"credentials": "c", "account_name": f"name{NUL}"}}),
        ("PUT", "/v2/accounts/{account_id}/faxboxes", {"data": {"name": f"box{NUL}"}}),
        ("PUT", "/v2/accounts/{account_id}/faxboxes", {"data": {"name": "box", "custom": {f"k{NUL}": [1]}}}),
        ("PUT", "/v2/accounts/{account_id}/faxes",
         {"data": {"to_number": "+15553334444", "document": {"url": "http://127.0.0.1:9/x.pdf"}, "x": [f"{NUL}"]}}),
    ],
)  # fmt: skip
def test_a_kazoo_body_with_nul_is_invalid(kazoo_api: KazooApi, method: str, path: str, body: dict) -> None:
    a = kazoo_api.a
    answer = kazoo_api.call(method, path.format(account_id=a.account_id), a.auth_token, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"] == "invalid request body"


def test_a_queued_fax_patched_with_nul_is_invalid_and_unchanged(kazoo_api: KazooApi) -> None:
    a = kazoo_api.a
    base = f"/v2/accounts/{a.account_id}/faxes"
    fax = {"data": {"to_number": "+15553334444", "document": {"url": "http://127.0.0.1:9/x.pdf"}}}
    job = kazoo_api.call("PUT", base, a.auth_token, fax).json()["data"]
    answer = kazoo_api.call("PATCH", f"{base}/outgoing/{job['id']}", a.auth_token, {"data": {f"a{NUL}": {}}})
    assert answer.status_code == 400, answer.text
    again = kazoo_api.call("GET", f"{base}/outgoing/{job['id']}", a.auth_token)
    assert again.status_code == 200 and again.json()["data"] == job


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/api/v2/balance", {"params": {"api_key": f"k{NUL}"}}),
        ("GET", "/api/v2/countries", {"params": {"stray": NUL}}),
        ("POST", "/api/v2/user", {"json": {"email": f"a{NUL}@example.com", "password": "nul-password"}}),
        ("POST", "/api/v2/settings", {"data": {"callback_url": f"https://example.com/{NUL}"}}),
        (
            "POST",
            "/api/v2/files",
            {"content": NUL_FILENAME, "headers": {"content-type": "multipart/form-data; boundary=b"}},
        ),
    ],
)
def test_a_faxto_parameter_with_nul_is_refused(kazoo_api: KazooApi, method: str, path: str, kwargs: dict) -> None:
    if path != "/api/v2/balance":
        kwargs["params"] = {**kwargs.get("params", {}), "api_key": faxto_key(kazoo_api)}
    answer = httpx.request(method, f"{kazoo_api.url}{path}", timeout=10, **kwargs)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"status": "failed", "message": "Parameters cannot contain NUL characters"}


def test_a_uapi_extension_with_nul_is_invalid(kazoo_api: KazooApi) -> None:
    answer = httpx.post(
        f"{kazoo_api.url}/uapi/faxes/@me/100%00",
        headers={"Authorization": f"Bearer {kazoo_api.a.auth_token}"},
        files={"files": ("a.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")},
        data={"request": '{"recipients": ["15550001"]}'},
        timeout=10,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "fx_extension_invalid"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/v2/files/99999999999999999999"),
        ("GET", "/api/v2/fax/99999999999999999999/costs?fax_number=%2B15553334444"),
        ("GET", "/api/v2/file-clean?document_id=99999999999999999999"),
    ],
)
def test_a_faxto_id_beyond_bigint_is_refused(kazoo_api: KazooApi, method: str, path: str) -> None:
    separator = "&" if "?" in path else "?"
    answer = httpx.request(method, f"{kazoo_api.url}{path}{separator}api_key={faxto_key(kazoo_api)}", timeout=10)
    assert answer.status_code == 400, answer.text
    assert answer.json()["status"] == "failed"
