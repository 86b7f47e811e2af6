"""Dead letters on a real RabbitMQ: what lands there (a message wrong in itself, never one whose dependency was
away), and the operator's command that lists them and replays them to the queue they came from."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import pytest
from faststream import AckPolicy
from faststream.rabbit import RabbitBroker

from fax_contracts import JobSubmitted, encode_event, routing_key
from fax_devstack.infra import Endpoints
from fax_runtime import dead_letters, transient
from fax_runtime.broker import create_broker, declare_dead_letters, event_queue, events_exchange, queue_name
from fax_runtime.transient import RetryPolicy


def _event() -> JobSubmitted:
    return JobSubmitted(event_id=uuid.uuid4(), occurred_at=dt.datetime.now(dt.UTC), job_id=uuid.uuid4(), account_id="a")


async def _publish(amqp_url: str, event: JobSubmitted) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange("fax.events", aio_pika.ExchangeType.TOPIC, durable=True)
        await exchange.publish(
            aio_pika.Message(encode_event(event), message_id=str(event.event_id), content_type="application/json"),
            routing_key=routing_key(JobSubmitted),
        )
    finally:
        await connection.close()


async def _depth(amqp_url: str, queue: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0
    finally:
        await connection.close()


async def _until(ready: Callable[[], Awaitable[bool]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await ready():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        await asyncio.sleep(0.1)


@pytest.fixture
async def consumer(infra: Endpoints) -> AsyncIterator[tuple[RabbitBroker, str, list[JobSubmitted], list[Exception]]]:
    """A worker's consumer of JobSubmitted on a queue of its own; ``failures`` are raised by its next deliveries."""
    service = f"dlq-test-{uuid.uuid4().hex[:8]}"
    broker = create_broker(infra.amqp_url)
    handled: list[JobSubmitted] = []
    failures: list[Exception] = []

    @broker.subscriber(event_queue(service, JobSubmitted), events_exchange, ack_policy=AckPolicy.NACK_ON_ERROR)
    async def handle(event: JobSubmitted) -> None:
        if failures:
            raise failures.pop(0)
        handled.append(event)

    await broker.start()
    await declare_dead_letters(broker, service, [JobSubmitted])
    try:
        yield broker, service, handled, failures
    finally:
        await broker.stop()
        connection = await aio_pika.connect(infra.amqp_url)
        channel = await connection.channel()
        for name in (queue_name(service, JobSubmitted), queue_name(service, JobSubmitted) + ".dlq"):
            await channel.queue_delete(name)
        await connection.close()


async def test_a_dependency_away_for_longer_than_five_deliveries_takes_none_of_them(
    infra: Endpoints, consumer: tuple[RabbitBroker, str, list[JobSubmitted], list[Exception]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Before the fix each failure was a nack: ten failures in a row were two messages' worth of deliveries, and the
    message went to the dead-letter queue while the dependency was still away."""
    monkeypatch.setattr(transient, "HANDLER_POLICY", RetryPolicy(first_delay_s=0.01, give_up_after_s=30))
    _, service, handled, failures = consumer
    failures += [ConnectionRefusedError(111, "Connect call failed")] * 10
    event = _event()

    await _publish(infra.amqp_url, event)
    await _until(lambda: _handled(handled), 20)

    assert [e.event_id for e in handled] == [event.event_id]
    assert await _depth(infra.amqp_url, queue_name(service, JobSubmitted) + ".dlq") == 0


async def _handled(handled: list[JobSubmitted]) -> bool:
    return bool(handled)


async def test_a_message_wrong_in_itself_is_dead_lettered_listed_and_replayed(
    infra: Endpoints, consumer: tuple[RabbitBroker, str, list[JobSubmitted], list[Exception]],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _, service, handled, failures = consumer
    dlq = queue_name(service, JobSubmitted) + ".dlq"
    failures += [ValueError("a bug in the handler")] * 20
    event = _event()

    await _publish(infra.amqp_url, event)

    async def dead_lettered() -> bool:
        return await _depth(infra.amqp_url, dlq) == 1

    await _until(dead_lettered, 20)
    assert handled == []
    failures.clear()  # the bug is fixed

    (letter,) = await dead_letters.list_dead_letters(infra.amqp_url, [dlq])
    assert (letter.queue, letter.message_id, letter.event) == (dlq, str(event.event_id), "fax.job.submitted.v1")
    assert letter.subject == f"job_id={event.job_id}" and letter.deaths == 1
    assert await _depth(infra.amqp_url, dlq) == 1, "listing leaves the dead letters where they are"

    # The cause fixed, the operator replays it: it goes back to the consumer's queue, and only there.
    command = ["replay", "--amqp-url", infra.amqp_url, "--queue", dlq]
    assert await asyncio.to_thread(dead_letters.main, command) == 0
    assert f"replayed to {queue_name(service, JobSubmitted)}" in capsys.readouterr().out
    await _until(lambda: _handled(handled), 20)
    assert [e.event_id for e in handled] == [event.event_id]
    assert await _depth(infra.amqp_url, dlq) == 0


def test_the_command_refuses_a_queue_that_is_not_a_dead_letter_queue(capsys: pytest.CaptureFixture[str]) -> None:
    assert dead_letters.main(["replay", "--amqp-url", "amqp://unused/", "--queue", "fetcher.fax.job.submitted.v1"]) == 2
    assert "not dead-letter queues" in capsys.readouterr().err
