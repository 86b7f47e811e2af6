"""Fax intake through the Kazoo API: JSON submissions and 1-page multipart uploads per second, and their latency.

The API as deployed (``python -m fax_api``: uvicorn, ``FAX_API_WORKERS`` processes, one by default, each with its
outbox relay publishing every ``fax.job.submitted`` to RabbitMQ) on the devstack's Postgres, RabbitMQ and S3
(started under ``--state-dir`` on ``--port-base``, or the services named by ``FAX_TEST_DATABASE_URL`` etc.). The
load comes from this process over keep-alive HTTP/1.1 connections with pre-built requests, so the client costs
little of the shared 2 cores.

- JSON: Kazoo's own create example (``PUT /faxes``), one job row + one outbox row per request.
- upload: the overview's ``multipart/mixed`` create with a 1-page PDF: one S3 PUT, then the job + outbox rows.
- anchor (same run, same count and concurrency): the database work the API ends with, done by bare asyncpg from
  this process: the same single statement (INSERT fax_jobs + INSERT outbox + pg_notify), with no HTTP,
  validation, token lookup or envelope; and a bare litestar endpoint on uvicorn (decode the body, answer 201), the
  framework floor without plugins or database.

Nothing lost: after the runs, every fax the API accepted (201) must have its job row and its ``fax.job.submitted``
event delivered to a queue this benchmark bound to the exchange before the first request; the benchmark fails
otherwise.

    uv run python bench/intake_bench.py --requests 3000 --uploads 500 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import httpx
from minio import Minio

from fax_contracts import EXCHANGE, JobSubmitted, decode_event, encode_event, routing_key
from fax_devstack.infra import InfraPorts, LocalInfra, ProvidedServices
from fax_jobs.store import Q
from fax_runtime.outbox import NOTIFY_CHANNEL

SUBMIT_JOB = Q["submit_job"]
REPO = Path(__file__).resolve().parents[1]
ONE_PAGE_POSTSCRIPT = b"%!PS\n/Helvetica findfont 36 scalefont setfont 72 700 moveto (Intake benchmark) show showpage\n"
KAZOO_FAX = {
    "document": {"url": "http://myserver.com/fax.pdf", "method": "get"},
    "retries": 3,
    "from_name": "Test Fax",
    "from_number": "18884732963",
    "to_name": "To Name",
    "to_number": "18884732963",
}


# The framework floor: the same server stack (uvicorn, one worker) and framework with a handler that only decodes
# the body and answers 201 with a small JSON document; no plugins, no database.
BARE_LITESTAR = """
import sys, msgspec, uvicorn
from litestar import Litestar, Request, Response, put

@put("/v2/accounts/{account_id:str}/faxes", status_code=201)
async def create(request: Request, account_id: str) -> Response:
    data = msgspec.json.decode(await request.body())["data"]
    return Response(content={"data": {**data, "id": "0" * 32}, "status": "success"}, status_code=201)

uvicorn.run(Litestar([create]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants (Linux ``/proc``): the API's workers included."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
    return total


def one_page_pdf() -> bytes:
    return subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-sPAPERSIZE=a4", "-sOutputFile=-", "-"],
        input=ONE_PAGE_POSTSCRIPT,
        check=True,
        capture_output=True,
    ).stdout


def http_request(host: str, path: str, token: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def drive(
    port: int, request: bytes, count: int, concurrency: int, accepted: list[bytes] | None = None
) -> tuple[float, list[float], int]:
    """Send ``request`` ``count`` times over ``concurrency`` keep-alive connections: (seconds, latencies, non-201).

    The bodies of the 201 answers are added to ``accepted``, to be checked after the clock stopped.
    """
    latencies: list[float] = []
    failures = 0
    remaining = count

    async def worker() -> None:
        nonlocal remaining, failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if b" 201 " not in status_line:
                    failures += 1
                elif accepted is not None:
                    accepted.append(body)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, failures


async def anchor(database_url: str, account_id: str, count: int, concurrency: int) -> tuple[float, list[float]]:
    """The same job + outbox rows and NOTIFY, by bare asyncpg running the API's own statement."""
    pool = await asyncpg.create_pool(database_url, min_size=concurrency, max_size=concurrency)
    request = json.dumps(KAZOO_FAX)
    latencies: list[float] = []
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            job_id = uuid.uuid4()
            event = JobSubmitted(
                event_id=uuid.uuid4(), occurred_at=dt.datetime.now(dt.UTC), job_id=job_id, account_id=account_id
            )
            await pool.fetchrow(
                SUBMIT_JOB,
                job_id,
                account_id,
                request,
                KAZOO_FAX["to_number"],
                KAZOO_FAX["from_number"],
                3,
                event.event_id,
                routing_key(JobSubmitted),
                encode_event(event),
                "{}",
                NOTIFY_CHANNEL,
            )
            latencies.append(time.perf_counter() - started)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies
    finally:
        await pool.close()


async def outbox_drained(database_url: str) -> float:
    """Wait until the relay has published every outbox row; return how long that took."""
    started = time.perf_counter()
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(6000):
            if not await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
                break
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    return time.perf_counter() - started


def line(name: str, count: int, seconds: float, latencies: list[float], failures: int = 0) -> dict:
    return {
        "path": name,
        "count": count,
        "per_second": round(count / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "failures": failures,
    }


@contextlib.contextmanager
def api_process(env: dict[str, str], port: int, log_path: Path):
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "fax_api"], cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"fax_api exited:\n{log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"fax_api not healthy:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        process.wait(15)


async def main_async(args: argparse.Namespace) -> None:
    from fax_api.demo import ensure_demo_tenant
    from fax_runtime.migrations import apply

    provided = ProvidedServices.from_env(os.environ, prefix="FAX_TEST_")
    infra = LocalInfra(Path(args.state_dir), provided=provided, ports=InfraPorts.from_base(args.port_base))
    endpoints = await infra.start()
    try:
        s3 = Minio(endpoints.s3_endpoint, endpoints.s3_access_key, endpoints.s3_secret_key, secure=endpoints.s3_secure)
        if not s3.bucket_exists(endpoints.s3_bucket):
            s3.make_bucket(endpoints.s3_bucket)
        database = f"intake_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(endpoints.database_url)
        await admin.execute(f'CREATE DATABASE "{database}"')
        database_url = urlunsplit(urlsplit(endpoints.database_url)._replace(path=f"/{database}"))
        try:
            await apply(database_url)
            tenant = await ensure_demo_tenant(database_url)
            await run(args, endpoints, database_url, tenant.account_id, tenant.auth_token)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
    finally:
        await infra.stop()


async def run(args: argparse.Namespace, endpoints, database_url: str, account_id: str, token: str) -> None:
    port = args.api_port
    env = {
        **os.environ,
        "FAX_DATABASE_URL": database_url,
        "FAX_AMQP_URL": endpoints.amqp_url,
        "FAX_S3_ENDPOINT": endpoints.s3_endpoint,
        "FAX_S3_ACCESS_KEY": endpoints.s3_access_key,
        "FAX_S3_SECRET_KEY": endpoints.s3_secret_key,
        "FAX_S3_BUCKET": endpoints.s3_bucket,
        "FAX_S3_SECURE": "true" if endpoints.s3_secure else "false",
        "FAX_API_PORT": str(port),
        "FAX_API_READY_PEERS": "",
        **dict(item.split("=", 1) for item in args.api_env),
    }
    host = f"127.0.0.1:{port}"
    path = f"/v2/accounts/{account_id}/faxes"
    json_request = http_request(
        host, path, token, "application/x-www-form-urlencoded", json.dumps({"data": KAZOO_FAX}).encode()
    )
    boundary = "intake-bench-boundary"
    fax_json = json.dumps({"data": {"to_number": "18884732963"}})
    upload_body = (
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{fax_json}\r\n"
        f"--{boundary}\r\nContent-Type: application/pdf\r\n\r\n".encode()
        + one_page_pdf()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    upload_request = http_request(host, path, token, f"multipart/mixed; boundary={boundary}", upload_body)
    results = []
    rounds = []
    accepted: list[bytes] = []
    events = await EventTap.bind(endpoints.amqp_url)
    try:
        with tempfile.TemporaryDirectory() as tmp, api_process(env, port, Path(tmp) / "api.log") as api:
            load = [os.getloadavg()[0]]
            # warm-up: connections, caches, lazy imports
            await drive(port, json_request, 200, args.concurrency, accepted)
            await anchor(database_url, account_id, 200, args.concurrency)
            await outbox_drained(database_url)
            for number in range(args.rounds):
                profiler = None
                if args.profile and number == 0:  # where the API's time goes (py-spy must be installed, e.g. uvx)
                    command = ["py-spy", "record", "--subprocesses", "-p", str(api.pid), "-o", args.profile]
                    profiler = await asyncio.create_subprocess_exec(
                        *command, "-f", "raw", "-r", "200", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                    )
                    await asyncio.sleep(1)
                cpu_before = cpu_seconds(api.pid)
                seconds, latencies, failures = await drive(
                    port, json_request, args.requests, args.concurrency, accepted
                )
                relay_lag = await outbox_drained(database_url)
                cpu_used = cpu_seconds(api.pid) - cpu_before
                if profiler:
                    profiler.send_signal(2)
                    await profiler.wait()
                api_line = line("api JSON create", args.requests, seconds, latencies, failures)
                # CPU a request costs the API (all its processes, relay included): steadier than the rate when
                # others load the machine.
                api_line["api_cpu_ms_per_request"] = round(cpu_used * 1000 / args.requests, 3)
                # From the last answer until the relay had published every event (counted in the CPU above).
                api_line["relay_lag_s"] = round(relay_lag, 2)
                seconds, latencies = await anchor(database_url, account_id, args.requests, args.concurrency)
                await outbox_drained(database_url)  # the API's relay publishes the anchor's events: not in its round
                anchor_line = line(
                    "anchor: bare asyncpg job+outbox+NOTIFY statement", args.requests, seconds, latencies
                )
                rounds.append((api_line, anchor_line))
                load.append(os.getloadavg()[0])
            await drive(port, upload_request, 20, args.concurrency, accepted)
            seconds, latencies, failures = await drive(port, upload_request, args.uploads, args.concurrency, accepted)
            results.append(
                line(f"api multipart 1-page PDF ({len(upload_body)} B)", args.uploads, seconds, latencies, failures)
            )
            lost = await check_nothing_lost(database_url, accepted, events)
    finally:
        await events.close()
    bare = await asyncio.create_subprocess_exec(sys.executable, "-c", BARE_LITESTAR, str(port))
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                await (await asyncio.open_connection("127.0.0.1", port))[1].drain()
                break
            await asyncio.sleep(0.1)
        await drive(port, json_request, 200, args.concurrency)
        seconds, latencies, failures = await drive(port, json_request, args.requests, args.concurrency)
        bare_line = line("anchor: bare litestar endpoint", args.requests, seconds, latencies, failures)
    finally:
        bare.terminate()
        await bare.wait()
    load.append(os.getloadavg()[0])
    ratios = [api_line["per_second"] / anchor_line["per_second"] for api_line, anchor_line in rounds]
    report = {
        "concurrency": args.concurrency,
        "api_env": args.api_env,
        "loadavg_1m": [round(value, 2) for value in load],
        "rounds": [list(pair) for pair in rounds],
        "results": [*results, bare_line],
        "nothing_lost": lost,
    }
    print(json.dumps(report, indent=1))
    for number, ((api_line, anchor_line), ratio) in enumerate(zip(rounds, ratios, strict=True), 1):
        print(
            f"round {number}: JSON create {api_line['per_second']}/s p99 {api_line['p99_ms']} ms "
            f"({api_line['api_cpu_ms_per_request']} CPU-ms a request, relay lag {api_line['relay_lag_s']} s), "
            f"bare asyncpg "
            f"{anchor_line['per_second']}/s: {ratio:.2f} of the floor; / bare litestar "
            f"{api_line['per_second'] / bare_line['per_second']:.2f}"
        )
    print(f"median JSON create / asyncpg anchor = {sorted(ratios)[len(ratios) // 2]:.2f}")
    if lost["missing_jobs"] or lost["missing_events"]:
        raise SystemExit(f"accepted faxes were lost: {lost}")


class EventTap:
    """A queue bound to every ``fax.job.submitted`` on the exchange, declared before the first request."""

    def __init__(self, connection: aio_pika.abc.AbstractRobustConnection, queue: aio_pika.abc.AbstractQueue) -> None:
        self._connection = connection
        self._queue = queue
        self.job_ids: set[str] = set()
        self._arrived = asyncio.Event()

    @classmethod
    async def bind(cls, amqp_url: str) -> EventTap:
        connection = await aio_pika.connect_robust(amqp_url)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key(JobSubmitted))
        tap = cls(connection, queue)
        await queue.consume(tap._on_message, no_ack=True)
        return tap

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.job_ids.add(decode_event(message.body).job_id.hex)
        self._arrived.set()

    async def missing(self, job_ids: set[str], wait_seconds: float) -> set[str]:
        """Those of ``job_ids`` whose event has not arrived within ``wait_seconds``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_seconds):
                while not job_ids <= self.job_ids:
                    self._arrived.clear()
                    await self._arrived.wait()
        return job_ids - self.job_ids

    async def close(self) -> None:
        await self._connection.close()


async def check_nothing_lost(database_url: str, accepted: list[bytes], events: EventTap) -> dict[str, int]:
    """Every accepted fax has its job row, and its event reached the tap (waiting up to a minute for the relay)."""
    ids = {uuid.UUID(json.loads(body)["data"]["id"]).hex for body in accepted}
    missing_events = await events.missing(ids, wait_seconds=60)
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM fax_jobs WHERE id = ANY($1::uuid[])", [*ids])
    finally:
        await conn.close()
    return {
        "accepted": len(accepted),
        "distinct_ids": len(ids),
        "missing_jobs": len(ids) - rows,
        "missing_events": len(missing_events),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--uploads", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--state-dir", default=str(REPO / ".devstack" / "bench-intake"))
    parser.add_argument("--port-base", type=int, default=24000)
    parser.add_argument("--api-env", action="append", default=[], help="KEY=VALUE for the API process (variants)")
    parser.add_argument("--rounds", type=int, default=1, help="JSON create and its anchor, alternately, this often")
    parser.add_argument("--profile", help="write a py-spy profile (collapsed stacks) of the API's JSON run here")
    parser.add_argument("--api-port", type=int, default=0, help="default: port base + 80")
    args = parser.parse_args()
    if not args.api_port:
        args.api_port = args.port_base + 80
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
