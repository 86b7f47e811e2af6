"""``/healthz`` (ready when Postgres, S3 and every peer service answer) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from litestar import Response, get

from fax_api.config import ApiSettings
from fax_api.monitoring.store import MonitoringStore
from fax_api.web.injection import Injected
from fax_jobs import JobState
from fax_runtime.blobs import BlobStore
from fax_runtime.metrics import default_metrics


@get("/healthz", include_in_schema=False)
async def healthz(
    settings: Injected[ApiSettings],
    monitoring: Injected[MonitoringStore],
    blobs: Injected[BlobStore],
    http: Injected[httpx.AsyncClient],
) -> Response:
    """200 when Postgres, S3 and every peer service answer; 503 otherwise."""
    checks = {"postgres": await _safe(monitoring.ping), "s3": await blobs.ping()}
    for url in settings.ready_peers:
        checks[url] = await _peer_ready(http, url)
    healthy = all(checks.values())
    return Response(
        content={"status": "ok" if healthy else "unavailable", "checks": checks}, status_code=200 if healthy else 503
    )


@get("/metrics", include_in_schema=False)
async def metrics(monitoring: Injected[MonitoringStore]) -> Response:
    """Prometheus metrics: this process's, plus jobs by state and the unpublished outbox, read from Postgres."""
    exported = default_metrics()
    counts, unsent = await monitoring.job_counts()
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
