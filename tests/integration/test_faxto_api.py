"""Fax.to REST v2 against the real API process, Postgres and S3: the curl examples of faxto-rest-api.md as
written, the balance (reserved at send, charged on completion, given back on failure, never negative under 50
concurrent sends) and the shared outbox with the Kazoo API.

No fetcher or transmitter runs: jobs are finished by writing fax_jobs.status, as the transmitter does.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from minio import Minio
from PIL import Image

from tests.integration.kazoo_api import KazooApi, kazoo_api_fixture  # noqa: F401
from tests.integration.wire_types import (
    FaxStatus,
    FaxtoFailure,
    History,
    Inbox,
    Numbers,
    Provisioned,
    Sent,
    Uploaded,
    decode,
)

# Three page objects: Fax.to's cost counts pages.
PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >> endobj\n"
    b"3 0 obj << /Type /Page >> endobj\n4 0 obj << /Type /Page >> endobj\n5 0 obj << /Type /Page >> endobj\n%%EOF\n"
)


@pytest.fixture(scope="module", autouse=True)
def _fetch_from_loopback() -> Iterator[None]:
    """AddRemoteFile downloads from the test's document server on loopback, which the network guard refuses unless
    allowed; set before the API process (kazoo_api) starts, as make run passes FAX_FETCH_ALLOW_NETWORKS. No fetcher
    draws previews here, so file-generate-preview waits one second, not fifteen, before it answers 503."""
    settings = {"FAX_FETCH_ALLOW_NETWORKS": "127.0.0.0/8", "FAX_FAXTO_PREVIEW_WAIT": "1"}
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    yield
    for name, value in previous.items():
        if value is None:
            del os.environ[name]
        else:
            os.environ[name] = value


US_PER_PAGE = Decimal("0.05")  # rates.csv, prefix 1
UK_PER_PAGE = Decimal("0.07")  # rates.csv, prefix 44


def curl(api: KazooApi, *args: str) -> tuple[int, object]:
    """Run a spec curl example with the host replaced by the API's; the JSON answer and its status."""
    out = subprocess.run(
        ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", *args], check=True, capture_output=True, timeout=30
    )
    body, _, code = out.stdout.rpartition(b"\n")
    return int(code), json.loads(body)


def register(api: KazooApi, email: str | None = None, password: str = "s3cret-pass") -> str:
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    payload = json.dumps({"email": email, "password": password})
    code, body = curl(
        api, "-d", payload, "-H", "Content-Type: application/json", "-X", "POST", f"{api.url}/api/v2/user"
    )
    assert code == 200, body
    assert body["status"] == "success" and uuid.UUID(body["api_key"])
    return body["api_key"]


def account_of(api: KazooApi, api_key: str) -> str:
    return api.sql("SELECT account_id FROM faxto_users WHERE api_key = $1", api_key)[0]["account_id"]


def top_up(api: KazooApi, api_key: str, amount: str) -> str:
    account_id = account_of(api, api_key)
    api.sql("UPDATE account_balances SET balance = $2::numeric WHERE account_id = $1", account_id, amount)
    return account_id


def upload(api: KazooApi, api_key: str, tmp_path, body: bytes = PDF, name: str = "fax.pdf") -> dict:
    path = tmp_path / name
    path.write_bytes(body)
    code, answer = curl(api, "-F", f"file=@{path}", f"{api.url}/api/v2/files?api_key={api_key}")
    assert code == 200, answer
    return answer


def job_of(api: KazooApi, fax_job_id: int) -> dict:
    """The job a send answered with ``fax_job_id``."""
    [job] = api.sql("SELECT id, status, to_number, request FROM fax_jobs WHERE int_id = $1", fax_job_id)
    return job


def balance(api: KazooApi, api_key: str) -> float:
    code, body = curl(
        api, "-X", "GET", "--header", "Content-Type: application/json", f"{api.url}/api/v2/balance?api_key={api_key}"
    )
    assert code == 200 and body["status"] == "success", body
    return body["balance"]


def kazoo_token(api: KazooApi, account_id: str) -> str:
    token = secrets.token_urlsafe(24)
    api.sql(
        "INSERT INTO auth_tokens (token_sha256, account_id) VALUES ($1, $2)",
        hashlib.sha256(token.encode()).digest(),
        account_id,
    )
    return token


def test_user_register_login_subuser_and_balance(kazoo_api: KazooApi) -> None:
    email = f"reg-{uuid.uuid4().hex[:8]}@example.com"
    key = register(kazoo_api, email)
    login = json.dumps({"email": email, "password": "s3cret-pass"})
    code, body = curl(
        kazoo_api,
        "-d",
        login,
        "-H",
        "Content-Type: application/json",
        "-X",
        "POST",
        f"{kazoo_api.url}/api/v2/user/login",
    )
    assert (code, body) == (200, {"status": "success", "api_key": key})
    wrong = json.dumps({"email": email, "password": "not-the-password"})
    code, body = curl(
        kazoo_api, "-d", wrong, "-H", "Content-Type: application/json", f"{kazoo_api.url}/api/v2/user/login"
    )
    assert code == 401 and body["status"] == "failed"
    stored = kazoo_api.sql("SELECT password_scrypt FROM faxto_users WHERE email = $1", email)[0]["password_scrypt"]
    assert stored.startswith("scrypt$") and "s3cret-pass" not in stored

    sub = json.dumps({"email": f"sub-{uuid.uuid4().hex[:8]}@example.com", "password": "sub-password"})
    code, body = curl(
        kazoo_api,
        "-d",
        sub,
        "-H",
        "Content-Type: application/json",
        "-X",
        "POST",
        f"{kazoo_api.url}/api/v2/subuser?api_key={key}",
    )
    assert code == 200 and body["status"] == "success" and body["api_key"] != key
    assert account_of(kazoo_api, body["api_key"]) == account_of(kazoo_api, key)  # one account, one balance

    assert balance(kazoo_api, key) == 0
    top_up(kazoo_api, key, "100.10")
    assert balance(kazoo_api, key) == 100.10
    assert balance(kazoo_api, body["api_key"]) == 100.10
    code, body = curl(kazoo_api, f"{kazoo_api.url}/api/v2/balance?api_key=nope")
    assert code == 401 and body["status"] == "failed"
    code, body = curl(
        kazoo_api,
        "-d",
        json.dumps({"email": email, "password": "another-password"}),
        "-H",
        "Content-Type: application/json",
        f"{kazoo_api.url}/api/v2/user",
    )
    assert code == 409


def test_files_cost_send_status_history_and_charge(kazoo_api: KazooApi, tmp_path) -> None:
    key = register(kazoo_api)
    account_id = top_up(kazoo_api, key, "10.00")
    uploaded = upload(kazoo_api, key, tmp_path)
    assert uploaded["status"] == "success"
    document_id = uploaded["document_id"]
    document = uploaded["document"]
    assert set(document) >= {
        "filename",
        "filename_uploaded",
        "orig_filename",
        "file_extension",
        "total_pages",
        "filesize",
        "preview_in_storage",
        "preview_file",
        "user_id",
        "created_at",
        "id",
    }
    assert (document["filename_uploaded"], document["file_extension"]) == ("fax.pdf", "pdf")
    assert (document["total_pages"], document["filesize"]) == (3, len(PDF))

    code, files = curl(
        kazoo_api,
        "-X",
        "GET",
        "--header",
        "Content-Type: application/json",
        f"{kazoo_api.url}/api/v2/files?api_key={key}",
    )
    assert code == 200
    assert files == [
        {"id": document_id, "filename": "fax.pdf", "pages": 3, "size": len(PDF), "uploaded": files[0]["uploaded"]}
    ]

    code, cost = curl(
        kazoo_api,
        "-X",
        "GET",
        "--header",
        "Content-Type: application/json",
        f"{kazoo_api.url}/api/v2/fax/{document_id}/costs?api_key={key}&fax_number=+161242252602",
    )
    assert (code, cost) == (200, {"status": "success", "cost": float(3 * US_PER_PAGE)})

    # The v1 example, as written: form fields.
    code, sent = curl(
        kazoo_api,
        "-X",
        "POST",
        f"{kazoo_api.url}/api/v1/fax",
        "-d",
        f"api_key={key}",
        "-d",
        "fax_number=+441224459292",
        "-d",
        f"document_id={document_id}",
    )
    assert code == 200, sent
    assert sent["status"] == "executed" and sent["cost"] == float(3 * UK_PER_PAGE)
    assert sent["user_cash_balance"] == float(Decimal("10.00") - 3 * UK_PER_PAGE)
    job_id = decode(sent, Sent).fax_job_id  # an integer, as the text shows it
    job = job_of(kazoo_api, job_id)
    assert job["to_number"] == "+441224459292" and job["status"] == "attaching_files"
    assert json.loads(job["request"])["document"]["uploads"] == [f"jobs/{job['id']}/upload-0"]

    code, status = curl(
        kazoo_api,
        "-X",
        "GET",
        "--header",
        "Content-Type: application/json",
        f"{kazoo_api.url}/api/v2/fax/{job_id}/status?api_key={key}",
    )
    assert code == 200 and status["status"] == "success"
    assert status["message"].startswith("Queued") and status["user_cash_balance"] == sent["user_cash_balance"]

    # Completed: the reservation becomes the charge; the balance stays where the send put it.
    kazoo_api.sql("UPDATE fax_jobs SET status = 'completed' WHERE int_id = $1", job_id)
    charge = kazoo_api.sql("SELECT state, amount FROM balance_charges WHERE job_id = $1", job["id"])[0]
    assert charge == {"state": "settled", "amount": 3 * UK_PER_PAGE}
    code, status = curl(kazoo_api, f"{kazoo_api.url}/api/v2/fax/{job_id}/status?api_key={key}")
    assert status["message"] == "Sent! Fax Has Been Answered."
    assert balance(kazoo_api, key) == sent["user_cash_balance"]

    # A v2 send of an uploaded file that fails: the balance gets the cost back, once.
    path = tmp_path / "one.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF\n")
    code, failed = curl(
        kazoo_api,
        "-F",
        f"file=@{path}",
        "-F",
        "fax_number=+12025550100",
        "-F",
        "delete_file=1",
        f"{kazoo_api.url}/api/v2/fax?api_key={key}",
    )
    assert code == 200 and failed["cost"] == float(US_PER_PAGE), failed
    assert balance(kazoo_api, key) == float(Decimal(str(sent["user_cash_balance"])) - US_PER_PAGE)
    for _ in range(2):  # a repeated failure must not refund twice
        kazoo_api.sql(
            "UPDATE fax_jobs SET status = 'failed', tx_result = '{\"error_message\": \"busy\"}' WHERE int_id = $1",
            failed["fax_job_id"],
        )
    assert balance(kazoo_api, key) == sent["user_cash_balance"]
    code, status = curl(kazoo_api, f"{kazoo_api.url}/api/v2/fax/{failed['fax_job_id']}/status?api_key={key}")
    assert status["message"] == "Failed: busy"
    code, files = curl(kazoo_api, f"{kazoo_api.url}/api/v2/files?api_key={key}")
    assert [f["id"] for f in files] == [document_id]  # delete_file removed the second upload

    code, history = curl(
        kazoo_api,
        "-X",
        "GET",
        "--header",
        "Content-Type: application/json",
        f"{kazoo_api.url}/api/v2/fax-history?api_key={key}",
    )
    assert code == 200 and history["status"] == "success"
    entries = {h["id"]: h for h in history["history"]}
    decode(history, History)
    assert entries[job_id]["status"] == "success" and entries[failed["fax_job_id"]]["status"] == "failed"
    assert entries[job_id]["recipient"] == "441224459292" and entries[job_id]["document_id"] == document_id
    assert entries[job_id]["created"]["timezone"] == "UTC"

    # Both jobs are the account's Kazoo outbox entries.
    token = kazoo_token(kazoo_api, account_id)
    outbox = kazoo_api.call("GET", f"/v2/accounts/{account_id}/faxes/outbox", token).json()["data"]
    assert {f["id"] for f in outbox} == {job["id"].hex, job_of(kazoo_api, failed["fax_job_id"])["id"].hex}

    code, gone = curl(
        kazoo_api,
        "-X",
        "DELETE",
        "--header",
        "Content-Type: application/json",
        f"{kazoo_api.url}/api/v2/files/{document_id}?api_key={key}",
    )
    assert (code, gone) == (200, {"status": "success"})
    code, files = curl(kazoo_api, f"{kazoo_api.url}/api/v2/files?api_key={key}")
    assert files == []


def test_kazoo_send_shows_in_faxto_history(kazoo_api: KazooApi) -> None:
    key = register(kazoo_api)
    account_id = account_of(kazoo_api, key)
    token = kazoo_token(kazoo_api, account_id)
    fax = {"document": {"url": "http://myserver.com/fax.pdf"}, "to_number": "+18884732963", "retries": 1}
    created = kazoo_api.call("PUT", f"/v2/accounts/{account_id}/faxes", token, {"data": fax})
    assert created.status_code == 201, created.text
    _, history = curl(kazoo_api, f"{kazoo_api.url}/api/v2/fax-history?api_key={key}")
    assert [h["recipient"] for h in history["history"]] == ["18884732963"]
    assert history["history"][0]["status"] == "pending"


def test_send_refused_before_dialling_when_balance_cannot_cover(kazoo_api: KazooApi, tmp_path) -> None:
    key = register(kazoo_api)
    account_id = top_up(kazoo_api, key, "0.10")
    document_id = upload(kazoo_api, key, tmp_path)["document_id"]  # 3 pages to the US: 0.15
    code, body = curl(
        kazoo_api,
        "-X",
        "POST",
        f"{kazoo_api.url}/api/v2/fax",
        "-d",
        f"api_key={key}",
        "-d",
        "fax_number=+12025550100",
        "-d",
        f"document_id={document_id}",
    )
    assert code == 402 and body["status"] == "failed" and "Insufficient balance" in body["message"]
    assert kazoo_api.sql("SELECT count(*) AS n FROM fax_jobs WHERE account_id = $1", account_id)[0]["n"] == 0
    assert balance(kazoo_api, key) == 0.10
    code, body = curl(
        kazoo_api,
        "-X",
        "POST",
        f"{kazoo_api.url}/api/v2/fax",
        "-d",
        f"api_key={key}",
        "-d",
        "fax_number=+80012345678",
        "-d",
        f"document_id={document_id}",
    )
    assert code == 400 and "No rate" in body["message"]


def test_fifty_concurrent_sends_against_a_balance_for_twenty(kazoo_api: KazooApi, tmp_path) -> None:
    key = register(kazoo_api)
    account_id = top_up(kazoo_api, key, "3.00")  # 20 x 0.15
    document_id = upload(kazoo_api, key, tmp_path)["document_id"]

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=kazoo_api.url, timeout=60) as client:
            form = {"api_key": key, "fax_number": "+12025550100", "document_id": str(document_id)}
            return await asyncio.gather(*(client.post("/api/v2/fax", data=form) for _ in range(50)))

    answers = asyncio.run(send_all())
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 20 + [402] * 30, [a.text for a in answers if a.status_code not in (200, 402)]
    rows = kazoo_api.sql(
        "SELECT count(*) AS n, sum(amount) AS total FROM balance_charges WHERE account_id = $1", account_id
    )[0]
    assert rows == {"n": 20, "total": Decimal("3.0000")}
    assert kazoo_api.sql("SELECT count(*) AS n FROM fax_jobs WHERE account_id = $1", account_id)[0]["n"] == 20
    assert balance(kazoo_api, key) == 0
    kazoo_api.sql("UPDATE fax_jobs SET status = 'completed' WHERE account_id = $1", account_id)
    states = kazoo_api.sql("SELECT DISTINCT state FROM balance_charges WHERE account_id = $1", account_id)
    assert states == [{"state": "settled"}]
    assert balance(kazoo_api, key) == 0


def test_incoming_faxes_with_signed_links(kazoo_api: KazooApi, infra) -> None:
    key = register(kazoo_api)
    account_id = account_of(kazoo_api, key)
    s3 = Minio(infra.s3_endpoint, access_key=infra.s3_access_key, secret_key=infra.s3_secret_key, secure=False)
    pdfs, hexes = {}, {}
    for n, to_number in enumerate(["+15550001111", "+15550001111", "+15550002222"]):
        fax_id = uuid.uuid4()
        body = PDF + f"% fax {n}\n".encode()
        s3.put_object(infra.s3_bucket, f"inbound/{fax_id}/fax.pdf", io.BytesIO(body), len(body))
        [row] = kazoo_api.sql(
            "INSERT INTO inbound_faxes (id, account_id, status, from_number, to_number, pages, pdf_key, created_at)"
            " VALUES ($1, $2, 'received', '+919245657633', $3, 3, $4, now() + make_interval(secs => $5))"
            " RETURNING int_id",
            fax_id,
            account_id,
            to_number,
            f"inbound/{fax_id}/fax.pdf",
            n,
        )
        pdfs[row["int_id"]] = body
        hexes[row["int_id"]] = fax_id.hex

    code, listing = curl(
        kazoo_api,
        "-X",
        "GET",
        "--header",
        "Content-Type: application/json",
        f"{kazoo_api.url}/api/v2/incoming-faxes?api_key={key}",
    )
    assert code == 200 and listing["status"] == "success"
    assert [f["id"] for f in listing["inbox"]] == list(pdfs)[::-1]  # newest first
    assert listing["meta"]["pagination"] == {
        "total": 3,
        "count": 3,
        "per_page": 20,
        "current_page": 1,
        "total_pages": 1,
        "links": {},
    }
    entry = listing["inbox"][0]
    assert (entry["number"], entry["sender"], entry["total_pages"]) == ("+15550002222", "919245657633", 3)
    assert entry["filesize"] == f"{len(pdfs[entry['id']])} B" and entry["did_id"] is None  # not a Fax.to number
    assert httpx.get(entry["file_url"]).content == pdfs[entry["id"]]
    preview = httpx.get(entry["preview_file"])
    assert preview.status_code == 200 and preview.headers["content-type"] == "application/pdf"
    tampered = entry["file_url"].replace(hexes[entry["id"]], hexes[listing["inbox"][1]["id"]])
    assert httpx.get(tampered).status_code == 403
    expired = re.sub(r"expires=\d+", "expires=1", entry["file_url"])
    assert httpx.get(expired).status_code == 403

    code, paged = curl(kazoo_api, f"{kazoo_api.url}/api/v2/incoming-faxes/+15550001111?api_key={key}&per_page=1")
    assert code == 200
    assert [f["number"] for f in paged["inbox"]] == ["+15550001111"]
    pagination = paged["meta"]["pagination"]
    assert (pagination["total"], pagination["total_pages"], pagination["count"]) == (2, 2, 1)
    assert pagination["links"]["next"].endswith("?page=2")

    other = register(kazoo_api)
    _, foreign = curl(kazoo_api, f"{kazoo_api.url}/api/v2/incoming-faxes?api_key={other}")
    assert foreign["inbox"] == []


def test_openapi_covers_both_dialects(kazoo_api: KazooApi) -> None:
    paths = httpx.get(f"{kazoo_api.url}/schema/openapi.json").json()["paths"]
    assert {"/api/v2/fax", "/api/v1/fax", "/api/v2/balance", "/api/v2/files", "/api/v2/fax-history"} <= set(paths)
    assert "/uapi/faxes/{user_id}/{extension}" in paths


def test_numbers_inventory_provisioning_and_listing(kazoo_api: KazooApi) -> None:
    key = register(kazoo_api)
    account_id = account_of(kazoo_api, key)
    get = ("-X", "GET", "--header", "Content-Type: application/json")
    code, countries = curl(kazoo_api, *get, f"{kazoo_api.url}/api/v2/countries?api_key={key}")
    assert code == 200 and countries["status"] == "success"
    assert {"country": "CANADA", "slug": "CANADA", "a2_code": "CAN", "dial_code": 1} in countries["data"]
    code, states = curl(kazoo_api, *get, f"{kazoo_api.url}/api/v2/states/USA?api_key={key}")
    assert code == 200 and states["states"][0] == {"id": "1", "name": "Alabama", "code": "AL"}
    code, areas = curl(kazoo_api, *get, f"{kazoo_api.url}/api/v2/areacodes/USA/1?api_key={key}")
    assert areas["areacodes"] == [
        {"country_code": "USA", "state_id": 1, "area_code": "205"},
        {"country_code": "USA", "state_id": 1, "area_code": "251"},
    ]
    code, groups = curl(
        kazoo_api,
        *get,
        f"{kazoo_api.url}/api/v2/countries/CAN/didgroups?api_key={key}&didGroupIds=67,5598&cityNamePattern=WIN%25",
    )
    assert (code, groups["data"]) == (200, [{"did_group_id": 67, "area_code": "204", "city_name": "WINNIPEG"}])
    assert curl(kazoo_api, f"{kazoo_api.url}/api/v2/states/XXX?api_key={key}")[0] == 404

    code, provisioned = curl(
        kazoo_api,
        "-X",
        "POST",
        "--header",
        "Content-Type: application/json",
        f"{kazoo_api.url}/api/v2/provision-numbers?api_key={key}",
    )
    assert code == 200 and provisioned["message"] == "Number has been provisioned.", provisioned
    number = decode(provisioned, Provisioned).data.number
    assert set(provisioned["data"]) == {
        "id",
        "didid",
        "did_group_id",
        "country_code",
        "city_name",
        "area_code",
        "number",
        "type",
        "trunk_id",
    }
    # The number now routes inbound faxes to this user's account.
    assert kazoo_api.sql("SELECT account_id FROM phone_numbers WHERE e164 = $1", number) == [{"account_id": account_id}]
    code, second = curl(
        kazoo_api, "-X", "POST", "-d", "did_group_id=5598", f"{kazoo_api.url}/api/v2/provision-numbers?api_key={key}"
    )
    assert code == 200 and second["data"]["area_code"] == "709" and second["data"]["number"] != number

    code, listing = curl(kazoo_api, *get, f"{kazoo_api.url}/api/v2/numbers?api_key={key}&per_page=1&page=2")
    assert code == 200 and [n["did_number"] for n in listing["numbers"]] == [second["data"]["number"]]
    assert listing["numbers"][0]["status"] == "Active" and listing["numbers"][0]["country"] == "CANADA"
    pagination = listing["meta"]["pagination"]
    assert (pagination["total"], pagination["count"], pagination["current_page"], pagination["total_pages"]) == (
        2,
        1,
        2,
        2,
    )
    assert pagination["links"] == {"previous": f"{kazoo_api.url}/api/v2/numbers?page=1"}

    other = register(kazoo_api)
    code, taken = curl(
        kazoo_api, "-X", "POST", "-d", "did_group_id=5598", f"{kazoo_api.url}/api/v2/provision-numbers?api_key={other}"
    )
    assert code == 200 and taken["data"]["number"] not in (number, second["data"]["number"])


def test_add_remote_file_through_the_fetchers_guarded_download(kazoo_api: KazooApi, document_server: str) -> None:
    key = register(kazoo_api)
    code, answer = curl(
        kazoo_api, "-F", f"AddRemoteFile={document_server}/fax.pdf", f"{kazoo_api.url}/api/v2/files?api_key={key}"
    )
    assert code == 200 and answer["status"] == "success", answer
    served = httpx.get(f"{document_server}/fax.pdf").content
    assert (answer["document"]["filename_uploaded"], answer["document"]["filesize"]) == ("fax.pdf", len(served))
    stored = kazoo_api.sql("SELECT object_key FROM faxto_documents WHERE id = $1", answer["document_id"])
    assert len(stored) == 1
    # Private networks other than the allowed loopback stay refused (no connection is attempted).
    code, refused = curl(
        kazoo_api, "-F", "AddRemoteFile=http://10.1.2.3/fax.pdf", f"{kazoo_api.url}/api/v2/files?api_key={key}"
    )
    assert code == 400 and refused["status"] == "failed" and "AddRemoteFile" in refused["message"], refused
    code, missing = curl(
        kazoo_api, "-F", f"AddRemoteFile={document_server}/nope.pdf", f"{kazoo_api.url}/api/v2/files?api_key={key}"
    )
    assert code == 400 and "404" in missing["message"]


def test_file_generate_preview_links_the_fetchers_page_images(kazoo_api: KazooApi, infra, tmp_path) -> None:
    """Until the fetcher has drawn the previews the answer is 503; then a signed link per page serves the PNG the
    fetcher stored; a file the fetcher could not render answers 422 with its reason, to preview and to send.
    (The fetcher's side, drawing them from the render, is tests/integration/test_documents.py.)"""
    key = register(kazoo_api)
    top_up(kazoo_api, key, "1.00")
    document_id = upload(kazoo_api, key, tmp_path)["document_id"]
    preview_url = f"{kazoo_api.url}/api/v2/file-generate-preview?document_id={document_id}&api_key={key}"
    get = ("-X", "GET", "--header", "Content-Type: application/json")
    code, answer = curl(kazoo_api, *get, preview_url)
    assert (code, answer["status"]) == (503, "failed"), answer
    assert cues_for(kazoo_api, document_id) == 1, "the upload queued the fetcher's cue with its row"

    [document] = kazoo_api.sql("SELECT object_key FROM faxto_documents WHERE id = $1", document_id)
    s3 = Minio(infra.s3_endpoint, access_key=infra.s3_access_key, secret_key=infra.s3_secret_key, secure=False)
    pages = {page: make_png(page) for page in (1, 2)}
    for page, png in pages.items():
        s3.put_object(infra.s3_bucket, f"{document['object_key']}.preview-{page}.png", io.BytesIO(png), len(png))
    kazoo_api.sql("UPDATE faxto_documents SET preview_status = 'ready', total_pages = 2 WHERE id = $1", document_id)

    code, answer = curl(kazoo_api, *get, preview_url)
    assert code == 200 and answer["status"] == "success", answer
    shown = httpx.get(answer["url"])
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png" and shown.content == pages[1]
    second = httpx.get(preview_url + "&page=2").json()["url"]
    assert httpx.get(second).content == pages[2]
    assert curl(kazoo_api, *get, preview_url + "&page=3")[0] == 400
    assert httpx.get(answer["url"].replace("signature=", "signature=0")).status_code == 403
    assert httpx.get(answer["url"].replace("preview-1.png", "preview-2.png")).status_code == 403  # signed per page
    code, clean = curl(kazoo_api, *get, f"{kazoo_api.url}/api/v2/file-clean?document_id={document_id}&api_key={key}")
    assert (clean["preview_in_storage"], clean["preview_file"]) == (1, f"{clean['orig_filename']}.preview.png")
    other = register(kazoo_api)
    assert curl(kazoo_api, *get, preview_url.replace(key, other))[0] == 404

    reason = "document has 100000 pages; the limit is 500"
    kazoo_api.sql(
        "UPDATE faxto_documents SET preview_status = 'failed', preview_error = $2 WHERE id = $1", document_id, reason
    )
    code, answer = curl(kazoo_api, *get, preview_url)
    assert (code, answer["message"]) == (422, f"The document cannot be faxed: {reason}")
    refused = httpx.post(
        f"{kazoo_api.url}/api/v2/fax", data={"api_key": key, "fax_number": "+12025550100", "document_id": document_id}
    )
    assert refused.status_code == 422 and balance(kazoo_api, key) == 1.0, "refused before anything was charged"

    # A file uploaded before previews existed is drawn when first asked for: its cue is queued then, once.
    kazoo_api.sql("UPDATE faxto_documents SET preview_status = 'none' WHERE id = $1", document_id)
    assert curl(kazoo_api, *get, preview_url)[0] == 503
    assert curl(kazoo_api, *get, preview_url)[0] == 503
    assert cues_for(kazoo_api, document_id) == 2


def cues_for(api: KazooApi, document_id: int) -> int:
    """fax.document.stored.v1 events queued for the document (the outbox keeps sent rows)."""
    rows = api.sql(
        "SELECT count(*) AS n FROM outbox WHERE routing_key = 'fax.document.stored.v1'"
        " AND convert_from(payload, 'UTF8')::jsonb ->> 'document_id' = $1",
        str(document_id),
    )
    return rows[0]["n"]


def make_png(page: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (864, 100 + page), color=255).save(out, format="PNG")
    return out.getvalue()


def test_file_clean_answers_the_document_as_it_will_be_faxed(kazoo_api: KazooApi, tmp_path) -> None:
    key = register(kazoo_api)
    uploaded = upload(kazoo_api, key, tmp_path)
    code, answer = curl(
        kazoo_api, "-X", "GET", "--header", "Content-Type: application/json",
        f"{kazoo_api.url}/api/v2/file-clean?document_id={uploaded['document_id']}&api_key={key}",
    )  # fmt: skip
    assert code == 200 and answer["status"] == "success", answer
    assert answer["id"] == uploaded["document_id"] and answer["total_pages"] >= 1
    assert answer["filename"].endswith(".tiff") and answer["file_extension"] == "pdf"
    for field in ("filename_uploaded", "orig_filename", "filesize", "preview_file", "user_id", "created_at"):
        assert field in answer
    other = register(kazoo_api)
    assert (
        curl(kazoo_api, f"{kazoo_api.url}/api/v2/file-clean?document_id={uploaded['document_id']}&api_key={other}")[0]
        == 404
    )


def test_delivery_webhook_target_is_the_jobs_callback(kazoo_api: KazooApi, tmp_path) -> None:
    """The notifier sends the delivery receipt to a job's callback; a Fax.to send with callback_url sets it."""
    key = register(kazoo_api)
    top_up(kazoo_api, key, "1.00")
    document_id = upload(kazoo_api, key, tmp_path)["document_id"]
    form = {"api_key": key, "fax_number": "+12025550100", "document_id": document_id}
    sent = httpx.post(f"{kazoo_api.url}/api/v2/fax", data={**form, "callback_url": "https://hooks.example.com/fax"})
    assert sent.status_code == 200, sent.text
    request = json.loads(job_of(kazoo_api, sent.json()["fax_job_id"])["request"])
    assert request["callback"] == {"url": "https://hooks.example.com/fax", "method": "post",
                                   "type": "www-url-form-encoded"}  # fmt: skip
    bad = httpx.post(f"{kazoo_api.url}/api/v2/fax", data={**form, "callback_url": "ftp://x"})
    assert bad.status_code == 400 and bad.json()["status"] == "failed"


def test_api_settings_callback_is_every_later_sends_webhook(kazoo_api: KazooApi, tmp_path) -> None:
    """POST /api/v2/settings stores the account's callback (shared with its sub-users); a send without its own
    callback_url gets it, one with callback_url keeps its own, and an empty callback_url removes it."""
    key = register(kazoo_api)
    top_up(kazoo_api, key, "1.00")
    settings_url = f"{kazoo_api.url}/api/v2/settings"
    assert httpx.get(settings_url, params={"api_key": key}).json() == {"status": "success", "callback_url": ""}
    assert httpx.post(settings_url, data={"api_key": key, "callback_url": "gopher://x"}).status_code == 400
    assert httpx.post(settings_url, data={"api_key": key}).status_code == 400
    assert httpx.post(settings_url, data={"api_key": "wrong", "callback_url": "https://x.example"}).status_code == 401
    saved = httpx.post(settings_url, json={"api_key": key, "callback_url": "https://app.example.com/fax-events"})
    assert saved.status_code == 200 and saved.json()["callback_url"] == "https://app.example.com/fax-events"
    sub = httpx.post(
        f"{kazoo_api.url}/api/v2/subuser",
        data={"api_key": key, "email": f"sub-{uuid.uuid4().hex[:8]}@example.com", "password": "s3cret-pass"},
    ).json()["api_key"]
    assert (
        httpx.get(settings_url, params={"api_key": sub}).json()["callback_url"] == "https://app.example.com/fax-events"
    )

    document_id = upload(kazoo_api, key, tmp_path)["document_id"]
    form = {"api_key": sub, "fax_number": "+12025550100", "document_id": document_id}

    def callback_of(answer: httpx.Response) -> object:
        assert answer.status_code == 200, answer.text
        job_id = answer.json()["fax_job_id"]
        return json.loads(job_of(kazoo_api, job_id)["request"]).get("callback")

    send_url = f"{kazoo_api.url}/api/v2/fax"
    assert callback_of(httpx.post(send_url, data=form)) == {
        "url": "https://app.example.com/fax-events", "method": "post", "type": "www-url-form-encoded"
    }  # fmt: skip
    own = callback_of(httpx.post(send_url, data={**form, "callback_url": "https://own.example/cb"}))
    assert own["url"] == "https://own.example/cb"  # type: ignore[index]
    assert httpx.post(settings_url, data={"api_key": key, "callback_url": ""}).json()["callback_url"] == ""
    assert callback_of(httpx.post(send_url, data=form)) is None


def test_operator_credits_a_balance_and_it_is_recorded(kazoo_api: KazooApi) -> None:
    email = f"credit-{uuid.uuid4().hex[:8]}@example.com"
    key = register(kazoo_api, email)

    def credit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fax_api.faxto.credit", *args],
            env={**os.environ, "FAX_DATABASE_URL": kazoo_api.database_url},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    done = credit(email.upper(), "2.50", "--note", "invoice 17")
    assert done.returncode == 0, done.stderr
    assert balance(kazoo_api, key) == 2.5
    refused = credit(email, "-3")
    assert refused.returncode == 1 and "below zero" in refused.stderr
    assert credit("nobody@example.com", "1").returncode == 1
    assert credit(email, "lots").returncode == 2  # argparse: not an amount
    assert credit(email, "-2.5").returncode == 0 and balance(kazoo_api, key) == 0
    recorded = kazoo_api.sql(
        "SELECT amount::text, note FROM balance_credits WHERE account_id = $1 ORDER BY id", account_of(kazoo_api, key)
    )
    assert recorded == [{"amount": "2.5000", "note": "invoice 17"}, {"amount": "-2.5000", "note": ""}]


def test_ids_decode_as_the_integers_the_text_shows_and_status_takes_what_send_returned(
    kazoo_api: KazooApi, tmp_path
) -> None:
    """Caught: fax_job_id (both send forms), the history's ids and the upload's names were not what the text shows:
    a typed client decoding fax_job_id as an integer failed on every send. Ids are integers, never reused, and
    /fax/{fax_job_id}/status takes the integer (and the Kazoo id of the same job)."""
    key = register(kazoo_api)
    top_up(kazoo_api, key, "5.00")
    uploaded = decode(upload(kazoo_api, key, tmp_path), Uploaded)
    document = uploaded.document
    assert document.orig_filename.endswith(".pdf") and document.filename == f"{document.orig_filename}.tiff"
    assert document.preview_file == f"{document.orig_filename}.preview.png"  # drawn from the upload on
    form = {"api_key": key, "fax_number": "+441224459292", "document_id": str(uploaded.document_id)}
    v1 = decode(httpx.post(f"{kazoo_api.url}/api/v1/fax", data=form).json(), Sent)
    # The Encoding section: "a POST or GET call using UTF-8 encoding and URL encoded values".
    v2 = decode(httpx.get(f"{kazoo_api.url}/api/v2/fax", params=form).json(), Sent)
    assert v1.status == v2.status == "executed" and v2.fax_job_id > v1.fax_job_id
    kazoo_api.sql("DELETE FROM fax_jobs WHERE int_id = $1", v1.fax_job_id)
    again = decode(httpx.post(f"{kazoo_api.url}/api/v2/fax", data=form).json(), Sent)
    assert again.fax_job_id > v2.fax_job_id, "a removed job's id is never handed out again"

    for job_id in (v2.fax_job_id, job_of(kazoo_api, v2.fax_job_id)["id"].hex):
        status = httpx.get(f"{kazoo_api.url}/api/v2/fax/{job_id}/status", params={"api_key": key})
        assert decode(status.json(), FaxStatus).message.startswith("Queued"), status.text
    gone = httpx.get(f"{kazoo_api.url}/api/v2/fax/{v1.fax_job_id}/status", params={"api_key": key})
    assert gone.status_code == 404 and decode(gone.json(), FaxtoFailure).status == "failed"
    history = decode(httpx.get(f"{kazoo_api.url}/api/v2/fax-history", params={"api_key": key}).json(), History)
    assert [h.id for h in history.history] == [again.fax_job_id, v2.fax_job_id]
    assert {h.document_id for h in history.history} == {uploaded.document_id}

    other = register(kazoo_api)
    foreign = httpx.get(f"{kazoo_api.url}/api/v2/fax/{v2.fax_job_id}/status", params={"api_key": other})
    assert foreign.status_code == 404, "another account's job is not found"


def test_fax_numbers_are_read_as_e164_and_a_national_number_is_refused(kazoo_api: KazooApi, tmp_path) -> None:
    key = register(kazoo_api)
    top_up(kazoo_api, key, "5.00")
    document_id = upload(kazoo_api, key, tmp_path)["document_id"]
    send = f"{kazoo_api.url}/api/v2/fax"
    for written in ("0044 1224 459292", "+44 (1224) 459-292", "441224459292"):
        sent = httpx.post(send, data={"api_key": key, "fax_number": written, "document_id": document_id})
        assert job_of(kazoo_api, decode(sent.json(), Sent).fax_job_id)["to_number"] == "+441224459292", written
    national = httpx.post(send, data={"api_key": key, "fax_number": "01224 459292", "document_id": document_id})
    assert national.status_code == 400
    assert "national number" in decode(national.json(), FaxtoFailure).message
    cost = httpx.get(
        f"{kazoo_api.url}/api/v2/fax/{document_id}/costs", params={"api_key": key, "fax_number": "00161242252602"}
    )
    assert cost.json() == {"status": "success", "cost": float(3 * US_PER_PAGE)}  # +1...: the US rate, not +0...


def test_the_snippets_provision_path_with_post_and_get(kazoo_api: KazooApi) -> None:
    """Caught: /api/v2/countries/didgroups/{id}/provision, the path of the text's PHP (POST), Python and Ruby (GET)
    snippets, answered 404 in Kazoo's error shape; trunk_id was null where the text shows an integer."""
    key = register(kazoo_api)
    path = f"{kazoo_api.url}/api/v2/countries/didgroups/67/provision"
    # PHP: CURLOPT_POST with no fields; Python 2's urllib.urlopen(url) and Ruby's Net::HTTP.get: a GET.
    posted = decode(httpx.post(path, params={"api_key": key}).json(), Provisioned)
    fetched = decode(httpx.get(path, params={"api_key": key}).json(), Provisioned)
    assert posted.message == fetched.message == "Number has been provisioned."
    assert (posted.data.did_group_id, posted.data.area_code, posted.data.city_name) == (67, "204", "WINNIPEG")
    assert posted.data.number != fetched.data.number and posted.data.didid == posted.data.id
    listed = decode(httpx.get(f"{kazoo_api.url}/api/v2/numbers", params={"api_key": key}).json(), Numbers)
    assert {n.did_number for n in listed.numbers} == {posted.data.number, fetched.data.number}
    unknown = httpx.get(f"{kazoo_api.url}/api/v2/countries/didgroups/999999/provision", params={"api_key": key})
    assert unknown.status_code == 404 and decode(unknown.json(), FaxtoFailure).message == "Unknown did_group_id"
    assert httpx.get(path, params={"api_key": "wrong"}).status_code == 401


def test_incoming_faxes_are_found_by_the_recipient_with_or_without_plus(kazoo_api: KazooApi, infra) -> None:
    """A number is one number however it is written: /incoming-faxes/12048134700 and /%2B12048134700 (and the
    number as a client might format it) list the same faxes, each with the provisioned number's did_id.
    Also caught: a fax without documents left (after Kazoo's DELETE .../attachment) made the listing a 500."""
    key = register(kazoo_api)
    account_id = account_of(kazoo_api, key)
    provisioned = decode(
        httpx.post(f"{kazoo_api.url}/api/v2/provision-numbers", params={"api_key": key}).json(), Provisioned
    ).data
    s3 = Minio(infra.s3_endpoint, access_key=infra.s3_access_key, secret_key=infra.s3_secret_key, secure=False)
    ids = []
    for _ in range(2):
        fax_id = uuid.uuid4()
        s3.put_object(infra.s3_bucket, f"inbound/{fax_id}/fax.pdf", io.BytesIO(PDF), len(PDF))
        [row] = kazoo_api.sql(
            "INSERT INTO inbound_faxes (id, account_id, status, from_number, to_number, pages, pdf_key)"
            " VALUES ($1, $2, 'received', '+919245657633', $3, 1, $4) RETURNING int_id",
            fax_id,
            account_id,
            provisioned.number,
            f"inbound/{fax_id}/fax.pdf",
        )
        ids.append(row["int_id"])
    digits = provisioned.number.lstrip("+")
    for recipient in (digits, f"%2B{digits}", f"+{digits}", f"{digits[0]}%20({digits[1:4]})%20{digits[4:]}"):
        answer = httpx.get(f"{kazoo_api.url}/api/v2/incoming-faxes/{recipient}", params={"api_key": key})
        inbox = decode(answer.json(), Inbox).inbox
        assert [f.id for f in inbox] == ids[::-1], recipient
        assert {(f.number, f.did_id) for f in inbox} == {(provisioned.number, provisioned.id)}, recipient
    national = httpx.get(f"{kazoo_api.url}/api/v2/incoming-faxes/0204813", params={"api_key": key})
    assert national.status_code == 400 and "national number" in decode(national.json(), FaxtoFailure).message

    kazoo_api.sql("UPDATE inbound_faxes SET pdf_key = NULL WHERE int_id = $1", ids[0])
    answer = httpx.get(f"{kazoo_api.url}/api/v2/incoming-faxes/{digits}", params={"api_key": key})
    assert answer.status_code == 200, answer.text
    assert [(f["id"], f["filesize"]) for f in answer.json()["inbox"]] == [(ids[1], f"{len(PDF)} B"), (ids[0], None)]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v2/no-such-call", 404),
        ("GET", "/api/v1/no-such-call", 404),
        ("DELETE", "/api/v2/fax", 405),
        ("PUT", "/api/v1/fax", 405),
        ("PATCH", "/api/v2/files", 405),
        ("DELETE", "/api/v2/files/not-a-number", 404),
        ("GET", "/api/v2/fax/not-a-number/costs", 404),
    ],
)
def test_every_faxto_path_answers_in_faxtos_error_shape(
    kazoo_api: KazooApi, method: str, path: str, status: int
) -> None:
    """Caught: unknown paths and methods under /api answered in Kazoo's envelope (data, error, request_id)."""
    answer = httpx.request(method, f"{kazoo_api.url}{path}", params={"api_key": "any"})
    assert answer.status_code == status
    assert decode(answer.json(), FaxtoFailure).status == "failed"


def test_bad_bodies_answer_in_faxtos_error_shape(kazoo_api: KazooApi) -> None:
    key = register(kazoo_api)
    for headers, body in (
        ({"Content-Type": "multipart/form-data; boundary=xyz"}, b"--xyz\r\nContent-Disposition: form-data\r\n"),
        ({"Content-Type": "application/json"}, b"{broken"),
    ):
        answer = httpx.post(f"{kazoo_api.url}/api/v2/files", params={"api_key": key}, headers=headers, content=body)
        assert answer.status_code == 400, answer.text
        assert decode(answer.json(), FaxtoFailure).status == "failed"
    kazoo = kazoo_api.call("GET", "/v2/no-such-call")
    assert kazoo.status_code == 404 and kazoo.json()["status"] == "error", "Kazoo's paths keep Kazoo's shape"
