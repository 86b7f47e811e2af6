"""The embedded default's demo tenant: account, auth token, faxbox with SMTP intake, inbound number."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import asdict, dataclass

from fax_api.store import DemoSeedStore
from fax_runtime.db import create_pool

DEMO_INBOUND_NUMBER = "+15550001000"
DEMO_SMTP_PERMISSION = r".*@example\.com"


@dataclass(frozen=True)
class DemoTenant:
    account_id: str
    auth_token: str
    faxbox_id: str
    faxbox_email: str
    inbound_number: str


async def ensure_demo_tenant(database_url: str, smtp_domain: str = "fax.localhost") -> DemoTenant:
    """Create the demo tenant on first start; return the stored one afterwards.

    The demo token is kept in clear in ``devstack_seed`` (a table only the embedded default uses) so that
    every start can write the same ``credentials.env``; real tokens are stored only as digests.
    """
    keys = tuple(DemoTenant.__dataclass_fields__)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        store = DemoSeedStore(pool)
        existing = await store.load(keys)
        if existing is None:
            faxbox_id = uuid.uuid4().hex
            fresh = DemoTenant(
                account_id=uuid.uuid4().hex,
                auth_token=secrets.token_urlsafe(32),
                faxbox_id=faxbox_id,
                faxbox_email=f"{faxbox_id}.{smtp_domain}",
                inbound_number=DEMO_INBOUND_NUMBER,
            )
            await store.create(
                account_id=fresh.account_id,
                token=fresh.auth_token,
                faxbox_id=fresh.faxbox_id,
                faxbox_email=fresh.faxbox_email,
                inbound_number=fresh.inbound_number,
                faxbox_settings={
                    "smtp_permission_list": [DEMO_SMTP_PERMISSION],
                    "caller_id": "15550001000",
                    "fax_header": "Demo Faxbox",
                    "fax_identity": "15550001000",
                    "retries": 3,
                },
                seed=asdict(fresh),
            )
            existing = await store.load(keys)
        assert existing is not None
        return DemoTenant(**existing)
    finally:
        await pool.close()
