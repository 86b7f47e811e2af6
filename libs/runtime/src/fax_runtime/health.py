"""A minimal HTTP health endpoint for worker services: ``GET /healthz`` is 200 when the check passes, else 503."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[bool]]


class HealthServer:
    def __init__(self, host: str, port: int, check: HealthCheck) -> None:
        self._host = host
        self._port = port
        self._check = check
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
            if len(parts) >= 2 and parts[1].split("?")[0] in {"/healthz", "/readyz"}:
                healthy = await self._safe_check()
                status, body = ("200 OK", b"ok\n") if healthy else ("503 Service Unavailable", b"unavailable\n")
            else:
                status, body = "404 Not Found", b"not found\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
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
