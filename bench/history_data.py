"""A year of fax history in a migrated database, for bench/history_bench.py (or by hand, to explore query plans).

Two parts, loaded set-wise by the statements of ``history_data.sql`` (``generate_series``, one statement a table,
about 80 s for a million jobs on the 2-core machine):

- **recent**: the benchmark account's last day, the same in every database: 600 jobs (the newest 100 still queued:
  waiting for uploads, the fetcher, a retry, or being sent), 200 received faxes (5 still arriving), 50 smtplog rows,
  a Fax.to user and 3 Fax.to numbers.
- **history**: the year before, for ``accounts`` accounts: the benchmark account holds ``share`` of it, the others
  follow Zipf's law (from about 100,000 jobs down to a few dozen). Jobs are finished (12 % failed), one in
  ten sent through Fax.to with its balance charge, each with its published ``fax.job.submitted`` outbox row; received
  faxes (5 % failed) and refused mail (a tenth naming no faxbox) alike; plus 500 jobs other accounts queued in the
  last hour. Rows are inserted in time order, as they would have been; then the finished jobs are folded into their
  totals as a first /metrics scrape would, and the tables vacuumed and analysed.

``jobs`` and ``inbound`` count everything, recent rows included.

    uv run python bench/history_data.py postgresql://postgres@127.0.0.1:5432/fax_history --jobs 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from fax_api.monitoring.store import Q as MONITORING_QUERIES
from fax_runtime.sql import parse_queries

SQL = parse_queries(Path(__file__).with_name("history_data.sql").read_text(encoding="utf-8"))
RECENT_JOBS = 600
RECENT_INBOUND = 200
QUEUED_ELSEWHERE = 500
TABLES = (
    "accounts",
    "faxboxes",
    "phone_numbers",
    "account_balances",
    "faxto_users",
    "faxto_numbers",
    "fax_jobs",
    "balance_charges",
    "outbox",
    "inbound_faxes",
    "smtplog",
    "fax_job_totals",
    "fax_job_total_changes",
)


@dataclass(frozen=True)
class BenchTenant:
    """The account whose calls are measured, as an existing tenant (``fax_api.demo``) left it."""

    account_id: str
    faxbox_id: str
    inbound_number: str
    faxto_api_key: str


async def load(
    conn: asyncpg.Connection,
    tenant: BenchTenant,
    *,
    jobs: int = 0,
    inbound: int = 0,
    accounts: int = 2_000,
    share: float = 0.4,
    seed: float = 0.42,
) -> dict[str, float]:
    """The recent rows, and a history up to ``jobs`` jobs and ``inbound`` received faxes in all (none when 0);
    the seconds each step took."""
    steps: dict[str, float] = {}

    async def step(name: str, *args: object) -> None:
        started = time.perf_counter()
        await conn.execute(SQL[name], *args)
        steps[name] = round(time.perf_counter() - started, 1)

    # Nothing here needs to survive a crash: the benchmark loads again.
    await conn.execute("SET synchronous_commit = off")
    await conn.execute("SELECT setseed($1::float8)", seed)
    await conn.execute(SQL["functions"])
    if jobs or inbound:
        queued = QUEUED_ELSEWHERE if accounts > 1 else 0
        await step("history_accounts", tenant.account_id, share, accounts, tenant.faxbox_id, tenant.inbound_number)
        await step("history_tenants")
        await step("history_jobs", max(0, jobs - RECENT_JOBS - queued))
        if queued:
            await step("history_queued", queued)
        await step("history_charges")
        await step("history_outbox")
        await step("history_inbound", max(0, inbound - RECENT_INBOUND))
        await step("history_smtplog", max(1, jobs // 50))
        await conn.execute("DROP TABLE bench_accounts")
    await step("recent_numbers", tenant.account_id, tenant.faxbox_id)
    await step("recent_faxto_user", tenant.account_id, tenant.faxto_api_key)
    await step("recent_jobs", tenant.account_id)
    await step("recent_inbound", tenant.account_id, tenant.faxbox_id, tenant.inbound_number)
    await step("recent_smtplog", tenant.account_id, tenant.faxbox_id)
    started = time.perf_counter()
    # The finished jobs the load recorded (migration 0011's triggers), folded into the totals by a first scrape.
    await conn.fetch(MONITORING_QUERIES["jobs_by_state"])
    await settle(conn)
    steps["metrics_fold_vacuum_analyze"] = round(time.perf_counter() - started, 1)
    return steps


async def settle(conn: asyncpg.Connection) -> None:
    """Vacuum and analyse as a year of autovacuum would have: visibility map set, statistics current.

    A vacuum cannot mark pages all-visible while another transaction may still not see their rows, such as the
    autovacuum that the load itself set off on another table: tables left mostly unmarked are vacuumed again.
    """
    existing = await conn.fetch("SELECT relname FROM pg_class WHERE relname = ANY($1::text[])", list(TABLES))
    tables = [row["relname"] for row in existing]  # a database migrated by an older version has fewer
    for _ in range(20):
        await conn.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
        rows = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relname = ANY($1::text[]) AND relallvisible < 0.9 * relpages", tables
        )
        tables = [row["relname"] for row in rows]
        if not tables:
            return
        await asyncio.sleep(1)
    raise RuntimeError(f"{tables} could not be vacuumed: a long transaction holds their rows back")


async def main_async(args: argparse.Namespace) -> None:
    from fax_api.demo import ensure_demo_tenant
    from fax_runtime.migrations import apply

    await apply(args.database_url)
    demo = await ensure_demo_tenant(args.database_url)
    tenant = BenchTenant(demo.account_id, demo.faxbox_id, demo.inbound_number, args.faxto_api_key)
    conn = await asyncpg.connect(args.database_url)
    try:
        steps = await load(conn, tenant, jobs=args.jobs, inbound=args.inbound, accounts=args.accounts, share=args.share)
    finally:
        await conn.close()
    print(f"account {tenant.account_id}, Fax.to api_key {tenant.faxto_api_key}; seconds per step: {steps}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url", help="a database the project's migrations may run on (the demo tenant's)")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--inbound", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--share", type=float, default=0.4, help="the benchmark account's share of the history")
    parser.add_argument("--faxto-api-key", default="history-bench-" + "0" * 50)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
