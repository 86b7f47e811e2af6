"""The converter sandbox against a converter that does what an exploited one would: real bubblewrap, real processes.

The "converter" is a Python script that tries to read, list, write, connect and spend; it prints what it got. Each
test runs it sandboxed and checks it got nothing out; the control runs it unsandboxed (``FAX_SANDBOX=none``) to show
the same probe does get these things there, so a broken sandbox would fail the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fax_runtime.sandbox import Limits, Sandbox, SandboxError, kill, private_directory, python_paths

PROBE = r"""
import json, os, socket, sys
found = {}
def attempt(name, action):
    try:
        found[name] = action()
    except Exception as error:
        found[name] = "refused: " + type(error).__name__
canary, port = sys.argv[1], int(sys.argv[2])
attempt("passwd", lambda: open("/etc/passwd").read()[:200])
attempt("environ_file", lambda: open("/proc/self/environ", "rb").read().decode(errors="replace")[:500])
attempt("environ", lambda: dict(os.environ))
attempt("canary", lambda: open(canary).read())
attempt("canary_dir", lambda: sorted(os.listdir(os.path.dirname(canary))))
attempt("root", lambda: sorted(os.listdir("/")))
attempt("overwrite", lambda: open(canary, "w").write("overwritten"))
attempt("connect", lambda: socket.create_connection(("127.0.0.1", port), timeout=2).close() or "connected")
attempt("own_file", lambda: open("written-inside.txt", "w").write("mine"))
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    made = Sandbox.from_setting("auto", readable=python_paths())
    assert made.isolated, f"bubblewrap must work here (make setup installs it): {made.status.detail}"
    return made


class Listener:
    """A TCP server on loopback that nobody should reach; `accepted` drains and counts who did."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.setblocking(False)
        self.port = self.server.getsockname()[1]

    def accepted(self) -> int:
        count = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                self.server.accept()[0].close()
                count += 1
        return count


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.server.close()


async def _probe(sandbox: Sandbox, tmp_path: Path, port: int) -> dict[str, object]:
    canary = tmp_path / "host" / "canary.txt"
    canary.parent.mkdir()
    canary.write_text("another tenant's document")
    os.environ["FAX_S3_SECRET_KEY"] = "s3-secret-of-the-service"
    try:
        with private_directory("probe-", parent=tmp_path) as cwd:
            result = await sandbox.run([sys.executable, "-I", "-c", PROBE, str(canary), str(port)], cwd=cwd)
            assert result.returncode == 0, result.stderr.decode()
            found = json.loads(result.stdout)
            found["written_inside"] = (cwd / "written-inside.txt").read_text()
    finally:
        del os.environ["FAX_S3_SECRET_KEY"]
    found["canary_after"] = canary.read_text()
    return found


async def test_a_sandboxed_converter_gets_nothing_out(sandbox: Sandbox, tmp_path: Path, listener: Listener) -> None:
    found = await _probe(sandbox, tmp_path, listener.port)

    assert str(found["passwd"]).startswith("refused")
    assert str(found["environ_file"]).startswith("refused")
    assert found["environ"] == {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/sandbox",
                                "TMPDIR": "/sandbox/.tmp", "LANG": "C.UTF-8", "PWD": "/sandbox"}  # fmt: skip
    assert str(found["canary"]).startswith("refused") and str(found["canary_dir"]).startswith("refused")
    assert str(found["overwrite"]).startswith("refused") and found["canary_after"] == "another tenant's document"
    assert str(found["connect"]).startswith("refused") and listener.accepted() == 0
    # /home and /tmp are absent, unless the Python this probe runs on is installed below one of them (a checkout in
    # /tmp): then only the mount point of that installation is there, and the canaries above show nothing else is.
    python_tops = {path.parts[1] for path in python_paths()}
    assert "proc" not in found["root"]  # type: ignore[operator]
    assert all(name not in found["root"] or name in python_tops for name in ("home", "tmp"))  # type: ignore[operator]
    assert found["written_inside"] == "mine"


async def test_without_the_sandbox_the_same_probe_gets_everything(tmp_path: Path, listener: Listener) -> None:
    """The control: FAX_SANDBOX=none keeps the private directory and limits, and nothing else."""
    unsandboxed = Sandbox.from_setting("none")

    found = await _probe(unsandboxed, tmp_path, listener.port)

    assert str(found["passwd"]).startswith("root:")
    assert found["canary_after"] == "overwritten"
    assert found["connect"] == "connected" and listener.accepted() == 1
    # Even unsandboxed, the environment is the minimal one: no service setting reaches a converter.
    assert not any(name.startswith("FAX_") for name in found["environ"])  # type: ignore[union-attr]


async def test_memory_and_file_size_are_limited(sandbox: Sandbox, tmp_path: Path) -> None:
    limits = Limits(memory_bytes=256 * 1024 * 1024, file_bytes=1024 * 1024)
    with private_directory("limits-", parent=tmp_path) as cwd:
        memory = await sandbox.run(
            [sys.executable, "-I", "-c", "b = bytearray(512 * 1024 * 1024)"], cwd=cwd, limits=limits
        )
        written = await sandbox.run(
            [sys.executable, "-I", "-c", "open('big', 'wb').write(bytes(4 * 1024 * 1024))"], cwd=cwd, limits=limits
        )
        assert memory.returncode != 0 and b"MemoryError" in memory.stderr
        assert written.returncode != 0
        assert (cwd / "big").stat().st_size <= 1024 * 1024


async def test_cpu_time_is_limited(sandbox: Sandbox, tmp_path: Path) -> None:
    with private_directory("cpu-", parent=tmp_path) as cwd:
        started = time.monotonic()
        result = await sandbox.run(
            [sys.executable, "-I", "-c", "while True: pass"], cwd=cwd, limits=Limits(cpu_seconds=1)
        )
    assert result.returncode != 0 and time.monotonic() - started < 20


async def test_a_cancelled_run_is_killed_with_everything_it_started(sandbox: Sandbox, tmp_path: Path) -> None:
    """A converter that forks a child which outlives it: cancelling the run leaves neither behind."""
    marker = f"sandbox-orphan-{os.getpid()}-{time.monotonic_ns()}"
    script = f"import subprocess, time; subprocess.Popen(['sleep', '300', '{marker}']); time.sleep(300)"
    with private_directory("kill-", parent=tmp_path) as cwd:
        run = asyncio.ensure_future(sandbox.run([sys.executable, "-I", "-c", script], cwd=cwd))
        await asyncio.sleep(1.5)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    await asyncio.sleep(0.5)
    survivors = [pid for pid in os.listdir("/proc") if pid.isdigit() and marker.encode() in _cmdline(pid)]
    assert survivors == []


async def test_every_process_of_a_run_stays_in_the_group_kill_ends(sandbox: Sandbox, tmp_path: Path) -> None:
    """kill() ends a run by its process group. Caught: bubblewrap's --new-session put its sandbox in a session of
    its own, so a kill landing before the sandbox's --die-with-parent took hold (a converter stopped right after
    it started, on a busy machine) left bubblewrap's child and the converter running, holding the run's pipes:
    the page checker of a job whose document failed at once hung the render until the job's timeout."""
    marker = f"sandbox-group-{os.getpid()}-{time.monotonic_ns()}"
    with private_directory("group-", parent=tmp_path) as cwd:
        process = await sandbox.start(
            [sys.executable, "-I", "-c", "import sys, time; time.sleep(300)", marker], cwd=cwd, stdin=True
        )
        try:
            run = await _until_converter_runs(process.pid)
            assert len(run) >= 2, run  # bubblewrap's sandbox and the converter in it, at least
            assert {pid: _process_group(pid) for pid in run} == {pid: process.pid for pid in run}
        finally:
            await kill(process)
    assert [pid for pid in os.listdir("/proc") if pid.isdigit() and marker.encode() in _cmdline(pid)] == []


async def _until_converter_runs(root: int) -> list[int]:
    """The processes under `root`, once the converter (Python, here) runs among them."""
    for _ in range(500):
        run = _descendants(root)
        if any(_cmdline(str(pid)).startswith(sys.executable.encode()) for pid in run):
            return run
        await asyncio.sleep(0.02)
    raise AssertionError("the sandboxed converter did not start within 10 s")


def _descendants(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError, IndexError):
            if entry.isdigit():
                # /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces, so split after it.
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _process_group(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(SandboxError, match="FAX_SANDBOX must be one of auto, bwrap, none"):
        Sandbox.from_setting("chroot")
