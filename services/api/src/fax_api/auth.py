"""``X-Auth-Token`` authentication, scoped to the account in the path."""

from __future__ import annotations

from litestar import Request

from fax_api.kazoo import KazooError
from fax_api.store import ApiStore


async def authorized_account(request: Request, account_id: str, store: ApiStore) -> str:
    """The account the caller may act on: 401 without a valid token, 403 for another account's path."""
    token = request.headers.get("x-auth-token", "").strip()
    owner = await store.account_for_token(token) if token else None
    if owner is None:
        raise KazooError(401, "invalid_credentials", {"message": "invalid credentials"})
    if owner != account_id:
        raise KazooError(403, "forbidden", {"message": "You do not have access to this account"})
    return owner
