"""The three backing services of the embedded default, started privately under a state directory.

Each one is skipped when the user already provides it (``FAX_DATABASE_URL``, ``FAX_AMQP_URL``,
``FAX_S3_ENDPOINT``); what is started is reused on the next start (same data, same S3 keys) and stopped by
whoever started it::

    async with LocalInfra(Path(".devstack"), provided=ProvidedServices.from_env(os.environ)) as endpoints:
        ...  # endpoints.database_url, endpoints.amqp_url, endpoints.s3_endpoint, ...

Ports sit at fixed offsets from one base (``FAX_DEVSTACK_PORT_BASE``, default 24000) so that two devstacks
(``make run`` and the tests) can run side by side on different bases.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from fax_devstack.postgres import EmbeddedPostgres
from fax_devstack.processes import DevstackError
from fax_devstack.rabbitmq import PrivateRabbitMQ
from fax_devstack.seaweed import SeaweedPorts, SeaweedS3

log = logging.getLogger(__name__)

DEFAULT_PORT_BASE = 24000
DEFAULT_BUCKET = "fax"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Endpoints:
    """Where the platform's Postgres, RabbitMQ and S3 are, in the form the services' ``FAX_*`` settings take."""

    database_url: str
    amqp_url: str
    s3_endpoint: str  # host:port, as the minio client takes it
    s3_access_key: str
    s3_secret_key: str = field(repr=False)
    s3_bucket: str = DEFAULT_BUCKET
    s3_secure: bool = False


@dataclass(frozen=True)
class ProvidedServices:
    """The backing services the user already runs; anything left None is started by the devstack."""

    database_url: str | None = None
    amqp_url: str | None = None
    s3_endpoint: str | None = None
    s3_access_key: str = ""
    s3_secret_key: str = field(default="", repr=False)
    s3_bucket: str = DEFAULT_BUCKET
    s3_secure: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str = "FAX_") -> ProvidedServices:
        """Read ``{prefix}DATABASE_URL``, ``{prefix}AMQP_URL``, ``{prefix}S3_ENDPOINT`` (+ keys, bucket, secure).

        Empty values count as unset, as they do in the services' own settings.
        """

        def get(name: str) -> str | None:
            return env.get(prefix + name, "").strip() or None

        return cls(
            database_url=get("DATABASE_URL"),
            amqp_url=get("AMQP_URL"),
            s3_endpoint=get("S3_ENDPOINT"),
            s3_access_key=get("S3_ACCESS_KEY") or "",
            s3_secret_key=get("S3_SECRET_KEY") or "",
            s3_bucket=get("S3_BUCKET") or DEFAULT_BUCKET,
            s3_secure=(get("S3_SECURE") or "").lower() in _TRUE,
        )


@dataclass(frozen=True)
class InfraPorts:
    """The ports the devstack's own backing services listen on (all on 127.0.0.1)."""

    postgres: int
    amqp: int
    amqp_dist: int
    s3: SeaweedPorts

    @classmethod
    def from_base(cls, base: int = DEFAULT_PORT_BASE) -> InfraPorts:
        """base+432 Postgres, base+672/673 AMQP and Erlang distribution, base+333..341 and base+10341 S3 and weed."""
        return cls(
            postgres=base + 432,
            amqp=base + 672,
            amqp_dist=base + 673,
            s3=SeaweedPorts.from_s3_port(base + 333),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> InfraPorts:
        raw = env.get("FAX_DEVSTACK_PORT_BASE", "").strip()
        try:
            return cls.from_base(int(raw) if raw else DEFAULT_PORT_BASE)
        except ValueError as exc:
            raise DevstackError(f"FAX_DEVSTACK_PORT_BASE must be a port number, got {raw!r}") from exc


class LocalInfra:
    """Starts what ``provided`` lacks, under ``state_dir``; stops only what it started.

    ``startup_seconds`` records how long each started service took to become ready.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        provided: ProvidedServices | None = None,
        ports: InfraPorts | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.log_dir = self.state_dir / "logs"
        self.provided = provided or ProvidedServices()
        self.ports = ports or InfraPorts.from_base()
        self.startup_seconds: dict[str, float] = {}
        self._postgres: EmbeddedPostgres | None = None
        self._rabbitmq: PrivateRabbitMQ | None = None
        self._s3: SeaweedS3 | None = None

    async def start(self) -> Endpoints:
        """Start the missing services in parallel; their endpoints once all are ready.

        If one fails, the others are stopped again and the error is raised.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        provided = self.provided
        jobs: dict[str, Callable[[], Awaitable[None]]] = {}
        database_url = provided.database_url
        amqp_url = provided.amqp_url
        s3_endpoint, access_key, secret_key = provided.s3_endpoint, provided.s3_access_key, provided.s3_secret_key

        if database_url is None:
            postgres = self._postgres = EmbeddedPostgres(
                self.state_dir / "postgres", self.log_dir, port=self.ports.postgres
            )

            async def start_postgres() -> None:
                nonlocal database_url
                database_url = await postgres.start()

            jobs["postgres"] = start_postgres

        if amqp_url is None:
            rabbitmq = self._rabbitmq = PrivateRabbitMQ(
                self.state_dir / "rabbitmq", self.log_dir, amqp_port=self.ports.amqp, dist_port=self.ports.amqp_dist
            )

            async def start_rabbitmq() -> None:
                nonlocal amqp_url
                amqp_url = await rabbitmq.start()

            jobs["rabbitmq"] = start_rabbitmq

        if s3_endpoint is None:
            s3 = self._s3 = SeaweedS3(
                self.state_dir / "seaweedfs", self.log_dir, ports=self.ports.s3, bucket=provided.s3_bucket
            )

            async def start_s3() -> None:
                nonlocal s3_endpoint, access_key, secret_key
                identity = await s3.start()
                s3_endpoint, access_key, secret_key = s3.endpoint, identity.access_key, identity.secret_key

            jobs["seaweedfs"] = start_s3

        try:
            results = await asyncio.gather(
                *(self._timed(name, job) for name, job in jobs.items()), return_exceptions=True
            )
        except BaseException:
            await self.stop()  # cancelled (Ctrl-C while starting): leave nothing behind
            raise
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            await self.stop()
            raise failures[0]
        assert database_url is not None and amqp_url is not None and s3_endpoint is not None
        return Endpoints(
            database_url=database_url,
            amqp_url=amqp_url,
            s3_endpoint=s3_endpoint,
            s3_access_key=access_key,
            s3_secret_key=secret_key,
            s3_bucket=provided.s3_bucket,
            # Our own weed speaks plain HTTP; a provided endpoint keeps the user's FAX_S3_SECURE.
            s3_secure=provided.s3_secure if provided.s3_endpoint is not None else False,
        )

    async def _timed(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        began = time.monotonic()
        await job()
        self.startup_seconds[name] = time.monotonic() - began
        log.info("%s ready in %.1f s", name, self.startup_seconds[name])

    async def stop(self) -> None:
        """Stop, in parallel, every service this object started; safe to call more than once."""
        pieces = [piece for piece in (self._s3, self._postgres, self._rabbitmq) if piece is not None]
        self._s3 = self._postgres = self._rabbitmq = None
        results = await asyncio.gather(*(piece.stop() for piece in pieces), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error("stopping a backing service failed: %s", result)

    async def __aenter__(self) -> Endpoints:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
