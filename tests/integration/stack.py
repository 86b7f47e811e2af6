"""Start the embedded default (``python -m fax_devstack run``) as a user would, on free ports, for a test."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import httpx
import pytest

if TYPE_CHECKING:
    from fax_devstack.infra import Endpoints

REPO = Path(__file__).resolve().parents[2]


# Ports handed out by bind(0) come from the kernel's ephemeral range, where any outgoing connection may take
# them before our server binds: test servers get ports below it (32768 on Linux).
TEST_PORT_RANGE = (26000, 32000)


def ports_free(ports: list[int]) -> bool:
    with contextlib.ExitStack() as stack:
        for port in ports:
            probe = stack.enter_context(socket.socket())
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port_block(size: int, low: int = TEST_PORT_RANGE[0], high: int = TEST_PORT_RANGE[1]) -> int:
    """A base port such that base..base+size-1 are free now, outside the ephemeral range."""
    for _ in range(500):
        base = random.randint(low, high - size)
        if ports_free(list(range(base, base + size))):
            return base
    raise RuntimeError(f"no block of {size} free ports")


def fresh_database(server_url: str) -> str:
    """A new, empty database on the server of ``server_url``; its URL. The platform migrates it on start."""
    import asyncio
    from urllib.parse import urlsplit, urlunsplit

    name = f"e2e_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def infra_env(infra: Endpoints, *, database_url: str | None = None, bucket: str | None = None) -> dict[str, str]:
    """The settings that point a stack at the test's services: a fresh database unless ``database_url`` is given,
    and the test's bucket unless ``bucket`` names one of its own (the platform creates it)."""
    return {
        "FAX_DATABASE_URL": database_url or fresh_database(infra.database_url),
        "FAX_AMQP_URL": infra.amqp_url,
        "FAX_S3_ENDPOINT": infra.s3_endpoint,
        "FAX_S3_ACCESS_KEY": infra.s3_access_key,
        "FAX_S3_SECRET_KEY": infra.s3_secret_key,
        "FAX_S3_BUCKET": bucket or infra.s3_bucket,
        "FAX_S3_SECURE": "true" if infra.s3_secure else "false",
    }


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values


class DevstackRun:
    """One ``python -m fax_devstack run`` in a subprocess, as ``make run`` would start it."""

    def __init__(self, state_dir: Path, env: dict[str, str]) -> None:
        self.state_dir = state_dir
        self.api_url = f"http://127.0.0.1:{env['FAX_API_PORT']}"
        self.output_path = state_dir / f"devstack-{uuid.uuid4().hex[:6]}.out"
        state_dir.mkdir(parents=True, exist_ok=True)
        with self.output_path.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fax_devstack", "run", "--state-dir", str(state_dir)],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def report(self) -> str:
        text = self.output_path.read_text(errors="replace")[-4000:]
        for log in sorted((self.state_dir / "logs").glob("*.log")):
            text += f"\n--- {log.name}\n" + log.read_text(errors="replace")[-1500:]
        return text

    def wait_healthy(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"devstack exited with {self.process.returncode} before it was healthy:\n{self.report()}")
            # The banner comes once the devstack itself saw /healthz answer 200 and began supervising.
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(
                    f"{self.api_url}/healthz", timeout=2
                ).status_code == 200 and "Fax platform ready" in self.output_path.read_text(errors="replace"):
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"/healthz not 200 after {seconds:.0f} s:\n{self.report()}")
            time.sleep(0.3)

    def interrupt(self, seconds: float = 60) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(seconds)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class RunningStack:
    api_url: str
    state_dir: Path
    credentials: dict[str, str]
    run: DevstackRun

    def logs(self) -> str:
        return self.run.report()

    def sent_fax(self, fax_id: str) -> bytes:
        """The fax TIFF a finished job of the demo account sent, as a Kazoo client downloads it."""
        account, token = self.credentials["FAX_ACCOUNT_ID"], self.credentials["FAX_AUTH_TOKEN"]
        answer = httpx.get(
            f"{self.api_url}/v2/accounts/{account}/faxes/outbox/{fax_id}/attachment",
            headers={"X-Auth-Token": token, "Accept": "image/tiff"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.content


@contextlib.contextmanager
def running_stack(state_dir: Path, env_overrides: Mapping[str, str]) -> Iterator[RunningStack]:
    """Run the whole platform on free ports; stop it with SIGINT (as Ctrl-C would) on exit."""
    base = free_port_block(9)
    # Six HTTP ports (API and health), the transmitter's and faxsim's SIP ports, then SMTP intake. Tests send over
    # the instant loopback line unless they ask for real SIP calls (FAX_LINE=sip), which take real time.
    env = {
        "FAX_LINE": "loopback",
        **os.environ,
        "FAX_SIP_BIND": f"127.0.0.1:{base + 6}",
        "FAX_FAXSIM_SIP": f"127.0.0.1:{base + 7}",
        "FAX_SMTP_GATEWAY_PORT": str(base + 8),
        **env_overrides,
        "FAX_API_PORT": str(base),
    }
    run = DevstackRun(state_dir, env)
    try:
        run.wait_healthy()
        yield RunningStack(run.api_url, state_dir, read_env_file(state_dir / "credentials.env"), run)
    finally:
        if run.process.poll() is None:
            try:
                run.interrupt()
            except subprocess.TimeoutExpired:
                run.kill()
        shutil.rmtree(state_dir, ignore_errors=True)
