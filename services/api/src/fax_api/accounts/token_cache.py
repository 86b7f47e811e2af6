"""Which account an auth token belongs to, remembered for a few seconds so a request need not ask Postgres.

Every authenticated request looked its token up; on the intake's hot path that query was a tenth of the API's CPU.
An entry lives ``seconds`` at most, and never past the token's own expiry. Only tokens that were found are kept, so
unknown tokens cannot push good ones out, and the cache holds at most ``max_tokens`` (least recently used leave
first). Entries are keyed by the token's digest: the token itself is not kept.

A revocation made through this process (a new API key, a removed user) drops the account's entries at once
(``forget_account``). One made elsewhere, by another API process or in the database, is honoured when the entry
ages out: within ``seconds``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from cachetools import TLRUCache

from fax_api.accounts.rows import TokenOwner


class TokenCache:
    def __init__(self, seconds: float, *, max_tokens: int = 10_000, timer: Callable[[], float] = time.monotonic):
        self._seconds = seconds
        self._entries: TLRUCache[bytes, TokenOwner] = TLRUCache(maxsize=max_tokens, ttu=self._until, timer=timer)

    def _until(self, _digest: bytes, owner: TokenOwner, now: float) -> float:
        left = math.inf if owner.seconds_left is None else owner.seconds_left
        return now + min(self._seconds, left)

    def get(self, digest: bytes) -> str | None:
        """The account of a remembered token; None when it is not (or no longer) remembered."""
        owner = self._entries.get(digest)
        return owner.account_id if owner is not None else None

    def remember(self, digest: bytes, owner: TokenOwner) -> None:
        if self._seconds > 0:
            self._entries[digest] = owner

    def forget_account(self, account_id: str) -> None:
        """Drop every remembered token of ``account_id`` (after some of its tokens were revoked)."""
        for digest in [d for d, owner in self._entries.items() if owner.account_id == account_id]:
            self._entries.pop(digest, None)
