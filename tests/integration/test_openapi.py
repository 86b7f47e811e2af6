"""The OpenAPI document the running API serves describes every route of the app, with its methods, bodies, errors
and authentication.

Routes are enumerated from the app, so a route added later without a description fails here. Whether the API
answers as its document says is schemathesis's run (test_openapi_fuzz.py).
"""

from __future__ import annotations

import re

import httpx
import pytest

from fax_api.app import create_app
from fax_api.config import ApiSettings
from tests.integration.kazoo_api import KazooApi, kazoo_api_fixture  # noqa: F401

# Operations that take no request body at all.
BODILESS = {("PUT", "/v2/accounts/{account_id}/api_key")}
# Each dialect's paths, its error responses (components/responses/<dialect><status>) and its security scheme.
DIALECTS = [("/v2/", "Kazoo", "kazooAuthToken"), ("/api/", "Faxto", "faxtoApiKey"), ("/uapi/", "Uapi", "uapiToken")]
# The calls that get a dialect's credentials need none.
UNAUTHENTICATED = {
    ("PUT", "/v2/user_auth"),
    ("PUT", "/v2/api_auth"),
    ("POST", "/api/v2/user"),
    ("POST", "/api/v2/user/login"),
}


def documented_routes() -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every handler the app includes in its schema."""
    settings = ApiSettings.from_env(
        {"FAX_DATABASE_URL": "postgresql://unused/x", "FAX_AMQP_URL": "amqp://unused", "FAX_S3_ENDPOINT": "unused:9"}
    )
    found = set()
    for route in create_app(settings).routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for handler in getattr(route, "route_handlers", []):
            if handler.resolve_include_in_schema():
                found |= {(method, path) for method in handler.http_methods if method not in ("OPTIONS", "HEAD")}
    return found


ROUTES = documented_routes()


@pytest.fixture(scope="module")
def document(kazoo_api: KazooApi) -> dict:
    answer = httpx.get(f"{kazoo_api.url}/schema/openapi.json", timeout=10)
    assert answer.status_code == 200
    return answer.json()


def test_every_route_is_documented_with_its_methods(document: dict) -> None:
    assert len(ROUTES) >= 20
    in_document = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    missing = ROUTES - in_document
    assert not missing, sorted(missing)
    for required in [
        ("PATCH", "/v2/accounts/{account_id}/faxboxes/{faxbox_id}"),
        ("PUT", "/v2/user_auth"),
        ("PUT", "/v2/api_auth"),
        ("GET", "/v2/accounts/{account_id}/api_key"),
    ]:
        assert required in in_document


@pytest.mark.parametrize(("method", "path"), sorted(r for r in ROUTES if r[0] in ("PUT", "POST", "PATCH")))
def test_request_bodies_are_described(document: dict, method: str, path: str) -> None:
    operation = document["paths"][path][method.lower()]
    if (method, path) in BODILESS:
        assert "requestBody" not in operation
        return
    body = operation.get("requestBody")
    assert body, f"{method} {path} has no request body in the OpenAPI document"
    # Kazoo bodies are JSON; the Fax.to and VoipNow dialects take forms and multipart, as their texts show.
    for media_type in ("application/json", "multipart/form-data", "multipart/mixed"):
        if media_type in body["content"]:
            schema = body["content"][media_type]["schema"]
            assert schema.get("properties") or schema.get("$ref"), schema
            return
    raise AssertionError(f"{method} {path}: no JSON or multipart body in {sorted(body['content'])}")


def test_faxbox_body_carries_the_kazoo_schema(document: dict) -> None:
    body = document["paths"]["/v2/accounts/{account_id}/faxboxes"]["put"]["requestBody"]
    faxbox = body["content"]["application/json"]["schema"]["properties"]["data"]
    assert faxbox["required"] == ["name"]
    assert faxbox["properties"]["name"] == {"type": "string", "minLength": 1, "maxLength": 128}
    assert faxbox["properties"]["caller_name"]["default"] == "Kazoo Fax Printer"
    assert faxbox["properties"]["retries"]["default"] == 1
    auth = document["paths"]["/v2/user_auth"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert "credentials" in auth["properties"]["data"]["required"]


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
def test_errors_and_authentication_are_the_dialects(document: dict, method: str, path: str) -> None:
    """Every error an operation lists is in its dialect's envelope, and its security is its dialect's scheme."""
    operation = document["paths"][path][method.lower()]
    _, dialect, scheme = next(d for d in DIALECTS if path.startswith(d[0]))
    errors = {code: answer for code, answer in operation["responses"].items() if int(code) >= 400}
    assert errors, f"{method} {path} lists no error"
    for code, answer in errors.items():
        assert answer == {"$ref": f"#/components/responses/{dialect}{code}"}, (code, answer)
        assert f"{dialect}{code}" in document["components"]["responses"]
    if (method, path) in UNAUTHENTICATED:
        assert "security" not in operation
    else:
        assert operation["security"] == [{scheme: []}]
        assert document["components"]["securitySchemes"][scheme]


def test_each_dialects_error_envelope_is_its_own(document: dict) -> None:
    responses = document["components"]["responses"]
    kazoo = responses["Kazoo404"]["content"]["application/json"]["schema"]
    assert set(kazoo["required"]) == {"data", "error", "message", "status", "request_id"}
    faxto = responses["Faxto401"]["content"]["application/json"]["schema"]
    assert faxto["properties"]["status"] == {"enum": ["failed"], "default": "failed"}
    uapi = responses["Uapi400"]["content"]["application/json"]["schema"]
    assert uapi["required"] == ["error"] and set(uapi["properties"]["error"]["required"]) == {"code", "message"}
    schemes = document["components"]["securitySchemes"]
    assert (schemes["kazooAuthToken"]["in"], schemes["kazooAuthToken"]["name"]) == ("header", "X-Auth-Token")
    assert (schemes["faxtoApiKey"]["in"], schemes["faxtoApiKey"]["name"]) == ("query", "api_key")
    assert (schemes["uapiToken"]["type"], schemes["uapiToken"]["scheme"]) == ("http", "bearer")
