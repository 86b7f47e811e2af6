"""The network guard, seen from outside: a platform started without FAX_FETCH_ALLOW_NETWORKS refuses loopback."""

from __future__ import annotations

import uuid

from tests.integration.stack import REPO, infra_env, running_stack
from tests.integration.test_walking_skeleton import curl_create_fax, wait_until_finished


def test_loopback_address_is_refused_unless_allowed(infra, document_server: str) -> None:
    """Without FAX_FETCH_ALLOW_NETWORKS the fetcher must refuse a document on 127.0.0.1."""
    state_dir = REPO / ".devstack" / f"test-guard-{uuid.uuid4().hex[:8]}"
    env = {
        **infra_env(infra),
        "FAX_FETCH_ALLOW_NETWORKS": "",
    }
    with running_stack(state_dir, env) as guarded:
        created = curl_create_fax(guarded, f"{document_server}/fax.pdf")
        _, outbox = wait_until_finished(guarded, created["data"]["id"])
    assert outbox["data"]["status"] == "failed"
    assert "refused to connect to 127.0.0.1" in outbox["data"]["tx_result"]["error_message"]
