"""An uploaded fax on the whole platform: the overview's multipart/mixed curl example -> attaching_files -> pending
-> sent over the loopback line -> completed; its payload by Accept; resubmitted, it is sent again."""

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

from tests.integration.documents import make_pdf
from tests.integration.stack import REPO, RunningStack, infra_env, running_stack
from tests.integration.test_walking_skeleton import wait_until_finished

ONE_PAGE_POSTSCRIPT = b"""%!PS
/Helvetica findfont 48 scalefont setfont
72 700 moveto (Uploaded fax) show
newpath 72 300 moveto 500 300 lineto 500 600 lineto 72 600 lineto closepath fill
showpage
"""


@pytest.fixture(scope="module")
def stack(infra) -> Iterator[RunningStack]:
    state_dir = REPO / ".devstack" / f"test-faxes-{uuid.uuid4().hex[:8]}"
    env = {
        **infra_env(infra, bucket=f"faxes-{uuid.uuid4().hex[:8]}"),
        "FAX_LINE": "loopback",
    }
    with running_stack(state_dir, env) as running:
        yield running


def tiff_page_count(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        return sum(1 for _ in ImageSequence.Iterator(image))


def test_multipart_upload_is_sent_and_can_be_resubmitted(stack: RunningStack, tmp_path: Path) -> None:
    account, token = stack.credentials["FAX_ACCOUNT_ID"], stack.credentials["FAX_AUTH_TOKEN"]
    (tmp_path / "fax.json").write_text(
        json.dumps({"data": {"to_number": "18884732963", "from_number": "18884732963", "retries": 2}})
    )
    make_pdf(tmp_path / "fax.pdf", ONE_PAGE_POSTSCRIPT)
    # The overview's second method, verbatim but for the file paths.
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "PUT",
            "-H",
            "Content-Type: multipart/mixed",
            "-F",
            f"content=@{tmp_path / 'fax.json'}; type=application/json",
            "-F",
            f"content=@{tmp_path / 'fax.pdf'}; type=application/pdf",
            "-H",
            f"X-Auth-Token: {token}",
            f"{stack.api_url}/v2/accounts/{account}/faxes",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    created = json.loads(out.stdout)
    assert created["status"] == "success", created
    fax_id = created["data"]["id"]
    assert created["data"]["status"] == "attaching_files"

    states, outbox = wait_until_finished(stack, fax_id)
    result = outbox["data"]
    assert result["status"] == "completed", (result, stack.logs())
    assert set(states) <= {"attaching_files", "pending", "processing", "completed"}
    assert result["pages"] == 1 and result["tx_result"]["pages_sent"] == 1 and result["tx_result"]["success"] is True
    assert result["attempts"] == 1 and result["retries"] == 2

    base = f"{stack.api_url}/v2/accounts/{account}/faxes"
    headers = {"X-Auth-Token": token}
    tiff = httpx.get(f"{base}/outbox/{fax_id}/attachment", headers={**headers, "Accept": "image/tiff"}, timeout=10)
    assert tiff.status_code == 200 and tiff.headers["content-type"] == "image/tiff"
    assert tiff_page_count(tiff.content) == 1
    # The fetcher stores the PDF copy after the fax is ready to send; the instant loopback line can finish first.
    deadline, as_pdf = time.monotonic() + 30, {**headers, "Accept": "application/pdf"}
    while True:
        pdf = httpx.get(f"{base}/outbox/{fax_id}/attachment", headers=as_pdf, timeout=10)
        if pdf.status_code != 406 or time.monotonic() > deadline:
            break
        assert "no PDF copy" in pdf.json()["data"]["message"], pdf.text
        time.sleep(0.1)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-"), pdf.text

    again = httpx.put(f"{base}/outbox/{fax_id}", headers=headers, json={"data": {"action": "resubmit"}}, timeout=10)
    assert again.status_code == 201, again.text
    assert again.json()["data"]["status"] == "attaching_files" and again.json()["data"]["attempts"] == 0
    _, second = wait_until_finished(stack, again.json()["data"]["id"])
    assert second["data"]["status"] == "completed" and second["data"]["tx_result"]["pages_sent"] == 1
