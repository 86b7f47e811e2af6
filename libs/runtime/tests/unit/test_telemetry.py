"""The trace sampler: new traces are recorded at ``FAX_TRACE_SAMPLE_RATIO``, a joined trace keeps its decision."""

from __future__ import annotations

import pytest
from opentelemetry import propagate
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from fax_runtime.config import DEFAULT_TRACE_SAMPLE_RATIO, ConfigError, RuntimeSettings
from fax_runtime.telemetry import tracer_provider

ENV = {"FAX_DATABASE_URL": "postgresql://x/y", "FAX_AMQP_URL": "amqp://x", "FAX_S3_ENDPOINT": "x:9"}


def _remote_parent(sampled: bool):
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    parent = SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=flags)
    return set_span_in_context(NonRecordingSpan(parent))


@pytest.fixture(autouse=True)
def _no_standard_sampler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)


def test_the_ratio_setting_is_a_share_from_0_to_1() -> None:
    assert RuntimeSettings.from_env(ENV).trace_sample_ratio == DEFAULT_TRACE_SAMPLE_RATIO == 0.1
    assert RuntimeSettings.from_env({**ENV, "FAX_TRACE_SAMPLE_RATIO": "1"}).trace_sample_ratio == 1.0
    assert RuntimeSettings.from_env({**ENV, "FAX_TRACE_SAMPLE_RATIO": "0"}).trace_sample_ratio == 0.0
    for bad in ("1.5", "-0.1", "nan", "often"):
        with pytest.raises(ConfigError, match="FAX_TRACE_SAMPLE_RATIO must be a number from 0 to 1"):
            RuntimeSettings.from_env({**ENV, "FAX_TRACE_SAMPLE_RATIO": bad})


def test_an_unsampled_trace_records_nothing_but_still_travels() -> None:
    """At ratio 0 a new request's span is not recorded, yet its trace id reaches logs and the messages sent on."""
    tracer = tracer_provider("test", 0.0).get_tracer("test")
    with tracer.start_as_current_span("PUT /faxes") as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    assert not span.is_recording()
    assert span.get_span_context().is_valid
    flags = int(carrier["traceparent"].rsplit("-", 1)[1], 16)
    assert not flags & TraceFlags.SAMPLED  # the next service records nothing either


def test_ratio_1_records_every_new_trace() -> None:
    tracer = tracer_provider("test", 1.0).get_tracer("test")
    assert all(tracer.start_span("PUT /faxes").is_recording() for _ in range(20))


def test_a_joined_trace_keeps_the_decision_of_the_service_that_started_it() -> None:
    """A fax sampled by the API is traced in every later service, whatever their own ratio, and the other way round."""
    never, always = tracer_provider("test", 0.0).get_tracer("t"), tracer_provider("test", 1.0).get_tracer("t")
    assert never.start_span("render", context=_remote_parent(sampled=True)).is_recording()
    assert not always.start_span("render", context=_remote_parent(sampled=False)).is_recording()


def test_the_standard_sampler_variable_takes_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert not tracer_provider("test", 1.0).get_tracer("t").start_span("PUT /faxes").is_recording()
