"""``python -m fax_smtp_gateway``: email-to-fax on FAX_SMTP_GATEWAY_HOST:FAX_SMTP_GATEWAY_PORT (127.0.0.1:19025)."""

from __future__ import annotations

import asyncio
import logging

from fax_jobs import JobStore
from fax_runtime.worker import WorkerContext, WorkerSpec, serve
from fax_smtp_gateway.config import Settings
from fax_smtp_gateway.gateway import FaxIntake, GatewayStore, SessionLimit, smtp_factory

log = logging.getLogger(__name__)


def create_worker(settings: Settings) -> WorkerSpec:
    async def wire(context: WorkerContext) -> None:
        handler = FaxIntake(GatewayStore(context.pool), JobStore(context.pool, context.blobs), settings)
        smtp = smtp_factory(handler, settings, SessionLimit(settings.max_sessions))
        server = await asyncio.get_running_loop().create_server(smtp, settings.host, settings.port)
        log.info("email-to-fax on %s:%d", settings.host, settings.port)

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        context.on_close.append(stop)

    # The gateway relays its own outbox rows (JobSubmitted) so intake does not depend on the API running.
    return WorkerSpec(name="smtp-gateway", consumes=[], wire=wire, relay_outbox=True)


def main() -> None:
    settings = Settings.from_env()
    serve(create_worker(settings), settings.runtime, settings.health_host, settings.health_port)


if __name__ == "__main__":
    main()
