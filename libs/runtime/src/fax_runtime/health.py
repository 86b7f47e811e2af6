"""A minimal HTTP endpoint for worker services: ``GET /healthz`` is 200 when the check passes, else 503;
``GET /metrics`` is the Prometheus exposition of ``fax_runtime.metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from fax_runtime.metrics import FaxMetrics, default_metrics

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[bool]]


class HealthServer:
    def __init__(self, host: str, port: int, check: HealthCheck, metrics: FaxMetrics | None = None) -> None:
        self._host = host
        self._port = port
        self._check = check
        self._metrics = metrics
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)).strip():
                pass  # headers are not needed
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) >= 2 else ""
            content_type = "text/plain"
            if path in {"/healthz", "/readyz"}:
                healthy = await self._safe_check()
                status, body = ("200 OK", b"ok\n") if healthy else ("503 Service Unavailable", b"unavailable\n")
            elif path == "/metrics":
                status = "200 OK"
                body, content_type = (self._metrics or default_metrics()).render()
            else:
                status, body = "404 Not Found", b"not found\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _safe_check(self) -> bool:
        try:
            return await asyncio.wait_for(self._check(), 5)
        except Exception:
            log.exception("health check failed")
            return False
