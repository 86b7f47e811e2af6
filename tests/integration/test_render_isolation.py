"""An attacker's document, faxed through the API, tries to reach what is not its own: it gets nothing out.

The platform runs as ``make run`` starts it, with its temporary directory (``TMPDIR``) in a folder of the test's, so
the test can plant canaries where the services keep their working files. Each attacker is a PostScript probe
(`tests.integration.leak_probe`) uploaded by the demo account as a Kazoo fax; what it managed to read comes back
drawn on its own fax, which the test downloads as the attacker would and decodes.

Each docstring says what the probe got out of the platform before converters were sandboxed (commit 6e8298a, where
ghostscript ran with ``-dSAFER`` in the services' shared ``TMPDIR``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.leak_probe import probe, read_leak
from tests.integration.stack import REPO, RunningStack, infra_env, running_stack
from tests.integration.test_walking_skeleton import wait_until_finished


@pytest.fixture(scope="module")
def tmpdir_of_services() -> Iterator[Path]:
    folder = REPO / ".devstack" / f"test-isolation-tmp-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture(scope="module")
def stack(infra, tmpdir_of_services: Path) -> Iterator[RunningStack]:
    state_dir = REPO / ".devstack" / f"test-isolation-{uuid.uuid4().hex[:8]}"
    env = {
        **infra_env(infra, bucket=f"isolation-{uuid.uuid4().hex[:8]}"),
        "FAX_LINE": "loopback",
        "TMPDIR": str(tmpdir_of_services),
    }
    with running_stack(state_dir, env) as running:
        running.credentials["FAX_S3_SECRET_KEY"] = infra.s3_secret_key
        yield running


def fax_document(stack: RunningStack, document: bytes, tmp_path: Path) -> bytes:
    """Upload `document` as a Kazoo fax of the demo account, wait until it is sent, return the fax TIFF."""
    account, token = stack.credentials["FAX_ACCOUNT_ID"], stack.credentials["FAX_AUTH_TOKEN"]
    (tmp_path / "fax.json").write_text(json.dumps({"data": {"to_number": "18884732963", "retries": 1}}))
    (tmp_path / "probe.ps").write_bytes(document)
    out = subprocess.run(
        [
            "curl", "-s", "-X", "PUT", "-H", "Content-Type: multipart/mixed",
            "-F", f"content=@{tmp_path / 'fax.json'}; type=application/json",
            "-F", f"content=@{tmp_path / 'probe.ps'}; type=application/postscript",
            "-H", f"X-Auth-Token: {token}",
            f"{stack.api_url}/v2/accounts/{account}/faxes",
        ],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    created = json.loads(out.stdout)
    assert created["status"] == "success", created
    _, outbox = wait_until_finished(stack, created["data"]["id"], timeout=180)
    assert outbox["data"]["status"] == "completed", (outbox["data"], stack.logs())
    return stack.sent_fax(created["data"]["id"])


def leak_of(stack: RunningStack, body: str, tmp_path: Path) -> bytes:
    return read_leak(fax_document(stack, probe(body), tmp_path))


def all_files(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


def test_a_document_cannot_read_another_jobs_document_while_it_renders(
    stack: RunningStack, tmpdir_of_services: Path, tmp_path: Path
) -> None:
    """A Fax.to user's document renders its previews for 20 s; meanwhile the attacker's fax searches every file
    the fetcher can name for the victim's secret and draws what follows it.

    Before the fix: the attacker's fax carried the victim's secret, read from the victim's ``source`` file in
    ``$TMPDIR/fax-preview-*/``."""
    secret = f"s{secrets.token_hex(12)}"
    victim = (
        f"%!PS\n%VICTIM-SECRET:{secret}\n"
        "/t0 realtime def { realtime t0 sub 20000 gt { exit } if } loop\n"
        "/Helvetica findfont 24 scalefont setfont 72 720 moveto (victim) show showpage\n"
    ).encode()
    api_key = httpx.post(
        f"{stack.api_url}/api/v2/user",
        json={"email": f"victim-{uuid.uuid4().hex[:8]}@example.com", "password": "victim-pass-1"},
        timeout=10,
    ).json()["api_key"]
    uploaded = httpx.post(
        f"{stack.api_url}/api/v2/files",
        params={"api_key": api_key},
        files={"file": ("victim.ps", victim, "application/postscript")},
        timeout=30,
    )
    assert uploaded.status_code == 200, uploaded.text
    # The victim renders once its bytes are in a working file of the fetcher's.
    deadline = time.monotonic() + 15
    while not any(secret.encode() in path.read_bytes() for path in _readable(tmpdir_of_services)):
        assert time.monotonic() < deadline, "the victim's document never reached the fetcher"
        time.sleep(0.1)

    leak = leak_of(
        stack,
        f"""
/marker (VICTIM-SECRET?) dup 13 58 put def
/found false def
/scan {{
  mark exch {{
    (r) file dup 4096 string readstring pop exch closefile
    marker search {{ pop pop dup length 40 gt {{ 0 40 getinterval }} if emit /found true def }} {{ pop }} ifelse
  }} stopped pop cleartomark
}} bind def
/t0 realtime def
{{
  {{ ({tmpdir_of_services}/*) {{ scan }} 400 string filenameforall }} attempt
  {{ (/tmp/*) {{ scan }} 400 string filenameforall }} attempt
  found {{ exit }} if
  realtime t0 sub 15000 gt {{ exit }} if
}} loop
""",
        tmp_path,
    )

    assert secret.encode() not in leak, leak


def test_a_document_cannot_read_a_file_in_the_fetchers_temporary_directory(
    stack: RunningStack, tmpdir_of_services: Path, tmp_path: Path
) -> None:
    """Before the fix: the fax carried the canary's content, read by its full path and again by its pattern."""
    secret = f"s{secrets.token_hex(12)}"
    canary = tmpdir_of_services / f"canary-{secrets.token_hex(4)}.txt"
    canary.write_text(f"{secret}\n")

    leak = leak_of(
        stack,
        f"""
{{ ({canary}) readfile }} attempt
{{ ({tmpdir_of_services}/canary-*) {{ readfile }} 400 string filenameforall }} attempt
""",
        tmp_path,
    )

    assert secret.encode() not in leak, leak


def test_a_document_cannot_list_directories(stack: RunningStack, tmpdir_of_services: Path, tmp_path: Path) -> None:
    """Before the fix: the fax listed every file under the services' ``$TMPDIR``: the planted marker and the
    working files of the fetcher's own jobs (``fax-fetch-*``)."""
    marker = tmpdir_of_services / f"marker-{secrets.token_hex(4)}" / "inside.txt"
    marker.parent.mkdir()
    marker.write_text("marker\n")

    leak = leak_of(
        stack,
        f"""
{{ ({tmpdir_of_services}/*) listing }} attempt
{{ (/tmp/*) listing }} attempt
""",
        tmp_path,
    )

    assert marker.parent.name.encode() not in leak, leak
    assert b"fax-" not in leak and str(tmpdir_of_services).encode() not in leak, leak


def test_a_document_cannot_write_or_delete_files_outside_its_sandbox(
    stack: RunningStack, tmpdir_of_services: Path, tmp_path: Path
) -> None:
    """Before the fix: the victim file was deleted and the attacker's file was written next to it."""
    victim = tmpdir_of_services / f"victim-{secrets.token_hex(4)}.txt"
    victim.write_text("a document of another tenant\n")
    written = tmpdir_of_services / f"written-{secrets.token_hex(4)}.txt"
    before = all_files(tmpdir_of_services)

    leak_of(
        stack,
        f"""
{{ ({victim}) deletefile }} attempt
{{ ({written}) (w) file dup (pwned) writestring closefile }} attempt
{{ (/tmp/written-by-a-document) (w) file dup (pwned) writestring closefile }} attempt
""",
        tmp_path,
    )

    assert victim.exists() and victim.read_text() == "a document of another tenant\n"
    assert not written.exists()
    assert not Path("/tmp/written-by-a-document").exists()
    assert not {path for path in all_files(tmpdir_of_services) - before if "pwned" in _text(path)}


def test_a_document_cannot_reach_the_network(stack: RunningStack, tmp_path: Path) -> None:
    """PostScript offers no socket, so the probe tries every way ghostscript has of reaching outside: a pipe to
    curl, a URL as a file name, /dev/tcp.

    Before the fix: nothing connected either (ghostscript has no network device and ``-dSAFER`` refuses pipes);
    the sandbox adds a network namespace of its own, which `fax_runtime`'s sandbox tests show with a converter
    that does open sockets."""
    with _listener() as (port, connections):
        leak = leak_of(
            stack,
            f"""
{{ (%pipe%curl -s http://127.0.0.1:{port}/pipe) readfile }} attempt
{{ (|curl -s http://127.0.0.1:{port}/bar) readfile }} attempt
{{ (http://127.0.0.1:{port}/url) readfile }} attempt
{{ (/dev/tcp/127.0.0.1/{port}) (w) file dup (hello) writestring closefile }} attempt
""",
            tmp_path,
        )
        time.sleep(0.5)

    assert connections == [], (connections, leak)


def test_a_document_cannot_read_system_files_or_the_environment(stack: RunningStack, tmp_path: Path) -> None:
    """Before the fix: nothing of these came out either: ``-dSAFER`` already refuses ghostscript these files and its
    ``getenv``. The sandbox takes the files and the variables away from the converter altogether, which
    `fax_runtime`'s sandbox tests show with a converter that reads them."""
    leak = leak_of(
        stack,
        """
{ (/etc/passwd) readfile } attempt
{ (/proc/self/environ) readfile } attempt
{ (/proc/1/environ) readfile } attempt
{ (FAX_S3_SECRET_KEY) getenv { emit } if } attempt
{ (FAX_DATABASE_URL) getenv { emit } if } attempt
{ (HOME) getenv { emit } if } attempt
""",
        tmp_path,
    )

    assert b"root:" not in leak and b"FAX_" not in leak, leak
    assert stack.credentials["FAX_S3_SECRET_KEY"].encode() not in leak, leak


def _readable(folder: Path) -> Iterator[Path]:
    for path in all_files(folder):
        with contextlib.suppress(OSError):
            if path.stat().st_size < 1_000_000:
                yield path


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


@contextlib.contextmanager
def _listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP server on loopback that records every connection it accepts."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    connections: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, peer = server.accept()
            except TimeoutError:
                continue
            connections.append(f"{peer[0]}:{peer[1]}")
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], connections
    finally:
        stop.set()
        thread.join()
        server.close()
