"""Composition root of the API: ``create_app(settings)`` wires the controllers to what they are given.

Pools, stores, the S3 client, the HTTP client and the outbox relay are built in the lifespan (``connect_services``)
and closed there; every handler takes what it needs as a parameter, provided by name from here (``dependencies``):
the settings, the network guard, the link-signing key and each of ``ApiServices``. No handler reads the environment
or the application's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from fax_api.accounts.controllers import ApiKeyController, TokenController, UsersController
from fax_api.accounts.store import AccountStore
from fax_api.accounts.token_cache import TokenCache
from fax_api.config import ApiSettings
from fax_api.faxboxes.controllers import FaxboxesController
from fax_api.faxboxes.store import FaxboxStore
from fax_api.faxes.controllers.inbound import InboxController, IncomingController, SmtpLogController
from fax_api.faxes.controllers.outbound import FaxesController
from fax_api.faxes.store import FaxStore
from fax_api.faxto.controllers.faxes import FaxtoFaxesController
from fax_api.faxto.controllers.files import FaxtoFilesController
from fax_api.faxto.controllers.numbers import FaxtoNumbersController
from fax_api.faxto.controllers.users import FaxtoUsersController
from fax_api.faxto.store import FaxtoStore
from fax_api.monitoring.controllers import healthz, metrics
from fax_api.monitoring.store import MonitoringStore
from fax_api.voipnow.controllers import VoipNowFaxesController
from fax_api.web import openapi
from fax_api.web.errors import EXCEPTION_HANDLERS
from fax_api.web.tracing import server_spans
from fax_jobs import JobStore
from fax_runtime import signing
from fax_runtime.blobs import BlobStore
from fax_runtime.db import create_pool
from fax_runtime.network_guard import NetworkGuard
from fax_runtime.outbox import OutboxRelay

ROUTE_HANDLERS = [
    FaxesController,
    InboxController,
    IncomingController,
    SmtpLogController,
    FaxboxesController,
    UsersController,
    ApiKeyController,
    TokenController,
    FaxtoUsersController,
    FaxtoFaxesController,
    FaxtoFilesController,
    FaxtoNumbersController,
    VoipNowFaxesController,
    healthz,
    metrics,
]


@dataclasses.dataclass(frozen=True)
class ApiServices:
    """What the handlers are given, by field name: built from the settings in the lifespan, closed there."""

    accounts: AccountStore
    faxboxes: FaxboxStore
    faxes: FaxStore
    jobs: JobStore
    faxto: FaxtoStore
    monitoring: MonitoringStore
    blobs: BlobStore
    http: httpx.AsyncClient  # for the peers' health


ConnectServices = Callable[[ApiSettings], AbstractAsyncContextManager[ApiServices]]


@contextlib.asynccontextmanager
async def connect_services(settings: ApiSettings) -> AsyncIterator[ApiServices]:
    """Postgres, S3 and the stores on them, and the outbox relay that publishes what the stores queue."""
    # The API leaves no session state on a connection (no session locks, settings or cursors; the relay's LISTEN
    # connection is never given back listening), so releases skip asyncpg's RESET round trip.
    pool = await create_pool(settings.runtime.database_url, reset_sessions=False)
    blobs = BlobStore(settings.runtime.s3)
    relay = asyncio.create_task(OutboxRelay(pool, settings.runtime.amqp_url).run(), name="outbox-relay")
    accounts = AccountStore(pool, TokenCache(settings.auth_cache_seconds))
    http = httpx.AsyncClient(timeout=3)
    try:
        yield ApiServices(
            accounts=accounts,
            faxboxes=FaxboxStore(pool, settings.smtp_domain),
            faxes=FaxStore(pool, blobs),
            jobs=JobStore(pool, blobs),
            faxto=FaxtoStore(pool, blobs, accounts, settings.faxto.signup_credit),
            monitoring=MonitoringStore(pool),
            blobs=blobs,
            http=http,
        )
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        await http.aclose()
        await pool.close()


def _constant(value: Any) -> Provide:
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)


def _service(name: str) -> Provide:
    def provide(state: State) -> Any:
        return getattr(state.services, name)

    return Provide(provide, sync_to_thread=False)


def create_app(settings: ApiSettings, connect: ConnectServices = connect_services) -> Litestar:
    """The API for ``settings``; ``connect`` builds its services (unit tests give stand-ins)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with connect(settings) as services:
            app.state.services = services
            # What starting made (~100k objects: routes, schemas, pools) lives as long as the process. Kept out of
            # the collector's sight, a full collection no longer stops every request for 50-150 ms.
            gc.freeze()
            yield

    dependencies = {
        "settings": _constant(settings),
        "guard": _constant(NetworkGuard.from_setting(settings.allow_networks)),
        # Signs Fax.to's expiring links (document previews, received faxes) with a key derived from the S3 secret.
        "link_signing_key": _constant(signing.signing_key(settings.runtime.s3.secret_key)),
        **{field.name: _service(field.name) for field in dataclasses.fields(ApiServices)},
    }
    return Litestar(
        route_handlers=ROUTE_HANDLERS,
        lifespan=[lifespan],
        dependencies=dependencies,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[server_spans(exclude=["/healthz", "/metrics"])],
        openapi_config=OpenAPIConfig(
            title="Fax platform API", version="0.1.0", path="/schema", components=openapi.components()
        ),
        request_max_body_size=60 * 1024 * 1024,
    )
