"""``python -m fax_devstack run`` (what ``make run`` starts) and the local infrastructure behind it.

The run tests point the devstack at the session's ``infra`` so that no second RabbitMQ is started; the reuse test
starts its own Postgres and S3 (about a second each) and borrows RabbitMQ too.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import random
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from minio import Minio

from fax_devstack.infra import Endpoints, InfraPorts, LocalInfra, ProvidedServices
from tests.integration.stack import REPO, TEST_PORT_RANGE, DevstackRun, free_port_block, infra_env, ports_free

CREDENTIAL_KEYS = {
    "FAX_ACCOUNT_ID",
    "FAX_AUTH_TOKEN",
    "FAX_FAXBOX_ID",
    "FAX_FAXBOX_EMAIL",
    "FAX_INBOUND_NUMBER",
    "FAX_ACCOUNT_NAME",
    "FAX_API_KEY",
    "FAX_USERNAME",
    "FAX_PASSWORD",
    "FAX_API_URL",
    "FAX_AMQP_URL",
}


def _free_api_port() -> int:
    """A port P with P..P+8 free: the API, five health ports, the two SIP ports and SMTP intake."""
    return free_port_block(9)


def _free_infra_ports() -> InfraPorts:
    for _ in range(200):
        ports = InfraPorts.from_base(random.randint(*TEST_PORT_RANGE))  # weed's admin gRPC sits 10341 above
        if ports_free([ports.postgres, ports.amqp, ports.amqp_dist, *ports.s3.all()]):
            return ports
    raise RuntimeError("no free port block for the infrastructure")


def _read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def _children_of(pid: int) -> set[int]:
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The command name (field 2) may contain spaces; the fields after its closing parenthesis do not.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.add(int(stat.parent.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while (alive := {pid for pid in pids if _alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A state directory under .devstack/ (not pytest's 0700 tmp: the services' users must reach it)."""
    path = REPO / ".devstack" / f"test-devstack-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _devstack_env(infra: Endpoints, database_url: str) -> dict[str, str]:
    api_port = _free_api_port()
    return {
        **os.environ,
        **infra_env(infra, database_url=database_url),
        "FAX_API_PORT": str(api_port),
        "FAX_SIP_BIND": f"127.0.0.1:{api_port + 6}",
        "FAX_FAXSIM_SIP": f"127.0.0.1:{api_port + 7}",
        "FAX_SMTP_GATEWAY_PORT": str(api_port + 8),
    }


def test_run_becomes_healthy_stops_on_sigint_and_keeps_its_credentials(
    infra: Endpoints, database_url: str, state_dir: Path
) -> None:
    env = _devstack_env(infra, database_url)

    first = DevstackRun(state_dir, env)
    try:
        first.wait_healthy()
        credentials_file = state_dir / "credentials.env"
        credentials = _read_env_file(credentials_file)
        assert set(credentials) == CREDENTIAL_KEYS
        assert all(credentials.values())
        assert credentials_file.stat().st_mode & 0o077 == 0  # the auth token is a secret
        services = _children_of(first.process.pid)
        assert len(services) == 6, first.report()  # five services and faxsim

        assert first.interrupt() == 0, first.report()
        assert _wait_gone(services, 5) == set(), "services outlived the devstack"
    finally:
        first.kill()

    second = DevstackRun(state_dir, env)
    try:
        second.wait_healthy()
        assert _read_env_file(state_dir / "credentials.env") == credentials
        assert second.interrupt() == 0, second.report()
    finally:
        second.kill()


def test_a_service_that_dies_is_restarted_and_the_platform_stays_up(
    infra: Endpoints, database_url: str, state_dir: Path
) -> None:
    """Before: the supervisor stopped the whole platform (exit 1) when any one service died."""
    run = DevstackRun(state_dir, _devstack_env(infra, database_url))
    try:
        run.wait_healthy()
        before = _children_of(run.process.pid)
        fetcher = next(pid for pid in before if "fax_fetcher" in Path(f"/proc/{pid}/cmdline").read_text())
        os.kill(fetcher, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            after = _children_of(run.process.pid)
            if len(after) == 6 and fetcher not in after:
                break
            time.sleep(0.2)
        assert run.process.poll() is None, run.report()
        assert fetcher not in after and len(after) == 6, run.report()
        run.wait_healthy()
        assert "fax_fetcher exited with code -9" in run.output_path.read_text(), run.report()
        assert before - {fetcher} <= after, "the other services were restarted too"
        assert run.interrupt() == 0, run.report()
    finally:
        run.kill()


def test_killed_devstack_takes_its_services_with_it(infra: Endpoints, database_url: str, state_dir: Path) -> None:
    run = DevstackRun(state_dir, _devstack_env(infra, database_url))
    try:
        run.wait_healthy()
        services = _children_of(run.process.pid)
        assert len(services) == 6
        run.process.kill()  # no chance to clean up: Linux's parent-death signal must do it
        run.process.wait()
        assert _wait_gone(services, 20) == set(), "services survived a SIGKILLed devstack"
    finally:
        run.kill()


async def test_local_infra_reuses_its_data_on_the_next_start(infra: Endpoints) -> None:
    state = REPO / ".devstack" / f"test-reuse-{uuid.uuid4().hex[:8]}"
    ports = _free_infra_ports()
    # RabbitMQ is borrowed from the session so that the test does not pay for a second node.
    provided = ProvidedServices(amqp_url=infra.amqp_url)
    try:
        async with LocalInfra(state, provided=provided, ports=ports) as first:
            connection = await asyncpg.connect(first.database_url)
            try:
                await connection.execute("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('still here')")
            finally:
                await connection.close()
            s3 = Minio(first.s3_endpoint, first.s3_access_key, first.s3_secret_key, secure=False)
            await asyncio.to_thread(s3.put_object, first.s3_bucket, "kept.txt", io.BytesIO(b"still here"), 10)

        async with LocalInfra(state, provided=provided, ports=ports) as second:
            assert (second.database_url, second.s3_access_key, second.s3_secret_key) == (
                first.database_url,
                first.s3_access_key,
                first.s3_secret_key,
            )
            connection = await asyncpg.connect(second.database_url)
            try:
                assert await connection.fetchval("SELECT value FROM kept") == "still here"
            finally:
                await connection.close()
            s3 = Minio(second.s3_endpoint, second.s3_access_key, second.s3_secret_key, secure=False)
            kept = await asyncio.to_thread(lambda: s3.get_object(second.s3_bucket, "kept.txt").read())
            assert kept == b"still here"
    finally:
        shutil.rmtree(state, ignore_errors=True)
