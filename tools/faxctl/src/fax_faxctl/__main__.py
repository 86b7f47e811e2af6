"""faxctl: send a file or URL, watch it page by page, list and download the outbox and inbox, tail events.

Settings come from FAX_API_URL (default http://127.0.0.1:8000), FAX_ACCOUNT_ID and FAX_AUTH_TOKEN, else from
.devstack/credentials.env as `make run` writes it; `events` also needs FAX_AMQP_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from fax_faxctl.client import FaxClient, FaxctlError, Settings

QUEUED = ("attaching_files", "pending", "processing")
GREGORIAN_UNIX_OFFSET = 62167219200  # seconds from 0000-01-01 to 1970-01-01, as Kazoo counts
BAR_WIDTH = 30


def progress_line(job: dict[str, Any]) -> str:
    """``[#######.......] 1/2 pages  processing (attempt 1 of 3)``."""
    total = job.get("pages") or 0
    sent = (job.get("tx_result") or {}).get("pages_sent") or 0
    filled = int(BAR_WIDTH * sent / total) if total else 0
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    pages = f"{sent}/{total} pages" if total else "rendering"
    attempts = f" (attempt {job.get('attempts', 0)} of {job.get('retries', 1)})" if job.get("attempts") else ""
    return f"[{bar}] {pages}  {job.get('status', '?')}{attempts}"


def watch(client: FaxClient, fax_id: str, out: TextIO, poll: float = 1.0, timeout: float = 3600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        job = client.job(fax_id)
        line = progress_line(job)
        if line != last:
            out.write(("\r" if out.isatty() else "") + line + ("" if out.isatty() else "\n"))
            out.flush()
            last = line
        if job["status"] not in QUEUED:
            if out.isatty():
                out.write("\n")
            return job
        if time.monotonic() > deadline:
            raise FaxctlError(f"fax {fax_id} still {job['status']} after {timeout:.0f} s")
        time.sleep(poll)


def _summary(job: dict[str, Any]) -> str:
    tx = job.get("tx_result") or {}
    if job["status"] == "completed":
        return (
            f"delivered: {tx.get('pages_sent', 0)} page(s) to {job.get('to_number')} ({tx.get('fax_speed', 0)} bit/s)"
        )
    reason = tx.get("error_message") or job.get("error_message") or "unknown error"
    return f"failed after {job.get('attempts', 0)} attempt(s): {reason}"


def _table(rows: list[dict[str, Any]], columns: list[str], out: TextIO) -> None:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    out.write("  ".join(c.ljust(widths[c]) for c in columns).rstrip() + "\n")
    for row in rows:
        out.write("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns).rstrip() + "\n")


def _readable(row: dict[str, Any]) -> dict[str, Any]:
    """Kazoo timestamps are Gregorian seconds; show them as UTC times."""
    created = row.get("created")
    if isinstance(created, int):
        moment = dt.datetime.fromtimestamp(created - GREGORIAN_UNIX_OFFSET, dt.UTC)
        row = {**row, "created": moment.strftime("%Y-%m-%d %H:%M:%S")}
    return row


def _download(client: FaxClient, folder: str, fax_id: str, output: Path | None, tiff: bool, out: TextIO) -> None:
    accept, suffix = ("image/tiff", ".tif") if tiff else ("application/pdf", ".pdf")
    data = client.attachment(folder, fax_id, accept)
    target = output or Path(f"{fax_id}{suffix}")
    target.write_bytes(data)
    out.write(f"wrote {target} ({len(data)} bytes)\n")


async def tail_events(amqp_url: str, pattern: str, out: TextIO, limit: int | None) -> None:
    """Bind a private, self-deleting queue to fax.events and print each event as it arrives."""
    import aio_pika

    from fax_contracts import EXCHANGE, decode_event

    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True, passive=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=pattern)
        seen = 0
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    try:
                        event = decode_event(message.body)
                        text = " ".join(
                            f"{name}={getattr(event, name)}" for name in event.__struct_fields__ if name != "event_id"
                        )
                    except Exception:
                        text = message.body[:200].decode(errors="replace")
                    out.write(f"{message.routing_key}  {text}\n")
                    out.flush()
                seen += 1
                if limit is not None and seen >= limit:
                    return


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faxctl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    send = commands.add_parser("send", help="send a file or an http(s) URL and watch it")
    send.add_argument("source", help="a local document (PDF, TIFF, image, text, Office) or a URL")
    send.add_argument("--to", required=True, dest="to_number")
    send.add_argument("--from", dest="from_number", default="")
    send.add_argument("--from-name", default="")
    send.add_argument("--retries", type=int, default=1)
    send.add_argument("--no-wait", action="store_true", help="print the id and return at once")
    watch_cmd = commands.add_parser("watch", help="show a fax's progress page by page until it ends")
    watch_cmd.add_argument("fax_id")
    for folder in ("outbox", "inbox"):
        sub = commands.add_parser(folder, help=f"list the {folder}, or download one fax from it")
        sub.add_argument("fax_id", nargs="?", help="download this fax's document")
        sub.add_argument("-o", "--output", type=Path)
        sub.add_argument("--tiff", action="store_true", help="the TIFF instead of the PDF")
    events = commands.add_parser("events", help="print fax events as they happen (needs FAX_AMQP_URL)")
    events.add_argument("--pattern", default="fax.#", help="routing-key pattern, e.g. 'fax.transmission.*.v1'")
    events.add_argument("--limit", type=int, help="stop after this many events")
    return parser


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.load()
        client = FaxClient(settings)
        if args.command == "send":
            fax = {"to_number": args.to_number, "retries": args.retries}
            fax |= {k: v for k, v in (("from_number", args.from_number), ("from_name", args.from_name)) if v}
            job = client.send(args.source, fax)
            out.write(f"fax {job['id']} accepted ({job['status']})\n")
            if args.no_wait:
                return 0
            job = watch(client, job["id"], out)
            out.write(_summary(job) + "\n")
            return 0 if job["status"] == "completed" else 1
        if args.command == "watch":
            job = watch(client, args.fax_id, out)
            out.write(_summary(job) + "\n")
            return 0 if job["status"] == "completed" else 1
        if args.command in ("outbox", "inbox"):
            if args.fax_id:
                _download(client, args.command, args.fax_id, args.output, args.tiff, out)
            else:
                columns = (
                    ["id", "status", "to", "created"]
                    if args.command == "outbox"
                    else ["id", "status", "from", "to", "pages", "created"]
                )
                _table([_readable(row) for row in client.listing(args.command)], columns, out)
            return 0
        if args.command == "events":
            if not settings.amqp_url:
                raise FaxctlError("events needs FAX_AMQP_URL (the platform's RabbitMQ)")
            asyncio.run(tail_events(settings.amqp_url, args.pattern, out, args.limit))
            return 0
    except FaxctlError as exc:
        print(f"faxctl: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
