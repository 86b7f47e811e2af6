"""The embedded default's demo tenant: account, user, API key, auth token, faxbox with SMTP intake, inbound number."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields

import asyncpg

from fax_api.accounts.store import AccountStore, DemoTenantStore
from fax_api.faxboxes.rules import validate_faxbox
from fax_api.faxboxes.store import FaxboxStore
from fax_runtime.db import create_pool

DEMO_ACCOUNT_NAME = "Demo account"
DEMO_USERNAME = "demo"
DEMO_INBOUND_NUMBER = "+15550001000"
DEMO_SMTP_PERMISSION = r".*@example\.com"
DEMO_FAXBOX = {
    "name": "Demo faxbox",
    "smtp_permission_list": [DEMO_SMTP_PERMISSION],
    "caller_id": "15550001000",
    "fax_header": "Demo Faxbox",
    "fax_identity": "15550001000",
    "retries": 3,
}


@dataclass(frozen=True)
class DemoTenant:
    """Written to ``credentials.env`` as ``FAX_<FIELD>`` (``FAX_ACCOUNT_ID``, ``FAX_API_KEY``, ...)."""

    account_id: str
    auth_token: str
    faxbox_id: str
    faxbox_email: str
    inbound_number: str
    account_name: str
    api_key: str
    username: str
    password: str


async def ensure_demo_tenant(database_url: str, smtp_domain: str = "fax.localhost") -> DemoTenant:
    """Create the demo tenant on first start; return the stored one afterwards.

    The demo token is kept in clear in ``devstack_seed`` (a table only the embedded default uses) so that
    every start can write the same ``credentials.env``; real tokens are stored only as digests. The demo
    token never expires; tokens from user_auth/api_auth do.
    """
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        accounts, faxboxes, demo = AccountStore(pool), FaxboxStore(pool, smtp_domain), DemoTenantStore(pool)

        async def build(conn: asyncpg.Connection, seed: dict[str, str]) -> dict[str, str]:
            added: dict[str, str] = {}
            if "account_id" not in seed:
                account = await accounts.create_account(DEMO_ACCOUNT_NAME, conn=conn)
                token = await accounts.issue_token(account.id, "seed", ttl_seconds=None, conn=conn)
                name, custom, settings = validate_faxbox(DEMO_FAXBOX)
                faxbox = await faxboxes.create(account.id, name, custom, settings, conn=conn)
                await demo.add_number(conn, DEMO_INBOUND_NUMBER, account.id, faxbox.id)
                added = {
                    "account_id": account.id,
                    "auth_token": token,
                    "faxbox_id": faxbox.id,
                    "faxbox_email": faxbox.smtp_email,
                    "inbound_number": DEMO_INBOUND_NUMBER,
                    "account_name": account.name,
                    "api_key": account.api_key,
                }
            account_id = seed.get("account_id") or added["account_id"]
            # A tenant seeded before users and API keys existed gets them now.
            if "account_name" not in seed and "account_name" not in added:
                added["account_name"] = DEMO_ACCOUNT_NAME
            if "api_key" not in seed and "api_key" not in added:
                added["api_key"] = await accounts.api_key(account_id) or ""
            if "username" not in seed:
                password = secrets.token_urlsafe(12)
                user = {"username": DEMO_USERNAME, "password": password, "email": "demo@example.com"}
                await accounts.create_user(account_id, {**user, "first_name": "Demo", "last_name": "User"}, conn=conn)
                added.update(username=DEMO_USERNAME, password=password)
            return added

        seed = await demo.ensure(build)
        return DemoTenant(**{field.name: seed[field.name] for field in fields(DemoTenant)})
    finally:
        await pool.close()
