"""Callback URLs are checked when they are written, the same way for every dialect.

A URL whose every address the network guard refuses (loopback, the metadata service, private networks, in whatever
spelling) or that is not http(s) could only ever fail: it is refused now with the field's error, in the dialect's
envelope, instead of failing delivery after delivery later. The guard still checks each connection when the
notifier calls it (`fax_runtime.guarded_http`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from fax_api.web.faxto import FaxtoError
from fax_api.web.kazoo import KazooError
from fax_runtime.guarded_http import callback_url_problem
from fax_runtime.network_guard import NetworkGuard

# Where a Kazoo document carries callback URLs: a fax job's own, and a faxbox's notifications.
_CALLBACK_PATHS = (
    ("callback", "url"),
    ("notifications", "inbound", "callback", "url"),
    ("notifications", "outbound", "callback", "url"),
)


def kazoo_callback_urls(document: object) -> dict[str, str]:
    """The callback URLs a Kazoo fax or faxbox document (or a patch of one) sets, by field name."""
    found: dict[str, str] = {}
    for path in _CALLBACK_PATHS:
        node: object = document
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, str) and node:
            found[".".join(path)] = node
    return found


async def refused_callback_urls(guard: NetworkGuard, urls: Mapping[str, str]) -> dict[str, str]:
    """Why each URL of ``urls`` (field -> URL) could never be called back; only the refused fields are named."""
    problems = await asyncio.gather(*(callback_url_problem(url, guard) for url in urls.values()))
    return {field: problem for field, problem in zip(urls, problems, strict=True) if problem}


async def check_kazoo_callback_urls(guard: NetworkGuard, document: object) -> None:
    """Raise Kazoo's 400 naming each callback URL of ``document`` that could never be called back."""
    refused = await refused_callback_urls(guard, kazoo_callback_urls(document))
    if refused:
        raise KazooError(
            400,
            "invalid data",
            {field: {"format": {"message": problem, "target": "url"}} for field, problem in refused.items()},
        )


async def check_faxto_callback_url(guard: NetworkGuard, params: Mapping[str, object]) -> str:
    """A Fax.to call's ``callback_url`` ("" to have none), or Fax.to's 400 when no callback to it could be delivered."""
    url = params.get("callback_url")
    if url == "":
        return ""
    if not isinstance(url, str):
        raise FaxtoError(400, "callback_url must be an http:// or https:// URL")
    refused = await refused_callback_urls(guard, {"callback_url": url})
    if refused:
        raise FaxtoError(400, f"callback_url is refused: {refused['callback_url']}")
    return url
