"""Fixtures for the tests that cross services: the same names whatever backs them.

``infra`` (an ``Endpoints``) comes, in this order of preference, from

1. ``FAX_TEST_DATABASE_URL`` / ``FAX_TEST_AMQP_URL`` / ``FAX_TEST_S3_ENDPOINT`` (+ ``_ACCESS_KEY``, ``_SECRET_KEY``,
   ``_BUCKET``, ``_SECURE``): services someone already runs;
2. testcontainers (Postgres, RabbitMQ, MinIO) when a Docker engine answers;
3. ``fax_devstack.infra`` under ``<repo>/.devstack/test``: the same local services ``make run`` uses, on their own
   ports (``FAX_TEST_DEVSTACK_PORT_BASE``, default 23000) so that both can run at once; ``FAX_TEST_STATE_DIR``
   moves its state (two test sessions at once need two of each).

Whatever is not given by (1) comes from (2), or else (3). ``database_url`` is a fresh database per test, cloned
from a template migrated once per session (pgqueuer's approach: a clone costs milliseconds, a migration does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from minio import Minio

from fax_devstack.infra import Endpoints, InfraPorts, LocalInfra, ProvidedServices

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

REPO = Path(__file__).resolve().parents[1]
INTEGRATION_DIR = REPO / "tests" / "integration"
DEFAULT_TEST_PORT_BASE = 23000
# One template per session, so sessions sharing a Postgres server (FAX_TEST_DATABASE_URL) never drop each other's.
TEMPLATE_DATABASE = f"fax_template_{uuid.uuid4().hex[:8]}"

log = logging.getLogger(__name__)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration needs real services: mark it so ``-m "not integration"`` skips it."""
    for item in items:
        if INTEGRATION_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


def _database_url_for(server_url: str, database: str) -> str:
    """``server_url`` pointed at another database on the same server."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{database}"))


class _Containers:
    """The testcontainers side: whichever of Postgres, RabbitMQ and MinIO ``provided`` lacks."""

    def __init__(self) -> None:
        self.started: list[DockerContainer] = []

    def start(self, provided: ProvidedServices) -> ProvidedServices:
        """Start the missing containers; ``provided`` completed with them. Raises if Docker is not usable."""
        # Imported here: testcontainers is only needed when Docker is there.
        from testcontainers.community.minio import MinioContainer
        from testcontainers.community.postgres import PostgresContainer
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.wait_strategies import LogMessageWaitStrategy

        database_url, amqp_url = provided.database_url, provided.amqp_url
        s3_endpoint, access_key, secret_key = provided.s3_endpoint, provided.s3_access_key, provided.s3_secret_key
        try:
            if database_url is None:
                postgres = PostgresContainer("postgres:16-alpine", driver=None)
                self.started.append(postgres.start())
                database_url = postgres.get_connection_url()
            if amqp_url is None:
                # testcontainers' RabbitMqContainer needs pika; a plain container and aio-pika's URL will do.
                rabbitmq = (
                    DockerContainer("rabbitmq:3.13-alpine")
                    .with_exposed_ports(5672)
                    .waiting_for(LogMessageWaitStrategy("Server startup complete").with_startup_timeout(120))
                )
                self.started.append(rabbitmq.start())
                host, port = rabbitmq.get_container_host_ip(), rabbitmq.get_exposed_port(5672)
                amqp_url = f"amqp://guest:guest@{host}:{port}/"
            if s3_endpoint is None:
                minio = MinioContainer()
                self.started.append(minio.start())
                config = minio.get_config()
                s3_endpoint, access_key, secret_key = config["endpoint"], config["access_key"], config["secret_key"]
        except BaseException:
            self.stop()
            raise
        return ProvidedServices(
            database_url=database_url,
            amqp_url=amqp_url,
            s3_endpoint=s3_endpoint,
            s3_access_key=access_key,
            s3_secret_key=secret_key,
            s3_bucket=provided.s3_bucket,
            s3_secure=provided.s3_secure,
        )

    def stop(self) -> None:
        for container in reversed(self.started):
            with contextlib.suppress(Exception):
                container.stop()
        self.started.clear()


def _ensure_bucket(endpoints: Endpoints) -> None:
    client = Minio(endpoints.s3_endpoint, endpoints.s3_access_key, endpoints.s3_secret_key, secure=endpoints.s3_secure)
    if not client.bucket_exists(endpoints.s3_bucket):
        client.make_bucket(endpoints.s3_bucket)


@pytest.fixture(scope="session")
async def infra() -> AsyncIterator[Endpoints]:
    """Postgres, RabbitMQ and S3 for the whole session (see the module docstring for where they come from)."""
    provided = ProvidedServices.from_env(os.environ, prefix="FAX_TEST_")
    complete = all((provided.database_url, provided.amqp_url, provided.s3_endpoint))
    containers = _Containers()
    if not complete:
        try:
            provided = await asyncio.to_thread(containers.start, provided)
        except Exception as exc:
            # No Docker engine (testcontainers raises DockerException in the constructor), or it cannot pull.
            log.info("testcontainers unavailable (%s: %s); using the local devstack services", type(exc).__name__, exc)
    raw_base = os.environ.get("FAX_TEST_DEVSTACK_PORT_BASE", "").strip()
    ports = InfraPorts.from_base(int(raw_base) if raw_base else DEFAULT_TEST_PORT_BASE)
    # With everything provided, LocalInfra starts nothing and only assembles the endpoints.
    state_dir = Path(os.environ.get("FAX_TEST_STATE_DIR", "").strip() or REPO / ".devstack" / "test")
    local = LocalInfra(state_dir, provided=provided, ports=ports)
    try:
        endpoints = await local.start()
        await asyncio.to_thread(_ensure_bucket, endpoints)
        yield endpoints
    finally:
        await local.stop()
        await asyncio.to_thread(containers.stop)


@pytest.fixture(scope="session")
async def _template_database(infra: Endpoints) -> AsyncIterator[str]:
    """``fax_template``, migrated once per session, recreated so an edited migration is never masked."""
    from fax_runtime.migrations import apply

    admin = await asyncpg.connect(infra.database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE_DATABASE}"')
        template_url = _database_url_for(infra.database_url, TEMPLATE_DATABASE)
        await apply(template_url)
        yield TEMPLATE_DATABASE
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DATABASE}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(infra: Endpoints, _template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infra.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_template_database}"')
    finally:
        await admin.close()
    yield _database_url_for(infra.database_url, name)
    admin = await asyncpg.connect(infra.database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
