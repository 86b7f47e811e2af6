"""The composition root hands every handler its collaborators and settings: the app runs on in-memory stand-ins.

``create_app(settings, connect)`` builds whatever ``connect`` yields; no handler reads the environment or the app's
state, so the dialects' limits follow the settings object alone, and a listing pages over whatever store it is given.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

from litestar.testing import TestClient

from fax_api.app import ApiServices, create_app
from fax_api.config import ApiSettings
from fax_api.faxboxes.rows import FaxboxRecord
from fax_api.faxto.rows import FaxtoDocument, FaxtoUser
from fax_jobs import FaxJob

TOKENS = {"token-a": "acct-a", "token-b": "acct-b"}
BASE_ENV = {"FAX_DATABASE_URL": "postgresql://unused/x", "FAX_AMQP_URL": "amqp://unused", "FAX_S3_ENDPOINT": "unused:9"}


class MemoryAccounts:
    async def account_for_token(self, token: str) -> str | None:
        return TOKENS.get(token)


class MemoryFaxboxes:
    def __init__(self, *faxboxes: FaxboxRecord) -> None:
        self.faxboxes = sorted(faxboxes, key=lambda faxbox: faxbox.id)

    async def page(self, account_id: str, start_key: str, limit: int) -> list[FaxboxRecord]:
        mine = [f for f in self.faxboxes if f.account_id == account_id and f.id >= start_key]
        return mine[:limit]


class MemoryFaxto:
    """A Fax.to user with one document whose previews are still being drawn."""

    user = FaxtoUser(id=1, account_id="acct-a", parent_id=None, email="a@example.com", api_key="key-a")
    stored = FaxtoDocument(
        id=7, account_id="acct-a", user_id=1, filename_uploaded="a.pdf", file_extension="pdf",
        content_type="application/pdf", object_key="faxto/acct-a/documents/x", filesize=10, total_pages=1,
        preview_status="pending", preview_error="", created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        updated_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    )  # fmt: skip

    async def user_for_key(self, api_key: str) -> FaxtoUser | None:
        return self.user if api_key == self.user.api_key else None

    async def document(self, account_id: str, document_id: int) -> FaxtoDocument | None:
        return self.stored if (account_id, document_id) == ("acct-a", 7) else None


class MemoryJobs:
    """Submissions as ``fax_jobs.JobStore.submitting`` takes them: the documents once, then one job per request."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, dict[str, Any]]] = []
        self.documents: list[tuple[bytes, str]] = []

    @contextlib.asynccontextmanager
    async def submitting(self, keys: Sequence[str], documents: Sequence[tuple[bytes, str]]) -> AsyncIterator[Any]:
        self.documents = list(documents)
        yield self

    async def add(self, account_id: str, request: dict[str, Any], *, job_id: uuid.UUID | None = None) -> FaxJob:
        self.submitted.append((account_id, request))
        return FaxJob(
            id=job_id or uuid.uuid4(), int_id=len(self.submitted), account_id=account_id, status="attaching_files",
            request=request, to_number=request["to_number"], from_number=request.get("from_number", ""),
            retries=request["retries"], attempts=0, tiff_key=None, pages=None, tx_result={}, revision=1,
            created_at=dt.datetime.now(dt.UTC), delivered_at=None,
        )  # fmt: skip


def _faxbox(account_id: str, faxbox_id: str) -> FaxboxRecord:
    return FaxboxRecord(
        id=faxbox_id,
        account_id=account_id,
        name=f"box {faxbox_id}",
        smtp_email=f"{faxbox_id}.fax.localhost",
        custom_smtp_email_address=None,
        settings={},
        revision=1,
    )


def _client(env: dict[str, str], **services: Any) -> TestClient:
    @contextlib.asynccontextmanager
    async def connect(_: ApiSettings) -> AsyncIterator[ApiServices]:
        unused = cast(Any, None)
        yield ApiServices(
            accounts=services.get("accounts", MemoryAccounts()),
            faxboxes=services.get("faxboxes", unused),
            faxes=unused,
            jobs=services.get("jobs", unused),
            faxto=services.get("faxto", unused),
            monitoring=unused,
            blobs=unused,
            http=unused,
        )

    return TestClient(create_app(ApiSettings.from_env({**BASE_ENV, **env}), connect=connect))


def test_a_kazoo_listing_pages_over_the_store_it_is_given() -> None:
    ids = [f"{i:032x}" for i in range(4)]  # Kazoo ids: 32 hex digits
    faxboxes = MemoryFaxboxes(*(_faxbox("acct-a", faxbox_id) for faxbox_id in ids[:3]), _faxbox("acct-b", ids[3]))
    with _client({}, faxboxes=faxboxes) as client:
        path = "/v2/accounts/acct-a/faxboxes"
        first = client.get(path, params={"page_size": 2}, headers={"X-Auth-Token": "token-a"}).json()
        assert [row["id"] for row in first["data"]] == ids[:2]
        assert first["start_key"] == [ids[0]] and first["next_start_key"] == ids[2]
        second = client.get(
            path, params={"page_size": 2, "start_key": first["next_start_key"]}, headers={"X-Auth-Token": "token-a"}
        ).json()
        assert [row["id"] for row in second["data"]] == [ids[2]] and "next_start_key" not in second
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"X-Auth-Token": "token-b"}).status_code == 403


def _send_to_two(client: TestClient) -> Any:
    return client.post(
        "/uapi/faxes/@me/100",
        headers={"Authorization": "Bearer token-a"},
        files={"files": ("a.pdf", b"%PDF-1.4", "application/pdf")},
        data={"request": json.dumps({"recipients": ["15550001", "15550002"]})},
    )


def test_voipnow_limits_come_from_the_settings() -> None:
    """Two recipients are refused with FAX_VOIPNOW_MAX_RECIPIENTS=1 and sent, one job each, with 2."""
    with _client({"FAX_VOIPNOW_MAX_RECIPIENTS": "1"}) as client:
        refused = _send_to_two(client)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "fx_recipients_invalid"
    assert "1 to 1" in refused.json()["error"]["message"]
    jobs = MemoryJobs()
    with _client({"FAX_VOIPNOW_MAX_RECIPIENTS": "2"}, jobs=jobs) as client:
        sent = _send_to_two(client)
    assert sent.status_code == 200 and sent.json()["id"] == "1"
    assert [(account, request["to_number"]) for account, request in jobs.submitted] == [
        ("acct-a", "15550001"),
        ("acct-a", "15550002"),
    ]
    assert jobs.documents == [(b"%PDF-1.4", "application/pdf")]


def test_faxto_preview_wait_comes_from_the_settings() -> None:
    """With FAX_FAXTO_PREVIEW_WAIT=0 a preview not drawn yet answers 503 at once, in Fax.to's envelope."""
    with _client({"FAX_FAXTO_PREVIEW_WAIT": "0"}, faxto=MemoryFaxto()) as client:
        answer = client.get("/api/v2/file-generate-preview", params={"api_key": "key-a", "document_id": 7})
        assert answer.status_code == 503 and answer.json()["status"] == "failed"
        refused = client.get("/api/v2/file-generate-preview", params={"api_key": "nope", "document_id": 7})
        assert refused.status_code == 401
        assert refused.json() == {"message": "Invalid or missing api_key", "status": "failed"}
