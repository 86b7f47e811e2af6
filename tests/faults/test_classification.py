"""Every error a Postgres restart throws at busy clients is one ``is_transient`` waits out.

Eight clients run short transactions while Postgres is stopped (fast shutdown: sessions terminated) and started
again, three times. Before the fix this found ``InternalClientError`` ("cannot switch to state 15; another operation
(2) is in progress"), which asyncpg raises when the server drops a connection mid-exchange, classified as an error
of the work itself: the transmitter gave up recording an outcome on it, and the fax was dialled again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from fax_runtime.db import create_pool
from fax_runtime.transient import is_transient
from tests.faults.harness import ControlledInfra
from tests.integration.stack import fresh_database


async def test_every_error_of_a_postgres_restart_is_transient(fault_infra: ControlledInfra) -> None:
    assert fault_infra.endpoints is not None
    database_url = await asyncio.to_thread(fresh_database, fault_infra.endpoints.database_url)
    pool = await create_pool(database_url)
    await pool.execute("CREATE TABLE written (id uuid PRIMARY KEY)")
    seen: Counter[tuple[str, str, bool]] = Counter()
    running = True

    async def client() -> None:
        while running:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute("INSERT INTO written VALUES ($1)", uuid.uuid4())
                    await conn.execute("SELECT pg_sleep(0.01)")
            except Exception as error:
                seen[(type(error).__name__, str(error)[:80], is_transient(error))] += 1
                await asyncio.sleep(0.05)

    clients = [asyncio.create_task(client()) for _ in range(8)]
    try:
        for _ in range(3):
            await asyncio.sleep(1)
            async with fault_infra.down("postgres"):
                await asyncio.sleep(1)
        await asyncio.sleep(1)
    finally:
        running = False
        await asyncio.gather(*clients)
    written = await pool.fetchval("SELECT count(*) FROM written")
    await pool.close()

    assert seen, "the restarts were not noticed"
    assert written > 0
    not_transient = {error: count for error, count in seen.items() if not error[2]}
    assert not not_transient, not_transient
