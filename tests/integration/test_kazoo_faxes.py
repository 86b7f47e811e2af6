"""The Kazoo faxes API against the real API process, Postgres and S3: every curl example of the two faxes spec
files, uploads, paging, the modify/delete rules, resubmit, attachments by Accept, inbox/incoming/smtplog.

Nothing here sends a fax (no fetcher or transmitter runs), so jobs stay where the API put them; finished jobs and
inbound faxes are written straight into Postgres and S3, as the transmitter and the receive path would.
test_kazoo_faxes_e2e.py drives an uploaded fax to ``completed`` on the whole platform.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from minio import Minio

from fax_contracts import JobSubmitted, routing_key
from fax_contracts.events import decode_event
from tests.integration.kazoo_api import KazooApi, kazoo_api_fixture  # noqa: F401

KAZOO_FAX = {
    "document": {"url": "http://myserver.com/fax.pdf", "method": "get"},
    "retries": 3,
    "from_name": "Test Fax",
    "from_number": "18884732963",
    "to_name": "To Name",
    "to_number": "18884732963",
}
TX_RESULT = {
    "error_message": "",
    "fax_bad_rows": 0,
    "fax_error_correction": False,
    "fax_receiver_id": "",
    "fax_speed": 0,
    "pages_sent": 0,
    "success": False,
    "time_elapsed": 0,
}
PDF = b"%PDF-1.4\n% a stand-in: the API stores uploads as they are, the fetcher renders them\n%%EOF\n"
TIFF = b"II*\x00" + b"\x00" * 64
QUEUED_AND_FINISHED = ("attaching_files", "pending", "processing", "completed", "failed")


@pytest.fixture(scope="module")
def s3(infra) -> Minio:
    return Minio(infra.s3_endpoint, access_key=infra.s3_access_key, secret_key=infra.s3_secret_key, secure=False)


def curl(api: KazooApi, method: str, path: str, *args: str) -> tuple[int, bytes]:
    """Run a spec curl example as written (no Content-Type unless the example sets one)."""
    out = subprocess.run(
        ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, *args, f"{api.url}{path}"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    body, _, code = out.stdout.rpartition(b"\n")
    return int(code), body


def curl_json(api: KazooApi, method: str, path: str, *args: str) -> tuple[int, dict]:
    code, body = curl(api, method, path, "-H", f"X-Auth-Token: {api.a.auth_token}", *args)
    return code, json.loads(body)


def faxes(api: KazooApi, tail: str = "") -> str:
    return f"/v2/accounts/{api.a.account_id}/faxes{tail}"


def create(api: KazooApi, **changes: object) -> dict:
    answer = api.call("PUT", faxes(api), api.a.auth_token, {"data": {**KAZOO_FAX, **changes}})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def finish(
    api: KazooApi, s3: Minio, infra, fax_id: str, status: str = "completed", pages: int = 1, pdf_copy: bool = True
) -> None:
    """What the fetcher and transmitter leave behind: the fax TIFF and PDF in S3, the job finished."""
    job = uuid.UUID(fax_id)
    documents = ((f"jobs/{job}/fax.tif", TIFF), (f"jobs/{job}/fax.pdf", PDF))
    for key, body in documents if pdf_copy else documents[:1]:
        s3.put_object(infra.s3_bucket, key, io.BytesIO(body), len(body))
    api.sql(
        "UPDATE fax_jobs SET status = $2, tiff_key = $3, pages = $4, attempts = 1, delivered_at = now(), "
        'tx_result = \'{"success": true, "pages_sent": 1}\' WHERE id = $1',
        job,
        status,
        f"jobs/{job}/fax.tif",
        pages,
    )


def submitted_events(api: KazooApi, fax_id: str) -> int:
    rows = api.sql("SELECT payload FROM outbox WHERE routing_key = $1", routing_key(JobSubmitted))
    events = [decode_event(r["payload"]) for r in rows]
    return sum(1 for e in events if isinstance(e, JobSubmitted) and e.job_id.hex == fax_id)


def accepting(api: KazooApi, path: str, accept: str) -> httpx.Response:
    return httpx.get(f"{api.url}{path}", headers={"X-Auth-Token": api.a.auth_token, "Accept": accept}, timeout=10)


def object_exists(s3: Minio, infra, key: str) -> bool:
    try:
        s3.stat_object(infra.s3_bucket, key)
    except Exception:
        return False
    return True


# --- the curl examples of kazoo-faxes-api.md and kazoo-faxes-api-overview.rst ---------------------------------


def test_curl_create_answers_the_documented_document(kazoo_api: KazooApi) -> None:
    code, body = curl_json(kazoo_api, "PUT", faxes(kazoo_api), "-d", json.dumps({"data": KAZOO_FAX}))
    assert code == 201, body
    data = body["data"]
    assert {k: data[k] for k in KAZOO_FAX} == KAZOO_FAX
    assert data["attempts"] == 0 and data["tx_result"] == TX_RESULT and data["fax_timezone"] == "undefined"
    assert len(data["id"]) == 32 and data["status"] == "pending"
    assert body["status"] == "success" and body["auth_token"] == kazoo_api.a.auth_token and body["request_id"]
    assert body["revision"].startswith("1-")
    assert submitted_events(kazoo_api, data["id"]) == 1

    code, fetched = curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/outgoing/{data['id']}"))
    assert code == 200
    shown = fetched["data"]
    assert shown["status"] == "pending" and shown["delivered"] == "undefined" and isinstance(shown["created"], int)
    assert shown["created"] > 63_000_000_000  # Gregorian seconds, as Kazoo counts
    assert {k: shown[k] for k in KAZOO_FAX} == KAZOO_FAX and shown["retries"] == 3 and shown["attempts"] == 0


def test_curl_create_on_the_outgoing_alias_without_a_body_names_the_required_fields(kazoo_api: KazooApi) -> None:
    code, body = curl_json(kazoo_api, "PUT", faxes(kazoo_api, "/outgoing"))
    assert code == 400 and body["status"] == "error" and body["error"] == "400"
    assert {"to_number", "document.url"} <= set(body["data"])
    code, body = curl_json(kazoo_api, "PUT", faxes(kazoo_api, "/outgoing"), "-d", json.dumps({"data": KAZOO_FAX}))
    assert code == 201 and body["data"]["status"] == "pending"


LISTING_ENVELOPE = {"auth_token", "data", "page_size", "request_id", "revision", "start_key", "status"}


def test_curl_listings_have_the_documented_shape(kazoo_api: KazooApi, s3: Minio, infra) -> None:
    """Every listing answers in the envelope of the text's listing example: ``page_size``, ``revision`` and
    ``start_key`` (an array, on the first page too) beside ``data``; before, ``revision`` and ``start_key`` were
    missing (``start_key`` came only as a string, on pages asked for with one)."""
    fax = create(kazoo_api)
    code, outgoing = curl_json(kazoo_api, "GET", faxes(kazoo_api, "/outgoing"))
    assert code == 200
    row = next(r for r in outgoing["data"] if r["id"] == fax["id"])
    assert row == {
        "id": fax["id"],
        "status": "pending",
        "created": row["created"],
        "from": "18884732963",
        "to": "18884732963",
    }
    finish(kazoo_api, s3, infra, create(kazoo_api)["id"])
    insert_inbound(kazoo_api, s3, infra, "received")
    insert_inbound(kazoo_api, s3, infra, "receiving")
    kazoo_api.sql(
        "INSERT INTO smtplog (id, account_id, from_address, to_address, errors) VALUES ($1, $2, 'a@b.c', 'd@e.f', "
        "'[]')",
        uuid.uuid4(),
        kazoo_api.a.account_id,
    )
    listings = [faxes(kazoo_api, f"/{folder}") for folder in ("outgoing", "outbox", "incoming", "inbox", "smtplog")]
    account = f"/v2/accounts/{kazoo_api.a.account_id}"
    for path in [*listings, f"{account}/faxboxes", f"{account}/users"]:
        code, listing = curl_json(kazoo_api, "GET", path)
        assert code == 200 and set(listing) == LISTING_ENVELOPE, (path, listing)
        assert listing["status"] == "success" and listing["page_size"] == len(listing["data"]) > 0, path
        assert listing["start_key"] == [listing["data"][0]["id"]], path
        assert re.fullmatch("[0-9a-f]{32}", listing["revision"]), path
        assert curl_json(kazoo_api, "GET", path)[1]["revision"] == listing["revision"], "same page, same revision"
        # The start_key array, sent back as it came (JSON), asks for the same page.
        code, again = curl_json(kazoo_api, "GET", f"{path}?start_key={quote(json.dumps(listing['start_key']))}")
        assert code == 200 and again["data"] == listing["data"] and again["start_key"] == listing["start_key"]

    change = '{"data":{"to_number":"15550001111"}}'
    assert curl_json(kazoo_api, "PATCH", faxes(kazoo_api, f"/outgoing/{fax['id']}"), "-d", change)[0] == 200
    assert curl_json(kazoo_api, "GET", listings[0])[1]["revision"] != outgoing["revision"], "what it lists changed"
    unknown = uuid.uuid4().hex  # a page that starts at no fax is empty and says where it was asked to start
    code, empty = curl_json(kazoo_api, "GET", f"{listings[0]}?start_key={unknown}")
    assert code == 200 and (empty["data"], empty["page_size"], empty["start_key"]) == ([], 0, [unknown])


def test_curl_patch_and_post_change_a_queued_fax_and_reset_attempts(kazoo_api: KazooApi) -> None:
    fax = create(kazoo_api)
    kazoo_api.sql("UPDATE fax_jobs SET attempts = 1 WHERE id = $1", uuid.UUID(fax["id"]))  # a failed first try
    code, body = curl_json(kazoo_api, "PATCH", faxes(kazoo_api, f"/outgoing/{fax['id']}"))
    assert code == 200 and body["data"]["attempts"] == 0 and body["data"]["to_name"] == "To Name"
    code, body = curl_json(
        kazoo_api,
        "PATCH",
        faxes(kazoo_api, f"/outgoing/{fax['id']}"),
        "-d",
        '{"data":{"to_name":"Other","from_name":null}}',
    )
    assert code == 200 and body["data"]["to_name"] == "Other" and "from_name" not in body["data"]
    assert body["revision"].startswith("3-")

    # POST replaces: without a body the required fields are named and nothing changes.
    code, body = curl_json(kazoo_api, "POST", faxes(kazoo_api, f"/outgoing/{fax['id']}"))
    assert code == 400 and {"to_number", "document.url"} <= set(body["data"])
    replacement = {"to_number": "+15557654321", "document": {"url": "http://myserver.com/other.pdf"}}
    code, body = curl_json(
        kazoo_api, "POST", faxes(kazoo_api, f"/outgoing/{fax['id']}"), "-d", json.dumps({"data": replacement})
    )
    assert code == 200
    data = body["data"]
    assert data["to_number"] == "+15557654321" and data["retries"] == 1 and "to_name" not in data
    assert data["document"] == {"url": "http://myserver.com/other.pdf", "method": "get"}
    [row] = kazoo_api.sql("SELECT to_number, retries, attempts FROM fax_jobs WHERE id = $1", uuid.UUID(fax["id"]))
    assert row == {"to_number": "+15557654321", "retries": 1, "attempts": 0}
    # Each change asks the fetcher to prepare the document again.
    assert submitted_events(kazoo_api, fax["id"]) == 4


def test_changes_made_at_once_all_land(kazoo_api: KazooApi) -> None:
    """Six clients each PATCH one field of one queued fax at the same moment (five faxes in turn): every change is
    kept, and each asked the fetcher to prepare the fax again. Before the job was locked from the read of its request
    to the write of the merged one, PATCHes read the same request and the last write undid the others: changes were
    lost in 15 of 15 faxes (3 runs)."""
    changes = {
        "to_name": "Ann",
        "from_name": "Bob",
        "fax_identity": "ACME",
        "fax_header": "ACME Ltd",
        "fax_timezone": "Europe/Paris",
        "retries": 3,
    }
    lost = {}
    with ThreadPoolExecutor(len(changes)) as pool:
        for _ in range(5):
            fax = create(kazoo_api)
            path = faxes(kazoo_api, f"/outgoing/{fax['id']}")
            bodies = [{"data": {key: value}} for key, value in changes.items()]
            answers = list(pool.map(partial(kazoo_api.call, "PATCH", path, kazoo_api.a.auth_token), bodies))
            assert [answer.status_code for answer in answers] == [200] * len(changes)
            [row] = kazoo_api.sql("SELECT request FROM fax_jobs WHERE id = $1", uuid.UUID(fax["id"]))
            request = json.loads(row["request"])
            if missing := [key for key, value in changes.items() if request.get(key) != value]:
                lost[fax["id"]] = missing
            assert submitted_events(kazoo_api, fax["id"]) == 1 + len(changes)
    assert not lost, f"changes lost: {lost}"


def test_curl_delete_outgoing_removes_a_queued_fax(kazoo_api: KazooApi) -> None:
    fax = create(kazoo_api)
    code, body = curl_json(kazoo_api, "DELETE", faxes(kazoo_api, f"/outgoing/{fax['id']}"))
    assert code == 200 and body["data"]["id"] == fax["id"]
    assert kazoo_api.sql("SELECT id FROM fax_jobs WHERE id = $1", uuid.UUID(fax["id"])) == []
    code, body = curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/outgoing/{fax['id']}"))
    assert code == 404 and body["message"] == "bad_identifier"


@pytest.mark.parametrize("status", ["processing", "completed", "failed"])
def test_a_fax_being_sent_or_finished_cannot_be_changed(kazoo_api: KazooApi, status: str) -> None:
    fax = create(kazoo_api)
    kazoo_api.sql("UPDATE fax_jobs SET status = $2, attempts = 1 WHERE id = $1", uuid.UUID(fax["id"]), status)
    before = kazoo_api.sql("SELECT * FROM fax_jobs WHERE id = $1", uuid.UUID(fax["id"]))
    path = faxes(kazoo_api, f"/outgoing/{fax['id']}")
    for method, body in (("PATCH", {"data": {"to_name": "x"}}), ("POST", {"data": KAZOO_FAX}), ("DELETE", None)):
        answer = kazoo_api.call(method, path, kazoo_api.a.auth_token, body)
        assert answer.status_code == 409, (method, answer.text)
        assert answer.json()["message"] == "conflict" and answer.json()["data"]["cause"] == status
    assert kazoo_api.sql("SELECT * FROM fax_jobs WHERE id = $1", uuid.UUID(fax["id"])) == before
    assert submitted_events(kazoo_api, fax["id"]) == 1


def test_curl_outbox_fetch_resubmit_attachment_and_removal(kazoo_api: KazooApi, s3: Minio, infra) -> None:
    fax = create(kazoo_api)
    finish(kazoo_api, s3, infra, fax["id"])
    code, body = curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/outbox/{fax['id']}"))
    assert code == 200 and body["data"]["status"] == "completed" and body["data"]["tx_result"]["success"] is True
    assert isinstance(body["data"]["delivered"], int) and body["data"]["pages"] == 1

    # The payload, as TIFF by default and as PDF when asked.
    code, raw = curl(
        kazoo_api,
        "GET",
        faxes(kazoo_api, f"/outbox/{fax['id']}/attachment"),
        "-H",
        f"X-Auth-Token: {kazoo_api.a.auth_token}",
    )
    assert code == 200 and raw == TIFF
    pdf = accepting(kazoo_api, faxes(kazoo_api, f"/outbox/{fax['id']}/attachment"), "application/pdf")
    assert pdf.status_code == 200 and pdf.content == PDF and pdf.headers["content-type"] == "application/pdf"
    tiff = accepting(kazoo_api, faxes(kazoo_api, f"/outbox/{fax['id']}/attachment"), "image/tiff")
    assert tiff.content == TIFF and tiff.headers["content-type"] == "image/tiff"
    html = accepting(kazoo_api, faxes(kazoo_api, f"/outbox/{fax['id']}/attachment"), "text/html")
    assert html.status_code == 406 and html.json()["status"] == "error"

    # Resubmit (the overview's body, and the data-wrapped one): a new queued job, attempts from 0, a new event.
    code, body = curl_json(
        kazoo_api, "PUT", faxes(kazoo_api, f"/outbox/{fax['id']}"), "-d", '{"action": "resubmit", "data": {}}'
    )
    assert code == 201, body
    again = body["data"]
    assert again["id"] != fax["id"] and again["status"] == "pending" and again["attempts"] == 0
    assert {k: again[k] for k in KAZOO_FAX} == KAZOO_FAX and again["tx_result"] == TX_RESULT
    assert submitted_events(kazoo_api, again["id"]) == 1
    wrapped = kazoo_api.call(
        "PUT", faxes(kazoo_api, f"/outbox/{fax['id']}"), kazoo_api.a.auth_token, {"data": {"action": "resubmit"}}
    )
    assert wrapped.status_code == 201
    wrong = kazoo_api.call(
        "PUT", faxes(kazoo_api, f"/outbox/{fax['id']}"), kazoo_api.a.auth_token, {"data": {"action": "x"}}
    )
    assert wrong.status_code == 400 and "action" in wrong.json()["data"]

    # Removing the payload keeps the record, which says so.
    code, body = curl_json(kazoo_api, "DELETE", faxes(kazoo_api, f"/outbox/{fax['id']}/attachment"))
    assert code == 200 and body["data"]["attachment_deleted"] is True and body["data"]["status"] == "completed"
    job = uuid.UUID(fax["id"])
    assert not object_exists(s3, infra, f"jobs/{job}/fax.tif") and not object_exists(s3, infra, f"jobs/{job}/fax.pdf")
    code, body = curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/outbox/{fax['id']}"))
    assert code == 200 and body["data"]["attachment_deleted"] is True
    code, body = curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/outbox/{fax['id']}/attachment"))
    assert code == 404

    code, body = curl_json(kazoo_api, "DELETE", faxes(kazoo_api, f"/outbox/{fax['id']}"))
    assert code == 200 and kazoo_api.sql("SELECT id FROM fax_jobs WHERE id = $1", job) == []
    code, body = curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/outbox/{fax['id']}"))
    assert code == 404 and body["message"] == "bad_identifier"


def test_a_sent_fax_without_its_pdf_copy_says_so_and_serves_the_tiff(kazoo_api: KazooApi, s3: Minio, infra) -> None:
    """The fetcher makes the PDF copy after the fax is ready to send: it can be missing (the converter failed) or not
    made yet (a fax sent in the moments after it was ready)."""
    fax = create(kazoo_api)
    finish(kazoo_api, s3, infra, fax["id"], pdf_copy=False)
    pdf = accepting(kazoo_api, faxes(kazoo_api, f"/outbox/{fax['id']}/attachment"), "application/pdf")
    assert pdf.status_code == 406, pdf.text
    assert pdf.json()["message"] == "not_acceptable" and pdf.json()["data"]["cause"] == fax["id"]
    assert pdf.json()["data"]["message"] == (
        "the fax has no PDF copy (not made yet, or it could not be made); it is available as image/tiff"
    )
    tiff = accepting(kazoo_api, faxes(kazoo_api, f"/outbox/{fax['id']}/attachment"), "image/tiff")
    assert tiff.status_code == 200 and tiff.content == TIFF


def test_resubmit_without_an_action_is_400_whatever_the_body(kazoo_api: KazooApi, s3: Minio, infra) -> None:
    """Caught: an empty resubmit body answered 500 (the handler decoded the body a second time, by itself)."""
    fax = create(kazoo_api)
    finish(kazoo_api, s3, infra, fax["id"])
    outbox = faxes(kazoo_api, f"/outbox/{fax['id']}")
    before = jobs(kazoo_api)
    for body in (b"", b"  \n", b"{}", b'{"data": {}}'):
        answer = kazoo_api.call("PUT", outbox, kazoo_api.a.auth_token, content=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["status"] == "error" and "action" in answer.json()["data"], body
    for body in (b"[]", b'"resubmit"', b"{not json"):
        answer = kazoo_api.call("PUT", outbox, kazoo_api.a.auth_token, content=body)
        assert answer.status_code == 400 and answer.json()["message"] == "invalid request body", body
    assert jobs(kazoo_api) == before  # nothing was resubmitted


def jobs(api: KazooApi) -> int:
    return api.sql("SELECT count(*) AS n FROM fax_jobs WHERE account_id = $1", api.a.account_id)[0]["n"]


def test_queued_faxes_are_not_in_the_outbox(kazoo_api: KazooApi) -> None:
    fax = create(kazoo_api)
    for method in ("GET", "DELETE"):
        assert (
            kazoo_api.call(method, faxes(kazoo_api, f"/outbox/{fax['id']}"), kazoo_api.a.auth_token).status_code == 404
        )
    assert kazoo_api.sql("SELECT status FROM fax_jobs WHERE id = $1", uuid.UUID(fax["id"])) == [{"status": "pending"}]


# --- uploads in one request ------------------------------------------------------------------------------------


def test_curl_multipart_mixed_upload_stores_the_document_before_the_job(
    kazoo_api: KazooApi, s3: Minio, infra, tmp_path: Path
) -> None:
    (tmp_path / "fax.json").write_text(json.dumps({"data": {**KAZOO_FAX, "document": {}}}))
    (tmp_path / "fax.pdf").write_bytes(PDF)
    code, body = curl_json(
        kazoo_api,
        "PUT",
        faxes(kazoo_api),
        "-H",
        "Content-Type: multipart/mixed",
        "-F",
        f"content=@{tmp_path / 'fax.json'}; type=application/json",
        "-F",
        f"content=@{tmp_path / 'fax.pdf'}; type=application/pdf",
    )
    assert code == 201, body
    data = body["data"]
    job = uuid.UUID(data["id"])
    assert data["status"] == "attaching_files" and data["attempts"] == 0 and data["retries"] == 3
    assert data["document"]["uploads"] == [f"jobs/{job}/upload-0"] and "url" not in data["document"]
    assert s3.get_object(infra.s3_bucket, f"jobs/{job}/upload-0").read() == PDF
    assert submitted_events(kazoo_api, data["id"]) == 1
    # The uploaded document stays with the job when it is patched.
    patched = kazoo_api.call(
        "PATCH", faxes(kazoo_api, f"/outgoing/{data['id']}"), kazoo_api.a.auth_token, {"data": {"to_name": "P"}}
    )
    assert patched.status_code == 200 and patched.json()["data"]["document"]["uploads"] == [f"jobs/{job}/upload-0"]
    # Removing the queued job removes its upload.
    assert (
        kazoo_api.call("DELETE", faxes(kazoo_api, f"/outgoing/{data['id']}"), kazoo_api.a.auth_token).status_code == 200
    )
    assert not object_exists(s3, infra, f"jobs/{job}/upload-0")


def test_form_data_upload_with_two_documents(kazoo_api: KazooApi, s3: Minio, infra) -> None:
    answer = httpx.put(
        f"{kazoo_api.url}{faxes(kazoo_api)}",
        headers={"X-Auth-Token": kazoo_api.a.auth_token},
        files=[
            ("data", ("fax.json", json.dumps({"data": {"to_number": "+15550001111"}}), "application/json")),
            ("file", ("a.pdf", PDF, "application/pdf")),
            ("file", ("b.tif", TIFF, "image/tiff")),
        ],
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    job = uuid.UUID(answer.json()["data"]["id"])
    assert answer.json()["data"]["document"]["uploads"] == [f"jobs/{job}/upload-0", f"jobs/{job}/upload-1"]
    assert s3.get_object(infra.s3_bucket, f"jobs/{job}/upload-1").read() == TIFF


def _multipart(parts: list[tuple[str, bytes]], boundary: str = "b0undary") -> bytes:
    out = b""
    for content_type, body in parts:
        out += f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize(
    ("content_type", "parts", "status", "field"),
    [
        (
            "multipart/mixed",
            [("application/json", b'{"data":{"to_number":"1555"}}'), ("text/html", b"<html>")],
            415,
            None,
        ),
        ("multipart/alternative", [("application/json", b"{}")], 415, None),
        ("multipart/mixed", [("application/pdf", PDF)], 400, None),
        ("multipart/mixed", [("application/json", b'{"data":{"to_number":"1555"}}')], 400, None),
        ("multipart/mixed", [("application/json", b"{not json"), ("application/pdf", PDF)], 400, None),
        (
            "multipart/mixed",
            [("application/json", b'{"data":{"retries":9}}'), ("application/pdf", PDF)],
            400,
            "retries",
        ),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_kept(
    kazoo_api: KazooApi, content_type: str, parts: list, status: int, field: str | None
) -> None:
    before = kazoo_api.sql("SELECT count(*) AS n FROM fax_jobs")
    answer = httpx.put(
        f"{kazoo_api.url}{faxes(kazoo_api)}",
        headers={"X-Auth-Token": kazoo_api.a.auth_token, "Content-Type": f"{content_type}; boundary=b0undary"},
        content=_multipart(parts),
        timeout=10,
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["status"] == "error" and answer.json()["error"] == str(status)
    if field:
        assert field in answer.json()["data"] and "to_number" in answer.json()["data"]
    assert kazoo_api.sql("SELECT count(*) AS n FROM fax_jobs") == before


def test_an_upload_over_the_limit_is_413(kazoo_api: KazooApi) -> None:
    body = _multipart(
        [
            ("application/json", json.dumps({"data": KAZOO_FAX}).encode()),
            ("application/pdf", b"%PDF-" + b"0" * (21 * 1024 * 1024)),
        ]
    )
    answer = httpx.put(
        f"{kazoo_api.url}{faxes(kazoo_api)}",
        headers={"X-Auth-Token": kazoo_api.a.auth_token, "Content-Type": "multipart/mixed; boundary=b0undary"},
        content=body,
        timeout=30,
    )
    assert answer.status_code == 413 and answer.json()["error"] == "413"


def test_json_errors(kazoo_api: KazooApi) -> None:
    malformed = kazoo_api.call("PUT", faxes(kazoo_api), kazoo_api.a.auth_token, content=b"{not json")
    assert malformed.status_code == 400 and malformed.json()["message"] == "invalid request body"
    invalid = kazoo_api.call(
        "PUT",
        faxes(kazoo_api),
        kazoo_api.a.auth_token,
        {"data": {"to_number": 5, "document": {"url": "ftp://x"}, "retries": 0}},
    )
    assert invalid.status_code == 400 and {"to_number", "document.url", "retries"} <= set(invalid.json()["data"])
    assert kazoo_api.call("PUT", faxes(kazoo_api), None, {"data": KAZOO_FAX}).status_code == 401
    other = f"/v2/accounts/{kazoo_api.b.account_id}/faxes"
    assert kazoo_api.call("PUT", other, kazoo_api.a.auth_token, {"data": KAZOO_FAX}).status_code == 403
    for path in ("/outgoing/nothex", f"/outgoing/{uuid.uuid4().hex}", f"/outbox/{uuid.uuid4().hex}/attachment"):
        answer = kazoo_api.call("GET", faxes(kazoo_api, path), kazoo_api.a.auth_token)
        assert answer.status_code == 404 and answer.json()["message"] == "bad_identifier", path


# --- paging ----------------------------------------------------------------------------------------------------


def test_outgoing_pages_follow_next_start_key_without_gaps_or_repeats(kazoo_api: KazooApi) -> None:
    mine = {create(kazoo_api)["id"] for _ in range(5)}
    seen: list[str] = []
    start = ""
    while True:
        query = {"page_size": 2, **({"start_key": start} if start else {})}
        answer = kazoo_api.call("GET", faxes(kazoo_api, "/outgoing"), kazoo_api.a.auth_token, params=query).json()
        assert answer["page_size"] == len(answer["data"]) <= 2
        seen += [row["id"] for row in answer["data"]]
        if "next_start_key" not in answer:
            break
        start = answer["next_start_key"]
        assert answer["data"][-1]["id"] != start
    assert len(seen) == len(set(seen)) and mine <= set(seen)
    created = [
        row["created"]
        for row in kazoo_api.call("GET", faxes(kazoo_api, "/outgoing"), kazoo_api.a.auth_token).json()["data"]
    ]
    assert created == sorted(created, reverse=True)
    bad = kazoo_api.call("GET", faxes(kazoo_api, "/outgoing"), kazoo_api.a.auth_token, params={"start_key": "zz"})
    assert bad.status_code == 400 and "start_key" in bad.json()["data"]


@pytest.mark.parametrize(
    ("folder", "table", "states"),
    [("outbox", "fax_jobs", ("completed", "failed")), ("inbox", "inbound_faxes", ("received", "failed"))],
)
def test_pages_of_a_folder_with_several_states_follow_next_start_key_in_order(
    kazoo_api: KazooApi, folder: str, table: str, states: tuple[str, str]
) -> None:
    """A listing reads each state of the folder on its own and merges them (page_jobs): every fax comes exactly once,
    newest first, and faxes made at the same instant (one VoipNow send to many numbers) in id order, on whichever
    page they fall. A start_key naming no fax of the account gives an empty page."""
    columns = "request, to_number" if table == "fax_jobs" else "to_number"
    values = "'{}', '+15550001111'" if table == "fax_jobs" else "'+15550001111'"
    insert = f"INSERT INTO {table} (id, account_id, status, created_at, {columns}) VALUES ($1, $2, $3, $4, {values})"
    instant = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    for n in range(11):  # three faxes an instant, the states interleaved
        kazoo_api.sql(
            insert, uuid.uuid4(), kazoo_api.a.account_id, states[n % 2], instant - dt.timedelta(seconds=n // 3)
        )
    theirs = uuid.uuid4()
    kazoo_api.sql(insert, theirs, kazoo_api.b.account_id, states[0], instant)
    expected = [
        row["id"].hex
        for row in kazoo_api.sql(
            f"SELECT id FROM {table} WHERE account_id = $1 AND status = ANY($2) ORDER BY created_at DESC, id DESC",
            kazoo_api.a.account_id,
            list(states),
        )
    ]
    seen: list[str] = []
    start = ""
    while True:
        query = {"page_size": 2, **({"start_key": start} if start else {})}
        answer = kazoo_api.call("GET", faxes(kazoo_api, f"/{folder}"), kazoo_api.a.auth_token, params=query).json()
        seen += [row["id"] for row in answer["data"]]
        if "next_start_key" not in answer:
            break
        start = answer["next_start_key"]
    assert seen == expected and len(expected) >= 11
    for unknown in (uuid.uuid4(), theirs):
        answer = kazoo_api.call(
            "GET", faxes(kazoo_api, f"/{folder}"), kazoo_api.a.auth_token, params={"start_key": unknown.hex}
        )
        assert answer.status_code == 200 and answer.json()["data"] == []


# --- inbox, incoming, smtplog ------------------------------------------------------------------------------------


def insert_inbound(api: KazooApi, s3: Minio, infra, status: str, account_id: str | None = None) -> uuid.UUID:
    fax_id = uuid.uuid4()
    keys = (f"inbound/{fax_id}/fax.tif", f"inbound/{fax_id}/fax.pdf")
    for key, body in zip(keys, (TIFF, PDF), strict=True):
        s3.put_object(infra.s3_bucket, key, io.BytesIO(body), len(body))
    api.sql(
        "INSERT INTO inbound_faxes (id, account_id, faxbox_id, status, call_id, from_number, to_number, pages, "
        "tiff_key, pdf_key, rx_result, completed_at) "
        "VALUES ($1, $2, $3, $4, 'call-1', '+15551230000', '+15559870000', 2, $5, $6, "
        '\'{"success": true, "pages_received": 2, "fax_speed": 14400}\', '
        "CASE WHEN $4 = 'receiving' THEN NULL ELSE now() END)",
        fax_id,
        account_id or api.a.account_id,
        api.a.faxbox_id if account_id is None else None,
        status,
        *keys,
    )
    return fax_id


@pytest.mark.parametrize(("folder", "status"), [("inbox", "received"), ("inbox", "failed"), ("incoming", "receiving")])
def test_curl_inbound_folders(kazoo_api: KazooApi, s3: Minio, infra, folder: str, status: str) -> None:
    fax_id = insert_inbound(kazoo_api, s3, infra, status)
    elsewhere = insert_inbound(kazoo_api, s3, infra, "receiving" if folder == "inbox" else "received")
    theirs = insert_inbound(kazoo_api, s3, infra, status, account_id=kazoo_api.b.account_id)

    code, listing = curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/{folder}"))
    ids = [row["id"] for row in listing["data"]]
    assert code == 200 and fax_id.hex in ids and elsewhere.hex not in ids and theirs.hex not in ids
    row = listing["data"][ids.index(fax_id.hex)]
    assert row["from"] == "+15551230000" and row["to"] == "+15559870000" and row["status"] == status

    code, body = curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/{folder}/{fax_id.hex}"))
    assert code == 200
    data = body["data"]
    assert data["id"] == fax_id.hex and data["status"] == status and data["pages"] == 2
    assert data["faxbox_id"] == kazoo_api.a.faxbox_id and data["rx_result"]["fax_speed"] == 14400
    assert (data["completed"] == "undefined") == (status == "receiving")
    for other in (elsewhere, theirs):
        assert curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/{folder}/{other.hex}"))[0] == 404

    code, raw = curl(
        kazoo_api,
        "GET",
        faxes(kazoo_api, f"/{folder}/{fax_id.hex}/attachment"),
        "-H",
        f"X-Auth-Token: {kazoo_api.a.auth_token}",
    )
    assert code == 200 and raw == TIFF
    code, raw = curl(
        kazoo_api,
        "GET",
        faxes(kazoo_api, f"/{folder}/{fax_id.hex}/attachment"),
        "-H",
        f"X-Auth-Token: {kazoo_api.a.auth_token}",
        "-H",
        "Accept: application/pdf",
    )
    assert code == 200 and raw == PDF

    code, body = curl_json(kazoo_api, "DELETE", faxes(kazoo_api, f"/{folder}/{fax_id.hex}/attachment"))
    assert code == 200 and body["data"]["id"] == fax_id.hex
    assert status != "received" or body["data"]["attachment_deleted"] is True
    assert not object_exists(s3, infra, f"inbound/{fax_id}/fax.tif")
    assert not object_exists(s3, infra, f"inbound/{fax_id}/fax.pdf")
    assert curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/{folder}/{fax_id.hex}/attachment"))[0] == 404
    assert curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/{folder}/{fax_id.hex}"))[0] == 200

    code, body = curl_json(kazoo_api, "DELETE", faxes(kazoo_api, f"/{folder}/{fax_id.hex}"))
    assert code == 200 and kazoo_api.sql("SELECT id FROM inbound_faxes WHERE id = $1", fax_id) == []
    assert curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/{folder}/{fax_id.hex}"))[0] == 404
    # The other account's fax is untouched by all of this.
    assert kazoo_api.sql("SELECT status FROM inbound_faxes WHERE id = $1", theirs) == [{"status": status}]


def test_deleting_an_inbox_fax_removes_its_documents(kazoo_api: KazooApi, s3: Minio, infra) -> None:
    fax_id = insert_inbound(kazoo_api, s3, infra, "received")
    assert curl_json(kazoo_api, "DELETE", faxes(kazoo_api, f"/inbox/{fax_id.hex}"))[0] == 200
    assert not object_exists(s3, infra, f"inbound/{fax_id}/fax.tif")


def test_curl_smtplog_shows_the_accounts_entries_only(kazoo_api: KazooApi) -> None:
    mine, theirs, nobody = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    insert = (
        "INSERT INTO smtplog (id, account_id, faxbox_id, faxbox_name, from_address, to_address, number, errors) "
        "VALUES ($1, $2, $3, 'Box', 'alice@example.com', 'fax@box.example', '+15551112222', $4::jsonb)"
    )
    kazoo_api.sql(insert, mine, kazoo_api.a.account_id, kazoo_api.a.faxbox_id, '["sender not permitted"]')
    kazoo_api.sql(insert, theirs, kazoo_api.b.account_id, None, '["x"]')
    kazoo_api.sql(insert, nobody, None, None, '["no faxbox"]')

    code, listing = curl_json(kazoo_api, "GET", faxes(kazoo_api, "/smtplog"))
    ids = [row["id"] for row in listing["data"]]
    assert code == 200 and mine.hex in ids and theirs.hex not in ids and nobody.hex not in ids
    code, body = curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/smtplog/{mine.hex}"))
    assert code == 200 and body["revision"].startswith("1-"), "every single-document answer has a revision"
    data = body["data"]
    assert data["errors"] == ["sender not permitted"] and data["from"] == "alice@example.com"
    assert data["faxbox_id"] == kazoo_api.a.faxbox_id and data["number"] == "+15551112222"
    for other in (theirs, nobody):
        assert curl_json(kazoo_api, "GET", faxes(kazoo_api, f"/smtplog/{other.hex}"))[0] == 404


def test_resubmitting_an_uploaded_fax_copies_its_documents_until_they_are_removed(
    kazoo_api: KazooApi, s3: Minio, infra
) -> None:
    answer = httpx.put(
        f"{kazoo_api.url}{faxes(kazoo_api)}",
        headers={"X-Auth-Token": kazoo_api.a.auth_token, "Content-Type": "multipart/mixed; boundary=b0undary"},
        content=_multipart([("application/json", b'{"data":{"to_number":"+15550002222"}}'), ("application/pdf", PDF)]),
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    fax_id = answer.json()["data"]["id"]
    finish(kazoo_api, s3, infra, fax_id)

    again = kazoo_api.call(
        "PUT", faxes(kazoo_api, f"/outbox/{fax_id}"), kazoo_api.a.auth_token, {"data": {"action": "resubmit"}}
    )
    assert again.status_code == 201, again.text
    copy = uuid.UUID(again.json()["data"]["id"])
    assert again.json()["data"]["status"] == "attaching_files"
    assert again.json()["data"]["document"]["uploads"] == [f"jobs/{copy}/upload-0"]
    assert s3.get_object(infra.s3_bucket, f"jobs/{copy}/upload-0").read() == PDF

    removed = kazoo_api.call("DELETE", faxes(kazoo_api, f"/outbox/{fax_id}/attachment"), kazoo_api.a.auth_token)
    assert removed.status_code == 200
    assert not object_exists(s3, infra, f"jobs/{uuid.UUID(fax_id)}/upload-0")
    refused = kazoo_api.call(
        "PUT", faxes(kazoo_api, f"/outbox/{fax_id}"), kazoo_api.a.auth_token, {"data": {"action": "resubmit"}}
    )
    assert refused.status_code == 409 and refused.json()["message"] == "conflict"


def test_changing_a_rendered_queued_fax_removes_the_old_render(kazoo_api: KazooApi, s3: Minio, infra) -> None:
    """A pending fax already rendered (request 1's TIFF, PDF, preview and original) is changed: those objects go,
    since the new request is rendered anew and the old render will never be sent."""
    fax = create(kazoo_api)
    job = uuid.UUID(fax["id"])
    render = f"jobs/{job}/r1/{uuid.uuid4().hex}"
    old = [f"{render}/{name}" for name in ("fax.tif", "fax.pdf", "preview-1.png", "original")]
    for key in old:
        s3.put_object(infra.s3_bucket, key, io.BytesIO(b"x"), 1)
    kazoo_api.sql("UPDATE fax_jobs SET status = 'pending', tiff_key = $2, pages = 1 WHERE id = $1", job, old[0])
    code, body = curl_json(
        kazoo_api, "PATCH", faxes(kazoo_api, f"/outgoing/{fax['id']}"), "-d", '{"data":{"to_name":"Changed"}}'
    )
    assert code == 200 and body["data"]["to_name"] == "Changed"
    assert kazoo_api.sql("SELECT tiff_key, pages FROM fax_jobs WHERE id = $1", job) == [
        {"tiff_key": None, "pages": None}
    ]
    assert not [key for key in old if object_exists(s3, infra, key)]


# --- /metrics ----------------------------------------------------------------------------------------------------


def test_the_jobs_gauge_follows_every_change_of_state(kazoo_api: KazooApi, s3: Minio, infra) -> None:
    """/metrics' fax_jobs gauge is each state's number of jobs through everything that happens to a job: finished
    jobs are counted as they finish (fax_job_totals, kept by triggers), not by counting all history at each scrape."""

    def assert_gauge_matches() -> None:
        counts = {
            row["status"]: row["jobs"]
            for row in kazoo_api.sql("SELECT status, count(*) AS jobs FROM fax_jobs GROUP BY status")
        }
        text = httpx.get(f"{kazoo_api.url}/metrics", timeout=10).text
        gauge = {
            line.split('"')[1]: float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith("fax_jobs{")
        }
        assert gauge == {state: counts.get(state, 0) for state in QUEUED_AND_FINISHED}

    assert_gauge_matches()
    sent, failed, retried, removed = (create(kazoo_api)["id"] for _ in range(4))
    finish(kazoo_api, s3, infra, sent)
    finish(kazoo_api, s3, infra, failed, "failed")
    kazoo_api.sql("UPDATE fax_jobs SET status = 'processing' WHERE id = $1", uuid.UUID(retried))
    assert_gauge_matches()
    kazoo_api.sql("UPDATE fax_jobs SET status = 'pending' WHERE id = $1", uuid.UUID(retried))  # an attempt to retry
    finish(kazoo_api, s3, infra, removed, "failed")
    assert kazoo_api.call("DELETE", faxes(kazoo_api, f"/outbox/{removed}"), kazoo_api.a.auth_token).status_code == 200
    assert_gauge_matches()
    # Paths no service takes today, counted all the same: a job inserted finished, and one leaving a finished state.
    kazoo_api.sql(
        "INSERT INTO fax_jobs (id, account_id, status, request, to_number) VALUES ($1, $2, 'completed', '{}', '1')",
        uuid.uuid4(),
        kazoo_api.b.account_id,
    )
    kazoo_api.sql("UPDATE fax_jobs SET status = 'completed' WHERE id = $1", uuid.UUID(failed))
    kazoo_api.sql("DELETE FROM fax_jobs WHERE id = $1", uuid.UUID(sent))
    assert_gauge_matches()
