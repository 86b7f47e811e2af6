"""Forward-only SQL migrations: ``migrations/NNNN_name.sql``, applied in order under an advisory lock.

Each file runs in its own transaction together with its bookkeeping row, so a failed migration leaves
nothing behind. An applied file whose text changed is an error: history is never rewritten.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

# An arbitrary constant shared by every runner: concurrent starts serialise on it.
_ADVISORY_LOCK_KEY = 0x6661785F6D6967  # "fax_mig"
_FILENAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def bundled_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("fax_runtime").joinpath("migrations").iterdir():
        match = _FILENAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration versions must run 1..N without gaps, got {versions}")
    return found


async def apply(database_url: str, migrations: list[Migration] | None = None) -> list[int]:
    """Apply every pending migration; return the versions applied now."""
    migrations = bundled_migrations() if migrations is None else migrations
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_LOCK_KEY)
        try:
            return await _apply_locked(conn, migrations)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_LOCK_KEY)
    finally:
        await conn.close()


async def _apply_locked(conn: asyncpg.Connection, migrations: list[Migration]) -> list[int]:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    applied = {r["version"]: r["checksum"] for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")}
    done: list[int] = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(f"migration {migration.version:04d}_{migration.name} changed after it was applied")
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
        log.info("applied migration %04d_%s", migration.version, migration.name)
        done.append(migration.version)
    return done


def main() -> None:
    """``python -m fax_runtime.migrations``: apply migrations to ``FAX_DATABASE_URL`` (the Kubernetes Job)."""
    import asyncio
    import os

    logging.basicConfig(level=logging.INFO)
    versions = asyncio.run(apply(os.environ["FAX_DATABASE_URL"]))
    log.info("database up to date (%d applied now)", len(versions))


if __name__ == "__main__":
    main()
