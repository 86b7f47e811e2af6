"""RabbitMQ topology: the ``fax.events`` topic exchange, one quorum queue per (service, event), and dead letters.

Every handler runs through ``TransientRetryMiddleware``: a dependency that is away (Postgres, S3, the broker) is
waited for, never charged to the message. A handler that raises anything else is nacked and redelivered; after
``DELIVERY_LIMIT`` deliveries the quorum queue dead-letters the message to ``fax.events.dlx``, where it waits in
``<queue>.dlq`` for an operator (``python -m fax_runtime.dead_letters``).
"""

from __future__ import annotations

from fast_depends.msgspec import MsgSpecSerializer
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware

from fax_contracts import EXCHANGE, Event, routing_key
from fax_runtime.event_metrics import EventMetricsMiddleware
from fax_runtime.transient import TransientRetryMiddleware

DEAD_LETTER_EXCHANGE = "fax.events.dlx"
DELIVERY_LIMIT = 5

events_exchange = RabbitExchange(EXCHANGE, type=ExchangeType.TOPIC, durable=True)
dead_letter_exchange = RabbitExchange(DEAD_LETTER_EXCHANGE, type=ExchangeType.DIRECT, durable=True)


def create_broker(amqp_url: str) -> RabbitBroker:
    return RabbitBroker(
        amqp_url,
        serializer=MsgSpecSerializer(),
        # Outermost first: the retries happen inside one traced, counted handling of the message.
        middlewares=(RabbitTelemetryMiddleware(), EventMetricsMiddleware, TransientRetryMiddleware),
        # Our own logging covers outcomes; faststream's per-message lines would double it.
        log_level=10,
        # Back within a second of RabbitMQ (aio-pika's robust connection waits this long between attempts).
        reconnect_interval=1.0,
    )


def queue_name(service: str, event_type: type[Event]) -> str:
    return f"{service}.{routing_key(event_type)}"


def event_queue(service: str, event_type: type[Event]) -> RabbitQueue:
    """The durable quorum queue through which ``service`` consumes ``event_type``."""
    name = queue_name(service, event_type)
    return RabbitQueue(
        name,
        queue_type=QueueType.QUORUM,
        durable=True,
        routing_key=routing_key(event_type),
        arguments={
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": name,
        },
    )


def dead_letter_queue(service: str, event_type: type[Event]) -> RabbitQueue:
    name = queue_name(service, event_type)
    return RabbitQueue(f"{name}.dlq", queue_type=QueueType.QUORUM, durable=True, routing_key=name)


async def declare_dead_letters(broker: RabbitBroker, service: str, event_types: list[type[Event]]) -> None:
    """Declare the dead-letter exchange and this service's DLQs (call after ``broker.start()``)."""
    exchange = await broker.declare_exchange(dead_letter_exchange)
    for event_type in event_types:
        queue = await broker.declare_queue(dead_letter_queue(service, event_type))
        await queue.bind(exchange, routing_key=queue_name(service, event_type))
