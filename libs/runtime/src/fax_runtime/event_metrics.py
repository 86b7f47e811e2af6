"""Broker metrics every worker records: how late events arrive, how their handling ends, and queue depth."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream import BaseMiddleware
from faststream.rabbit import RabbitBroker

from fax_contracts import decode_event
from fax_runtime.metrics import default_metrics

log = logging.getLogger(__name__)


class EventMetricsMiddleware(BaseMiddleware):
    """Consumer lag (an event's ``occurred_at`` to its handling) and handled events by outcome, per routing key."""

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
        metrics = default_metrics()
        key = getattr(msg.raw_message, "routing_key", None) or "unknown"
        try:
            occurred = decode_event(msg.body).occurred_at
            metrics.consumer_lag_seconds.labels(key).observe(
                max(0.0, (dt.datetime.now(dt.UTC) - occurred).total_seconds())
            )
        except Exception:
            log.debug("message on %s is not a fax event; no lag recorded", key)
        try:
            result = await call_next(msg)
        except Exception:
            metrics.events_handled.labels(key, "error").inc()
            raise
        metrics.events_handled.labels(key, "ok").inc()
        return result


async def watch_queues(broker: RabbitBroker, queues: Sequence[Any], every_s: float = 15.0) -> None:
    """Keep the depth and consumer gauges of this worker's queues current (until cancelled)."""
    metrics = default_metrics()
    while True:
        for queue in queues:
            try:
                declared = await broker.declare_queue(queue)
                result = declared.declaration_result
                metrics.queue_messages.labels(queue.name).set(result.message_count or 0)
                metrics.queue_consumers.labels(queue.name).set(result.consumer_count or 0)
            except Exception:
                log.warning("could not read the depth of queue %s", queue.name, exc_info=True)
        await asyncio.sleep(every_s)
