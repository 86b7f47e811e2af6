"""Composition root of the API: pools, stores and the outbox relay are built in the lifespan and closed there."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from fax_api.account_routes import ApiKeyController, TokenController, UsersController
from fax_api.account_store import AccountStore
from fax_api.config import ApiSettings
from fax_api.controllers import FaxesController
from fax_api.dialects.errors import RETRY_AFTER_S, UNAVAILABLE, dialect_error
from fax_api.dialects.faxto.routes import FaxtoController, FaxtoNumbersController
from fax_api.dialects.faxto.store import FaxtoStore
from fax_api.dialects.voipnow.routes import VoipNowFaxesController
from fax_api.faxbox_routes import FaxboxesController
from fax_api.faxbox_store import FaxboxStore
from fax_api.faxes_inbound import InboxController, IncomingController, SmtpLogController
from fax_api.kazoo import KazooError, error_response
from fax_api.store import ApiStore
from fax_jobs import JobState, JobStore
from fax_runtime.blobs import BlobStore
from fax_runtime.db import create_pool
from fax_runtime.metrics import default_metrics
from fax_runtime.network_guard import NetworkGuard
from fax_runtime.outbox import OutboxRelay
from fax_runtime.transient import is_transient


def _kazoo_error(request: Request, exc: KazooError) -> Response:
    return error_response(request, exc)


def _http_error(request: Request, exc: HTTPException) -> Response:
    answer = dialect_error(request.method, request.url.path, exc.status_code, str(exc.detail), exc.headers)
    if answer is not None:
        return answer
    message = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}.get(
        exc.status_code, "error"
    )
    return error_response(request, KazooError(exc.status_code, message, {"message": str(exc.detail)}))


def _unexpected_error(request: Request, exc: Exception) -> Response:
    if is_transient(exc):
        # Postgres or S3 is away: nothing was wrong with the request, which the client should make again shortly.
        request.logger.warning("a dependency is unavailable: %s: %s", type(exc).__name__, exc)
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        answer = dialect_error(request.method, request.url.path, HTTP_503_SERVICE_UNAVAILABLE, "", headers)
        if answer is not None:
            return answer
        response = error_response(
            request, KazooError(HTTP_503_SERVICE_UNAVAILABLE, "service_unavailable", {"message": UNAVAILABLE})
        )
        response.headers.update(headers)
        return response
    request.logger.exception("unhandled error", exc_info=exc)
    answer = dialect_error(request.method, request.url.path, HTTP_500_INTERNAL_SERVER_ERROR, "")
    if answer is not None:
        return answer
    return error_response(request, KazooError(HTTP_500_INTERNAL_SERVER_ERROR, "internal_server_error"))


@get("/healthz", include_in_schema=False)
async def healthz(state: State) -> Response:
    """200 when Postgres, S3 and every peer service answer; 503 otherwise."""
    checks = {"postgres": await _safe(state.store.ping), "s3": await state.blobs.ping()}
    for url in state.settings.ready_peers:
        checks[url] = await _peer_ready(state.http, url)
    healthy = all(checks.values())
    return Response(
        content={"status": "ok" if healthy else "unavailable", "checks": checks}, status_code=200 if healthy else 503
    )


@get("/metrics", include_in_schema=False)
async def metrics(state: State) -> Response:
    """Prometheus metrics: this process's, plus jobs by state and the unpublished outbox, read from Postgres."""
    exported = default_metrics()
    counts, unsent = await state.store.job_counts()
    for job_state in JobState:
        exported.jobs.labels(job_state).set(counts.get(job_state, 0))
    exported.outbox_pending.set(unsent)
    body, content_type = exported.render()
    return Response(content=body, media_type=content_type)


async def _safe(check: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return bool(await check())
    except Exception:
        return False


async def _peer_ready(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


def create_app(settings: ApiSettings) -> Litestar:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await create_pool(settings.runtime.database_url)
        blobs = BlobStore(settings.runtime.s3)
        relay = asyncio.create_task(OutboxRelay(pool, settings.runtime.amqp_url).run(), name="outbox-relay")
        app.state.settings = settings
        app.state.store = ApiStore(pool, blobs)
        app.state.jobs = JobStore(pool, blobs)
        app.state.accounts = AccountStore(pool)
        app.state.faxboxes = FaxboxStore(pool, settings.smtp_domain)
        app.state.blobs = blobs
        app.state.faxto = FaxtoStore(pool, blobs)
        app.state.http = httpx.AsyncClient(timeout=3)
        app.state.guard = NetworkGuard.from_setting(settings.allow_networks)
        try:
            yield
        finally:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            await app.state.http.aclose()
            await pool.close()

    def provide_store(state: State) -> ApiStore:
        return state.store

    def provide_jobs(state: State) -> JobStore:
        return state.jobs

    def provide_accounts(state: State) -> AccountStore:
        return state.accounts

    def provide_faxboxes(state: State) -> FaxboxStore:
        return state.faxboxes

    return Litestar(
        route_handlers=[
            FaxesController,
            InboxController,
            IncomingController,
            SmtpLogController,
            FaxboxesController,
            UsersController,
            ApiKeyController,
            TokenController,
            FaxtoController,
            FaxtoNumbersController,
            VoipNowFaxesController,
            healthz,
            metrics,
        ],
        lifespan=[lifespan],
        dependencies={
            "store": Provide(provide_store, sync_to_thread=False),
            "jobs": Provide(provide_jobs, sync_to_thread=False),
            "accounts": Provide(provide_accounts, sync_to_thread=False),
            "faxboxes": Provide(provide_faxboxes, sync_to_thread=False),
        },
        exception_handlers={KazooError: _kazoo_error, HTTPException: _http_error, Exception: _unexpected_error},
        plugins=[OpenTelemetryPlugin(OpenTelemetryConfig(exclude=["/healthz", "/metrics"]))],
        openapi_config=OpenAPIConfig(title="Fax platform API", version="0.1.0", path="/schema"),
        request_max_body_size=60 * 1024 * 1024,
    )
