"""Auth tokens remembered for a few seconds: never past the cache's TTL or the token's own expiry, never crossed.

``AccountStore.account_for_token`` runs on an in-memory stand-in of the pool that answers the lookup query as
Postgres would (the account of an unexpired token, and how long it has left) and counts the queries.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from fax_api.accounts.store import AccountStore, Q
from fax_api.accounts.token_cache import TokenCache
from fax_api.config import ApiSettings
from fax_runtime.config import ConfigError

TTL = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TokenTable:
    """``auth_tokens`` as the lookup query sees it; expiry times on the test's clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.rows: dict[bytes, tuple[str, float | None]] = {}
        self.queries = 0

    def issue(self, token: str, account_id: str, lives: float | None = None) -> None:
        expires = None if lives is None else self.clock.now + lives
        self.rows[hashlib.sha256(token.encode()).digest()] = (account_id, expires)

    def revoke(self, token: str) -> None:
        del self.rows[hashlib.sha256(token.encode()).digest()]

    async def fetchrow(self, query: str, digest: bytes) -> dict[str, Any] | None:
        assert query == Q["account_for_token"]
        self.queries += 1
        account_id, expires = self.rows.get(digest, (None, None))
        if account_id is None or (expires is not None and expires <= self.clock.now):
            return None
        return {"account_id": account_id, "seconds_left": None if expires is None else expires - self.clock.now}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def table(clock: Clock) -> TokenTable:
    return TokenTable(clock)


def _store(table: TokenTable, clock: Clock, seconds: float = TTL, max_tokens: int = 100) -> AccountStore:
    return AccountStore(table, TokenCache(seconds, max_tokens=max_tokens, timer=clock))  # type: ignore[arg-type]


async def test_a_known_token_is_looked_up_once_per_ttl(table: TokenTable, clock: Clock) -> None:
    store = _store(table, clock)
    table.issue("tok-a", "acct-a")
    assert [await store.account_for_token("tok-a") for _ in range(5)] == ["acct-a"] * 5
    assert table.queries == 1
    clock.now += TTL
    assert await store.account_for_token("tok-a") == "acct-a"
    assert table.queries == 2


async def test_a_token_revoked_elsewhere_stops_working_within_the_ttl(table: TokenTable, clock: Clock) -> None:
    """Another API process (or SQL) deleted the token: this process honours that once its entry ages out."""
    store = _store(table, clock)
    table.issue("tok-a", "acct-a")
    assert await store.account_for_token("tok-a") == "acct-a"
    table.revoke("tok-a")
    clock.now += TTL - 0.01
    assert await store.account_for_token("tok-a") == "acct-a"  # the documented window
    clock.now += 0.01
    assert await store.account_for_token("tok-a") is None


async def test_a_token_expiring_within_the_ttl_stops_at_its_own_expiry(table: TokenTable, clock: Clock) -> None:
    store = _store(table, clock)
    table.issue("tok-a", "acct-a", lives=1.0)
    assert await store.account_for_token("tok-a") == "acct-a"
    clock.now += 0.99
    assert await store.account_for_token("tok-a") == "acct-a"
    clock.now += 0.01
    assert await store.account_for_token("tok-a") is None


async def test_one_accounts_token_never_yields_another_account(table: TokenTable, clock: Clock) -> None:
    """Many tokens of two accounts through a cache too small to hold them: each answers its own account."""
    store = _store(table, clock, max_tokens=3)
    tokens = {f"tok-{n}": ("acct-a" if n % 2 else "acct-b") for n in range(10)}
    for token, account_id in tokens.items():
        table.issue(token, account_id)
    for _ in range(3):
        for token, account_id in tokens.items():
            assert await store.account_for_token(token) == account_id
    assert await store.account_for_token("tok-1" + "x") is None


async def test_unknown_tokens_are_not_remembered_and_push_nothing_out(table: TokenTable, clock: Clock) -> None:
    store = _store(table, clock, max_tokens=2)
    table.issue("tok-a", "acct-a")
    assert await store.account_for_token("tok-a") == "acct-a"
    for n in range(10):
        assert await store.account_for_token(f"guess-{n}") is None
    table.issue("guess-0", "acct-b")  # issued after a failed try: works at once
    assert await store.account_for_token("guess-0") == "acct-b"
    queries = table.queries
    assert await store.account_for_token("tok-a") == "acct-a"
    assert table.queries == queries


async def test_a_revocation_in_this_process_is_honoured_at_once(table: TokenTable, clock: Clock) -> None:
    cache = TokenCache(TTL, timer=clock)
    store = AccountStore(table, cache)  # type: ignore[arg-type]
    table.issue("tok-a", "acct-a")
    table.issue("tok-b", "acct-b")
    assert await store.account_for_token("tok-a") == "acct-a"
    assert await store.account_for_token("tok-b") == "acct-b"
    table.revoke("tok-a")
    cache.forget_account("acct-a")  # what rotate_api_key and delete_user do after the database changed
    assert await store.account_for_token("tok-a") is None
    queries = table.queries
    assert await store.account_for_token("tok-b") == "acct-b"
    assert table.queries == queries


async def test_ttl_0_asks_the_database_every_time(table: TokenTable, clock: Clock) -> None:
    store = _store(table, clock, seconds=0)
    table.issue("tok-a", "acct-a")
    for _ in range(3):
        assert await store.account_for_token("tok-a") == "acct-a"
    assert table.queries == 3


def test_the_settings_of_workers_and_the_cache() -> None:
    env = {"FAX_DATABASE_URL": "postgresql://x/y", "FAX_AMQP_URL": "amqp://x", "FAX_S3_ENDPOINT": "x:9"}
    default = ApiSettings.from_env(env)
    assert (default.workers, default.auth_cache_seconds) == (1, 5.0)
    chosen = ApiSettings.from_env({**env, "FAX_API_WORKERS": "4", "FAX_API_AUTH_CACHE_SECONDS": "0"})
    assert (chosen.workers, chosen.auth_cache_seconds) == (4, 0.0)
    for name, bad in (
        ("FAX_API_WORKERS", "0"),
        ("FAX_API_AUTH_CACHE_SECONDS", "-1"),
        ("FAX_API_AUTH_CACHE_SECONDS", "nan"),
    ):
        with pytest.raises(ConfigError, match=name):
            ApiSettings.from_env({**env, name: bad})
