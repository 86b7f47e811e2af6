"""The life of a worker service: connect, declare, consume, relay the outbox, answer health, stop cleanly.

A service describes itself with a ``WorkerSpec`` (its name, the events it consumes and a function that
registers its subscribers); ``run_worker`` does the rest, the same way for every service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from faststream.rabbit import RabbitBroker

from fax_contracts import Event
from fax_runtime.blobs import BlobStore
from fax_runtime.broker import create_broker, declare_dead_letters, event_queue
from fax_runtime.config import RuntimeSettings
from fax_runtime.db import create_pool
from fax_runtime.event_metrics import watch_queues
from fax_runtime.health import HealthServer
from fax_runtime.logs import configure_logging
from fax_runtime.outbox import OutboxRelay
from fax_runtime.telemetry import setup_tracing
from fax_runtime.transient import UNBOUNDED, retry_transient

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What a service's wiring function receives to build its handlers."""

    broker: RabbitBroker
    pool: asyncpg.Pool
    blobs: BlobStore
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    consumes: list[type[Event]]
    wire: Callable[[WorkerContext], Awaitable[None]]
    relay_outbox: bool = True


async def run_worker(spec: WorkerSpec, runtime: RuntimeSettings, health_host: str, health_port: int) -> None:
    """Run until SIGINT/SIGTERM."""
    setup_tracing(f"fax-{spec.name}", runtime.trace_sample_ratio)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    # A worker started while a dependency is away (a restart during an outage) waits for it instead of exiting.
    pool = await retry_transient(
        lambda: create_pool(runtime.database_url), what="connecting to Postgres", policy=UNBOUNDED
    )
    blobs = BlobStore(runtime.s3)
    await retry_transient(blobs.ensure_bucket, what="reaching S3", policy=UNBOUNDED)
    broker = create_broker(runtime.amqp_url)
    context = WorkerContext(broker=broker, pool=pool, blobs=blobs)
    await spec.wire(context)

    async def healthy() -> bool:
        db_ok = await pool.fetchval("SELECT true")
        return bool(db_ok) and await broker.ping(timeout=3) and await blobs.ping()

    health = HealthServer(health_host, health_port, healthy)
    tasks: list[asyncio.Task[None]] = []
    try:
        await retry_transient(broker.start, what="connecting to RabbitMQ", policy=UNBOUNDED)
        await declare_dead_letters(broker, spec.name, spec.consumes)
        if spec.relay_outbox:
            tasks.append(asyncio.create_task(OutboxRelay(pool, runtime.amqp_url).run(), name="outbox-relay"))
        queues = [event_queue(spec.name, event_type) for event_type in spec.consumes]
        tasks.append(asyncio.create_task(watch_queues(broker, queues), name="queue-metrics"))
        await health.start()
        log.info("%s ready (health on %s:%d)", spec.name, health_host, health_port)
        await stop.wait()
        log.info("%s stopping", spec.name)
    finally:
        await health.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Stop consuming first: in-flight messages are nacked back to the queue, never lost.
        await broker.stop()
        for close in context.on_close:
            await close()
        await pool.close()


def serve(spec: WorkerSpec, runtime: RuntimeSettings, health_host: str, health_port: int) -> None:
    """Entry point for ``python -m fax_<service>``."""
    configure_logging(spec.name)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker(spec, runtime, health_host, health_port))
