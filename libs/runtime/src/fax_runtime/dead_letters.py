"""Dead letters: list them, and replay them to the queue they came from.

A message lands in ``<queue>.dlq`` when its handler failed ``DELIVERY_LIMIT`` times for a reason that is not a
transient dependency error (``fax_runtime.transient``): a message that is wrong in itself, or a bug. Once the cause
is understood (and fixed), replaying puts it back on the queue of the service that dead-lettered it, and only that
one: every handler is idempotent, so a message whose job has moved on since is a no-op.

    python -m fax_runtime.dead_letters list [--queue NAME]... [--limit N]
    python -m fax_runtime.dead_letters replay [--queue NAME]... [--message-id ID]... [--limit N]

The broker is ``FAX_AMQP_URL`` (or ``--amqp-url``). Without ``--queue``, every dead-letter queue of the platform's
workers is read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq.exceptions
import msgspec

from fax_contracts import ALL_EVENTS, decode_event
from fax_runtime.broker import queue_name

WORKERS = ("fetcher", "transmitter", "notifier")
DLQ_SUFFIX = ".dlq"
# Headers the broker added on the way to the dead-letter queue; a replayed message starts its life afresh.
_BROKER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                   "x-delivery-count")  # fmt: skip


@dataclass(frozen=True)
class DeadLetter:
    queue: str  # the dead-letter queue it waits in
    message_id: str
    event: str  # the event's type (its routing key), or "undecodable"
    subject: str  # what it is about: job_id=..., fax_id=..., document_id=...
    deaths: int
    reason: str

    def line(self) -> str:
        return f"{self.queue}\t{self.message_id}\t{self.event}\t{self.subject}\t{self.deaths}\t{self.reason}"


def dead_letter_queues(services: Iterable[str] = WORKERS) -> list[str]:
    """Every dead-letter queue the platform's workers may have (not all exist: a service declares its own)."""
    return [queue_name(service, event_type) + DLQ_SUFFIX for service in services for event_type in ALL_EVENTS]


def origin_queue(dead_letter_queue: str) -> str:
    if not dead_letter_queue.endswith(DLQ_SUFFIX):
        raise ValueError(f"{dead_letter_queue!r} is not a dead-letter queue (<queue>{DLQ_SUFFIX})")
    return dead_letter_queue.removesuffix(DLQ_SUFFIX)


def describe(queue: str, message: aio_pika.abc.AbstractIncomingMessage) -> DeadLetter:
    headers: dict[str, Any] = dict(message.headers or {})
    deaths = headers.get("x-death") or []
    first = deaths[0] if deaths and isinstance(deaths[0], dict) else {}
    try:
        event = decode_event(message.body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        kind, subject = "undecodable", f"{len(message.body)} bytes"
    else:
        kind = type(event).__struct_config__.tag
        fields = msgspec.to_builtins(event)
        subject = ", ".join(f"{key}={fields[key]}" for key in ("job_id", "fax_id", "document_id") if key in fields)
    return DeadLetter(
        queue=queue,
        message_id=message.message_id or "",
        event=str(kind),
        subject=subject,
        deaths=int(first.get("count") or 0),
        reason=str(first.get("reason") or headers.get("x-first-death-reason") or ""),
    )


async def _existing(connection: aio_pika.abc.AbstractConnection, queues: Sequence[str]) -> list[str]:
    """The queues of ``queues`` that exist (a passive declaration of a missing one closes its channel)."""
    found = []
    for name in queues:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            continue
        else:
            found.append(name)
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
    return found


async def list_dead_letters(amqp_url: str, queues: Sequence[str], limit: int = 20) -> list[DeadLetter]:
    """Up to ``limit`` messages of each queue, left where they are."""
    letters: list[DeadLetter] = []
    connection = await aio_pika.connect(amqp_url)
    try:
        for name in await _existing(connection, queues):
            # Messages taken unacknowledged go back to the queue, in their order, when the channel closes.
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                for _ in range(limit):
                    message = await queue.get(no_ack=False, fail=False)
                    if message is None:
                        break
                    letters.append(describe(name, message))
            finally:
                await channel.close()
    finally:
        await connection.close()
    return letters


async def replay(
    amqp_url: str, queues: Sequence[str], *, message_ids: Sequence[str] = (), limit: int | None = None
) -> list[DeadLetter]:
    """Move dead letters (all, or those of ``message_ids``; at most ``limit``) back to the queue each came from;
    what was replayed. Each is published (and confirmed by the broker) before it is removed from the dead letters."""
    replayed: list[DeadLetter] = []
    wanted = set(message_ids)
    connection = await aio_pika.connect(amqp_url)
    try:
        for name in await _existing(connection, queues):
            channel = await connection.channel(publisher_confirms=True)
            try:
                queue = await channel.declare_queue(name, passive=True)
                while limit is None or len(replayed) < limit:
                    message = await queue.get(no_ack=False, fail=False)
                    if message is None:
                        break
                    if wanted and message.message_id not in wanted:
                        continue  # left unacknowledged: back in the queue when the channel closes
                    headers = {k: v for k, v in (message.headers or {}).items() if k not in _BROKER_HEADERS}
                    await channel.default_exchange.publish(
                        aio_pika.Message(
                            body=message.body,
                            headers=headers,
                            content_type=message.content_type,
                            message_id=message.message_id,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=origin_queue(name),
                    )
                    await message.ack()
                    replayed.append(describe(name, message))
            finally:
                await channel.close()
    finally:
        await connection.close()
    return replayed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fax_runtime.dead_letters", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("list", "replay"))
    parser.add_argument("--amqp-url", default=os.environ.get("FAX_AMQP_URL", ""), help="default: $FAX_AMQP_URL")
    parser.add_argument(
        "--queue", action="append", default=[], help="a dead-letter queue (repeatable); default: every worker's"
    )
    parser.add_argument("--message-id", action="append", default=[], help="replay only these (repeatable)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many (list: 20 per queue)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.amqp_url:
        print("no broker: set FAX_AMQP_URL or pass --amqp-url", file=sys.stderr)
        return 2
    queues = args.queue or dead_letter_queues()
    not_dead_letters = [queue for queue in queues if not queue.endswith(DLQ_SUFFIX)]
    if not_dead_letters:
        print(f"not dead-letter queues (<queue>{DLQ_SUFFIX}): {', '.join(not_dead_letters)}", file=sys.stderr)
        return 2
    if args.command == "list":
        letters = asyncio.run(list_dead_letters(args.amqp_url, queues, args.limit or 20))
        print("queue\tmessage_id\tevent\tsubject\tdeaths\treason")
        for letter in letters:
            print(letter.line())
        print(f"{len(letters)} dead letter(s)", file=sys.stderr)
        return 0
    replayed = asyncio.run(replay(args.amqp_url, queues, message_ids=args.message_id, limit=args.limit))
    for letter in replayed:
        print(f"replayed to {origin_queue(letter.queue)}: {letter.line()}")
    print(f"{len(replayed)} dead letter(s) replayed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
