"""OpenTelemetry: one trace per fax across services; exported only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Every process samples the traces it starts at ``FAX_TRACE_SAMPLE_RATIO`` and follows the decision of a trace it
joins (parent-based), so a sampled fax is traced through every service and an unsampled one costs each service a
non-recording span: trace ids still reach the logs and the messages, nothing is recorded. The standard
``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``, when set, take precedence.
"""

from __future__ import annotations

import os

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased


def tracer_provider(service_name: str, sample_ratio: float) -> TracerProvider:
    """A tracer provider for ``service_name`` sampling new traces at ``sample_ratio`` (0..1), following parents.

    Spans are created (so context propagates) but only exported when an OTLP endpoint is configured.
    """
    # None lets the SDK build the sampler the standard variables name.
    standard = os.environ.get("OTEL_TRACES_SAMPLER", "").strip()
    sampler = None if standard else ParentBased(TraceIdRatioBased(sample_ratio))
    provider = TracerProvider(sampler=sampler, resource=Resource.create({"service.name": service_name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def setup_tracing(service_name: str, sample_ratio: float) -> TracerProvider:
    """Install ``tracer_provider(service_name, sample_ratio)`` for this process."""
    provider = tracer_provider(service_name, sample_ratio)
    trace.set_tracer_provider(provider)
    return provider


def current_trace_headers() -> dict[str, str]:
    """W3C trace context of the active span, to travel with a message."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier
