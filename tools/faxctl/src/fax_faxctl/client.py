"""A small Kazoo ``faxes`` client: what faxctl needs, with the platform's own error texts passed through."""

from __future__ import annotations

import json
import mimetypes
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CREDENTIALS_FILE = Path(".devstack/credentials.env")


class FaxctlError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    api_url: str
    account_id: str
    auth_token: str
    amqp_url: str | None = None

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, credentials: Path = CREDENTIALS_FILE) -> Settings:
        """``FAX_*`` from the environment, else from the embedded default's ``.devstack/credentials.env``."""
        values = dict(_read_env_file(credentials)) if credentials.exists() else {}
        values.update({key: value for key, value in (os.environ if env is None else env).items() if value})
        missing = [key for key in ("FAX_ACCOUNT_ID", "FAX_AUTH_TOKEN") if not values.get(key)]
        if missing:
            raise FaxctlError(
                f"{' and '.join(missing)} not set: export them, or run faxctl where `make run` wrote {credentials}"
            )
        return cls(
            api_url=values.get("FAX_API_URL", "http://127.0.0.1:8000").rstrip("/"),
            account_id=values["FAX_ACCOUNT_ID"],
            auth_token=values["FAX_AUTH_TOKEN"],
            amqp_url=values.get("FAX_AMQP_URL"),
        )


def _read_env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip().strip("'\"")
    return pairs


def multipart_mixed(document: dict[str, Any], path: Path) -> tuple[bytes, str]:
    """The single-request upload of Kazoo's overview: a JSON part, then the document part."""
    boundary = f"faxctl-{secrets.token_hex(12)}"
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    parts = [
        (b"fax.json", "application/json", json.dumps({"data": document}).encode()),
        (path.name.encode(), content_type, path.read_bytes()),
    ]
    body = b""
    for name, part_type, data in parts:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="'.encode()
            + name
            + f'"\r\nContent-Type: {part_type}\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/mixed; boundary={boundary}"


class FaxClient:
    def __init__(self, settings: Settings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self._http = http or httpx.Client(timeout=60)
        self._base = f"{settings.api_url}/v2/accounts/{settings.account_id}/faxes"
        self._headers = {"X-Auth-Token": settings.auth_token}

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(
                method, f"{self._base}{path}", headers=self._headers | kwargs.pop("headers", {}), **kwargs
            )
        except httpx.HTTPError as exc:
            raise FaxctlError(f"cannot reach {self.settings.api_url}: {exc}") from None
        if response.status_code >= 400:
            raise FaxctlError(_error_text(response))
        return response

    def send(self, source: str, fax: dict[str, Any]) -> dict[str, Any]:
        """Send a URL (Kazoo's ``document.url``) or a local file (one multipart request)."""
        if source.startswith(("http://", "https://")):
            response = self._call("PUT", "", json={"data": {**fax, "document": {"url": source, "method": "get"}}})
        else:
            path = Path(source)
            if not path.is_file():
                raise FaxctlError(f"{source}: no such file (give a path or an http(s) URL)")
            body, content_type = multipart_mixed(fax, path)
            response = self._call("PUT", "", content=body, headers={"Content-Type": content_type})
        return response.json()["data"]

    def job(self, fax_id: str) -> dict[str, Any]:
        """A job wherever it is: outgoing while queued, outbox once finished."""
        for folder in ("outgoing", "outbox"):
            response = self._http.get(f"{self._base}/{folder}/{fax_id}", headers=self._headers)
            if response.status_code == 200:
                return response.json()["data"]
            if response.status_code != 404:
                raise FaxctlError(_error_text(response))
        raise FaxctlError(f"no fax {fax_id} in this account")

    def listing(self, folder: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/{folder}").json()["data"]

    def attachment(self, folder: str, fax_id: str, accept: str) -> bytes:
        return self._call("GET", f"/{folder}/{fax_id}/attachment", headers={"Accept": accept}).content


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    message = body.get("message") or body.get("error") or ""
    data = body.get("data")
    detail = f" {json.dumps(data)}" if data else ""
    return f"HTTP {response.status_code} {message}{detail}".strip()
