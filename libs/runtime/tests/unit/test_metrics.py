"""The health server exposes the platform's metrics on GET /metrics, beside /healthz."""

from __future__ import annotations

import asyncio
import socket

from prometheus_client.parser import text_string_to_metric_families

from fax_runtime.health import HealthServer
from fax_runtime.metrics import FaxMetrics, default_metrics


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def get(port: int, path: str) -> tuple[int, dict[str, str], str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await writer.drain()
    raw = (await reader.read()).decode()
    writer.close()
    head, _, body = raw.partition("\r\n\r\n")
    status_line, *header_lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_are_served_with_what_was_recorded() -> None:
    metrics = FaxMetrics()
    metrics.calls_active.labels(direction="outbound").set(3)
    metrics.pages_sent.inc(7)
    metrics.t30_completions.labels(direction="outbound", code="0").inc()
    metrics.conversion_seconds.labels(format="pdf").observe(0.3)
    metrics.notifications.labels(channel="email", outcome="delivered").inc(2)

    async def healthy() -> bool:
        return True

    port = free_port()
    server = HealthServer("127.0.0.1", port, healthy, metrics=metrics)
    await server.start()
    try:
        status, headers, body = await get(port, "/metrics")
        health_status, _, health_body = await get(port, "/healthz")
        missing, _, _ = await get(port, "/nothing")
    finally:
        await server.stop()

    assert status == 200 and headers["content-type"].startswith("text/plain; version=")
    values = samples(body)
    assert values[("fax_calls_active", (("direction", "outbound"),))] == 3
    assert values[("fax_pages_sent_total", ())] == 7
    assert values[("fax_t30_completions_total", (("code", "0"), ("direction", "outbound")))] == 1
    assert values[("fax_conversion_seconds_bucket", (("format", "pdf"), ("le", "0.5")))] == 1
    assert values[("fax_conversion_seconds_bucket", (("format", "pdf"), ("le", "0.25")))] == 0
    assert values[("fax_notifications_total", (("channel", "email"), ("outcome", "delivered")))] == 2
    assert (health_status, health_body) == (200, "ok\n")
    assert missing == 404


async def test_default_metrics_include_the_process() -> None:
    async def unhealthy() -> bool:
        return False

    port = free_port()
    server = HealthServer("127.0.0.1", port, unhealthy)
    await server.start()
    try:
        status, _, body = await get(port, "/metrics")
        health_status, _, _ = await get(port, "/healthz")
    finally:
        await server.stop()
    names = {name for name, _ in samples(body)}
    assert status == 200 and health_status == 503
    assert "process_cpu_seconds_total" in names or "python_info" in names
    assert default_metrics() is default_metrics()


def test_every_metric_name_is_in_the_fax_namespace() -> None:
    families = list(FaxMetrics().registry.collect())
    assert len(families) >= 15
    assert all(family.name.startswith("fax_") for family in families)
