"""Schemathesis against the running API, from the OpenAPI document it serves: every documented operation, each
dialect authenticated as its clients are (Kazoo's X-Auth-Token, Fax.to's api_key, UAPI's bearer token).

Bounded and deterministic (schemathesis.toml: a fixed seed, 20 generated cases an operation plus the coverage
phase's edge cases, about 4500 requests), so it costs a minute or two of ``make test``. Every answer must be no server
error, carry a status the operation documents, the documented content type, and a body that matches the documented
schema (the dialect's error envelope for every error).

What it writes has no effect outside: only the API runs (no fetcher, transmitter or notifier), so no document is
fetched, no number dialled and no callback made for the jobs and settings it creates. The one request the API makes
itself for a tenant, a Fax.to AddRemoteFile, goes through the network guard (loopback, private and metadata
addresses refused); on a machine with no route out, as here and in CI, it reaches nothing.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from minio import Minio

from fax_runtime.blobs import fax_pdf_key
from tests.integration.kazoo_api import KazooApi, kazoo_api_fixture  # noqa: F401

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module", autouse=True)
def _short_preview_wait() -> Iterator[None]:
    """No fetcher draws previews here: file-generate-preview answers its 503 after 0.2 s, not 15 (set before the API
    process, kazoo_api, starts)."""
    previous = os.environ.get("FAX_FAXTO_PREVIEW_WAIT")
    os.environ["FAX_FAXTO_PREVIEW_WAIT"] = "0.2"
    yield
    if previous is None:
        del os.environ["FAX_FAXTO_PREVIEW_WAIT"]
    else:
        os.environ["FAX_FAXTO_PREVIEW_WAIT"] = previous


# What is stored is served as it is: any bytes will do for the attachments.
TIFF = b"II*\x00fuzz"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 >> endobj\n2 0 obj << /Type /Page >> endobj\n%%EOF\n"


def targets(api: KazooApi, infra) -> dict[str, str]:
    """Credentials and items of tenant a for the run to aim at (``FUZZ_*``, read by schemathesis.toml): users,
    faxboxes, queued and finished faxes, received faxes and faxes being received (two of each: one for the DELETE
    operations; the finished and received ones with their TIFF and PDF), and a Fax.to user with an uploaded file.
    They are the run's own, so that what it deletes or changes is nobody else's."""
    a = api.a
    base = f"/v2/accounts/{a.account_id}"
    fax = {"data": {"to_number": "+15553334444", "document": {"url": "http://127.0.0.1:9/fuzz.pdf"}}}
    made = {
        "USER_ID": ("users", {"data": {"username": "fuzz", "password": "fuzz-password"}}),
        "DOOMED_USER_ID": ("users", {"data": {"username": "fuzz-doomed", "password": "fuzz-password"}}),
        "FAXBOX_ID": ("faxboxes", {"data": {"name": "Fuzz faxbox"}}),
        "DOOMED_FAXBOX_ID": ("faxboxes", {"data": {"name": "Fuzz faxbox to delete"}}),
        "QUEUED_FAX_ID": ("faxes", fax),
        "DOOMED_QUEUED_FAX_ID": ("faxes", fax),
        "FINISHED_FAX_ID": ("faxes", fax),
        "DOOMED_FINISHED_FAX_ID": ("faxes", fax),
    }
    found = {"FUZZ_ACCOUNT_ID": a.account_id, "FUZZ_AUTH_TOKEN": a.auth_token}
    for name, (collection, body) in made.items():
        answer = api.call("PUT", f"{base}/{collection}", a.auth_token, body)
        assert answer.status_code == 201, answer.text
        found[f"FUZZ_{name}"] = answer.json()["data"]["id"]
    s3 = Minio(infra.s3_endpoint, infra.s3_access_key, infra.s3_secret_key, secure=infra.s3_secure)

    def stored(prefix: str) -> str:
        for name, body in (("fax.tif", TIFF), ("fax.pdf", PDF)):
            s3.put_object(infra.s3_bucket, f"{prefix}/{name}", io.BytesIO(body), len(body))
        return f"{prefix}/fax.tif"

    # Finished as the transmitter finishes a job, with the fax it rendered.
    for name in ("FUZZ_FINISHED_FAX_ID", "FUZZ_DOOMED_FINISHED_FAX_ID"):
        tiff_key = stored(f"jobs/{found[name]}")
        api.sql("UPDATE fax_jobs SET status = 'failed', tiff_key = $2 WHERE id = $1::uuid", found[name], tiff_key)
    # Received and being received, as the transmitter records them.
    for name, status in (("RECEIVED", "received"), ("DOOMED_RECEIVED", "received"), ("RECEIVING", "receiving"),
                         ("DOOMED_RECEIVING", "receiving")):  # fmt: skip
        fax_id = uuid.uuid4()
        tiff_key = stored(f"inbound/{fax_id}")
        api.sql(
            "INSERT INTO inbound_faxes (id, account_id, status, call_id, from_number, to_number, pages, tiff_key, "
            "pdf_key) VALUES ($1, $2, $3, 'fuzz-call', '+15551230000', '+15559870000', 1, $4, $5)",
            fax_id, a.account_id, status, tiff_key, fax_pdf_key(tiff_key),
        )  # fmt: skip
        found[f"FUZZ_{name}_FAX_ID"] = fax_id.hex
    registered = httpx.post(
        f"{api.url}/api/v2/user",
        json={"email": f"fuzz-{uuid.uuid4().hex[:8]}@example.com", "password": "fuzz-password"},
        timeout=10,
    )
    assert registered.status_code == 200, registered.text
    found["FUZZ_FAXTO_API_KEY"] = api_key = registered.json()["api_key"]
    for name in ("FUZZ_DOCUMENT_ID", "FUZZ_DOOMED_DOCUMENT_ID"):
        uploaded = httpx.post(
            f"{api.url}/api/v2/files", params={"api_key": api_key}, files={"file": ("fuzz.pdf", PDF)}, timeout=10
        )
        assert uploaded.status_code == 200, uploaded.text
        found[name] = str(uploaded.json()["document_id"])
    return found


@pytest.mark.timeout(900)  # a minute on a quiet machine; several on a loaded one
def test_the_api_keeps_to_its_document(kazoo_api: KazooApi, infra, tmp_path: Path) -> None:
    # One worker thread: with two, CPython 3.11's AST constructor (hypothesis parses the lambdas it describes) now and
    # then lost count of its recursion depth across threads and schemathesis crashed on a SystemError (CPython
    # gh-106905), a failure of the tool that says nothing about the API.
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color", "run",
         f"{kazoo_api.url}/schema/openapi.json", "--workers", "1", "--request-timeout", "30"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path, env={**os.environ, **targets(kazoo_api, infra)},
    )  # fmt: skip
    report = tmp_path / "schemathesis.txt"
    report.write_text(run.stdout + run.stderr)
    assert run.returncode == 0, f"the whole report: {report}\n" + run.stdout[-20000:] + run.stderr[-3000:]
