"""``X-Auth-Token`` authentication, scoped to the account in the path.

A token is good for its own account only. Another account's path answers 403 whether or not that account
exists, and nothing is read from it first, so a token learns nothing about accounts other than its own.
"""

from __future__ import annotations

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import FromPath

from fax_api.accounts.store import AccountStore
from fax_api.web.kazoo import KazooError


async def authorized_account(
    request: Request, account_id: FromPath[str], accounts: NamedDependency[AccountStore]
) -> str:
    """The account the caller may act on: 401 without a valid (unexpired) token, 403 for another account's path."""
    token = request.headers.get("x-auth-token", "").strip()
    owner = await accounts.account_for_token(token) if token else None
    if owner is None:
        raise KazooError(401, "invalid_credentials", {"message": "invalid credentials"})
    if owner != account_id:
        raise KazooError(403, "forbidden", {"message": "You do not have access to this account"})
    return owner
