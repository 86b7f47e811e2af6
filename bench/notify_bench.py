"""Notification emails per second into a local SMTP sink, against bare aiosmtplib sending the same message.

Ours: ``Dispatcher.deliver`` for an outbound-success email: render the templates, build the MIME message with the
fax PDF attached, send it through ``SmtpMailer`` (one SMTP session per message, as in production) and record the
outcome. The bookkeeping goes to an in-memory store here, so Postgres is not part of the figure (the integration
tests cover it). Anchor: ``aiosmtplib.send`` of one pre-built message of the same size, one session per message.
The sink is aiosmtpd's ``Sink`` handler in its own process, so it does not share our interpreter.

    uv run python bench/notify_bench.py --messages 400 --concurrency 1 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from fax_notifier.config import SmtpSettings
from fax_notifier.dispatcher import Dispatcher
from fax_notifier.domain import Channel, Kind
from fax_notifier.http import GuardedHttp
from fax_notifier.mail import SmtpMailer, build_message
from fax_notifier.store import ClaimedDelivery
from fax_notifier.templates import render_email
from fax_runtime.network_guard import NetworkGuard

# About the size of a 2-page fine fax as PDF (tiff2pdf passes the G4 data through).
PDF = b"%PDF-1.4\n" + os.urandom(40_000)
CONTEXT = {"name": "Fax", "job_id": "j", "to_number": "+15551230001", "from_number": "+1555", "pages": 2}


class MemoryStore:
    """The dispatcher's bookkeeping, in memory."""

    def __init__(self) -> None:
        self.sent = 0

    async def finish(self, delivery: ClaimedDelivery, status: str, detail: str) -> None:
        if status != "sent":
            raise RuntimeError(detail)
        self.sent += 1

    async def retry_later(self, delivery: ClaimedDelivery, detail: str, interval: float) -> None:
        raise RuntimeError(detail)


class StoredPdf:
    async def for_job(self, job_id: str, tiff: str | None = None) -> tuple[str, str, bytes]:
        return ("fax.pdf", "application/pdf", PDF)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_sink(port: int) -> subprocess.Popen[bytes]:
    sink = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"]
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return sink
        except OSError:
            time.sleep(0.05)
    sink.kill()
    raise RuntimeError("SMTP sink did not start")


async def _run(count: int, concurrency: int, send_one: Any) -> float:
    """Messages per second sending ``count`` messages, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await send_one(i)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - started)


async def bench(port: int, count: int, concurrency: int) -> tuple[float, float]:
    settings = SmtpSettings(host="127.0.0.1", port=port, sender="fax@bench.example")
    store = MemoryStore()
    dispatcher = Dispatcher(
        store,  # type: ignore[arg-type]
        SmtpMailer(settings),
        GuardedHttp(NetworkGuard()),
        None,
        StoredPdf(),  # type: ignore[arg-type]
        sender=settings.sender,
        callback_retry_interval=900,
        message_retry_interval=900,
        lease=300,
    )

    async def ours(i: int) -> None:
        await dispatcher.deliver(
            ClaimedDelivery(
                id=i,
                event_id=uuid.uuid4(),
                channel=Channel.EMAIL,
                recipient=f"user{i}@customer.example",
                kind=Kind.OUTBOUND_SUCCESS,
                account_id="bench",
                job_id=None,
                payload={"context": CONTEXT, "attach_fax_of": "j", "tiff_key": None},
                attempts=1,
                expired=False,
            )
        )

    message: EmailMessage = build_message(
        settings.sender, "user@customer.example", render_email(Kind.OUTBOUND_SUCCESS, CONTEXT),
        ("fax.pdf", "application/pdf", PDF),
    )  # fmt: skip

    async def bare(i: int) -> None:
        await aiosmtplib.send(
            message, sender=settings.sender, recipients=[f"user{i}@customer.example"], hostname="127.0.0.1", port=port
        )

    await _run(20, concurrency, bare)  # warm up both paths
    await _run(20, concurrency, ours)
    bare_rate = await _run(count, concurrency, bare)
    ours_rate = await _run(count, concurrency, ours)
    assert store.sent == count + 20
    return ours_rate, bare_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()
    port = _free_port()
    sink = _start_sink(port)
    try:
        print("| concurrency | ours (emails/s) | bare aiosmtplib (emails/s) | ours / bare |")
        print("|---|---|---|---|")
        for concurrency in args.concurrency:
            ours, bare = asyncio.run(bench(port, args.messages, concurrency))
            print(f"| {concurrency} | {ours:.0f} | {bare:.0f} | {ours / bare:.2f} |")
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
