"""The first real fax, end to end: Kazoo's curl example -> fetcher -> ghostscript -> spandsp -> the far end.

The platform runs exactly as ``make run`` starts it; the far end is the ``loopback`` line, whose received
pages must match the rendered pages pixel for pixel.
"""

from __future__ import annotations

import io
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageSequence

from tests.integration.stack import REPO, RunningStack, infra_env, running_stack

FINISHED = ("completed", "failed")


@pytest.fixture(scope="module")
def stack(infra, document_server: str) -> Iterator[RunningStack]:
    state_dir = REPO / ".devstack" / f"test-e2e-{uuid.uuid4().hex[:8]}"
    env = {
        **infra_env(infra, bucket=f"e2e-{uuid.uuid4().hex[:8]}"),
        "FAX_FETCH_ALLOW_NETWORKS": "127.0.0.0/8",
        "FAX_LINE": "loopback",
    }
    with running_stack(state_dir, env) as running:
        running.credentials["FAX_S3_BUCKET"] = env["FAX_S3_BUCKET"]
        yield running


def curl_create_fax(stack: RunningStack, url: str) -> dict:
    """Kazoo's own curl example (no Content-Type, so curl sends it form-encoded), pointed at ``url``."""
    account = stack.credentials["FAX_ACCOUNT_ID"]
    body = {
        "data": {
            "document": {"url": url, "method": "get"},
            "retries": 3,
            "from_name": "Test Fax",
            "from_number": "18884732963",
            "to_name": "To Name",
            "to_number": "18884732963",
        }
    }
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "PUT",
            "-H",
            f"X-Auth-Token: {stack.credentials['FAX_AUTH_TOKEN']}",
            "-d",
            json.dumps(body),
            f"{stack.api_url}/v2/accounts/{account}/faxes",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def wait_until_finished(stack: RunningStack, fax_id: str, timeout: float = 120) -> tuple[list[str], dict]:
    """Poll outgoing (while queued) then outbox (once finished) as a Kazoo client would; return the states seen."""
    account = stack.credentials["FAX_ACCOUNT_ID"]
    headers = {"X-Auth-Token": stack.credentials["FAX_AUTH_TOKEN"]}
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=10) as client:
        while time.monotonic() < deadline:
            queued = client.get(f"/v2/accounts/{account}/faxes/outgoing/{fax_id}")
            if queued.status_code == 200:
                seen.append(queued.json()["data"]["status"])
            else:
                assert queued.status_code == 404, queued.text
                done = client.get(f"/v2/accounts/{account}/faxes/outbox/{fax_id}")
                if done.status_code == 200:
                    body = done.json()
                    seen.append(body["data"]["status"])
                    return seen, body
            time.sleep(0.1)
    raise AssertionError(f"fax {fax_id} not finished after {timeout} s (states seen: {seen})\n{stack.logs()}")


def tiff_pages(data: bytes) -> list[Image.Image]:
    with Image.open(io.BytesIO(data)) as image:
        return [page.convert("1").copy() for page in ImageSequence.Iterator(image)]


def test_two_page_pdf_is_sent_and_received_pixel_for_pixel(stack: RunningStack, document_server: str, infra) -> None:
    created = curl_create_fax(stack, f"{document_server}/fax.pdf")

    assert created["status"] == "success"
    assert created["auth_token"] == stack.credentials["FAX_AUTH_TOKEN"]
    assert created["request_id"] and created["revision"].startswith("1-")
    data = created["data"]
    assert data["attempts"] == 0 and data["retries"] == 3 and data["to_number"] == "18884732963"
    assert data["tx_result"]["success"] is False and data["tx_result"]["pages_sent"] == 0

    states, outbox = wait_until_finished(stack, data["id"])

    result = outbox["data"]
    assert result["status"] == "completed", result
    assert set(states) <= {"pending", "processing", "completed"}
    assert result["attempts"] == 1
    tx = result["tx_result"]
    assert tx["success"] is True and tx["pages_sent"] == 2
    assert tx["fax_speed"] == 14400 and tx["fax_error_correction"] is True
    assert tx["fax_bad_rows"] == 0 and tx["result_code"] == 0 and tx["error_message"] == ""
    assert tx["fax_receiver_id"] == "LOOPBACK"

    rendered = stack.sent_fax(data["id"])
    received = (stack.state_dir / "loopback" / "received" / f"{uuid.UUID(data['id'])}-1.tif").read_bytes()
    sent_pages, received_pages = tiff_pages(rendered), tiff_pages(received)
    assert len(sent_pages) == len(received_pages) == 2
    for sent, got in zip(sent_pages, received_pages, strict=True):
        assert sent.size == got.size and sent.size[0] == 1728
        assert sent.tobytes() == got.tobytes()
    # Not blank: the pages carry the document's ink.
    assert all(page.histogram()[0] > 10_000 for page in sent_pages)


def test_document_that_answers_404_fails_with_kazoo_error_text(stack: RunningStack, document_server: str) -> None:
    created = curl_create_fax(stack, f"{document_server}/missing.pdf")
    _, outbox = wait_until_finished(stack, created["data"]["id"])
    assert outbox["data"]["status"] == "failed"
    assert outbox["data"]["tx_result"]["error_message"] == "could not retrieve file, http response 404"
    assert outbox["data"]["tx_result"]["success"] is False


def test_non_document_fails_clearly_and_next_job_still_succeeds(stack: RunningStack, document_server: str) -> None:
    bad = curl_create_fax(stack, f"{document_server}/page.html")
    good = curl_create_fax(stack, f"{document_server}/fax.pdf")
    _, bad_outbox = wait_until_finished(stack, bad["data"]["id"])
    assert bad_outbox["data"]["status"] == "failed"
    assert "unsupported document format" in bad_outbox["data"]["tx_result"]["error_message"]
    _, good_outbox = wait_until_finished(stack, good["data"]["id"])
    assert good_outbox["data"]["status"] == "completed"
    assert good_outbox["data"]["tx_result"]["pages_sent"] == 2


def test_kazoo_errors(stack: RunningStack) -> None:
    account = stack.credentials["FAX_ACCOUNT_ID"]
    token = {"X-Auth-Token": stack.credentials["FAX_AUTH_TOKEN"]}
    faxes = f"{stack.api_url}/v2/accounts/{account}/faxes"

    no_token = httpx.put(faxes, content=b"{}")
    assert no_token.status_code == 401 and no_token.json()["status"] == "error" and no_token.json()["error"] == "401"
    other_account = httpx.put(f"{stack.api_url}/v2/accounts/{uuid.uuid4().hex}/faxes", headers=token, content=b"{}")
    assert other_account.status_code == 403
    malformed = httpx.put(faxes, headers=token, content=b"{not json")
    assert malformed.status_code == 400 and malformed.json()["message"] == "invalid request body"
    missing = httpx.put(faxes, headers=token, json={"data": {"document": {}}})
    assert missing.status_code == 400
    assert set(missing.json()["data"]) == {"to_number", "document.url"}
    assert "required" in missing.json()["data"]["to_number"]
    unknown = httpx.get(f"{faxes}/outbox/{uuid.uuid4().hex}", headers=token)
    assert unknown.status_code == 404 and unknown.json()["message"] == "bad_identifier"
    # Nothing was created by the refused requests.
    listing = httpx.get(f"{faxes}/outgoing", headers=token).json()
    assert listing["status"] == "success"


def test_credentials_file_is_complete(stack: RunningStack) -> None:
    keys = {"FAX_ACCOUNT_ID", "FAX_AUTH_TOKEN", "FAX_FAXBOX_ID", "FAX_FAXBOX_EMAIL", "FAX_INBOUND_NUMBER"}
    assert keys <= set(stack.credentials)
    assert Path(stack.state_dir / "credentials.env").is_file()
