"""Signed, expiring download links: HMAC-SHA256 over the path and expiry, checked by the API route that serves them.

The key is FAX_URL_SIGNING_KEY, else derived from the S3 secret key, so every API process (and replica) and the
notifier, which puts links in receive callbacks, sign and check with the same key without another setting.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

LINK_TTL_SECONDS = 3600


def signing_key(s3_secret_key: str) -> bytes:
    configured = os.environ.get("FAX_URL_SIGNING_KEY", "")
    if configured:
        return configured.encode()
    return hashlib.sha256(b"fax-url-signing\x00" + s3_secret_key.encode()).digest()


def signature(key: bytes, path: str, expires: int) -> str:
    return hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_query(key: bytes, path: str, ttl: int = LINK_TTL_SECONDS, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + ttl)
    return f"expires={expires}&signature={signature(key, path, expires)}"


def valid(key: bytes, path: str, expires: str, given: str, now: float | None = None) -> bool:
    try:
        moment = int(expires)
    except ValueError:
        return False
    if moment < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(signature(key, path, moment), given)


def inbound_fax_link(key: bytes, base_url: str, fax_id: str, kind: str, ttl: int = LINK_TTL_SECONDS) -> str:
    """A received fax's PDF: ``kind`` "file" downloads it, "preview" shows it inline (the API's signed route)."""
    path = f"/api/v2/signed/inbound/{fax_id}/{kind}"
    return f"{base_url.rstrip('/')}{path}?{signed_query(key, path, ttl)}"
