"""Accounts, users, API keys and auth tokens in Postgres (SQL in ``accounts/queries.sql``)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg

from fax_api.accounts.rows import Account, AccountUser, IssuedToken, TokenOwner
from fax_api.accounts.rules import (
    AUTH_TOKEN_TTL_SECONDS,
    credentials_hashes,
    hash_password,
    new_api_key,
    new_auth_token,
    token_digest,
)
from fax_api.accounts.token_cache import TokenCache
from fax_runtime.sql import load_queries, row_as

Q = load_queries("fax_api.accounts", "queries.sql")


class UsernameTaken(Exception):
    pass


class AccountStore:
    def __init__(self, pool: asyncpg.Pool, token_cache: TokenCache | None = None) -> None:
        self._pool = pool
        self._tokens = token_cache or TokenCache(0)

    async def account_for_token(self, token: str) -> str | None:
        """The account of an unexpired auth token (see ``TokenCache`` for how long a revoked one may still work)."""
        digest = token_digest(token)
        if (account_id := self._tokens.get(digest)) is not None:
            return account_id
        row = await self._pool.fetchrow(Q["account_for_token"], digest)
        if row is None:
            return None
        owner = row_as(TokenOwner, row)
        self._tokens.remember(digest, owner)
        return owner.account_id

    async def create_account(self, name: str, conn: asyncpg.Connection | None = None) -> Account:
        row = await (conn or self._pool).fetchrow(Q["insert_account"], uuid.uuid4().hex, name, new_api_key())
        return row_as(Account, row)

    async def api_key(self, account_id: str) -> str | None:
        return await self._pool.fetchval(Q["account_api_key"], account_id)

    async def rotate_api_key(self, account_id: str) -> str | None:
        """A new API key; the old one stops working and so do the tokens obtained with it."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["revoke_api_auth_tokens"], account_id)
            key = await conn.fetchval(Q["replace_api_key"], account_id, new_api_key())
        self._tokens.forget_account(account_id)
        return key

    async def issue_token(
        self,
        account_id: str,
        method: str,
        user_id: str | None = None,
        ttl_seconds: float | None = AUTH_TOKEN_TTL_SECONDS,
        conn: asyncpg.Connection | None = None,
    ) -> str:
        """A new auth token for the account; only its SHA-256 digest is stored."""
        token = new_auth_token()
        async with self._pool.acquire() if conn is None else contextlib.nullcontext(conn) as db:
            await db.execute(Q["delete_expired_tokens"], account_id)
            await db.execute(Q["insert_auth_token"], token_digest(token), account_id, user_id, method, ttl_seconds)
        return token

    async def token_for_api_key(self, api_key: str) -> IssuedToken | None:
        account_id = await self._pool.fetchval(Q["account_for_api_key"], api_key)
        if account_id is None:
            return None
        return IssuedToken(account_id=account_id, user_id=None, token=await self.issue_token(account_id, "api_auth"))

    async def token_for_credentials(
        self, credentials: str, method: str, account_name: str, phone_number: str
    ) -> IssuedToken | None:
        """A token for the user the hash names, when it names exactly one user of the named account."""
        rows = await self._pool.fetch(Q["users_for_credentials"], credentials, method, account_name, phone_number)
        if len(rows) != 1:
            return None
        account_id, user_id = rows[0]["account_id"], rows[0]["id"]
        token = await self.issue_token(account_id, "user_auth", user_id)
        return IssuedToken(account_id=account_id, user_id=user_id, token=token)

    async def create_user(
        self, account_id: str, user: Mapping[str, Any], conn: asyncpg.Connection | None = None
    ) -> AccountUser:
        """A new user from a validated user document (``accounts.rules.validate_user``), its password hashed."""
        md5, sha1 = credentials_hashes(user["username"], user["password"])
        try:
            row = await (conn or self._pool).fetchrow(
                Q["insert_user"],
                uuid.uuid4().hex,
                account_id,
                user["username"],
                user["email"],
                user["first_name"],
                user["last_name"],
                await asyncio.to_thread(hash_password, user["password"]),
                md5,
                sha1,
            )
        except asyncpg.UniqueViolationError:
            raise UsernameTaken(user["username"]) from None
        return row_as(AccountUser, row)

    async def get_user(self, account_id: str, user_id: str) -> AccountUser | None:
        row = await self._pool.fetchrow(Q["get_user"], account_id, user_id)
        return row_as(AccountUser, row) if row else None

    async def user_page(self, account_id: str, start_key: str, limit: int) -> list[AccountUser]:
        return [row_as(AccountUser, r) for r in await self._pool.fetch(Q["list_users"], account_id, start_key, limit)]

    async def update_user(self, account_id: str, user_id: str, user: Mapping[str, Any]) -> AccountUser | None:
        """Replace a user's fields; a new password rehashes all three hashes, none keeps them.

        Kazoo's credentials hash covers the username, so renaming a user requires the password.
        """
        password = user.get("password")
        md5 = sha1 = scrypt = None
        if password is not None:
            md5, sha1 = credentials_hashes(user["username"], password)
            scrypt = await asyncio.to_thread(hash_password, password)
        try:
            row = await self._pool.fetchrow(
                Q["update_user"],
                account_id,
                user_id,
                user["username"],
                user["email"],
                user["first_name"],
                user["last_name"],
                scrypt,
                md5,
                sha1,
            )
        except asyncpg.UniqueViolationError:
            raise UsernameTaken(user["username"]) from None
        return row_as(AccountUser, row) if row else None

    async def delete_user(self, account_id: str, user_id: str) -> AccountUser | None:
        row = await self._pool.fetchrow(Q["delete_user"], account_id, user_id)
        self._tokens.forget_account(account_id)  # the user's tokens went with it
        return row_as(AccountUser, row) if row else None


class DemoTenantStore:
    """Creates the embedded default's demo tenant once; later starts get the same values back.

    Values are kept in clear in ``devstack_seed`` (only the embedded default uses it) so that every start can
    write the same ``credentials.env``. A tenant seeded by an older version gets the keys it lacks added.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self) -> dict[str, str]:
        return {row["key"]: row["value"] for row in await self._pool.fetch(Q["demo_seed"])}

    async def ensure(
        self, build: Callable[[asyncpg.Connection, dict[str, str]], Awaitable[dict[str, str]]]
    ) -> dict[str, str]:
        """Under a lock on the seed, ``build(conn, seed)`` returns the values to add (all of them the first time)."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Serialise concurrent first starts; the loser sees the winner's seed.
            await conn.execute(Q["demo_lock"])
            seed = {row["key"]: row["value"] for row in await conn.fetch(Q["demo_seed"])}
            for key, value in (await build(conn, seed)).items():
                await conn.execute(Q["demo_seed_put"], key, value)
        return await self.load()

    async def add_number(self, conn: asyncpg.Connection, e164: str, account_id: str, faxbox_id: str) -> None:
        await conn.execute(Q["demo_insert_number"], e164, account_id, faxbox_id)
