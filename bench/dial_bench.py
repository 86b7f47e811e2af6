"""Submit to dial: from a 1-page PDF upload through the Kazoo API to the transmitter's claim of the call.

The whole platform as ``make run`` starts it (``fax_devstack``: its own Postgres, RabbitMQ and S3 under
``--state-dir`` on ``--port-base``, the five services and faxsim, the transmitter on real SIP to faxsim). Each round
uploads the same 1-page text PDF the way a user does (Kazoo's ``multipart/mixed`` create, JSON + PDF) and measures
from just before the request to the job's claim: the transmitter's ``claim_attempt`` sets ``status = 'processing'``
and ``updated_at = now()`` in the transaction it commits right before it sends the INVITE. That timestamp is read
from the job row, polled every 50 ms until the job is ``processing`` (Postgres' clock is this machine's clock).
Each round dials its own number ending in 0408, which faxsim lets ring (no answer): the job stays ``processing``
with its claim's ``updated_at`` while the bench reads it, and no fax call loads the machine.

Where the time went, from the rows' own timestamps: the API (request until its transaction began, after the S3
PUT of the upload), the relay of ``fax.job.submitted`` (outbox row created to published), the fetcher (published to
``document_ready``'s transaction: delivery, job_to_prepare, S3 read, sniff, sandboxed render + page check, S3 PUT),
the relay of ``fax.document.ready``, and the transmitter (published to its claim).

Anchor, in the same run, alternating with the rounds: bare ghostscript on the same page, the one command
``bench/render_bench.py`` times as its anchor (same device, resolution and page size; no sandbox, no page check).

    uv run python bench/dial_bench.py --rounds 30 [--port-base 18000] [--state-dir .devstack/dial-bench]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from fax_contracts import DocumentReady, JobSubmitted, decode_event, routing_key
from fax_devstack.postgres import SUPERUSER
from fax_devstack.stack import Stack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render_bench import BARE_GS, text_pdf  # a sibling script, not a package

REPO = Path(__file__).resolve().parents[1]
JOB = "SELECT status, created_at, updated_at FROM fax_jobs WHERE id = $1::uuid"
EVENTS = "SELECT routing_key, payload, created_at, sent_at FROM outbox WHERE routing_key = ANY($1::text[])"
SUBMITTED, READY = routing_key(JobSubmitted), routing_key(DocumentReady)
STAGES = ("api", "relay submitted", "fetcher", "relay ready", "transmitter")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def stack_environment(args: argparse.Namespace, state_dir: Path) -> dict[str, str]:
    """The platform on ports of its own (base+100.. for the services, base+1000..2999 for media); the user's FAX_*
    settings are left out, so it never uses another stack's services."""
    base = args.port_base
    env = {key: value for key, value in os.environ.items() if not key.startswith("FAX_")}
    return {
        **env,
        "FAX_DEVSTACK_PORT_BASE": str(base),
        "FAX_API_PORT": str(base + 100),
        "FAX_SIP_BIND": f"127.0.0.1:{base + 106}",
        "FAX_FAXSIM_SIP": f"127.0.0.1:{base + 107}",
        "FAX_SMTP_GATEWAY_PORT": str(base + 108),
        # Every round's call rings on, holding its media ports until the run ends.
        "FAX_RTP_PORT_MIN": str(base + 1000),
        "FAX_RTP_PORT_MAX": str(base + 1999),
        "FAX_FAXSIM_MEDIA_PORTS": f"{base + 2000}-{base + 2999}",
        "FAX_LINE": "sip",
        # Every round's call rings on (no answer): none may hold back the next round's claim.
        "FAX_MAX_CALLS_PER_ACCOUNT": "1000",
        "FAX_LOG_LEVEL": "WARNING",
        **dict(item.split("=", 1) for item in args.env),
    }


def multipart_create(number: str, pdf: bytes) -> tuple[str, bytes]:
    boundary = "dial-bench-boundary"
    fax = json.dumps({"data": {"to_number": number, "from_number": "18884732963", "retries": 1}})
    body = (
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{fax}\r\n"
        f"--{boundary}\r\nContent-Type: application/pdf\r\n\r\n".encode()
        + pdf
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return f"multipart/mixed; boundary={boundary}", body


async def one_round(
    client: httpx.AsyncClient, db: asyncpg.Connection, path: str, number: str, pdf: bytes
) -> tuple[uuid.UUID, float, dict[str, dt.datetime]]:
    """Upload, then poll the job until it is claimed: (job, submit time, the job's timestamps)."""
    content_type, body = multipart_create(number, pdf)
    submitted = time.time()
    answer = await client.put(path, content=body, headers={"Content-Type": content_type})
    if answer.status_code != 201:
        raise SystemExit(f"create answered {answer.status_code}: {answer.text}")
    job_id = uuid.UUID(answer.json()["data"]["id"])
    deadline = time.monotonic() + 60
    while True:
        row = await db.fetchrow(JOB, job_id)
        if row["status"] == "processing":
            return job_id, submitted, {"created": row["created_at"], "claimed": row["updated_at"]}
        if row["status"] not in ("attaching_files", "pending") or time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} is {row['status']}, not processing")
        # The claim's own timestamp is read, so polling slowly loses no precision and loads the machine little.
        await asyncio.sleep(0.05)


def bare_gs(pdf: Path, out: Path) -> float:
    began = time.perf_counter()
    subprocess.run([*BARE_GS, f"-sOutputFile={out}", str(pdf)], check=True, capture_output=True)
    return time.perf_counter() - began


async def stages_of(db: asyncpg.Connection, rounds: dict[uuid.UUID, tuple[float, dict]]) -> dict[str, list[float]]:
    """Each round's time per stage, from the outbox rows of its two events."""
    events: dict[tuple[str, uuid.UUID], asyncpg.Record] = {}
    for row in await db.fetch(EVENTS, [SUBMITTED, READY]):
        events[(row["routing_key"], decode_event(row["payload"]).job_id)] = row  # type: ignore[attr-defined]
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for job_id, (submitted, times) in rounds.items():
        sub, ready = events[(SUBMITTED, job_id)], events[(READY, job_id)]
        marks = [
            submitted,
            times["created"].timestamp(),
            sub["sent_at"].timestamp(),
            ready["created_at"].timestamp(),
            ready["sent_at"].timestamp(),
            times["claimed"].timestamp(),
        ]
        for stage, begin, end in zip(STAGES, marks, marks[1:], strict=False):
            stages[stage].append(end - begin)
    return stages


async def run(args: argparse.Namespace) -> None:
    state_dir = args.state_dir
    stack = Stack(state_dir, stack_environment(args, state_dir))
    with tempfile.TemporaryDirectory(prefix="dial-bench-") as tmp:
        page = text_pdf(Path(tmp) / "page.pdf", pages=1)
        pdf = page.read_bytes()
        try:
            credentials = await stack.start()
            db = await asyncpg.connect(f"postgresql://{SUPERUSER}@127.0.0.1:{args.port_base + 432}/fax")
            path = f"{stack.api_url}/v2/accounts/{credentials['FAX_ACCOUNT_ID']}/faxes"
            headers = {"X-Auth-Token": credentials["FAX_AUTH_TOKEN"]}
            rounds: dict[uuid.UUID, tuple[float, dict]] = {}
            totals: list[float] = []
            anchors: list[float] = []
            load = [os.getloadavg()[0]]
            async with httpx.AsyncClient(headers=headers, timeout=60) as client:
                for number in range(args.warmup + args.rounds):
                    anchor = bare_gs(page, Path(tmp) / "bare.tif")
                    job_id, submitted, times = await one_round(client, db, path, f"1555{number:06d}0408", pdf)
                    if number >= args.warmup:
                        anchors.append(anchor)
                        rounds[job_id] = (submitted, times)
                        totals.append(times["claimed"].timestamp() - submitted)
                    await asyncio.sleep(args.pause)  # the copies are made meanwhile, as they would be
            load.append(os.getloadavg()[0])
            stages = await stages_of(db, rounds)
            await db.close()
        finally:
            await stack.stop()
    report(args, totals, anchors, stages, load)


def report(
    args: argparse.Namespace, totals: list[float], anchors: list[float], stages: dict[str, list[float]], load: list
) -> None:
    ms = 1000.0
    print(f"{args.rounds} rounds (after {args.warmup} warm-up), load average {load[0]:.1f}-{load[1]:.1f}")
    print("| path | median ms | p90 ms |")
    print("|---|---|---|")
    for name, values in (("submit -> processing (claim)", totals), ("anchor: bare gs, same page", anchors)):
        print(f"| {name} | {statistics.median(values) * ms:.0f} | {percentile(values, 0.9) * ms:.0f} |")
    difference = (statistics.median(totals) - statistics.median(anchors)) * ms
    print(f"median(submit -> processing) - median(bare gs) = {difference:.0f} ms")
    print("\nstages (median / p90 ms): " + ", ".join(
        f"{stage} {statistics.median(values) * ms:.0f} / {percentile(values, 0.9) * ms:.0f}"
        for stage, values in stages.items()
    ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3, help="rounds first, not counted (imports, caches)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument("--port-base", type=int, default=18000)
    default_state = REPO / ".devstack" / "dial-bench"
    parser.add_argument("--state-dir", type=lambda value: Path(value).resolve(), default=default_state)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the platform's services")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
