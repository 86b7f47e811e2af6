"""Callbacks and SMS provider requests go through the one network guard: no spelling of a refused address connects."""

# The URLs below are written with look-alike characters on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from fax_notifier.http import GuardedHttp
from fax_notifier.transport import Outcome
from fax_runtime.network_guard import NetworkGuard

# Each of these means 127.0.0.1 (or ::ffff:127.0.0.1) once normalised the way the HTTP client normalises it.
LOOPBACK_SPELLINGS = [
    "http://127.0.0.1:{port}/cb",
    "https://127.0.0.1:{port}/cb",
    "http://１２７.０.０.１:{port}/x",  # full-width digits
    "http://127。0。0。1:{port}/",  # ideographic full stops
    "http://１２７．０．０．１:{port}/",  # full-width full stops
    "http://①②⑦.⓪.⓪.①:{port}/",  # circled digits
    "http://2130706433:{port}/",  # one decimal number
    "http://127.1:{port}/",  # short form
    "http://0x7f.0.0.1:{port}/",  # hexadecimal
    "http://017700000001:{port}/",  # octal
    "http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]:{port}/",
    "http://localhost:{port}/",
    "http://user:secret@127.0.0.1:{port}/",
]


@dataclass
class ConnectionRecorder:
    """A TCP listener on 127.0.0.1 that counts connections and answers any request with 200."""

    port: int = 0
    connections: int = 0

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[ConnectionRecorder]:
    recorder = ConnectionRecorder()
    server = await asyncio.start_server(recorder.accept, "127.0.0.1", 0)
    recorder.port = server.sockets[0].getsockname()[1]
    async with server:
        yield recorder


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
async def test_no_spelling_of_loopback_is_ever_connected(listener: ConnectionRecorder, spelling: str) -> None:
    """Caught: full-width digits and ideographic dots passed the notifier's own URL check and were delivered."""
    http = GuardedHttp(NetworkGuard())
    try:
        result = await http.request("POST", spelling.format(port=listener.port), data=b"{}", headers={})
    finally:
        await http.close()
    assert listener.connections == 0
    assert result.outcome is Outcome.FAILED, result  # a refused address never becomes allowed: not retried
    assert result.detail


async def test_an_allowed_network_is_reached(listener: ConnectionRecorder) -> None:
    http = GuardedHttp(NetworkGuard.from_setting("127.0.0.0/8"))
    try:
        result = await http.request("POST", f"http://１２７.０.０.１:{listener.port}/x", data=b"{}", headers={})
    finally:
        await http.close()
    assert listener.connections == 1 and result.outcome is Outcome.SENT, result


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.com/", "http:/x"])
async def test_urls_that_are_not_http_fail_once(url: str) -> None:
    http = GuardedHttp(NetworkGuard())
    try:
        result = await http.request("POST", url, data=b"{}", headers={})
    finally:
        await http.close()
    assert result.outcome is Outcome.FAILED and result.detail
