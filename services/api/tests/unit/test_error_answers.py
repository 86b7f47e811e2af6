"""Errors raised outside the handlers are answered as the OpenAPI document says, in the path's dialect.

Each case here answered otherwise before: schemathesis (``tests/integration/test_openapi_fuzz.py``) found Kazoo's 405
without Allow; the 413s showed when the document's "every body can be too large" was checked against the parsers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from litestar.testing import TestClient

from fax_api.app import ApiServices, create_app
from fax_api.config import ApiSettings
from fax_api.faxto.rows import FaxtoUser

BASE_ENV = {"FAX_DATABASE_URL": "postgresql://unused/x", "FAX_AMQP_URL": "amqp://unused", "FAX_S3_ENDPOINT": "unused:9"}
# Larger than the app's request body limit (60 MiB), as announced by the request's Content-Length.
TOO_LARGE = str(61 * 1024 * 1024)


class MemoryAccounts:
    async def account_for_token(self, token: str) -> str | None:
        return "acct-a" if token == "token-a" else None


class MemoryFaxto:
    user = FaxtoUser(id=1, account_id="acct-a", parent_id=None, email="a@example.com", api_key="key-a")

    async def user_for_key(self, api_key: str) -> FaxtoUser | None:
        return self.user if api_key == self.user.api_key else None


def _client() -> TestClient:
    @contextlib.asynccontextmanager
    async def connect(_: ApiSettings) -> AsyncIterator[ApiServices]:
        unused = cast(Any, None)
        yield ApiServices(
            accounts=cast(Any, MemoryAccounts()), faxboxes=unused, faxes=unused, jobs=unused,
            faxto=cast(Any, MemoryFaxto()), monitoring=unused, blobs=unused, http=unused,
        )  # fmt: skip

    return TestClient(create_app(ApiSettings.from_env(BASE_ENV), connect=connect))


@pytest.mark.parametrize(
    "path", ["/v2/accounts/acct-a/faxboxes/f1", "/api/v2/balance", "/uapi/faxes/@me/100", "/v2/user_auth"]
)
def test_a_method_a_path_does_not_take_is_answered_with_allow(path: str) -> None:
    """Schemathesis found it: Kazoo's 405 (a TRACE on any /v2 path) came without the Allow header RFC 9110 requires;
    Fax.to's and UAPI's had it."""
    with _client() as client:
        answer = client.request("TRACE", path)
    assert answer.status_code == 405
    assert answer.headers.get("allow"), answer.headers


@pytest.mark.parametrize(
    ("path", "headers", "envelope_key"),
    [
        ("/api/v2/settings?api_key=key-a", {"content-type": "application/x-www-form-urlencoded"}, "status"),
        ("/api/v2/settings?api_key=key-a", {"content-type": "application/json"}, "status"),
        ("/uapi/faxes/@me/100", {"authorization": "Bearer token-a", "content-type": "multipart/form-data; boundary=b"},
         "error"),
    ],
)  # fmt: skip
def test_a_body_over_the_limit_is_413_in_every_dialect(path: str, headers: dict[str, str], envelope_key: str) -> None:
    """Fax.to's and UAPI's body parsers answered a body over the app's limit with 400 (malformed form or JSON), not
    the 413 the document lists for every operation with a body (and Kazoo answers)."""
    with _client() as client:
        answer = client.post(path, content=b"x", headers={**headers, "content-length": TOO_LARGE})
    assert answer.status_code == 413, answer.text
    assert envelope_key in answer.json()
