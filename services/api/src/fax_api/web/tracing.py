"""One OpenTelemetry server span per API request, costing no more than the sampler's decision when not recorded.

litestar's OpenTelemetry middleware (the ASGI instrumentation) decodes every request header several times to build
span and metric attributes before the sampler is asked: about 60 µs of CPU a request, recorded or not, some 8 % of
a JSON fax submission (``docs/PERFORMANCE.md``, Intake). This one asks first: it continues the caller's trace
context, starts the span, and describes only a span that is recorded. It replaces litestar's as the config's
``middleware_class``, so litestar still places it outermost and honours ``exclude``.
"""

from __future__ import annotations

from litestar.middleware.base import AbstractMiddleware, DefineMiddleware
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.plugins.opentelemetry.middleware import OpenTelemetryInstrumentationMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode


class SampledServerSpans(OpenTelemetryInstrumentationMiddleware):
    """A SERVER span named ``METHOD /route/{template}`` with the method, path, route and status when recorded."""

    def __init__(self, app: ASGIApp, config: OpenTelemetryConfig) -> None:
        AbstractMiddleware.__init__(
            self, app=app, scopes=config.scopes, exclude=config.exclude, exclude_opt_key=config.exclude_opt_key
        )
        self._tracer = config.tracer or trace.get_tracer(__name__)
        # The headers the installed propagators read (traceparent, tracestate, baggage by default).
        self._context_headers = frozenset(field.encode() for field in propagate.get_global_textmap().fields)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in self._context_headers
        }
        parent = propagate.extract(carrier) if carrier else None
        method = scope.get("method", "")
        span = self._tracer.start_span(f"{method} {scope['path']}".lstrip(), context=parent, kind=SpanKind.SERVER)
        token = context.attach(trace.set_span_in_context(span))
        try:
            if span.is_recording():
                await self._recorded(span, method, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            context.detach(token)
            span.end()

    async def _recorded(self, span: Span, method: str, scope: Scope, receive: Receive, send: Send) -> None:
        span.set_attributes({"http.request.method": method, "url.path": scope["path"]})

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                span.set_attribute("http.response.status_code", message["status"])
                if message["status"] >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR))
            raise
        finally:
            if template := scope.get("path_template"):  # known once routed
                span.update_name(f"{method} {template}".lstrip())
                span.set_attribute("http.route", template)


def server_spans(exclude: list[str], tracer: trace.Tracer | None = None) -> DefineMiddleware:
    """``SampledServerSpans`` as the app's middleware (litestar moves it outermost); paths matching ``exclude`` get
    no span."""
    return OpenTelemetryConfig(exclude=exclude, tracer=tracer, middleware_class=SampledServerSpans).middleware
