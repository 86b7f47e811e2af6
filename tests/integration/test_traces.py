"""One OpenTelemetry trace per fax, across every service: api -> fetcher -> transmitter -> notifier.

The platform runs as ``make run`` starts it, every service exporting OTLP/HTTP to a collector in this test that
keeps the spans in memory; the trace that starts at the API's request must reach all four services. The trace is
sampled (``FAX_TRACE_SAMPLE_RATIO=1``): a recorded trace must be recorded in every service it reaches.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.integration.stack import REPO, RunningStack, infra_env, running_stack


class SpanCollector:
    """An OTLP/HTTP trace receiver that keeps (service, span name) per trace id."""

    def __init__(self) -> None:
        self.traces: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector.add(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                service = next(
                    (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"), "?"
                )
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        self.traces[span.trace_id.hex()].add((service, span.name))

    def services_in(self, trace_id: str) -> set[str]:
        with self._lock:
            return {service for service, _ in self.traces.get(trace_id, set())}

    def trace_of(self, service: str, name_part: str) -> list[str]:
        with self._lock:
            return [t for t, spans in self.traces.items() if any(s == service and name_part in n for s, n in spans)]


@pytest.fixture(scope="module")
def traced(infra, document_server: str) -> Iterator[tuple[RunningStack, SpanCollector]]:
    collector = SpanCollector()
    env = {
        **infra_env(infra, bucket=f"trace-{uuid.uuid4().hex[:8]}"),
        "FAX_FETCH_ALLOW_NETWORKS": "127.0.0.0/8",
        "FAX_LINE": "loopback",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        # Record every trace the API starts (by default one in ten is); the others follow its decision.
        "FAX_TRACE_SAMPLE_RATIO": "1",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    try:
        with running_stack(REPO / ".devstack" / f"test-trace-{uuid.uuid4().hex[:8]}", env) as stack:
            yield stack, collector
    finally:
        collector.server.shutdown()


def test_one_trace_follows_a_fax_through_every_service(traced, document_server: str) -> None:
    stack, collector = traced
    account = stack.credentials["FAX_ACCOUNT_ID"]
    headers = {"X-Auth-Token": stack.credentials["FAX_AUTH_TOKEN"]}
    created = httpx.put(
        f"{stack.api_url}/v2/accounts/{account}/faxes",
        headers=headers,
        json={"data": {"document": {"url": f"{document_server}/fax.pdf"}, "to_number": "+15551230000",
                       "from_number": "+15550001000", "notifications": {"email": {"send_to": "ops@example.com"}}}},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    fax_id = created.json()["data"]["id"]
    deadline = time.monotonic() + 120
    wanted = {"fax-api", "fax-fetcher", "fax-transmitter", "fax-notifier"}
    while True:
        status = httpx.get(f"{stack.api_url}/v2/accounts/{account}/faxes/outbox/{fax_id}", headers=headers)
        traces = collector.trace_of("fax-api", "PUT")
        if status.status_code == 200 and traces and wanted <= collector.services_in(traces[0]):
            break
        if time.monotonic() > deadline:
            seen = {t: sorted(collector.traces[t]) for t in traces}
            pytest.fail(f"no single trace reached {sorted(wanted)}; API traces: {seen}\n{stack.logs()}")
        time.sleep(0.5)
    assert len(traces) == 1  # one request, one trace
