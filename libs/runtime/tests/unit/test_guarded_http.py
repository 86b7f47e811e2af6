"""The guarded session and the URL checks: the address connected to is checked, whatever the URL's spelling."""

# Some URLs below are written with look-alike characters on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from fax_runtime.download import DocumentRequest, fetch_document
from fax_runtime.guarded_http import callback_url_problem, guarded_session, refusal_of, url_problem
from fax_runtime.network_guard import BlockedAddressError, NetworkGuard


@pytest.fixture
async def accepted() -> AsyncIterator[tuple[int, list[int]]]:
    """A loopback listener's port, and a list that grows by one for each connection it accepts."""
    seen: list[int] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(1)
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], seen


LOOPBACK_HOSTS = [
    "127.0.0.1",
    "１２７.０.０.１",
    "127。0。0。1",
    "①②⑦.⓪.⓪.①",
    "[::ffff:127.0.0.1]",
    "0x7f.0.0.1",
    "localhost",
]


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
async def test_the_session_never_connects_to_a_refused_address(accepted: tuple[int, list[int]], host: str) -> None:
    port, seen = accepted
    async with guarded_session(NetworkGuard(), timeout=aiohttp.ClientTimeout(total=5)) as session:
        with pytest.raises(aiohttp.ClientError) as caught:
            await session.get(f"http://{host}:{port}/")
    refusal = refusal_of(caught.value)
    assert refusal is not None and "loopback address" in str(refusal)
    assert seen == []


async def test_the_session_reaches_an_allowed_network(accepted: tuple[int, list[int]]) -> None:
    port, seen = accepted
    async with guarded_session(NetworkGuard.from_setting("127.0.0.0/8"), timeout=aiohttp.ClientTimeout(total=5)) as s:
        with pytest.raises(aiohttp.ClientError) as caught:  # the listener hangs up without answering
            await s.get(f"http://１２７.０.０.１:{port}/")
    assert refusal_of(caught.value) is None and seen  # connected (aiohttp tries a reset connection twice)


async def test_a_document_url_in_full_width_digits_is_refused(accepted: tuple[int, list[int]]) -> None:
    port, seen = accepted
    with pytest.raises(BlockedAddressError, match=r"^refused to connect to 127\.0\.0\.1: loopback address"):
        await fetch_document(DocumentRequest(url=f"http://１２７.０.０.１:{port}/doc.pdf"), guard=NetworkGuard())
    assert seen == []


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("file:///etc/passwd", "unsupported URL scheme 'file': only http and https"),
        ("gopher://127.0.0.1:70/_x", "unsupported URL scheme 'gopher': only http and https"),
        ("ftp://example.com/x", "unsupported URL scheme 'ftp': only http and https"),
        ("/relative/path", "unsupported URL scheme '': only http and https"),
        ("http:/x", "invalid URL 'http:/x': no host"),
        ("http://2130706433/", "2130706433 is not an IP address in dotted-quad form (it means 127.0.0.1)"),
        ("http://127.1/", "127.1 is not an IP address in dotted-quad form (it means 127.0.0.1)"),
        ("http://017700000001/", "017700000001 is not an IP address in dotted-quad form (it means 127.0.0.1)"),
        ("http://134744072/", "134744072 is not an IP address in dotted-quad form (it means 8.8.8.8)"),
        ("https://x.example/" + "a" * 2048, "URL longer than 2048 characters"),
    ],
)
def test_url_problems(url: str, problem: str) -> None:
    assert url_problem(url) == problem


@pytest.mark.parametrize("url", ["https://hooks.example.com/fax", "http://8.8.8.8:8080/cb", "http://[2606:4700::1]/"])
def test_usable_urls_have_no_problem(url: str) -> None:
    assert url_problem(url) == ""


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://１２７.０.０.１:17777/x", "refused to connect to 127.0.0.1: loopback address"),
        ("http://127。0。0。1/", "refused to connect to 127.0.0.1: loopback address"),
        ("http://localhost/", "refused to connect to localhost (127.0.0.1): loopback address"),
        ("http://169.254.169.254/latest/meta-data", "link-local (cloud metadata) address"),
        ("http://[::ffff:a9fe:a9fe]/", "IPv4-mapped address of 169.254.169.254"),
        ("http://[fe80::1%25eth0]/", "link-local address"),
        ("https://10.1.2.3/", "private address"),
        ("http://2130706433/", "is not an IP address in dotted-quad form (it means 127.0.0.1)"),
    ],
)
async def test_callback_urls_that_can_only_reach_refused_addresses(url: str, reason: str) -> None:
    assert reason in await callback_url_problem(url, NetworkGuard())


async def test_callback_url_checks_follow_the_allowed_networks() -> None:
    assert await callback_url_problem("http://localhost:8080/cb", NetworkGuard.from_setting("127.0.0.0/8, ::1")) == ""
    assert await callback_url_problem("http://8.8.8.8/cb", NetworkGuard()) == ""


async def test_a_name_that_does_not_resolve_now_is_left_to_the_guard_at_delivery() -> None:
    assert await callback_url_problem("https://no-such-host.invalid/cb", NetworkGuard()) == ""
