"""Changing a queued fax while its document is still being fetched, on the whole platform, as a Kazoo client does.

The field report: a fax whose document took 15-25 s to download, changed once (PATCH or POST, any change) soon after
it was created, ended ``failed`` in 12 of 22 tries with "transmitter error: 'jobs/<id>/r2/fax.tif'". It happened when
the fetcher read the job only after the change (a loaded machine, a client that changes a fax right after creating
it): here the fetcher is paused (SIGSTOP) from before the fax is created until it was changed, which makes that
happen every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from minio import Minio
from PIL import Image, ImageSequence

from tests.integration.documents import TWO_PAGE_POSTSCRIPT, SlowDocumentServer, make_pdf
from tests.integration.stack import REPO, RunningStack, infra_env, running_stack
from tests.integration.test_walking_skeleton import wait_until_finished

COPIES_TIMEOUT_S = 30

ONE_PAGE_POSTSCRIPT = b"""%!PS
/Helvetica findfont 48 scalefont setfont
72 700 moveto (The old document) show
showpage
"""


@pytest.fixture(scope="module")
def stack(infra) -> Iterator[RunningStack]:
    state_dir = REPO / ".devstack" / f"test-changes-{uuid.uuid4().hex[:8]}"
    env = {
        **infra_env(infra, bucket=f"changes-{uuid.uuid4().hex[:8]}"),
        "FAX_FETCH_ALLOW_NETWORKS": "127.0.0.0/8",
        "FAX_LINE": "loopback",
    }
    with running_stack(state_dir, env) as running:
        running.credentials.update({key: env[key] for key in ("FAX_DATABASE_URL", "FAX_S3_BUCKET")})
        yield running


def _service_pid(stack: RunningStack, module: str) -> int:
    """The pid of the devstack's child running ``python -m <module>``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The command name (field 2) may contain spaces; the fields after its closing parenthesis do not.
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent == stack.run.process.pid and module in (stat.parent / "cmdline").read_bytes().split(b"\0"):
                return int(stat.parent.name)
    raise AssertionError(f"no {module} process under the devstack")


@contextlib.contextmanager
def _fetcher_busy(stack: RunningStack) -> Iterator[None]:
    """The fetcher takes no delivery until the block ends, as on a loaded machine: it reads the job only then."""
    pid = _service_pid(stack, b"fax_fetcher")
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _job_row(stack: RunningStack, fax_id: str) -> asyncpg.Record:
    async def read() -> asyncpg.Record:
        conn = await asyncpg.connect(stack.credentials["FAX_DATABASE_URL"])
        try:
            return await conn.fetchrow("SELECT tiff_key, pages FROM fax_jobs WHERE id = $1", uuid.UUID(fax_id))
        finally:
            await conn.close()

    return asyncio.run(read())


def _pages(tiff: bytes) -> list[bytes]:
    with Image.open(io.BytesIO(tiff)) as image:
        return [page.convert("1").tobytes() for page in ImageSequence.Iterator(image)]


def _change(client: httpx.Client, fax_id: str, how: str, body: dict, new_url: str) -> None:
    """Change the fax's document to ``new_url``: PATCH with the one field, or POST the whole fax again."""
    if how == "patch":
        answer = client.patch(f"/outgoing/{fax_id}", json={"data": {"document": {"url": new_url, "method": "get"}}})
    else:
        answer = client.post(f"/outgoing/{fax_id}", json={"data": {**body, "document": {"url": new_url}}})
    assert answer.status_code == 200, answer.text


def _problems(stack: RunningStack, s3: Minio, fax_id: str, outbox: dict, new_pages: int) -> list[str]:
    """What is wrong with a finished changed fax: not sent, not the changed document, or litter left in S3."""
    data = outbox["data"]
    if data["status"] != "completed":
        return [f"ended {data['status']}: {data['tx_result'].get('error_message')}"]
    problems = []
    received = stack.state_dir / "loopback" / "received" / f"{uuid.UUID(fax_id)}-{data['attempts']}.tif"
    sent_pages = _pages(received.read_bytes())
    if len(sent_pages) != new_pages:
        problems.append(f"sent {len(sent_pages)} page(s): not the changed document")
    headers = {"X-Auth-Token": stack.credentials["FAX_AUTH_TOKEN"], "Accept": "image/tiff"}
    account = stack.credentials["FAX_ACCOUNT_ID"]
    attachment = httpx.get(
        f"{stack.api_url}/v2/accounts/{account}/faxes/outbox/{fax_id}/attachment", headers=headers, timeout=30
    )
    if attachment.status_code != 200:
        problems.append(f"outbox attachment answered {attachment.status_code}")
    elif _pages(attachment.content) != sent_pages:
        problems.append("the outbox attachment is not the fax that was sent")
    row = _job_row(stack, fax_id)
    render_dir = row["tiff_key"].rsplit("/", 1)[0] + "/"
    expected = {row["tiff_key"], *(f"{render_dir}{name}" for name in ("fax.pdf", "preview-1.png", "preview-2.png"))}
    expected.add(f"{render_dir}original")  # the fetched document, kept with the render made from it
    # The PDF copy and the previews are made after the fax is recorded ready, while it is sent: on the instant
    # loopback line the fax can be done first, so they are waited for (a render they never come for still fails).
    deadline = time.monotonic() + COPIES_TIMEOUT_S
    while True:
        stored = {
            item.object_name
            for item in s3.list_objects(
                stack.credentials["FAX_S3_BUCKET"], prefix=f"jobs/{uuid.UUID(fax_id)}/", recursive=True
            )
        }
        if expected <= stored or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if litter := sorted(key for key in stored if not key.startswith(render_dir)):
        problems.append(f"objects of another render left in S3: {litter}")
    if missing := sorted(expected - stored):
        problems.append(f"objects of the sent render missing from S3: {missing}")
    return problems


# How the fetcher met each change: "busy" took no delivery until the fax was created and changed (it read the job
# only after the change, from both its events at once); "fetching" had begun downloading the first document.
ROUNDS = [
    ("busy", "patch"),
    ("fetching", "patch"),
    ("busy", "post"),
    ("busy", "patch"),
    ("fetching", "post"),
    ("busy", "post"),
    ("busy", "patch"),
    ("busy", "post"),
]


def test_a_queued_fax_changed_while_its_document_is_fetched_sends_the_changed_fax(
    stack: RunningStack, tmp_path: Path, infra
) -> None:
    """Each round creates a fax whose document server answers after 2 s, changes its document to a two-page one
    (PATCH or POST) while it is being fetched, and waits for the outcome: the fax must complete, the fax the far end
    received must be the changed document, the outbox attachment must be that fax, and no object of any other
    render (of the old request, or a second render of the new one) may be left under the job in S3.

    Before the fix, in 5 runs, 17 of 20 "busy" rounds went wrong and so did every run: the row's ``revision`` was
    both the request's identity and the row's version, so the two deliveries that read the changed request both
    rendered to ``jobs/<id>/r2/``; the one that lost ``document_ready`` found the revision bumped by the winner and
    deleted ``r2``, the objects the row had just recorded. The transmitter then fetched a missing key (the job failed
    with "transmitter error: 'jobs/<id>/r2/fax.tif'", as reported), or, when it had already downloaded it, the
    completed fax's attachment answered 404. Every round, "fetching" ones too, also left the fetched original of
    whichever render finished last at ``jobs/<id>/original``, shared by all renders.
    """
    old_pdf = make_pdf(tmp_path / "old.pdf", ONE_PAGE_POSTSCRIPT).read_bytes()
    new_pdf = make_pdf(tmp_path / "new.pdf", TWO_PAGE_POSTSCRIPT).read_bytes()
    files = {}
    for number in range(len(ROUNDS)):
        files |= {f"/{number}/old.pdf": old_pdf, f"/{number}/new.pdf": new_pdf}
    s3 = Minio(infra.s3_endpoint, infra.s3_access_key, infra.s3_secret_key, secure=infra.s3_secure)
    account = stack.credentials["FAX_ACCOUNT_ID"]
    failed: dict[int, list[str]] = {}
    with (
        SlowDocumentServer(files, delay_s=2.0) as server,
        httpx.Client(
            base_url=f"{stack.api_url}/v2/accounts/{account}/faxes",
            headers={"X-Auth-Token": stack.credentials["FAX_AUTH_TOKEN"]},
            timeout=30,
        ) as client,
    ):
        for number, (fetcher, how) in enumerate(ROUNDS):
            body = {"to_number": "18884732963", "from_number": "18884732963", "to_name": "To Name", "retries": 1}
            old = {"url": f"{server.url}/{number}/old.pdf", "method": "get"}
            with _fetcher_busy(stack) if fetcher == "busy" else contextlib.nullcontext():
                created = client.put("/outgoing", json={"data": {**body, "document": old}})
                assert created.status_code == 201, created.text
                fax_id = created.json()["data"]["id"]
                if fetcher == "fetching":
                    server.wait_for_request(f"/{number}/old.pdf")
                _change(client, fax_id, how, body, f"{server.url}/{number}/new.pdf")
            _, outbox = wait_until_finished(stack, fax_id)
            if problems := _problems(stack, s3, fax_id, outbox, new_pages=2):
                failed[number] = [f"{fetcher}/{how}", *problems]
    assert not failed, f"{len(failed)} of {len(ROUNDS)} changed faxes went wrong: {failed}\n{stack.logs()}"
