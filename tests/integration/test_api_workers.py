"""The API in several processes (``FAX_API_WORKERS=2``), as a deployment may run it.

Faxes accepted by whichever worker answers all reach the exchange (each worker's outbox relay shares the outbox),
and a token revoked through one worker stops working in every worker within ``FAX_API_AUTH_CACHE_SECONDS``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fax_contracts import JobSubmitted, decode_event, routing_key
from tests.integration.kazoo_api import KazooApi, running_api

CACHE_SECONDS = 1.0


@pytest.fixture(scope="module")
def workers_api(infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KazooApi]:
    settings = {"FAX_API_WORKERS": "2", "FAX_API_AUTH_CACHE_SECONDS": str(CACHE_SECONDS)}
    with running_api(infra, tmp_path_factory.mktemp("api-workers"), settings) as api:
        yield api


def _worker_processes(pid: int) -> list[int]:
    """The uvicorn workers under ``pid`` (multiprocessing's spawned children; not its resource tracker)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_every_fax_accepted_by_any_worker_is_stored_and_published(workers_api: KazooApi) -> None:
    assert len(_worker_processes(workers_api.pid)) == 2
    account = workers_api.a.account_id
    fax = {"data": {"document": {"url": "http://example.com/fax.pdf"}, "to_number": "+15551230000"}}

    def submit(_: int) -> str:
        answer = workers_api.call("PUT", f"/v2/accounts/{account}/faxes", workers_api.a.auth_token, fax)
        assert answer.status_code == 201, answer.text
        return uuid.UUID(answer.json()["data"]["id"]).hex

    with ThreadPoolExecutor(8) as pool:
        accepted = set(pool.map(submit, range(40)))
    assert len(accepted) == 40
    stored = workers_api.sql("SELECT id FROM fax_jobs WHERE id = ANY($1::uuid[])", [uuid.UUID(i) for i in accepted])
    assert {row["id"].hex for row in stored} == accepted
    deadline = time.monotonic() + 30
    while True:
        rows = workers_api.sql(
            "SELECT payload FROM outbox WHERE sent_at IS NOT NULL AND routing_key = $1", routing_key(JobSubmitted)
        )
        published = {event.job_id.hex for event in map(decode_event, (bytes(r["payload"]) for r in rows))
                     if isinstance(event, JobSubmitted)}  # fmt: skip
        if accepted <= published or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert accepted - published == set()


def test_a_token_revoked_through_one_worker_stops_working_in_all_within_the_cache_time(
    workers_api: KazooApi,
) -> None:
    b = workers_api.b
    issued = workers_api.call("PUT", "/v2/api_auth", None, {"data": {"api_key": b.api_key}})
    assert issued.status_code == 201, issued.text
    token = issued.json()["auth_token"]
    faxboxes = f"/v2/accounts/{b.account_id}/faxboxes"
    # A new connection each time: both workers get to look the token up and remember it.
    assert all(workers_api.call("GET", faxboxes, token).status_code == 200 for _ in range(10))

    assert workers_api.call("PUT", f"/v2/accounts/{b.account_id}/api_key", b.auth_token).status_code == 201
    time.sleep(CACHE_SECONDS + 0.2)
    answers = [workers_api.call("GET", faxboxes, token).status_code for _ in range(10)]
    assert answers == [401] * 10
    assert workers_api.call("GET", faxboxes, b.auth_token).status_code == 200  # the user's own token lives on
