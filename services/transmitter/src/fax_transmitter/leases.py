"""Leases: what a transmitter holds (an outbound attempt, a reception) carries a lease the transmitter renews
while it holds it. A lease that ran out tells every transmitter's sweeper that its holder is gone, wherever that
holder's successor starts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def keep_lease(renew: Callable[[], Awaitable[object]], lease_s: int, what: str) -> None:
    """Renew a lease every third of it, until cancelled. A renewal that fails (Postgres away) is tried again at the
    next third: two can fail before the lease runs out."""
    while True:
        await asyncio.sleep(lease_s / 3)
        try:
            await renew()
        except Exception:
            log.warning("%s: could not renew the lease", what, exc_info=True)
