"""Logs: one JSON object per line carrying the trace and the fax it concerns (``FAX_LOG_FORMAT=text`` for people).

A fax id is bound for the duration of the work on that fax (``with fax_context(job_id): ...``); the trace and span
ids come from the active OpenTelemetry span, so a log line leads to the trace of the same fax and back.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping

from opentelemetry import trace

_FAX_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("fax_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def fax_context(fax_id: object) -> Iterator[None]:
    token = _FAX_ID.set(str(fax_id))
    try:
        yield
    finally:
        _FAX_ID.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        fax_id = _FAX_ID.get()
        if fax_id is not None:
            entry["fax_id"] = fax_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(service: str, env: Mapping[str, str] | None = None) -> None:
    """Root logging for a service process: JSON by default, or ``FAX_LOG_FORMAT=text``; ``FAX_LOG_LEVEL``."""
    env = os.environ if env is None else env
    handler = logging.StreamHandler()
    if env.get("FAX_LOG_FORMAT", "json").strip().lower() == "text":
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    else:
        handler.setFormatter(JsonFormatter(service))
    handler.formatter.converter = time.gmtime  # UTC, as the trailing Z says
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(env.get("FAX_LOG_LEVEL", "INFO").strip().upper() or "INFO")
