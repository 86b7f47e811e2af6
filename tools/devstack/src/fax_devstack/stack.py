"""``make run``: backing services, migrations, the demo tenant, the five services, and their supervision.

The run ends with exit code 0 when asked to stop (SIGINT, SIGTERM) and non-zero when the platform could not
start; either way it stops the services first and then the infrastructure it started. A service that dies once the
platform is up is restarted after a growing delay (``RestartBackoff``), as Kubernetes or systemd would: one crash
never takes the rest of the platform down.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from fax_devstack.infra import Endpoints, InfraPorts, LocalInfra, ProvidedServices
from fax_devstack.processes import ChildProcess, DevstackError, ensure_port_free, log_tail, spawn
from fax_runtime.config import env_int

log = logging.getLogger(__name__)

DEFAULT_API_PORT = 8000
DEFAULT_SMTP_DOMAIN = "fax.localhost"
DEFAULT_READY_TIMEOUT = 90  # seconds; FAX_DEVSTACK_READY_TIMEOUT for slower machines


@dataclass(frozen=True)
class ServiceSpec:
    """One service process: its module (run as ``python -m``) and the variable naming its health port.

    ``port_offset`` places the health port relative to the API port, so one ``FAX_API_PORT`` moves them all.
    """

    module: str
    port_variable: str
    port_offset: int
    health_path: str = "/healthz"
    arguments: tuple[str, ...] = ()


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("fax_api", "FAX_API_PORT", 0),
    ServiceSpec("fax_fetcher", "FAX_FETCHER_HEALTH_PORT", 1),
    ServiceSpec("fax_transmitter", "FAX_TRANSMITTER_HEALTH_PORT", 2),
    ServiceSpec("fax_notifier", "FAX_NOTIFIER_HEALTH_PORT", 3),
    ServiceSpec("fax_smtp_gateway", "FAX_SMTP_GATEWAY_HEALTH_PORT", 4),
    # The far-end simulator: the telephone network the transmitter's sip line calls by default.
    ServiceSpec("fax_faxsim", "FAX_FAXSIM_HEALTH_PORT", 5, arguments=("serve",)),
)
DEFAULT_TRANSMITTER_SIP = "127.0.0.1:5060"
DEFAULT_FAXSIM_SIP = "127.0.0.1:5070"


@dataclass(frozen=True)
class RestartBackoff:
    """How long to wait before restarting a service that died: doubling from ``first_s`` up to ``longest_s``.

    A run that lasted ``stable_after_s`` counts as healthy and starts the doubling over, so a service that
    crashes once a day comes back at once, and one that crashes on every start does not spin the machine.
    """

    first_s: float = 1.0
    longest_s: float = 30.0
    stable_after_s: float = 60.0

    def delay(self, previous_delay_s: float | None, ran_for_s: float) -> float:
        """The wait before the next start, given the wait before the last one (None: first crash)."""
        if previous_delay_s is None or ran_for_s >= self.stable_after_s:
            return self.first_s
        return min(previous_delay_s * 2, self.longest_s)


CREDENTIAL_KEYS = ("FAX_ACCOUNT_ID", "FAX_AUTH_TOKEN", "FAX_FAXBOX_ID", "FAX_FAXBOX_EMAIL", "FAX_INBOUND_NUMBER")


def service_ports(env: Mapping[str, str], services: Sequence[ServiceSpec] = SERVICES) -> dict[str, int]:
    """Each service's port: its own variable when the user set it, else the API port plus its offset."""
    api_port = env_int(env, "FAX_API_PORT", DEFAULT_API_PORT)
    return {spec.module: env_int(env, spec.port_variable, api_port + spec.port_offset) for spec in services}


def service_environment(
    env: Mapping[str, str],
    endpoints: Endpoints,
    state_dir: Path,
    services: Sequence[ServiceSpec] = SERVICES,
) -> dict[str, str]:
    """The environment every service gets: the user's (so every ``FAX_*`` setting passes through) plus the
    endpoints and the ports of this devstack. Settings the user chose win over the devstack's defaults."""
    ports = service_ports(env, services)
    workers = [spec for spec in services if spec.module != "fax_api"]
    transmitter_sip = env.get("FAX_SIP_BIND", "").strip() or DEFAULT_TRANSMITTER_SIP
    faxsim_sip = env.get("FAX_FAXSIM_SIP", "").strip() or DEFAULT_FAXSIM_SIP
    defaults = {
        "FAX_LINE": "sip",
        # People read the devstack's logs; deployments keep the default, one JSON object per line.
        "FAX_LOG_FORMAT": "text",
        "FAX_SIP_BIND": transmitter_sip,
        # faxsim is the trunk, unless a trunks file names the trunks itself.
        "FAX_SIP_TRUNK": "" if env.get("FAX_SIP_TRUNKS_FILE", "").strip() else faxsim_sip,
        "FAX_FAXSIM_SIP": faxsim_sip,
        "FAX_FAXSIM_TARGET": transmitter_sip,
        "FAX_FAXSIM_RECEIVED_DIR": str(state_dir / "faxsim" / "received"),
        "FAX_LOOPBACK_RECEIVED_DIR": str(state_dir / "loopback" / "received"),
        "FAX_API_HOST": "127.0.0.1",
        # Links in receive callbacks point at this devstack's API.
        "FAX_PUBLIC_API_URL": f"http://127.0.0.1:{ports['fax_api']}",
        "FAX_API_READY_PEERS": ",".join(f"http://127.0.0.1:{ports[spec.module]}{spec.health_path}" for spec in workers),
    }
    merged = {**defaults, **{key: value for key, value in env.items() if value.strip()}}
    merged.update({spec.port_variable: str(ports[spec.module]) for spec in services})
    merged.update(
        {
            "FAX_DATABASE_URL": endpoints.database_url,
            "FAX_AMQP_URL": endpoints.amqp_url,
            "FAX_S3_ENDPOINT": endpoints.s3_endpoint,
            "FAX_S3_ACCESS_KEY": endpoints.s3_access_key,
            "FAX_S3_SECRET_KEY": endpoints.s3_secret_key,
            "FAX_S3_BUCKET": endpoints.s3_bucket,
            "FAX_S3_SECURE": "true" if endpoints.s3_secure else "false",
        }
    )
    return merged


def write_credentials(path: Path, values: Mapping[str, str]) -> None:
    """``KEY=value`` lines (readable by ``set -a; . file``), written atomically and private to the user."""
    text = "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())
    partial = path.with_suffix(".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    partial.replace(path)


async def prepare_database(database_url: str, smtp_domain: str) -> dict[str, str]:
    """Apply the migrations and ensure the demo tenant; the credentials, keyed as in ``credentials.env``."""
    from fax_api.demo import ensure_demo_tenant
    from fax_runtime.migrations import apply

    await apply(database_url)
    tenant = await ensure_demo_tenant(database_url, smtp_domain)
    # Every field of the demo tenant, as FAX_ACCOUNT_ID, FAX_AUTH_TOKEN, ..., FAX_API_KEY, FAX_USERNAME, ...
    return {f"FAX_{field.name.upper()}": getattr(tenant, field.name) for field in dataclasses.fields(tenant)}


def banner(api_url: str, state_dir: Path, credentials: Mapping[str, str]) -> str:
    """What the user sees once the platform is ready: where it is and a request to try."""
    body = (
        '{"data":{"document":{"url":"http://myserver.com/fax.pdf","method":"get"},"retries":3,'
        '"from_name":"Test Fax","from_number":"18884732963","to_name":"To Name","to_number":"18884732963"}}'
    )
    return "\n".join(
        [
            "",
            f"Fax platform ready at {api_url}",
            f"  credentials: {state_dir / 'credentials.env'}",
            f"  logs:        {state_dir / 'logs'}/",
            "",
            "Send a fax (point document.url at a PDF the fetcher can reach):",
            f"  curl -X PUT -H 'X-Auth-Token: {credentials['FAX_AUTH_TOKEN']}' \\",
            f"    -d '{body}' \\",
            f"    {api_url}/v2/accounts/{credentials['FAX_ACCOUNT_ID']}/faxes",
            "",
            "Ctrl-C stops everything.",
            "",
        ]
    )


class Stack:
    """The platform on one machine: infrastructure, then services, supervised until told to stop."""

    def __init__(self, state_dir: Path, env: Mapping[str, str]) -> None:
        self.state_dir = state_dir.resolve()
        self.env = dict(env)
        self.infra = LocalInfra(
            self.state_dir, provided=ProvidedServices.from_env(self.env), ports=InfraPorts.from_env(self.env)
        )
        self.ports = service_ports(self.env)
        self.children: list[ChildProcess] = []
        self.backoff = RestartBackoff()
        self._environment: dict[str, str] = {}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['fax_api']}"

    async def start(self) -> dict[str, str]:
        """Bring everything up; the demo credentials once ``/healthz`` answers 200."""
        for module, port in self.ports.items():
            ensure_port_free(port, module)
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)

        endpoints = await self.infra.start()

        began = time.monotonic()
        smtp_domain = self.env.get("FAX_SMTP_DOMAIN", "").strip() or DEFAULT_SMTP_DOMAIN
        credentials = await prepare_database(endpoints.database_url, smtp_domain)
        # Where the platform answers, for clients such as faxctl (`events` reads the exchange directly).
        credentials |= {"FAX_API_URL": self.api_url, "FAX_AMQP_URL": endpoints.amqp_url}
        write_credentials(self.state_dir / "credentials.env", credentials)
        log.info("migrations and demo tenant ready in %.1f s", time.monotonic() - began)

        self._environment = service_environment(self.env, endpoints, self.state_dir)
        os.makedirs(self._environment["FAX_LOOPBACK_RECEIVED_DIR"], exist_ok=True)
        os.makedirs(self._environment["FAX_FAXSIM_RECEIVED_DIR"], exist_ok=True)
        began = time.monotonic()
        for spec in SERVICES:
            self.children.append(await self._spawn(spec))
        await self._wait_until_healthy()
        log.info("services healthy in %.1f s", time.monotonic() - began)
        return credentials

    async def _spawn(self, spec: ServiceSpec) -> ChildProcess:
        return await spawn(
            spec.module,
            [sys.executable, "-m", spec.module, *spec.arguments],
            log_path=self.state_dir / "logs" / f"{spec.module}.log",
            env=self._environment,
        )

    async def _wait_until_healthy(self) -> None:
        limit = env_int(self.env, "FAX_DEVSTACK_READY_TIMEOUT", DEFAULT_READY_TIMEOUT)
        deadline = time.monotonic() + limit
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                dead = [child for child in self.children if not child.running()]
                if dead:
                    raise DevstackError(f"{dead[0].name} exited with code {dead[0].returncode} while starting")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.api_url}/healthz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise DevstackError(f"{self.api_url}/healthz did not answer 200 within {limit} s")
                await asyncio.sleep(0.25)

    async def supervise(self) -> None:
        """Keep every service running until cancelled: each one that exits is restarted after its backoff delay,
        independently of the others, and the log says why it went."""
        await asyncio.gather(*(self._keep_running(index, spec) for index, spec in enumerate(SERVICES)))

    async def _keep_running(self, index: int, spec: ServiceSpec) -> None:
        delay: float | None = None
        while True:
            child = self.children[index]
            started = time.monotonic()
            code = await child.wait()
            ran_for = time.monotonic() - started
            delay = self.backoff.delay(delay, ran_for)
            log.warning(
                "%s exited with code %s after %.0f s; restarting it in %.0f s. End of %s:\n%s",
                spec.module,
                code,
                ran_for,
                delay,
                child.log_path,
                log_tail(child.log_path, 20),
            )
            await asyncio.sleep(delay)
            try:
                self.children[index] = await self._spawn(spec)
            except DevstackError as exc:
                # A program that cannot even be started stays down; the others carry on.
                log.error("%s could not be restarted: %s", spec.module, exc)
                return
            log.info("%s restarted (pid %d)", spec.module, self.children[index].pid)

    def services_log_tail(self, lines: int = 25) -> str:
        """The end of each service's log, for a failure report ("" before any service was started).

        The backing services' errors already carry their own log's end (see ``wait_until_ready``).
        """
        return "\n".join(f"--- {child.log_path}\n{log_tail(child.log_path, lines)}" for child in self.children)

    async def stop(self) -> None:
        """Services first (SIGTERM, then SIGKILL after 15 s), then the infrastructure this run started."""
        began = time.monotonic()
        children, self.children = self.children, []
        await asyncio.gather(*(child.stop(grace=15) for child in children), return_exceptions=True)
        services_stopped = time.monotonic()
        await self.infra.stop()
        log.info(
            "stopped: services in %.1f s, infrastructure in %.1f s",
            services_stopped - began,
            time.monotonic() - services_stopped,
        )


async def run(state_dir: Path, env: Mapping[str, str]) -> int:
    """Run the platform until SIGINT/SIGTERM (exit 0) or a failure (exit 1)."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_requested.set)
    stack = Stack(state_dir, env)
    stopper = asyncio.ensure_future(stop_requested.wait())
    try:
        starting = asyncio.ensure_future(stack.start())
        await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            print("stopping while starting ...", file=sys.stderr)
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, DevstackError):
                await starting
            return 0
        try:
            credentials = starting.result()
        except Exception as exc:
            # A DevstackError already says what to do; anything else (a migration, the demo seed) needs its trace.
            if not isinstance(exc, DevstackError):
                log.error("startup failed", exc_info=exc)
            print(f"\nThe platform did not start: {exc}\n\n{stack.services_log_tail()}", file=sys.stderr)
            return 1
        print(banner(stack.api_url, stack.state_dir, credentials), flush=True)

        supervisor = asyncio.ensure_future(stack.supervise())
        await asyncio.wait({supervisor, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if supervisor.done():
            supervisor.result()  # raises what broke the supervision itself
            print("\nno service could be restarted; stopping everything.", file=sys.stderr)
            return 1
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        print("stopping ...", file=sys.stderr, flush=True)
        return 0
    finally:
        stopper.cancel()
        # The signal handlers stay installed until cleanup is over: a second Ctrl-C cannot cut it short.
        await stack.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
