import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from fax_runtime.logs import JsonFormatter, fax_context


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("fax_transmitter.handlers", logging.INFO, __file__, 1, message, (), None)


def test_a_log_line_carries_the_trace_and_the_fax_it_is_about() -> None:
    tracer = TracerProvider().get_tracer("test")
    formatter = JsonFormatter("transmitter")
    with tracer.start_as_current_span("attempt") as span, fax_context("6f1c"):
        line = json.loads(formatter.format(_record("sent 2 page(s)")))
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert (line["fax_id"], line["service"], line["message"]) == ("6f1c", "transmitter", "sent 2 page(s)")


def test_outside_a_fax_and_a_trace_the_line_has_neither() -> None:
    line = json.loads(JsonFormatter("api").format(_record("ready")))
    assert "fax_id" not in line and "trace_id" not in line
    assert line["level"] == "INFO" and line["time"].endswith("Z")
