"""The transactional outbox and the broker topology against real Postgres and RabbitMQ."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import aio_pika
import asyncpg
import pytest
from faststream import AckPolicy
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from fax_contracts import EXCHANGE, JobSubmitted, decode_event, encode_event, routing_key
from fax_runtime.broker import create_broker, dead_letter_queue, declare_dead_letters, event_queue, events_exchange
from fax_runtime.db import create_pool
from fax_runtime.outbox import OutboxRelay, enqueue


def _event() -> JobSubmitted:
    return JobSubmitted(event_id=uuid.uuid4(), occurred_at=dt.datetime.now(dt.UTC), job_id=uuid.uuid4(), account_id="a")


@pytest.fixture
async def pool(database_url: str):
    pool = await create_pool(database_url)
    yield pool
    await pool.close()


@pytest.fixture
async def listener(infra):
    """An exclusive queue bound to fax.events for JobSubmitted, to see what the relay publishes."""
    connection = await aio_pika.connect(infra.amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key=routing_key(JobSubmitted))
    yield queue
    await connection.close()


async def _received(
    queue: aio_pika.abc.AbstractQueue, wait_seconds: float = 5
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    messages = []
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while asyncio.get_running_loop().time() < deadline:
        message = await queue.get(fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            if messages:
                break
            continue
        await message.ack()
        messages.append(message)
    return messages


async def _publish_once(pool: asyncpg.Pool, amqp_url: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        return await OutboxRelay(pool, amqp_url).publish_pending(exchange)
    finally:
        await connection.close()


async def test_committed_event_is_published_with_its_trace_and_marked_sent(pool, listener, infra) -> None:
    tracer = TracerProvider().get_tracer("test")
    event = _event()
    with tracer.start_as_current_span("http request") as span:
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, event)
        trace_id = format(span.get_span_context().trace_id, "032x")

    assert await _publish_once(pool, infra.amqp_url) == 1

    messages = await _received(listener)
    assert [decode_event(m.body) for m in messages] == [event]
    assert messages[0].message_id == str(event.event_id)
    assert trace_id in messages[0].headers["traceparent"]
    assert await pool.fetchval("SELECT sent_at IS NOT NULL FROM outbox WHERE event_id = $1", event.event_id)
    assert await _publish_once(pool, infra.amqp_url) == 0  # nothing is published twice


async def test_rolled_back_event_is_never_published(pool, listener, infra) -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, _event())
            raise Abort

    assert await _publish_once(pool, infra.amqp_url) == 0
    assert await _received(listener, wait_seconds=0.5) == []


async def test_relay_wakes_on_commit_without_polling_delay(pool, listener, infra) -> None:
    relay = asyncio.create_task(OutboxRelay(pool, infra.amqp_url, poll_seconds=30).run())
    try:
        await asyncio.sleep(0.5)  # connected and listening
        event = _event()
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, event)
        messages = await _received(listener, wait_seconds=5)
        assert [decode_event(m.body) for m in messages] == [event]
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)


async def test_handler_that_keeps_failing_is_dead_lettered_not_lost(infra) -> None:
    service = f"test-{uuid.uuid4().hex[:8]}"
    broker = create_broker(infra.amqp_url)
    attempts: list[uuid.UUID] = []

    @broker.subscriber(event_queue(service, JobSubmitted), events_exchange, ack_policy=AckPolicy.NACK_ON_ERROR)
    async def always_fails(event: JobSubmitted) -> None:
        attempts.append(event.event_id)
        raise RuntimeError("handler bug")

    event = _event()
    connection = await aio_pika.connect(infra.amqp_url)
    try:
        await broker.start()
        await declare_dead_letters(broker, service, [JobSubmitted])
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        await exchange.publish(
            aio_pika.Message(body=encode_event(event), content_type="application/json"),
            routing_key=routing_key(JobSubmitted),
        )
        dlq = await channel.get_queue(dead_letter_queue(service, JobSubmitted).name)
        dead = await _received(dlq, wait_seconds=20)
        assert [decode_event(m.body) for m in dead] == [event]
        assert len(attempts) >= 2  # redelivered before giving up
    finally:
        await broker.stop()
        for name in (event_queue(service, JobSubmitted).name, dead_letter_queue(service, JobSubmitted).name):
            await (await connection.channel()).queue_delete(name)
        await connection.close()


async def test_migrations_apply_from_empty_and_are_idempotent(database_url: str) -> None:
    from fax_runtime.migrations import apply

    assert await apply(database_url) == []  # the template was already migrated
    conn = await asyncpg.connect(database_url)
    try:
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    finally:
        await conn.close()
    assert {"fax_jobs", "outbox", "accounts", "auth_tokens", "inbound_faxes", "schema_migrations"} <= tables


async def test_changed_migration_is_refused(database_url: str) -> None:
    from fax_runtime.migrations import Migration, MigrationError, apply, bundled_migrations

    first = bundled_migrations()[0]
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await apply(database_url, [Migration(first.version, first.name, first.sql + "\n-- edited")])


async def test_concurrent_runners_apply_each_migration_once(infra) -> None:
    from fax_runtime.migrations import apply, bundled_migrations

    name = f"mig_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(infra.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = infra.database_url.rsplit("/", 1)[0] + f"/{name}"
        results = await asyncio.gather(*(apply(url) for _ in range(4)))
        assert sorted(len(r) for r in results) == [0, 0, 0, len(bundled_migrations())]
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_finished_job_totals_start_from_the_jobs_a_database_already_holds(infra) -> None:
    """The migration that counts finished jobs as they finish (for /metrics) first counts those already there;
    /metrics' query then folds every later change in."""
    from fax_api.monitoring.store import Q
    from fax_runtime.migrations import apply, bundled_migrations

    migrations = bundled_migrations()
    totals = next(m for m in migrations if m.name == "finished_job_totals")
    name = f"mig_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(infra.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = infra.database_url.rsplit("/", 1)[0] + f"/{name}"
        await apply(url, [m for m in migrations if m.version < totals.version])
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("INSERT INTO accounts (id, name) VALUES ('acct', 'Account')")
            await conn.execute(
                "INSERT INTO fax_jobs (id, account_id, status, request, to_number) "
                "SELECT gen_random_uuid(), 'acct', s, '{}', '1' "
                "FROM unnest(ARRAY['completed', 'completed', 'completed', 'failed', 'failed', 'pending']) s"
            )
            await apply(url)

            async def gauge() -> dict[str, int]:
                return {row["status"]: row["jobs"] for row in await conn.fetch(Q["jobs_by_state"])}

            assert await gauge() == {"completed": 3, "failed": 2, "pending": 1}
            await conn.execute("UPDATE fax_jobs SET status = 'completed' WHERE status = 'pending'")
            await conn.execute("DELETE FROM fax_jobs WHERE status = 'failed'")
            assert await gauge() == {"completed": 4, "failed": 0}
            assert await conn.fetchval("SELECT count(*) FROM fax_job_total_changes") == 0  # folded
            assert await gauge() == {"completed": 4, "failed": 0}
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_consumer_continues_the_trace_of_the_request_that_caused_the_event(pool, infra) -> None:
    """One trace from the HTTP request through every hop: the context rides in the message headers."""
    service = f"test-{uuid.uuid4().hex[:8]}"
    broker = create_broker(infra.amqp_url)
    seen: asyncio.Queue[tuple[int, uuid.UUID]] = asyncio.Queue()

    @broker.subscriber(event_queue(service, JobSubmitted), events_exchange, ack_policy=AckPolicy.NACK_ON_ERROR)
    async def handle(event: JobSubmitted) -> None:
        await seen.put((trace.get_current_span().get_span_context().trace_id, event.event_id))

    tracer = TracerProvider().get_tracer("test")
    event = _event()
    try:
        await broker.start()
        with tracer.start_as_current_span("PUT /faxes") as span:
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(conn, event)
            request_trace = span.get_span_context().trace_id
        await _publish_once(pool, infra.amqp_url)
        consumer_trace, event_id = await asyncio.wait_for(seen.get(), 10)
        assert event_id == event.event_id
        assert consumer_trace == request_trace
    finally:
        await broker.stop()
        connection = await aio_pika.connect(infra.amqp_url)
        await (await connection.channel()).queue_delete(event_queue(service, JobSubmitted).name)
        await connection.close()
