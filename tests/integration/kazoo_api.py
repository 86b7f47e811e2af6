"""The API service alone (``python -m fax_api``) on a migrated database, with two accounts to play against each other.

Account ``a`` is the embedded default's demo tenant (so the demo seeding is exercised as ``make run`` uses it),
account ``b`` a second tenant made through the same store code. Import the fixture where it is used:
``from tests.integration.kazoo_api import kazoo_api_fixture  # noqa: F401``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.integration.stack import REPO, free_port_block, fresh_database, infra_env

SMTP_DOMAIN = "fax.test.example"


@dataclass
class Tenant:
    account_id: str
    account_name: str
    auth_token: str
    api_key: str
    username: str
    password: str
    user_id: str
    faxbox_id: str


@dataclass
class KazooApi:
    url: str
    database_url: str
    a: Tenant
    b: Tenant
    log_path: Path
    pid: int  # of python -m fax_api

    def call(self, method: str, path: str, token: str | None = None, body: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {"X-Auth-Token": token} if token else {}
        return httpx.request(method, f"{self.url}{path}", headers=headers, json=body, timeout=10, **kwargs)

    def sql(self, query: str, *args: Any) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(self.database_url)
            try:
                return [dict(r) for r in await conn.fetch(query, *args)]
            finally:
                await conn.close()

        return asyncio.run(run())


async def _seed(database_url: str) -> tuple[Tenant, Tenant]:
    from fax_api.accounts.store import AccountStore
    from fax_api.demo import ensure_demo_tenant
    from fax_api.faxboxes.rules import validate_faxbox
    from fax_api.faxboxes.store import FaxboxStore
    from fax_runtime.db import create_pool
    from fax_runtime.migrations import apply

    await apply(database_url)
    demo = await ensure_demo_tenant(database_url, SMTP_DOMAIN)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        accounts, faxboxes = AccountStore(pool), FaxboxStore(pool, SMTP_DOMAIN)
        demo_user = await pool.fetchval("SELECT id FROM users WHERE account_id = $1", demo.account_id)
        a = Tenant(
            demo.account_id,
            demo.account_name,
            demo.auth_token,
            demo.api_key,
            demo.username,
            demo.password,
            demo_user,
            demo.faxbox_id,
        )
        other = await accounts.create_account("Other account")
        password = "b-password-" + uuid.uuid4().hex[:6]
        user = await accounts.create_user(
            other.id,
            {"username": "bob", "password": password, "email": "bob@b.example", "first_name": "", "last_name": ""},
        )
        token = await accounts.issue_token(other.id, "user_auth", user.id)
        name, custom, settings = validate_faxbox({"name": "B's box"})
        box = await faxboxes.create(other.id, name, custom, settings)
        b = Tenant(other.id, other.name, token, other.api_key, "bob", password, user.id, box.id)
        return a, b
    finally:
        await pool.close()


@contextlib.contextmanager
def running_api(infra, log_dir: Path, settings: Mapping[str, str] | None = None) -> Iterator[KazooApi]:
    """``python -m fax_api`` on a fresh, seeded database, with ``settings`` added to its environment."""
    database_url = fresh_database(infra.database_url)
    a, b = asyncio.run(_seed(database_url))
    port = free_port_block(1)
    env = {
        **os.environ,
        **infra_env(infra, database_url=database_url),
        "FAX_API_PORT": str(port),
        "FAX_API_READY_PEERS": "",
        "FAX_SMTP_DOMAIN": SMTP_DOMAIN,
        **(settings or {}),
    }
    log_path = log_dir / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "fax_api"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    api = KazooApi(f"http://127.0.0.1:{port}", database_url, a, b, log_path, process.pid)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"fax_api exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{api.url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"fax_api not healthy after 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield api
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module", name="kazoo_api")
def kazoo_api_fixture(infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KazooApi]:
    with running_api(infra, tmp_path_factory.mktemp("api")) as api:
        yield api
