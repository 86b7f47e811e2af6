"""What a year of history does to the API: the same calls on an empty database and on one holding a million jobs.

Two databases on the same Postgres, migrated by the project's migrations, each with the demo tenant
(``fax_api.demo``) and its last day of faxes (``history_data.py``: 600 jobs, 200 received faxes, the rows every call
below reads):

- **empty**: nothing else. This is the anchor.
- **loaded**: also the year before, 1,000,000 jobs and 100,000 received faxes in all over 2,000 accounts, the
  benchmark account holding 40 % of them (the rest Zipf-distributed), with their outbox rows, balance charges and
  smtplog (``history_data.py`` says how they are made).

One API process per database (``python -m fax_api``, as deployed and as the integration tests start it, with its
outbox relay publishing to RabbitMQ), both running at once on the devstack's Postgres, RabbitMQ and S3 (started
under ``--state-dir`` on ``--port-base``). Every call is made ``--rounds`` times on each, one request at a time
over a keep-alive connection, the two databases alternating call by call (which goes first alternates by round),
so both see the same machine; each after ``--warmup`` unmeasured calls, enough for every prepared statement to
settle on its cached plan. A call on the loaded database reads the same number of rows as on the empty one: first
pages are the last day's, deep pages start at a random job 30-90 % down the account's folder (``start_key``), single
faxes are drawn at random from the whole folder.

    uv run python bench/history_bench.py                        # loads the 1M-job database (about 3 minutes)
    uv run python bench/history_bench.py --keep                 # ... and keeps both databases
    uv run python bench/history_bench.py --reuse --explain      # kept databases, their pending migrations applied

``--explain`` prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the listings' queries and of the services' background
queries (the transmitter's sweep and claim, the reaper, the outbox relay's claim, /metrics' count) on both, each as
a custom plan (for these values) and as the generic plan a prepared statement may settle on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from history_data import BenchTenant, load
from intake_bench import KAZOO_FAX, api_process, percentile
from minio import Minio

from fax_devstack.infra import InfraPorts, LocalInfra, ProvidedServices
from fax_runtime.sql import load_queries

REPO = Path(__file__).resolve().parents[1]
FAXTO_API_KEY = "history-bench-" + "0" * 50
FINISHED = ("completed", "failed")
QUEUED = ("attaching_files", "pending", "processing")
INBOX = ("received", "failed")
PAGE_SIZE = 50


@dataclass
class Target:
    """One database and the API process in front of it, with the ids its calls draw from."""

    kind: str
    database_url: str
    tenant: BenchTenant
    token: str
    port: int = 0
    finished: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    inbox: list[str] = field(default_factory=list)
    outbox_keys: list[str] = field(default_factory=list)
    inbox_keys: list[str] = field(default_factory=list)
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None


@dataclass(frozen=True)
class Call:
    """One measured API call: its path on a target, and the status a correct answer has."""

    name: str
    path: Callable[[Target], str]
    method: str = "GET"
    body: bytes = b""
    status: int = 200


def _faxes(target: Target) -> str:
    return f"/v2/accounts/{target.tenant.account_id}/faxes"


def _first_page(folder: str) -> Callable[[Target], str]:
    return lambda t: f"{_faxes(t)}/{folder}?page_size={PAGE_SIZE}"


def _deep_page(folder: str, keys: Callable[[Target], list[str]]) -> Callable[[Target], str]:
    return lambda t: f"{_faxes(t)}/{folder}?page_size={PAGE_SIZE}&start_key={random.choice(keys(t))}"


def _one_fax(folder: str, ids: Callable[[Target], list[str]]) -> Callable[[Target], str]:
    return lambda t: f"{_faxes(t)}/{folder}/{random.choice(ids(t))}"


CALLS = (
    Call("Kazoo GET outbox, first page", _first_page("outbox")),
    Call("Kazoo GET outbox, deep page (start_key)", _deep_page("outbox", lambda t: t.outbox_keys)),
    Call("Kazoo GET inbox, first page", _first_page("inbox")),
    Call("Kazoo GET inbox, deep page (start_key)", _deep_page("inbox", lambda t: t.inbox_keys)),
    Call("Kazoo GET outgoing, first page", _first_page("outgoing")),
    Call("Kazoo GET outbox/{id}", _one_fax("outbox", lambda t: t.finished)),
    Call("Kazoo GET outgoing/{id}", _one_fax("outgoing", lambda t: t.queued)),
    Call("Kazoo GET inbox/{id}", _one_fax("inbox", lambda t: t.inbox)),
    Call("Kazoo PUT faxes (JSON create)", _faxes, "PUT", json.dumps({"data": KAZOO_FAX}).encode(), 201),
    Call("Fax.to GET fax-history", lambda t: f"/api/v2/fax-history?api_key={t.tenant.faxto_api_key}"),
    Call(
        "Fax.to GET incoming-faxes, first page",
        lambda t: f"/api/v2/incoming-faxes?api_key={t.tenant.faxto_api_key}&per_page=20",
    ),
    Call("GET /metrics (jobs by state)", lambda t: "/metrics"),
)


async def send(target: Target, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    """One request over the target's keep-alive connection: (status, body)."""
    if target.connection is None:
        target.connection = await asyncio.open_connection("127.0.0.1", target.port)
    reader, writer = target.connection
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\nX-Auth-Token: {target.token}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    status = int((await reader.readline()).split()[1])
    headers: dict[bytes, bytes] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding") == b"chunked":
        chunks = []
        while size := int((await reader.readline()).strip(), 16):
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        await reader.readline()
        return status, b"".join(chunks)
    return status, await reader.readexactly(int(headers.get(b"content-length", b"0")))


async def call(target: Target, spec: Call) -> float:
    """Seconds one call took; a wrong status stops the benchmark (a fast error is no measurement)."""
    started = time.perf_counter()
    status, answer = await send(target, spec.method, spec.path(target), spec.body)
    elapsed = time.perf_counter() - started
    if status != spec.status:
        raise SystemExit(f"{spec.name} on {target.kind}: HTTP {status} {answer[:500]!r}")
    return elapsed


def rows_answered(answer: bytes) -> int:
    """How many items a listing's answer holds (Kazoo's data, Fax.to's history or inbox)."""
    try:
        doc = json.loads(answer)
    except ValueError:  # /metrics
        return -1
    for items in (doc.get("data"), doc.get("history"), doc.get("inbox")):
        if isinstance(items, list):
            return len(items)
    return -1


async def prepare(admin: asyncpg.Connection, base_url: str, kind: str, args: argparse.Namespace) -> Target:
    """The database of ``kind`` (loaded unless reused), its tenant, and the ids its calls draw from."""
    from fax_api.demo import ensure_demo_tenant
    from fax_runtime.migrations import apply

    name = f"history_bench_{kind}"
    database_url = urlunsplit(urlsplit(base_url)._replace(path=f"/{name}"))
    exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    if exists and args.reuse:
        await apply(database_url)  # migrations added since it was loaded (new indexes)
        demo = await ensure_demo_tenant(database_url)
        tenant = BenchTenant(demo.account_id, demo.faxbox_id, demo.inbound_number, FAXTO_API_KEY)
        conn = await asyncpg.connect(database_url)
        await conn.execute("ANALYZE")
    else:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        await apply(database_url)
        demo = await ensure_demo_tenant(database_url)
        tenant = BenchTenant(demo.account_id, demo.faxbox_id, demo.inbound_number, FAXTO_API_KEY)
        conn = await asyncpg.connect(database_url)
        history = {"jobs": args.jobs, "inbound": args.inbound, "accounts": args.accounts} if kind == "loaded" else {}
        steps = await load(conn, tenant, **history)
        print(f"loaded {kind}: seconds per step {steps}", file=sys.stderr)
    try:
        target = Target(kind, database_url, tenant, demo.auth_token)
        account = tenant.account_id
        target.finished = await _ids(conn, "fax_jobs", account, FINISHED)
        target.queued = await _ids(conn, "fax_jobs", account, QUEUED)
        target.inbox = await _ids(conn, "inbound_faxes", account, INBOX)
        target.outbox_keys = await _deep_keys(conn, "fax_jobs", account, FINISHED)
        target.inbox_keys = await _deep_keys(conn, "inbound_faxes", account, INBOX)
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM fax_jobs) AS jobs, (SELECT count(*) FROM inbound_faxes) AS inbound,"
            " (SELECT count(*) FROM fax_jobs WHERE account_id = $1) AS account_jobs,"
            " (SELECT count(*) FROM inbound_faxes WHERE account_id = $1) AS account_inbound,"
            " pg_size_pretty(pg_database_size(current_database())) AS size",
            account,
        )
        print(f"{kind}: {dict(counts)}", file=sys.stderr)
        return target
    finally:
        await conn.close()


async def _ids(conn: asyncpg.Connection, table: str, account: str, states: tuple[str, ...]) -> list[str]:
    rows = await conn.fetch(
        f"SELECT id FROM {table} WHERE account_id = $1 AND status = ANY($2) ORDER BY random() LIMIT 500",
        account,
        list(states),
    )
    return [row["id"].hex for row in rows]


async def _deep_keys(conn: asyncpg.Connection, table: str, account: str, states: tuple[str, ...]) -> list[str]:
    """Ids 30-90 % down the folder, newest first, each with a full page after it."""
    rows = await conn.fetch(
        f"""
        SELECT id FROM (
            SELECT id, row_number() OVER (ORDER BY created_at DESC, id DESC) AS position, count(*) OVER () AS total
            FROM {table} WHERE account_id = $1 AND status = ANY($2)
        ) folder
        WHERE position BETWEEN total * 0.3 AND least(total * 0.9, total - {PAGE_SIZE})
        ORDER BY random() LIMIT 200
        """,
        account,
        list(states),
    )
    return [row["id"].hex for row in rows]


async def measure(targets: list[Target], rounds: int, warmup: int) -> dict[str, dict[str, list[float]]]:
    """Per call and target, the seconds of each measured round."""
    for spec in CALLS:  # the same answer size on both, or the comparison means nothing
        sizes = []
        for target in targets:
            if spec.method == "GET":
                sizes.append(rows_answered((await send(target, spec.method, spec.path(target), spec.body))[1]))
        if len(set(sizes)) > 1:
            raise SystemExit(f"{spec.name}: {sizes} rows on {[t.kind for t in targets]}")
        for _ in range(warmup):
            for target in targets:
                await call(target, spec)
    times: dict[str, dict[str, list[float]]] = {spec.name: {t.kind: [] for t in targets} for spec in CALLS}
    for round_number in range(rounds):
        order = targets if round_number % 2 == 0 else targets[::-1]
        for spec in CALLS:
            for target in order:
                times[spec.name][target.kind].append(await call(target, spec))
    return times


def report(times: dict[str, dict[str, list[float]]]) -> list[dict[str, object]]:
    lines = []
    for name, by_kind in times.items():
        empty, loaded = by_kind["empty"], by_kind["loaded"]
        lines.append(
            {
                "call": name,
                "empty_p50_ms": round(statistics.median(empty) * 1000, 2),
                "empty_p95_ms": round(percentile(empty, 0.95) * 1000, 2),
                "loaded_p50_ms": round(statistics.median(loaded) * 1000, 2),
                "loaded_p95_ms": round(percentile(loaded, 0.95) * 1000, 2),
                "ratio_p50": round(statistics.median(loaded) / statistics.median(empty), 2),
                "ratio_p95": round(percentile(loaded, 0.95) / percentile(empty, 0.95), 2),
            }
        )
    return lines


def markdown(lines: list[dict[str, object]]) -> str:
    rows = [
        "| call | empty p50 | loaded p50 | loaded / empty p50 | empty p95 | loaded p95 | loaded / empty p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    for line in lines:
        rows.append(
            f"| {line['call']} | {line['empty_p50_ms']} ms | {line['loaded_p50_ms']} ms | {line['ratio_p50']} "
            f"| {line['empty_p95_ms']} ms | {line['loaded_p95_ms']} ms | {line['ratio_p95']} |"
        )
    return "\n".join(rows)


async def explain(targets: list[Target]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the statements whose plans depend on history, on both databases.

    Statements that change rows run in a transaction that is rolled back.
    """
    faxes = load_queries("fax_api.faxes", "queries.sql")
    monitoring = load_queries("fax_api.monitoring", "queries.sql")
    faxto = load_queries("fax_api.faxto", "queries.sql")
    jobs = load_queries("fax_jobs", "sql/jobs.sql")
    attempts = load_queries("fax_jobs", "sql/attempts.sql")
    relay_claim = (
        "SELECT id, event_id, routing_key, payload, headers FROM outbox WHERE sent_at IS NULL ORDER BY id "
        "LIMIT $1::int FOR UPDATE SKIP LOCKED"
    )
    for target in targets:
        conn = await asyncpg.connect(target.database_url)
        try:
            account = target.tenant.account_id
            pending = await conn.fetchval(
                "SELECT id FROM fax_jobs WHERE account_id = $1 AND status = 'pending' AND tiff_key IS NOT NULL "
                "AND attempts < retries LIMIT 1",
                account,
            )
            statements = [
                ("page_jobs outbox", jobs["page_jobs"], [account, list(FINISHED), None, PAGE_SIZE + 1]),
                (
                    "page_jobs outbox deep",
                    jobs["page_jobs"],
                    [account, list(FINISHED), _uuid(target.outbox_keys[0]), PAGE_SIZE + 1],
                ),
                ("page_jobs outgoing", jobs["page_jobs"], [account, list(QUEUED), None, PAGE_SIZE + 1]),
                ("page_inbound inbox", faxes["page_inbound"], [account, list(INBOX), None, PAGE_SIZE + 1]),
                (
                    "page_inbound inbox deep",
                    faxes["page_inbound"],
                    [account, list(INBOX), _uuid(target.inbox_keys[0]), PAGE_SIZE + 1],
                ),
                ("get_job", jobs["get_job"], [account, _uuid(target.finished[0]), list(FINISHED)]),
                ("job_history (Fax.to)", faxto["job_history"], [account, 500]),
                ("count_received (Fax.to)", faxto["count_received"], [account, None]),
                ("page_received (Fax.to)", faxto["page_received"], [account, None, 20, 0]),
                ("jobs_by_state (/metrics)", monitoring["jobs_by_state"], []),
                ("outbox_unsent (/metrics)", monitoring["outbox_unsent"], []),
                ("relay claim", relay_claim, [100]),
                ("due_jobs (transmitter sweep)", attempts["due_jobs"], [60, 5]),
                ("reap_abandoned_attempts", attempts["reap_abandoned_attempts"], []),
                ("claim_attempt", attempts["claim_attempt"], [pending, 10, 120]),
            ]
            for title, sql, params in statements:
                for mode, plan in (await plans(conn, sql, params)).items():
                    print(f"\n== {target.kind}: {title} ({mode} plan)\n{plan}")
        finally:
            await conn.close()


async def plans(conn: asyncpg.Connection, sql: str, params: list[object]) -> dict[str, str]:
    """The statement's plan for these values (a custom plan), and the plan a prepared statement may settle on for
    all values after its first five runs (the generic plan), each run in a transaction that is rolled back."""
    oids = [t.oid for t in (await conn.prepare(sql)).get_parameters()]
    types = [await conn.fetchval("SELECT format_type($1::oid, NULL)", oid) for oid in oids]
    # EXECUTE takes no bound parameters: the values are written in as literals.
    literals = [
        await conn.fetchval(f"SELECT quote_nullable($1::{type_name}::text)", value)
        for type_name, value in zip(types, params, strict=True)
    ]
    arguments = f"({', '.join(literals)})" if literals else ""
    await conn.execute(f"PREPARE bench_statement{'(' + ', '.join(types) + ')' if types else ''} AS {sql}")
    found = {}
    try:
        generic = f"EXECUTE bench_statement{arguments}"
        for mode, statement, values in (("custom", sql, params), ("generic", generic, [])):
            tx = conn.transaction()
            await tx.start()
            try:
                if mode == "generic":
                    await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}", *values)
                found[mode] = "\n".join(row[0] for row in rows)
            finally:
                await tx.rollback()
    finally:
        await conn.execute("DEALLOCATE bench_statement")
    return found


def _uuid(hex_id: str) -> uuid.UUID:
    return uuid.UUID(hex=hex_id)


async def main_async(args: argparse.Namespace) -> None:
    provided = ProvidedServices.from_env(os.environ, prefix="FAX_TEST_")
    infra = LocalInfra(Path(args.state_dir), provided=provided, ports=InfraPorts.from_base(args.port_base))
    endpoints = await infra.start()
    try:
        s3 = Minio(endpoints.s3_endpoint, endpoints.s3_access_key, endpoints.s3_secret_key, secure=endpoints.s3_secure)
        if not s3.bucket_exists(endpoints.s3_bucket):
            s3.make_bucket(endpoints.s3_bucket)
        admin = await asyncpg.connect(endpoints.database_url)
        try:
            targets = [await prepare(admin, endpoints.database_url, kind, args) for kind in ("empty", "loaded")]
            if args.explain:
                await explain(targets)
            else:
                await run(args, endpoints, targets)
        finally:
            if not (args.keep or args.reuse):
                for kind in ("empty", "loaded"):
                    await admin.execute(f'DROP DATABASE IF EXISTS "history_bench_{kind}" WITH (FORCE)')
            await admin.close()
    finally:
        await infra.stop()


async def run(args: argparse.Namespace, endpoints, targets: list[Target]) -> None:
    random.seed(args.seed)
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        for offset, target in enumerate(targets):
            target.port = args.port_base + 80 + offset
            env = {
                **os.environ,
                "FAX_DATABASE_URL": target.database_url,
                "FAX_AMQP_URL": endpoints.amqp_url,
                "FAX_S3_ENDPOINT": endpoints.s3_endpoint,
                "FAX_S3_ACCESS_KEY": endpoints.s3_access_key,
                "FAX_S3_SECRET_KEY": endpoints.s3_secret_key,
                "FAX_S3_BUCKET": endpoints.s3_bucket,
                "FAX_S3_SECURE": "true" if endpoints.s3_secure else "false",
                "FAX_API_PORT": str(target.port),
                "FAX_API_READY_PEERS": "",
            }
            stack.enter_context(api_process(env, target.port, Path(tmp) / f"api-{target.kind}.log"))
        load_before = os.getloadavg()[0]
        times = await measure(targets, args.rounds, args.warmup)
        load_after = os.getloadavg()[0]
        for target in targets:
            if target.connection:
                target.connection[1].close()
    lines = report(times)
    summary = {"rounds": args.rounds, "loadavg_1m": [load_before, load_after], "results": lines}
    print(json.dumps(summary, indent=1))
    print(markdown(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--inbound", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep both databases for --reuse")
    parser.add_argument("--reuse", action="store_true", help="use the databases a --keep run left (not reloaded)")
    parser.add_argument("--explain", action="store_true", help="print the query plans instead of measuring")
    parser.add_argument("--state-dir", default=str(REPO / ".devstack" / "bench-history"))
    parser.add_argument("--port-base", type=int, default=24100)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
