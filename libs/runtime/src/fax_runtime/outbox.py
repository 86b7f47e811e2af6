"""The transactional outbox: events are rows written in the same transaction as the state change,
and a relay publishes them to the ``fax.events`` exchange with publisher confirms.

Every service that writes outbox rows runs a relay; rows are claimed with ``FOR UPDATE SKIP LOCKED``,
so any number of relays share the work and a row is marked sent only after the broker confirmed it.
Delivery is at-least-once (a crash between confirm and commit republishes), which consumers absorb.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aio_pika
import asyncpg
from opentelemetry import trace

from fax_contracts import EXCHANGE, Event, encode_event, routing_key
from fax_runtime.telemetry import current_trace_headers

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

NOTIFY_CHANNEL = "fax_outbox"

_INSERT = """
INSERT INTO outbox (event_id, routing_key, payload, headers) VALUES ($1::uuid, $2::text, $3::bytea, $4::jsonb)
"""
_CLAIM = """
SELECT id, event_id, routing_key, payload, headers FROM outbox
WHERE sent_at IS NULL ORDER BY id LIMIT $1::int FOR UPDATE SKIP LOCKED
"""
_MARK_SENT = "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])"


async def enqueue(conn: asyncpg.Connection, event: Event) -> None:
    """Add ``event`` to the outbox inside the caller's transaction, with the current trace context."""
    await conn.execute(_INSERT, event.event_id, routing_key(type(event)), encode_event(event), current_trace_headers())
    # NOTIFY is delivered only on commit, so the relay never wakes for a row that was rolled back.
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)


class OutboxRelay:
    """Publishes committed outbox rows. Runs until cancelled; reconnects on failure."""

    def __init__(self, pool: asyncpg.Pool, amqp_url: str, *, batch_size: int = 100, poll_seconds: float = 1.0) -> None:
        self._pool = pool
        self._amqp_url = amqp_url
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wakeup = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self._run_connected()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying in 2 s")
                await asyncio.sleep(2)

    async def _run_connected(self) -> None:
        connection = await aio_pika.connect(self._amqp_url)
        listener = await self._pool.acquire()
        try:
            await listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
            while True:
                self._wakeup.clear()
                published = await self.publish_pending(exchange)
                if published < self._batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), self._poll_seconds)
        finally:
            try:
                await listener.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            except Exception:
                # Possibly still listening: never give a pool that may skip its reset (create_pool) a LISTEN session.
                listener.terminate()
            await self._pool.release(listener)
            await connection.close()

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    async def publish_pending(self, exchange: aio_pika.abc.AbstractExchange) -> int:
        """Publish one batch of unsent rows and mark them sent; return how many."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, self._batch_size)
            if not rows:
                return 0
            # Publish concurrently: each call resolves when the broker confirms that message.
            await asyncio.gather(*(self._publish(exchange, row) for row in rows))
            await conn.execute(_MARK_SENT, [row["id"] for row in rows])
        return len(rows)

    async def _publish(self, exchange: aio_pika.abc.AbstractExchange, row: asyncpg.Record) -> None:
        message = aio_pika.Message(
            body=bytes(row["payload"]),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(row["event_id"]),
            headers=dict(row["headers"]),
        )
        await exchange.publish(message, routing_key=row["routing_key"])
