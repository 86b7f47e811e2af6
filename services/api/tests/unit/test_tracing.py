"""The API's server spans: one a request, recorded as the sampler decides, the trace continued either way.

A small litestar app with the API's tracing middleware and a tracer whose spans are kept in memory; its handler answers
the trace id it runs under (what the logs and the outbox carry on).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar, get, put
from litestar.params import FromPath
from litestar.testing import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from fax_api.web.tracing import server_spans

PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"


@put("/v2/accounts/{account_id:str}/faxes", status_code=201)
async def create(account_id: FromPath[str]) -> dict[str, str]:
    return {"trace_id": format(trace.get_current_span().get_span_context().trace_id, "032x")}


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _client(ratio: float) -> tuple[TestClient, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Litestar([create, healthz], middleware=[server_spans(["/healthz"], provider.get_tracer("test"))])
    return TestClient(app), exporter


@pytest.fixture
def always() -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    client, exporter = _client(1.0)
    with client:
        yield client, exporter


@pytest.fixture
def never() -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    client, exporter = _client(0.0)
    with client:
        yield client, exporter


def test_a_recorded_request_is_one_server_span_named_by_its_route(always) -> None:
    client, exporter = always
    answer = client.put("/v2/accounts/acct-1/faxes")
    assert answer.status_code == 201
    [span] = exporter.get_finished_spans()  # one span, not one per ASGI send and receive
    assert span.kind == SpanKind.SERVER
    assert span.name.startswith("PUT /v2/accounts/{account_id") and "acct-1" not in span.name
    assert span.attributes["http.response.status_code"] == 201
    assert span.attributes["url.path"] == "/v2/accounts/acct-1/faxes"
    assert answer.json()["trace_id"] == format(span.context.trace_id, "032x")


def test_an_unsampled_request_records_nothing_but_runs_in_a_trace(never) -> None:
    client, exporter = never
    answer = client.put("/v2/accounts/acct-1/faxes")
    assert answer.status_code == 201
    assert exporter.get_finished_spans() == ()
    assert int(answer.json()["trace_id"], 16) != 0  # logs and the fax's event still carry a trace id


def test_the_callers_trace_is_continued_and_its_decision_kept(never) -> None:
    client, exporter = never
    answer = client.put("/v2/accounts/acct-1/faxes", headers={"traceparent": f"00-{PARENT_TRACE}-b7ad6b7169203331-01"})
    assert answer.json()["trace_id"] == PARENT_TRACE
    [span] = exporter.get_finished_spans()  # sampled by the caller: recorded even at ratio 0
    assert format(span.parent.span_id, "016x") == "b7ad6b7169203331"


def test_excluded_paths_get_no_span(always) -> None:
    client, exporter = always
    assert client.get("/healthz").status_code == 200
    assert exporter.get_finished_spans() == ()
