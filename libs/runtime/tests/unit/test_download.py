"""fetch_document against a real aiohttp server on 127.0.0.1, with the guard opened for loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from fax_runtime.download import DocumentRequest, FetchError, fetch_document
from fax_runtime.network_guard import BlockedAddressError, NetworkGuard

LOOPBACK = NetworkGuard.from_setting("127.0.0.0/8, ::1/128")
PDF_BODY = b"%PDF-1.4\n% pretend document\n"


def _routes(hits: Counter[str]) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/doc.pdf")
    async def document(request: web.Request) -> web.Response:
        return web.Response(body=PDF_BODY, content_type="application/pdf")

    @routes.get("/missing")
    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="not here")

    @routes.route("*", "/echo")
    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "method": request.method,
                "host": request.headers.get("Host"),
                "referer": request.headers.get("Referer"),
                "content_type": request.headers.get("Content-Type"),
                "body": await request.text(),
            }
        )

    @routes.get("/hops/{count}")
    async def hops(request: web.Request) -> web.Response:
        count = int(request.match_info["count"])
        if count == 0:
            return web.Response(body=b"%PDF-1.4 after redirects")
        raise web.HTTPFound(f"/hops/{count - 1}")

    @routes.route("*", "/redirect")
    async def redirect(request: web.Request) -> web.Response:
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"Location": request.query["to"]})

    @routes.get("/big")
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    @routes.get("/big-streamed")
    async def big_streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"y" * 500)
        await response.write_eof()
        return response

    @routes.get("/flaky/{key}")
    async def flaky(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        hits[key] += 1
        if hits[key] == 1:
            return web.Response(status=503)
        return web.Response(body=PDF_BODY)

    @routes.get("/down/{key}")
    async def down(request: web.Request) -> web.Response:
        hits[request.match_info["key"]] += 1
        return web.Response(status=503)

    @routes.get("/slow")
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(body=PDF_BODY)

    return routes


@pytest.fixture(scope="module")
async def hits() -> Counter[str]:
    return Counter()


@pytest.fixture(scope="module")
async def base_url(hits: Counter[str]) -> AsyncIterator[str]:
    app = web.Application()
    app.add_routes(_routes(hits))
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_get_returns_the_body(base_url: str) -> None:
    document = await fetch_document(DocumentRequest(url=f"{base_url}/doc.pdf"), guard=LOOPBACK)

    assert document.body == PDF_BODY
    assert document.content_type == "application/pdf"
    assert document.final_url == f"{base_url}/doc.pdf"


async def test_404_gives_kazoos_error_text(base_url: str) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch_document(DocumentRequest(url=f"{base_url}/missing"), guard=LOOPBACK)

    assert str(caught.value) == "could not retrieve file, http response 404"


async def test_post_sends_content_and_headers(base_url: str) -> None:
    request = DocumentRequest(
        url=f"{base_url}/echo",
        method="post",
        host="docs.example.com",
        referer="https://portal.example.com/faxes",
        content_type="application/json",
        content='{"invoice": 42}',
    )

    document = await fetch_document(request, guard=LOOPBACK)

    assert document.body == (
        b'{"method": "POST", "host": "docs.example.com", "referer": "https://portal.example.com/faxes",'
        b' "content_type": "application/json", "body": "{\\"invoice\\": 42}"}'
    )


async def test_get_sends_host_and_referer(base_url: str) -> None:
    request = DocumentRequest(url=f"{base_url}/echo", host="virtual.example", referer="https://r.example/")

    document = await fetch_document(request, guard=LOOPBACK)

    assert b'"method": "GET", "host": "virtual.example", "referer": "https://r.example/"' in document.body


async def test_post_content_is_limited_to_256_characters(base_url: str) -> None:
    request = DocumentRequest(url=f"{base_url}/echo", method="post", content="x" * 257)

    with pytest.raises(FetchError, match="POST content longer than 256 characters"):
        await fetch_document(request, guard=LOOPBACK)


async def test_five_redirects_are_followed(base_url: str) -> None:
    document = await fetch_document(DocumentRequest(url=f"{base_url}/hops/5"), guard=LOOPBACK)

    assert document.body == b"%PDF-1.4 after redirects"
    assert document.final_url == f"{base_url}/hops/0"


async def test_a_sixth_redirect_is_refused(base_url: str) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch_document(DocumentRequest(url=f"{base_url}/hops/6"), guard=LOOPBACK)

    assert str(caught.value) == "could not retrieve file: more than 5 redirects"


async def test_redirect_into_a_blocked_address_is_refused(base_url: str) -> None:
    port = base_url.rsplit(":", 1)[1]
    only_one_address = NetworkGuard.from_setting("127.0.0.1/32")
    url = f"{base_url}/redirect?to=http://127.0.0.2:{port}/doc.pdf"

    with pytest.raises(BlockedAddressError) as caught:
        await fetch_document(DocumentRequest(url=url), guard=only_one_address)

    assert str(caught.value) == (
        "refused to connect to 127.0.0.2: loopback address (set FAX_FETCH_ALLOW_NETWORKS to allow)"
    )


async def test_redirect_to_another_scheme_is_refused(base_url: str) -> None:
    url = f"{base_url}/redirect?to=ftp://127.0.0.1/doc.pdf"

    with pytest.raises(FetchError, match=r"^could not retrieve file: redirected to unsupported URL scheme 'ftp'"):
        await fetch_document(DocumentRequest(url=url), guard=LOOPBACK)


async def test_post_redirected_with_303_becomes_get(base_url: str) -> None:
    url = f"{base_url}/redirect?status=303&to=/echo"
    request = DocumentRequest(url=url, method="post", content="a=1", content_type="application/x-www-form-urlencoded")

    document = await fetch_document(request, guard=LOOPBACK)

    assert b'"method": "GET"' in document.body
    assert b'"body": ""' in document.body


async def test_post_redirected_with_307_stays_post(base_url: str) -> None:
    url = f"{base_url}/redirect?status=307&to=/echo"
    request = DocumentRequest(url=url, method="post", content="a=1", content_type="text/plain")

    document = await fetch_document(request, guard=LOOPBACK)

    assert b'"method": "POST"' in document.body
    assert b'"body": "a=1"' in document.body


async def test_host_override_is_dropped_when_redirected_elsewhere(base_url: str) -> None:
    port = base_url.rsplit(":", 1)[1]
    url = f"{base_url}/redirect?to=http://localhost:{port}/echo"

    document = await fetch_document(DocumentRequest(url=url, host="virtual.example"), guard=LOOPBACK)

    assert f'"host": "localhost:{port}"'.encode() in document.body


async def test_loopback_is_refused_unless_allowlisted(base_url: str) -> None:
    with pytest.raises(BlockedAddressError) as caught:
        await fetch_document(DocumentRequest(url=f"{base_url}/doc.pdf"), guard=NetworkGuard())

    assert str(caught.value) == (
        "refused to connect to 127.0.0.1: loopback address (set FAX_FETCH_ALLOW_NETWORKS to allow)"
    )


async def test_resolved_names_are_checked_too(base_url: str) -> None:
    port = base_url.rsplit(":", 1)[1]

    with pytest.raises(BlockedAddressError, match=r"^refused to connect to localhost \((127\.0\.0\.1|::1)\): loopback"):
        await fetch_document(DocumentRequest(url=f"http://localhost:{port}/doc.pdf"), guard=NetworkGuard())


async def test_resolved_addresses_outside_the_allowlist_are_dropped(base_url: str) -> None:
    port = base_url.rsplit(":", 1)[1]

    document = await fetch_document(
        DocumentRequest(url=f"http://localhost:{port}/doc.pdf"), guard=NetworkGuard.from_setting("127.0.0.1/32")
    )

    assert document.body == PDF_BODY


async def test_ipv6_literals_are_checked(base_url: str) -> None:
    with pytest.raises(BlockedAddressError, match=r"^refused to connect to ::1: loopback address"):
        await fetch_document(DocumentRequest(url="http://[::1]:9/doc.pdf"), guard=NetworkGuard())


async def test_unsupported_scheme_is_refused() -> None:
    with pytest.raises(FetchError) as caught:
        await fetch_document(DocumentRequest(url="ftp://example.com/doc.pdf"), guard=LOOPBACK)

    assert str(caught.value) == "unsupported URL scheme 'ftp': only http and https"


async def test_size_cap_uses_content_length(base_url: str) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch_document(DocumentRequest(url=f"{base_url}/big"), guard=LOOPBACK, max_bytes=4096)

    assert str(caught.value) == "document larger than 4 KB limit"


async def test_size_cap_is_enforced_while_streaming(base_url: str) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch_document(DocumentRequest(url=f"{base_url}/big-streamed"), guard=LOOPBACK, max_bytes=1000)

    assert str(caught.value) == "document larger than 1000 bytes limit"


async def test_default_size_cap_text() -> None:
    from fax_runtime.download import _format_size

    assert f"document larger than {_format_size(50 * 1024 * 1024)} limit" == "document larger than 50 MB limit"


async def test_a_503_is_retried(base_url: str, hits: Counter[str]) -> None:
    document = await fetch_document(
        DocumentRequest(url=f"{base_url}/flaky/retried"), guard=LOOPBACK, retry_backoff=0.01
    )

    assert document.body == PDF_BODY
    assert hits["retried"] == 2


async def test_persistent_503_fails_after_the_retries(base_url: str, hits: Counter[str]) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch_document(DocumentRequest(url=f"{base_url}/down/always"), guard=LOOPBACK, retry_backoff=0.01)

    assert str(caught.value) == "could not retrieve file, http response 503"
    assert hits["always"] == 3


async def test_connection_refused_is_explained() -> None:
    port = _unused_port()
    started = time.monotonic()

    with pytest.raises(FetchError) as caught:
        await fetch_document(DocumentRequest(url=f"http://127.0.0.1:{port}/"), guard=LOOPBACK, retry_backoff=0.05)

    assert str(caught.value) == f"could not retrieve file: connection refused by 127.0.0.1:{port}"
    assert time.monotonic() - started >= 0.05 + 0.1  # both retries waited their backoff


async def test_slow_server_times_out(base_url: str) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch_document(DocumentRequest(url=f"{base_url}/slow"), guard=LOOPBACK, total_timeout=0.3, retries=0)

    assert str(caught.value) == "could not retrieve file: no complete response within 0.3 s"


async def test_header_injection_is_refused(base_url: str) -> None:
    request = DocumentRequest(url=f"{base_url}/echo", referer="https://a.example/\r\nX-Evil: 1")

    with pytest.raises(FetchError, match="invalid referer header value"):
        await fetch_document(request, guard=LOOPBACK)
