"""The one way to run a converter (ghostscript, LibreOffice, libtiff's tools, an image decoder) on a tenant's bytes.

Each run gets a private, empty working directory of its own that holds only its inputs and what it writes, and sees
nothing else of the host's files: bubblewrap (Debian's ``bubblewrap``, the sandbox of Flatpak and of GNOME's
thumbnailers) starts it in new user, mount, PID, network, IPC and UTS namespaces, with no capabilities, no way to
make further user namespaces, a cleared environment, read-only views of the system directories programs need
(``/usr``, font and ghostscript configuration, the Python a converter may be written in) and its working directory
at ``/sandbox``. Every run is also held to resource limits (CPU seconds, address space, file size, open files, no core
dumps), is its own session, and dies with the service: a timeout kills the whole PID namespace.

Where bubblewrap cannot work (no user namespaces, a container profile that refuses them), ``FAX_SANDBOX=auto`` falls
back to running converters directly, still each in its own private directory (also its ``TMPDIR`` and ``HOME``), with
the same limits and the same minimal environment, and says so loudly: a warning at start, ``isolated`` false in
`Sandbox.status`, and the gauge ``fax_sandbox_isolated`` at 0. ``FAX_SANDBOX=bwrap`` refuses to start instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fax_runtime.metrics import default_metrics

log = logging.getLogger(__name__)

MODES = ("auto", "bwrap", "none")
INSIDE = "/sandbox"  # where a run's working directory is mounted in the sandbox
OUTPUT_KEEP_BYTES = 16 * 1024
# System paths converters read: libraries and binaries, fonts and their configuration, ghostscript's font maps.
SYSTEM_PATHS = (
    "/usr",
    "/etc/ld.so.cache",
    "/etc/fonts",
    "/etc/ghostscript",
    "/var/lib/ghostscript",
    "/etc/alternatives",
    "/etc/libreoffice",
)
# On a merged-/usr system these are symlinks into /usr; elsewhere they are bound read-only.
TOP_LEVEL_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
SANDBOX_UID = 65534  # nobody, inside the sandbox's own user namespace


class SandboxError(RuntimeError):
    """The sandbox itself cannot run (as opposed to a converter that failed inside it)."""


@dataclass(frozen=True)
class Limits:
    """What one run may use. Every limit is per process, enforced by the kernel (setrlimit)."""

    cpu_seconds: int = 180
    memory_bytes: int = 1024 * 1024 * 1024
    file_bytes: int = 1024 * 1024 * 1024
    open_files: int = 256


@dataclass(frozen=True)
class Completed:
    """How a run ended: its exit status (negative: killed by that signal) and the start of its output."""

    returncode: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class SandboxStatus:
    mode: str  # the setting: auto, bwrap or none
    isolated: bool  # converters run under bubblewrap
    detail: str  # the bubblewrap version, or why converters run without it


@dataclass
class Sandbox:
    """Runs converters; build it once per process (`from_setting`) and share it."""

    status: SandboxStatus
    readable: tuple[Path, ...] = ()  # extra read-only paths every run sees (a Python converter's interpreter)
    bwrap: str = "bwrap"
    _system_args: list[str] = field(default_factory=list, repr=False)

    @classmethod
    def from_setting(cls, mode: str = "auto", *, readable: Sequence[Path] = (), bwrap: str = "bwrap") -> Sandbox:
        """Resolve ``FAX_SANDBOX`` (auto, bwrap or none): probe bubblewrap once, log loudly if runs are not isolated."""
        if mode not in MODES:
            raise SandboxError(f"FAX_SANDBOX must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "none":
            status = SandboxStatus(mode, False, "disabled by FAX_SANDBOX=none")
        else:
            problem, version = _probe(bwrap)
            if problem is None:
                status = SandboxStatus(mode, True, version)
            elif mode == "bwrap":
                raise SandboxError(f"FAX_SANDBOX=bwrap but bubblewrap cannot run here: {problem}")
            else:
                status = SandboxStatus(mode, False, problem)
        sandbox = cls(status=status, readable=tuple(readable), bwrap=bwrap)
        default_metrics().sandbox_isolated.set(1 if status.isolated else 0)
        if status.isolated:
            log.info("converters run sandboxed by %s", status.detail)
        else:
            log.warning(
                "CONVERTERS ARE NOT SANDBOXED (%s): each run still gets its own private directory and limits, but a "
                "converter exploited by a document can read whatever this service can read. See docs/security.md.",
                status.detail,
            )
        return sandbox

    @property
    def isolated(self) -> bool:
        return self.status.isolated

    def workdir(self, cwd: Path) -> str:
        """The path under which a run in `cwd` sees its working directory."""
        return INSIDE if self.isolated else str(cwd)

    async def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        inputs: Mapping[str, Path] | None = None,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
        readable: Sequence[Path] = (),
    ) -> Completed:
        """Run `argv` in the private directory `cwd` (see `private_directory`) with `inputs` (name -> host file)
        placed in it read-only; return its exit status and the first kilobytes of its output.

        Relative paths in `argv` resolve in the working directory. If the caller is cancelled (its timeout), the
        run is killed with everything it started.
        """
        process = await self.start(argv, cwd=cwd, inputs=inputs, limits=limits, env=env, readable=readable)
        try:
            assert process.stdout is not None and process.stderr is not None
            stdout, stderr, returncode = await asyncio.gather(
                read_bounded(process.stdout), read_bounded(process.stderr), process.wait()
            )
        finally:
            await kill(process)
        return Completed(returncode, stdout, stderr)

    async def start(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        inputs: Mapping[str, Path] | None = None,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
        readable: Sequence[Path] = (),
        stdin: bool = False,
    ) -> asyncio.subprocess.Process:
        """Start `argv` as `run` does, with pipes for stdout and stderr (and stdin if asked); the caller must
        `kill` it when done with it."""
        limits = limits or Limits()
        (cwd / ".tmp").mkdir(exist_ok=True)
        inside = self.workdir(cwd)
        environment = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": inside,
            "TMPDIR": f"{inside}/.tmp",
            "LANG": "C.UTF-8",
            **(env or {}),
        }
        # The converter is looked for on the host, whose /usr the sandbox shares: a missing one is a clear error in
        # both modes, not the exit status of the launcher (prlimit, bubblewrap) that would have run it.
        if shutil.which(argv[0], path=environment["PATH"]) is None:
            raise SandboxError(f"{Path(argv[0]).name} is not installed")
        if self.isolated:
            command = [*self._bwrap_args(cwd, inputs or {}, environment, readable), "--", *argv]
        else:
            for name, source in (inputs or {}).items():
                await asyncio.to_thread(shutil.copyfile, source, cwd / name)
            command = list(argv)
        try:
            # prlimit (util-linux) sets the limits and execs the run: no preexec_fn, so Python can vfork instead
            # of forking the whole service, which blocked the event loop for milliseconds per run.
            return await asyncio.create_subprocess_exec(
                *_prlimit_args(limits),
                *command,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=cwd,
                env=environment,
                start_new_session=True,
            )
        except FileNotFoundError as missing:
            raise SandboxError(f"{Path(missing.filename or command[0]).name} is not installed") from None

    def _bwrap_args(
        self, cwd: Path, inputs: Mapping[str, Path], environment: Mapping[str, str], readable: Sequence[Path]
    ) -> list[str]:
        if not self._system_args:
            self._system_args = _system_binds()
        args = [
            self.bwrap,
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--cap-drop",
            "ALL",
            # No --new-session: the run has its own session already (start_new_session, no controlling terminal),
            # and bubblewrap's setsid() would take its sandbox out of the process group that kill() ends. An
            # outer bubblewrap killed before its child's --die-with-parent took hold left that child, and the
            # converter under it, holding the run's pipes: the job hung until its timeout.
            "--die-with-parent",
            "--clearenv",
            *self._system_args,
        ]
        for path in _outermost([*self.readable, *readable]):
            args += ["--ro-bind", str(path), str(path)]
        args += ["--dev", "/dev", "--bind", str(cwd), INSIDE]
        for name, source in inputs.items():
            args += ["--ro-bind", str(source), f"{INSIDE}/{name}"]
        for key, value in environment.items():
            args += ["--setenv", key, value]
        # The root is bubblewrap's own tmpfs: read-only, so a converter cannot fill memory through it.
        return [*args, "--chdir", INSIDE, "--remount-ro", "/"]


@contextlib.contextmanager
def private_directory(prefix: str, parent: Path | None = None) -> Iterator[Path]:
    """A new directory only this process can enter (mode 0700), removed with everything in it afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def read_bounded(stream: asyncio.StreamReader, keep: int = OUTPUT_KEEP_BYTES) -> bytes:
    """Read `stream` to its end, keeping only its first `keep` bytes (a document can print without end)."""
    kept = bytearray()
    while chunk := await stream.read(64 * 1024):
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]
    return bytes(kept)


async def kill(process: asyncio.subprocess.Process) -> None:
    """Kill a run that is still going, with its whole session (bubblewrap takes its PID namespace with it)."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        await process.wait()


def python_paths() -> tuple[Path, ...]:
    """What a converter written in Python needs to read: the interpreter's installation and this environment."""
    return tuple(_outermost([Path(sys.base_prefix), Path(sys.prefix)]))


def _prlimit_args(limits: Limits) -> list[str]:
    """prlimit's command line setting `limits`, soft and hard, for the command that follows it."""
    return [
        "prlimit",
        f"--cpu={limits.cpu_seconds}",
        f"--as={limits.memory_bytes}",
        f"--fsize={limits.file_bytes}",
        f"--nofile={limits.open_files}",
        "--core=0",
        "--",
    ]


def _system_binds() -> list[str]:
    args: list[str] = []
    for name in TOP_LEVEL_LINKS:
        top = Path("/") / name
        if top.is_symlink() and os.readlink(top).lstrip("/").startswith("usr/"):
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    for path in SYSTEM_PATHS:
        args += ["--ro-bind-try", path, path]
    return args


def _outermost(paths: Sequence[Path]) -> list[Path]:
    """`paths` without those inside another one of them (and without /usr, which every run sees)."""
    candidates = sorted({path.absolute() for path in paths if path.exists()}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in candidates:
        if path == Path("/usr") or Path("/usr") in path.parents:
            continue
        if not any(path == outer or outer in path.parents for outer in kept):
            kept.append(path)
    return kept


def _probe(bwrap: str) -> tuple[str | None, str]:
    """(None, version) if bubblewrap can start a sandbox here, else (why not, "")."""
    if shutil.which(bwrap) is None:
        return "bubblewrap (bwrap) is not installed", ""
    with private_directory("fax-sandbox-probe-") as cwd:
        sandbox = Sandbox(status=SandboxStatus("bwrap", True, ""), bwrap=bwrap)
        command = [*sandbox._bwrap_args(cwd, {}, {"PATH": "/usr/bin:/bin"}, ()), "--", "true"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bubblewrap did not start: {error}", ""
    if result.returncode != 0:
        return f"bubblewrap cannot create a sandbox here: {result.stderr.strip()[:200]}", ""
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return None, version or "bubblewrap"
