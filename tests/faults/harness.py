"""What every fault scenario shares: backing services a test may stop, the platform as ``make run`` runs it, a batch
of faxes with callbacks, and the checks every run makes.

A run's checks (``FaultRun.check``): every accepted fax reaches a terminal state within a bound (completed: each
goes to a machine that receives it, so no fault of ours may fail one), none is received twice by the far end, every
finished fax's callback arrived, and every repeated callback of one fax carries the same ``X-Fax-Delivery-Id``. Its
figures (accepted, terminal, stuck, sent twice, time to recover) are printed and appended to
``.devstack/fault-figures.jsonl``, from which ``docs/RELIABILITY.md`` is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.server
import io
import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from PIL import Image, ImageSequence

from fax_devstack.infra import Endpoints, InfraPorts
from fax_devstack.postgres import EmbeddedPostgres
from fax_devstack.rabbitmq import PrivateRabbitMQ
from fax_devstack.seaweed import SeaweedS3
from fax_faxsim.records import read_sidecar
from tests.integration.stack import REPO, RunningStack, fresh_database, running_stack

FINISHED = ("completed", "failed")
FIGURES = REPO / ".devstack" / "fault-figures.jsonl"
# The fault tests' own Postgres, RabbitMQ and S3 sit this far above the session's (FAX_TEST_DEVSTACK_PORT_BASE),
# on ports none of the session's use.
PORT_OFFSET = 50
SERVICE_OFFSETS = {
    "fax_api": 0,
    "fax_fetcher": 1,
    "fax_transmitter": 2,
    "fax_notifier": 3,
    "fax_smtp_gateway": 4,
    "fax_faxsim": 5,
}


class ControlledInfra:
    """Postgres, RabbitMQ and S3 for the fault tests alone, each of which a test may stop and start again (same data,
    same ports), as an operator's restart or a crashed node would."""

    def __init__(self, state_dir: Path, ports: InfraPorts) -> None:
        logs = state_dir / "logs"
        self.postgres = EmbeddedPostgres(state_dir / "postgres", logs, port=ports.postgres)
        self.rabbitmq = PrivateRabbitMQ(state_dir / "rabbitmq", logs, amqp_port=ports.amqp, dist_port=ports.amqp_dist)
        self.s3 = SeaweedS3(state_dir / "seaweedfs", logs, ports=ports.s3)
        self.endpoints: Endpoints | None = None
        logs.mkdir(parents=True, exist_ok=True)

    @classmethod
    def for_session(cls) -> ControlledInfra:
        raw = os.environ.get("FAX_TEST_DEVSTACK_PORT_BASE", "").strip()
        base = (int(raw) if raw else 23000) + PORT_OFFSET
        return cls(REPO / ".devstack" / f"faults-{base}", InfraPorts.from_base(base))

    async def start(self) -> Endpoints:
        database_url, amqp_url, identity = await asyncio.gather(
            self.postgres.start(), self.rabbitmq.start(), self.s3.start()
        )
        self.endpoints = Endpoints(
            database_url=database_url,
            amqp_url=amqp_url,
            s3_endpoint=self.s3.endpoint,
            s3_access_key=identity.access_key,
            s3_secret_key=identity.secret_key,
        )
        return self.endpoints

    async def stop(self) -> None:
        await asyncio.gather(self.s3.stop(), self.postgres.stop(), self.rabbitmq.stop(), return_exceptions=True)

    @contextlib.asynccontextmanager
    async def down(self, name: str) -> AsyncIterator[None]:
        """``name`` (postgres, rabbitmq or s3) stopped for the duration of the block, then started again."""
        piece = {"postgres": self.postgres, "rabbitmq": self.rabbitmq, "s3": self.s3}[name]
        await piece.stop()
        try:
            yield
        finally:
            await piece.start()


@dataclass(frozen=True)
class ReceivedCallback:
    at: float
    delivery_id: str | None
    fields: dict[str, str]


class CallbackReceiver:
    """An HTTP endpoint on loopback that records each callback as it arrives (before answering it), and answers 200
    after ``delay_s``: a slow receiver keeps the notifier waiting, so a kill can land between a send and its close."""

    def __init__(self) -> None:
        self.received: list[ReceivedCallback] = []
        self.delay_s = 0.0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    fields = json.loads(body)
                except ValueError:
                    fields = {}
                receiver.received.append(ReceivedCallback(time.time(), self.headers.get("X-Fax-Delivery-Id"), fields))
                time.sleep(receiver.delay_s)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/callback"

    def __enter__(self) -> CallbackReceiver:
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    def for_fax(self, fax_id: str) -> list[ReceivedCallback]:
        return [callback for callback in self.received if callback.fields.get("fax_job_id") == fax_id]


@dataclass
class Figures:
    """One fault run, as docs/RELIABILITY.md reports it."""

    fault: str
    line: str
    accepted: int = 0
    terminal: int = 0
    failed: int = 0  # terminal, but failed: every fax goes to a machine that receives it, so a fault failed it
    stuck: int = 0
    sent_twice: int = 0
    callbacks_missing: int = 0
    repeated_callbacks: int = 0  # callbacks that arrived more than once (each time with the same delivery id)
    ready_s: float | None = None  # fault over -> /healthz 200 again
    drained_s: float | None = None  # fault over -> the last accepted fax terminal
    when: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    def record(self) -> None:
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        with FIGURES.open("a") as out:
            out.write(json.dumps(asdict(self)) + "\n")
        print(f"\nfault figures: {json.dumps(asdict(self))}")


class FaultStack:
    """The platform under test: its API, its database, its services' processes and what its far end received."""

    def __init__(self, running: RunningStack, database_url: str, line: str, document_url: str) -> None:
        self.running = running
        self.database_url = database_url
        self.line = line
        self.document_url = document_url
        self.api_url = running.api_url
        self.account = running.credentials["FAX_ACCOUNT_ID"]
        self.token = running.credentials["FAX_AUTH_TOKEN"]
        self.api_port = int(self.api_url.rsplit(":", 1)[1])

    # Faxes ------------------------------------------------------------------------------------------------------

    async def submit(self, to_number: str, callback_url: str, *, retries: int = 3) -> str | None:
        """Submit one fax as a Kazoo client; its id when the API accepted it (201), None when it did not answer."""
        body = {
            "data": {
                "document": {"url": self.document_url},
                "from_number": "+15550001000",
                "to_number": to_number,
                "retries": retries,
                "callback": {"url": callback_url, "method": "post", "type": "json"},
            }
        }
        try:
            async with httpx.AsyncClient(timeout=15) as client:
                answer = await client.put(
                    f"{self.api_url}/v2/accounts/{self.account}/faxes", headers={"X-Auth-Token": self.token}, json=body
                )
        except httpx.HTTPError:
            return None
        return answer.json()["data"]["id"] if answer.status_code == 201 else None

    async def submit_batch(self, numbers: list[str], callback_url: str, *, pause_s: float = 0.0) -> list[str]:
        accepted = []
        for number in numbers:
            fax_id = await self.submit(number, callback_url)
            if fax_id is not None:
                accepted.append(fax_id)
            await asyncio.sleep(pause_s)
        return accepted

    async def jobs(self, fax_ids: list[str] | None = None) -> dict[str, asyncpg.Record]:
        """The jobs (all of the account's, or ``fax_ids``) by Kazoo id; {} while Postgres does not answer."""
        answers = await self.query(
            (
                "SELECT id, status, attempts, pages, to_number, error_message, tx_result::text AS tx_result,"
                " lease_expires_at FROM fax_jobs WHERE $1::uuid[] IS NULL OR id = ANY($1::uuid[])",
                None if fax_ids is None else [uuid.UUID(fax_id) for fax_id in fax_ids],
            )
        )
        return {} if answers is None else {row["id"].hex: row for row in answers[0]}

    async def query(self, *statements: tuple[Any, ...]) -> list[list[asyncpg.Record]] | None:
        """Each ``(sql, *arguments)``'s rows, on one connection; None while Postgres does not answer (it may be the
        fault under test)."""
        try:
            conn = await asyncpg.connect(self.database_url, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return None
        try:
            return [await conn.fetch(sql, *arguments) for sql, *arguments in statements]
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return None
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def wait_terminal(self, fax_ids: list[str], seconds: float) -> float | None:
        """Wait until every job of ``fax_ids`` is finished; the monotonic time it happened, None if not in time."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            jobs = await self.jobs(fax_ids)
            if len(jobs) == len(fax_ids) and all(job["status"] in FINISHED for job in jobs.values()):
                return time.monotonic()
            await asyncio.sleep(0.5)
        return None

    async def wait_ready(self, seconds: float = 120) -> float | None:
        """Wait until the API's /healthz (which asks every service) answers 200; the monotonic time it did."""
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(timeout=3) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.api_url}/healthz")).status_code == 200:
                        return time.monotonic()
                await asyncio.sleep(0.2)
        return None

    async def dialect_answers(self) -> dict[str, tuple[int, str | None, object]]:
        """What each dialect answers (status, Retry-After, body) to a request that needs the database."""
        requests = {
            "kazoo": ("GET", f"/v2/accounts/{self.account}/faxes/outgoing", {"X-Auth-Token": self.token}),
            "faxto": ("GET", "/api/v2/balance?api_key=any", {}),
            "voipnow": ("POST", "/uapi/faxes/@me/100", {"Authorization": "Bearer any"}),
        }
        answers: dict[str, tuple[int, str | None, object]] = {}
        async with httpx.AsyncClient(base_url=self.api_url, timeout=15) as client:
            for dialect, (method, path, headers) in requests.items():
                answer = await client.request(method, path, headers=headers)
                answers[dialect] = (answer.status_code, answer.headers.get("Retry-After"), answer.json())
        return answers

    # Processes --------------------------------------------------------------------------------------------------

    def service_pid(self, module: str) -> int | None:
        """The process of ``module`` the devstack runs now (its child), by /proc."""
        parent = self.running.run.process.pid
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            if ppid == parent and module.encode() in argv:
                return int(entry.name)
        return None

    async def kill(self, module: str) -> None:
        """SIGKILL ``module``'s process group (a container killed with everything in it), as the OOM killer or a
        lost node would; the devstack restarts it."""
        pid = self.service_pid(module)
        assert pid is not None, f"{module} is not running"
        os.killpg(pid, signal.SIGKILL)

    async def wait_restarted(self, module: str, old_pid: int, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(timeout=3) as client:
            while time.monotonic() < deadline:
                pid = self.service_pid(module)
                if pid is not None and pid != old_pid:
                    port = self.api_port + SERVICE_OFFSETS[module]
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                            return
                await asyncio.sleep(0.2)
        raise AssertionError(f"{module} not restarted within {seconds:.0f} s:\n{self.running.logs()}")

    # The far end ------------------------------------------------------------------------------------------------

    def receptions_by_number(self) -> dict[str, int]:
        """How many calls faxsim ended (whatever it received), by the number called."""
        counts: dict[str, int] = {}
        for sidecar in (self.running.state_dir / "faxsim" / "received").glob("*.json"):
            number = read_sidecar(sidecar).to_number
            counts[number] = counts.get(number, 0) + 1
        return counts

    def receptions(self, jobs: dict[str, asyncpg.Record]) -> dict[str, int]:
        """How many times the far end received each job's whole fax (every page), by Kazoo id."""
        counts = dict.fromkeys(jobs, 0)
        if self.line == "sip":
            by_number = {job["to_number"]: fax_id for fax_id, job in jobs.items()}
            for sidecar in (self.running.state_dir / "faxsim" / "received").glob("*.json"):
                record = read_sidecar(sidecar)
                fax_id = by_number.get(record.to_number)
                if fax_id is not None and jobs[fax_id]["pages"] and record.pages >= jobs[fax_id]["pages"]:
                    counts[fax_id] += 1
            return counts
        for fax_id, job in jobs.items():
            for tiff in (self.running.state_dir / "loopback" / "received").glob(f"{uuid.UUID(fax_id)}-*.tif"):
                if job["pages"] and _pages_in(tiff) >= job["pages"]:
                    counts[fax_id] += 1
        return counts


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-")


def _pages_in(tiff: Path) -> int:
    try:
        with Image.open(io.BytesIO(tiff.read_bytes())) as image:
            return sum(1 for _ in ImageSequence.Iterator(image))
    except (OSError, ValueError):
        return 0  # cut off mid-page: not a received fax


@dataclass
class FaultRun:
    """One batch of faxes under one fault, and what the checks found."""

    stack: FaultStack
    receiver: CallbackReceiver
    figures: Figures
    accepted: list[str] = field(default_factory=list)
    fault_over: float | None = None
    _ready: asyncio.Task[float | None] | None = None

    def fault_ended(self) -> None:
        """The fault is over (the dependency started again, the killed process restarted by the devstack): from
        here on the platform's recovery is timed."""
        self.fault_over = time.monotonic()
        self._ready = asyncio.create_task(self.stack.wait_ready(300))

    def _keep_logs(self) -> None:
        """The services' logs of a run that went wrong, kept under .devstack/fault-logs (the platform's state
        directory goes with the test module)."""
        kept = FIGURES.parent / "fault-logs" / f"{_slug(self.figures.fault)}-{self.figures.when.replace(':', '')}"
        shutil.copytree(self.stack.running.state_dir / "logs", kept, dirs_exist_ok=True)
        print(f"logs kept in {kept}")

    async def check(self, *, terminal_within_s: float, callbacks_within_s: float = 60) -> Figures:
        """Every check of a fault run; the figures, recorded whatever the outcome, then asserted."""
        figures = self.figures
        figures.accepted = len(self.accepted)
        # Jobs nobody was told about (the API died before answering) must not be stuck either.
        unanswered = [job_id for job_id, job in (await self.stack.jobs()).items() if job_id not in self.accepted]
        finished_at = await self.stack.wait_terminal(self.accepted + unanswered, terminal_within_s)
        if self.fault_over is not None and self._ready is not None:
            ready = await self._ready
            figures.ready_s = None if ready is None else round(max(0.0, ready - self.fault_over), 1)
            figures.drained_s = None if finished_at is None else round(max(0.0, finished_at - self.fault_over), 1)
        jobs = await self.stack.jobs(self.accepted)
        finished = {fax_id: job for fax_id, job in jobs.items() if job["status"] in FINISHED}
        figures.terminal = len(finished)
        failed = {fax_id: job["error_message"] for fax_id, job in finished.items() if job["status"] != "completed"}
        figures.failed = len(failed)
        figures.stuck = figures.accepted - figures.terminal
        # Callbacks are sent once the job is finished: give the notifier its bound.
        deadline = time.monotonic() + callbacks_within_s
        while time.monotonic() < deadline:
            if all(self.receiver.for_fax(fax_id) for fax_id in finished):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1)  # a duplicate right behind the first would show now
        receptions = self.stack.receptions(jobs)
        twice = {fax_id: count for fax_id, count in receptions.items() if count > 1}
        figures.sent_twice = len(twice)
        missing = [fax_id for fax_id in finished if not self.receiver.for_fax(fax_id)]
        figures.callbacks_missing = len(missing)
        callbacks = {fax_id: self.receiver.for_fax(fax_id) for fax_id in finished}
        repeated = {fax_id: received for fax_id, received in callbacks.items() if len(received) > 1}
        figures.repeated_callbacks = len(repeated)
        figures.record()
        if figures.stuck or figures.failed or figures.sent_twice or figures.callbacks_missing:
            self._keep_logs()

        stuck = {fax_id: (job["status"], job["error_message"]) for fax_id, job in jobs.items()}
        stuck = {fax_id: state for fax_id, state in stuck.items() if fax_id not in finished}
        stuck |= {
            fax_id: (job["status"], "never answered to its client")
            for fax_id, job in (await self.stack.jobs(unanswered)).items()
            if job["status"] not in FINISHED
        }
        logs = self.stack.running.logs()
        assert not stuck and len(jobs) == len(self.accepted), f"not finished in time: {stuck}\n{logs}"
        # Every fax goes to a fax machine that receives: an outage or a crash of ours must not fail any of them.
        assert not failed, f"failed: {failed}\n{logs}"
        unreceived = [fax_id for fax_id in finished if receptions[fax_id] == 0]
        assert not unreceived, f"completed but never received by the far end: {unreceived}"
        assert not twice, f"received twice by the far end: {twice}\n{logs}"
        assert not missing, f"no callback for {missing}"
        for fax_id, callbacks in repeated.items():
            ids = {callback.delivery_id for callback in callbacks}
            assert len(ids) == 1 and None not in ids, f"fax {fax_id}'s repeated callbacks: delivery ids {ids}"
        for fax_id in finished:
            for callback in self.receiver.for_fax(fax_id):
                assert callback.delivery_id, f"fax {fax_id}: a callback without X-Fax-Delivery-Id"
        return figures


async def until(ready: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``ready`` (every 0.1 s) until it holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {seconds:.0f} s")
        await asyncio.sleep(0.1)


def numbers(prefix: int, count: int) -> list[str]:
    """``count`` destinations no other run uses; their last four digits (1000 + n) name no special behaviour in
    faxsim's dial plan, so each is a fax machine that receives."""
    return [f"+1555{prefix:03d}{1000 + n}" for n in range(count)]


# Short enough that a lease, a claim or a re-drive runs out within one test; the defaults are in the README.
FAST_TIMINGS = {
    "FAX_CALL_LEASE": "6",
    "FAX_RETRY_DELAY": "1",
    "FAX_RETRY_DELAY_BUSY": "1",
    "FAX_RETRY_DELAY_NO_ANSWER": "1",
    "FAX_RING_TIMEOUT": "10",
    "FAX_CALLBACK_RETRY_INTERVAL": "2",
    "FAX_NOTIFY_SWEEP_INTERVAL": "1",
    "FAX_NOTIFY_CLAIM_LEASE": "10",
    "FAX_NOTIFY_RECONCILE_AFTER": "20",
    "FAX_FETCH_REDRIVE_AFTER": "20",
}


@contextlib.contextmanager
def fault_platform(infra: ControlledInfra, line: str, document_url: str) -> Iterator[FaultStack]:
    """The whole platform (``python -m fax_devstack run``) on ``infra``, sending over ``line``."""
    endpoints = infra.endpoints
    assert endpoints is not None
    database_url = fresh_database(endpoints.database_url)
    env = {
        "FAX_DATABASE_URL": database_url,
        "FAX_AMQP_URL": endpoints.amqp_url,
        "FAX_S3_ENDPOINT": endpoints.s3_endpoint,
        "FAX_S3_ACCESS_KEY": endpoints.s3_access_key,
        "FAX_S3_SECRET_KEY": endpoints.s3_secret_key,
        "FAX_S3_BUCKET": f"faults-{uuid.uuid4().hex[:8]}",
        "FAX_FETCH_ALLOW_NETWORKS": "127.0.0.0/8",
        "FAX_LINE": line,
        **FAST_TIMINGS,
    }
    state_dir = REPO / ".devstack" / f"test-faults-{line}-{uuid.uuid4().hex[:8]}"
    with running_stack(state_dir, env) as running:
        yield FaultStack(running, database_url, line, document_url)
