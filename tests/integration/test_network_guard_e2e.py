"""The network guard, seen from outside: a platform started without FAX_FETCH_ALLOW_NETWORKS refuses loopback."""

from __future__ import annotations

import uuid

from tests.integration.stack import REPO, fresh_database, running_stack
from tests.integration.test_walking_skeleton import curl_create_fax, wait_until_finished


def test_loopback_address_is_refused_unless_allowed(infra, document_server: str) -> None:
    """Without FAX_FETCH_ALLOW_NETWORKS the fetcher must refuse a document on 127.0.0.1."""
    state_dir = REPO / ".devstack" / f"test-guard-{uuid.uuid4().hex[:8]}"
    env = {
        "FAX_DATABASE_URL": fresh_database(infra.database_url),
        "FAX_AMQP_URL": infra.amqp_url,
        "FAX_S3_ENDPOINT": infra.s3_endpoint,
        "FAX_S3_ACCESS_KEY": infra.s3_access_key,
        "FAX_S3_SECRET_KEY": infra.s3_secret_key,
        "FAX_FETCH_ALLOW_NETWORKS": "",
    }
    with running_stack(state_dir, env) as guarded:
        created = curl_create_fax(guarded, f"{document_server}/fax.pdf")
        _, outbox = wait_until_finished(guarded, created["data"]["id"])
    assert outbox["data"]["status"] == "failed"
    assert "refused to connect to 127.0.0.1" in outbox["data"]["tx_result"]["error_message"]
