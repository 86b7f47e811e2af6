"""Which callback URLs a Kazoo document sets, and the refusal of those no callback could ever reach."""

from __future__ import annotations

import pytest

from fax_api.web.callback_urls import check_kazoo_callback_urls, kazoo_callback_urls, refused_callback_urls
from fax_api.web.kazoo import KazooError
from fax_runtime.network_guard import NetworkGuard


def test_callback_urls_of_a_fax_and_of_a_faxbox() -> None:
    assert kazoo_callback_urls({"callback": {"url": "https://a.example/cb"}}) == {
        "callback.url": "https://a.example/cb"
    }
    faxbox = {
        "notifications": {
            "inbound": {"callback": {"url": "https://in.example/"}},
            "outbound": {"callback": {"url": ""}, "email": {"send_to": "x@y.example"}},
        }
    }
    assert kazoo_callback_urls(faxbox) == {"notifications.inbound.callback.url": "https://in.example/"}
    assert kazoo_callback_urls({"callback": None}) == {} and kazoo_callback_urls([]) == {}


async def test_only_refused_fields_are_named() -> None:
    urls = {"a": "http://8.8.8.8/cb", "b": "http://10.0.0.1/cb", "c": "ftp://8.8.8.8/"}
    refused = await refused_callback_urls(NetworkGuard(), urls)
    assert set(refused) == {"b", "c"} and "private address" in refused["b"]
    assert await refused_callback_urls(NetworkGuard.from_setting("10.0.0.0/8"), {"b": urls["b"]}) == {}


async def test_kazoo_error_names_each_field() -> None:
    with pytest.raises(KazooError) as caught:
        await check_kazoo_callback_urls(NetworkGuard(), {"callback": {"url": "http://169.254.169.254/"}})
    assert caught.value.status_code == 400 and caught.value.message == "invalid data"
    assert "cloud metadata" in caught.value.data["callback.url"]["format"]["message"]
