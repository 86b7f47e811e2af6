"""Callback URLs are refused when they are written, in each dialect's own error envelope, if no callback to them could
ever be delivered: not http(s), or a host whose every address the network guard refuses, in whatever spelling.

The API runs alone (kazoo_api) without FAX_FETCH_ALLOW_NETWORKS, as a production deployment does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.kazoo_api import KazooApi, kazoo_api_fixture  # noqa: F401
from tests.integration.test_faxto_api import register, top_up, upload

# Each is refused by the guard or can never be called; the comment says what it stands for.
REFUSED_URLS = [
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:17777/x",  # 127.0.0.1 in full-width digits
    "http://127\u30020\u30020\u30021/",  # 127.0.0.1 with ideographic full stops
    "http://\u2460\u2461\u2466.\u24ea.\u24ea.\u2460/",  # 127.0.0.1 in circled digits
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://127.1/",  # short form
    "http://0x7f.0.0.1/",  # hexadecimal
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://localhost:8080/",
    "http://169.254.169.254/latest/meta-data",  # the cloud metadata service
    "http://[::ffff:a9fe:a9fe]/latest/meta-data",
    "http://10.0.0.1/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:70/_x",
]
ACCEPTED_URL = "https://hooks.example.com/fax"  # does not resolve here: the guard decides when it is called


@pytest.fixture(scope="module", autouse=True)
def _no_allowed_networks() -> Iterator[None]:
    previous = os.environ.pop("FAX_FETCH_ALLOW_NETWORKS", None)
    yield
    if previous is not None:
        os.environ["FAX_FETCH_ALLOW_NETWORKS"] = previous


def _faxes(api: KazooApi, tail: str = "") -> str:
    return f"/v2/accounts/{api.a.account_id}/faxes{tail}"


def _faxboxes(api: KazooApi, tail: str = "") -> str:
    return f"/v2/accounts/{api.a.account_id}/faxboxes{tail}"


def _fax(url: str) -> dict:
    return {"to_number": "+15551230000", "document": {"url": "http://docs.example/fax.pdf"}, "callback": {"url": url}}


def _count(api: KazooApi, table: str) -> int:
    return api.sql(f"SELECT count(*) AS n FROM {table} WHERE account_id = $1", api.a.account_id)[0]["n"]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_kazoo_fax_callback_is_refused_on_create_and_change(kazoo_api: KazooApi, url: str) -> None:
    """Caught: such URLs were stored, then retried for 48 hours, dropped, or delivered to loopback."""
    jobs = _count(kazoo_api, "fax_jobs")
    created = kazoo_api.call("PUT", _faxes(kazoo_api), kazoo_api.a.auth_token, {"data": _fax(url)})
    assert created.status_code == 400, created.text
    body = created.json()
    assert body["status"] == "error" and body["message"] == "invalid data" and body["error"] == "400"
    assert body["data"]["callback.url"]  # Kazoo's field error, with a message saying why
    assert _count(kazoo_api, "fax_jobs") == jobs

    queued = kazoo_api.call("PUT", _faxes(kazoo_api), kazoo_api.a.auth_token, {"data": _fax(ACCEPTED_URL)})
    assert queued.status_code == 201, queued.text
    fax_id = queued.json()["data"]["id"]
    for method, body in (("PATCH", {"callback": {"url": url}}), ("POST", _fax(url))):
        changed = kazoo_api.call(method, _faxes(kazoo_api, f"/outgoing/{fax_id}"), kazoo_api.a.auth_token,
                                 {"data": body})  # fmt: skip
        assert changed.status_code == 400 and "callback.url" in changed.json()["data"], (method, changed.text)
    stored = kazoo_api.call("GET", _faxes(kazoo_api, f"/outgoing/{fax_id}"), kazoo_api.a.auth_token).json()
    assert stored["data"]["callback"]["url"] == ACCEPTED_URL


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_kazoo_faxbox_notification_callbacks_are_refused(kazoo_api: KazooApi, url: str) -> None:
    boxes = _count(kazoo_api, "faxboxes")
    document = {"name": "Hooks", "notifications": {"inbound": {"callback": {"url": url}}}}
    created = kazoo_api.call("PUT", _faxboxes(kazoo_api), kazoo_api.a.auth_token, {"data": document})
    assert created.status_code == 400, created.text
    assert created.json()["status"] == "error" and created.json()["data"]["notifications.inbound.callback.url"]
    assert _count(kazoo_api, "faxboxes") == boxes

    patch = {"notifications": {"outbound": {"callback": {"url": url, "method": "put"}}}}
    box = kazoo_api.a.faxbox_id
    patched = kazoo_api.call("PATCH", _faxboxes(kazoo_api, f"/{box}"), kazoo_api.a.auth_token, {"data": patch})
    assert patched.status_code == 400 and "notifications.outbound.callback.url" in patched.json()["data"]
    replaced = kazoo_api.call("POST", _faxboxes(kazoo_api, f"/{box}"), kazoo_api.a.auth_token, {"data": document})
    assert replaced.status_code == 400 and "notifications.inbound.callback.url" in replaced.json()["data"]


def test_a_faxbox_callback_that_can_be_reached_is_kept(kazoo_api: KazooApi) -> None:
    document = {"name": "Good hooks", "notifications": {"outbound": {"callback": {"url": ACCEPTED_URL}}}}
    created = kazoo_api.call("PUT", _faxboxes(kazoo_api), kazoo_api.a.auth_token, {"data": document})
    assert created.status_code == 201, created.text
    assert created.json()["data"]["notifications"]["outbound"]["callback"]["url"] == ACCEPTED_URL


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_faxto_callback_url_is_refused_in_settings_and_on_send(kazoo_api: KazooApi, tmp_path, url: str) -> None:
    key = register(kazoo_api)
    settings_url = f"{kazoo_api.url}/api/v2/settings"
    refused = httpx.post(settings_url, data={"api_key": key, "callback_url": url})
    assert refused.status_code == 400, refused.text
    assert refused.json()["status"] == "failed" and refused.json()["message"].startswith("callback_url is refused: ")
    assert httpx.get(settings_url, params={"api_key": key}).json()["callback_url"] == ""

    top_up(kazoo_api, key, "1.00")
    document_id = upload(kazoo_api, key, tmp_path)["document_id"]
    form = {"api_key": key, "fax_number": "+12025550100", "document_id": document_id}
    jobs = _count(kazoo_api, "fax_jobs")
    sent = httpx.post(f"{kazoo_api.url}/api/v2/fax", data={**form, "callback_url": url})
    assert sent.status_code == 400 and sent.json()["message"].startswith("callback_url is refused: "), sent.text
    assert _count(kazoo_api, "fax_jobs") == jobs
