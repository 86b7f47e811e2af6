"""OpenTelemetry: one trace per fax across services; exported only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set."""

from __future__ import annotations

import os

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def setup_tracing(service_name: str) -> TracerProvider:
    """Install a tracer provider for this process. Spans are created (so context propagates) but only exported
    when an OTLP endpoint is configured."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def current_trace_headers() -> dict[str, str]:
    """W3C trace context of the active span, to travel with a message."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier
