"""What the account store hands back: typed rows, never any form of a password."""

from __future__ import annotations

import msgspec


class Account(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    api_key: str  # Kazoo's pvt_api_key: api_auth trades it for a token


class AccountUser(msgspec.Struct, frozen=True, kw_only=True):
    """A user of an account, without any form of its password."""

    id: str
    account_id: str
    username: str
    email: str
    first_name: str
    last_name: str
    revision: int


class IssuedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A new auth token and whom it acts for (``user_id``: None for a token from the account's API key)."""

    account_id: str
    user_id: str | None
    token: str


class TokenOwner(msgspec.Struct, frozen=True, kw_only=True):
    """The account an unexpired auth token acts for, and how long the token has left (None: it does not expire)."""

    account_id: str
    seconds_left: float | None
