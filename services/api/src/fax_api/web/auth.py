"""Token authentication: Kazoo's ``X-Auth-Token`` and VoipNow's ``Authorization: Bearer``, the same auth tokens.

A token is good for its own account only. Another account's path answers 403 whether or not that account exists, and
nothing is read from it first, so a token learns nothing about accounts other than its own. (Fax.to authenticates its
own users by ``api_key``: ``fax_api.faxto.dependencies``.)
"""

from __future__ import annotations

from typing import Protocol

from litestar import Request
from litestar.params import FromPath

from fax_api.web.injection import Injected
from fax_api.web.kazoo import KazooError
from fax_api.web.uapi import UapiError

_TOKEN_SCHEMES = ("bearer", "token")
# UAPI's names for "the user the token belongs to".
_SELF_IDS = ("@me", "@viewer", "@owner")


class TokenAccounts(Protocol):
    async def account_for_token(self, token: str) -> str | None:
        """The account of an unexpired auth token; None for any other string."""
        ...


async def authorized_account(request: Request, account_id: FromPath[str], accounts: Injected[TokenAccounts]) -> str:
    """The account a Kazoo caller may act on: 401 without a valid (unexpired) token, 403 for another account's path."""
    token = request.headers.get("x-auth-token", "").strip()
    owner = await accounts.account_for_token(token) if token else None
    if owner is None:
        raise KazooError(401, "invalid_credentials", {"message": "invalid credentials"})
    if owner != account_id:
        raise KazooError(403, "forbidden", {"message": "You do not have access to this account"})
    return owner


def bearer_token(authorization: str) -> str:
    """The token of ``Bearer <token>`` or ``token <token>`` (schemes are case-insensitive); "" for anything else."""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() in _TOKEN_SCHEMES else ""


async def uapi_account(request: Request, user_id: FromPath[str], accounts: Injected[TokenAccounts]) -> str:
    """The account a VoipNow caller sends for: 401 without a valid token, 403 for another user's path.

    The token is sent as ``Authorization: Bearer <token>`` (the example) or ``token <token>`` (the request model).
    """
    token = bearer_token(request.headers.get("authorization", ""))
    account_id = await accounts.account_for_token(token) if token else None
    if account_id is None:
        raise UapiError(401, "unauthorized", "A valid token is required: Authorization: Bearer <token>")
    if user_id not in _SELF_IDS and user_id != account_id:
        raise UapiError(403, "forbidden", "The token may only send faxes for its own user")
    return account_id
