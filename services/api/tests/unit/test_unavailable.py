"""While a dependency is away each dialect answers 503 with Retry-After, in its own error shape."""

from __future__ import annotations

import json

import pytest

from fax_api.web.errors import RETRY_AFTER_S, UNAVAILABLE, dialect_error

HEADERS = {"Retry-After": str(RETRY_AFTER_S)}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v2/fax", {"status": "failed", "message": UNAVAILABLE}),
        ("/uapi/faxes/@me/@self", {"error": {"code": "service_unavailable", "message": UNAVAILABLE}}),
    ],
)
def test_each_dialect_says_unavailable_and_when_to_come_back(path: str, body: dict[str, object]) -> None:
    answer = dialect_error("POST", path, 503, "ConnectionRefusedError: [Errno 111] Connect call failed", HEADERS)
    assert answer is not None
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "5")
    assert json.loads(answer.render(answer.content, "application/json")) == body


def test_a_kazoo_path_is_left_to_kazoos_envelope() -> None:
    assert dialect_error("GET", "/v2/accounts/a/faxes", 503, "", HEADERS) is None
