"""Child-process handling, with plain ``sleep`` and ``sh`` children (no network, no services)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from fax_devstack.processes import (
    DevstackError,
    OsUser,
    ensure_port_free,
    first_closed_directory,
    spawn,
    stop_leftover,
    wait_until_ready,
)


async def test_stop_terminates_politely(tmp_path: Path) -> None:
    child = await spawn("sleeper", ["sleep", "60"], log_path=tmp_path / "sleeper.log", env=os.environ)
    assert child.running()
    assert await child.stop(grace=5) == -15


async def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = await spawn(
        "stubborn",
        ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"],
        log_path=tmp_path / "stubborn.log",
        env=os.environ,
    )
    # A line of its own: the log's first line, written before the shell runs, quotes the whole command.
    await wait_until_ready("stubborn", lambda: _has_line(tmp_path / "stubborn.log", "ready"), time_limit=5)
    assert await stubborn.stop(grace=0.5) == -9


async def _has_line(path: Path, line: str) -> bool:
    return line in (await asyncio.to_thread(path.read_text)).splitlines()


async def test_output_goes_to_the_log(tmp_path: Path) -> None:
    child = await spawn("echo", ["echo", "hello"], log_path=tmp_path / "logs" / "echo.log", env=os.environ)
    assert await child.wait() == 0
    assert "hello" in (tmp_path / "logs" / "echo.log").read_text()


async def test_missing_program_is_reported_by_name(tmp_path: Path) -> None:
    with pytest.raises(DevstackError, match="no-such-program"):
        await spawn("x", ["no-such-program"], log_path=tmp_path / "x.log", env=os.environ)


async def test_wait_until_ready_fails_fast_when_the_child_exits(tmp_path: Path) -> None:
    child = await spawn("quitter", ["sh", "-c", "echo bye; exit 3"], log_path=tmp_path / "q.log", env=os.environ)

    async def never() -> bool:
        return False

    with pytest.raises(DevstackError, match=r"exited with code 3(.|\n)*bye"):
        await wait_until_ready("quitter", never, child=child, time_limit=30)


async def test_leftover_is_stopped_only_when_its_command_line_matches(tmp_path: Path) -> None:
    marker = str(tmp_path / "state")
    leftover = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)", marker)
    pid_file = tmp_path / "leftover.pid"
    pid_file.write_text(f"{leftover.pid}\n")
    assert not await stop_leftover(pid_file, "some-other-state-dir")
    assert not await stop_leftover(pid_file, marker[:-1])  # a prefix is not the same directory
    assert leftover.returncode is None
    assert await stop_leftover(pid_file, marker, grace=5)
    assert await leftover.wait() == -15
    assert not await stop_leftover(tmp_path / "missing.pid", marker)


def test_port_in_use_is_reported_clearly() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(DevstackError, match=f"{port}.*in use"):
            ensure_port_free(port, "test")


def test_closed_directory_is_found(tmp_path: Path) -> None:
    nobody = OsUser("nobody", 65534, 65534)
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    (tmp_path / "a").chmod(0o700)
    try:
        closed = first_closed_directory(inner, nobody)
        # pytest's own tmp directories are 0700 too: whichever comes first is reported.
        assert closed is not None and inner.is_relative_to(closed)
    finally:
        (tmp_path / "a").chmod(0o755)
