"""The transmitter's handling of jobs against real Postgres and S3, over the loopback line."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterable
from pathlib import Path

import msgspec
import pytest
from PIL import Image, ImageDraw

from fax_contracts import decode_event
from fax_jobs import AttemptJobStore
from fax_media.t30 import TransmissionOutcome
from fax_runtime.blobs import BlobStore
from fax_runtime.config import RuntimeSettings, S3Settings
from fax_runtime.db import create_pool
from fax_sip import DialogIdentity
from fax_transmitter.config import TransmitterSettings
from fax_transmitter.handlers import Transmitter
from fax_transmitter.inbound import HeldReceptions, InboundStore, Reception
from fax_transmitter.lines import AnsweredCall, CallRequest, CallRoute, LoopbackLine


def _fax_tiff(pages: int) -> bytes:
    images = []
    for number in range(pages):
        page = Image.new("1", (1728, 2292), 1)
        ImageDraw.Draw(page).rectangle((100 + 50 * number, 200, 900, 700), fill=0)
        images.append(page)
    out = io.BytesIO()
    images[0].save(out, "TIFF", compression="group4", dpi=(204, 196), save_all=True, append_images=images[1:])
    return out.getvalue()


@pytest.fixture
async def world(infra, database_url: str, tmp_path: Path):
    pool = await create_pool(database_url)
    s3 = S3Settings(
        endpoint=infra.s3_endpoint,
        access_key=infra.s3_access_key,
        secret_key=infra.s3_secret_key,
        bucket=infra.s3_bucket,
        secure=infra.s3_secure,
    )
    blobs = BlobStore(s3)
    settings = TransmitterSettings(
        runtime=RuntimeSettings(database_url=database_url, amqp_url=infra.amqp_url, s3=s3),
        line="loopback",
        loopback_received_dir=tmp_path / "received",
    )
    await pool.execute("INSERT INTO accounts (id, name) VALUES ('acc', 'Test')")
    line = LoopbackLine(settings.loopback_received_dir)
    await line.start()
    yield pool, blobs, Transmitter(AttemptJobStore(pool, AnsweredCall), blobs, settings, line), settings
    await pool.close()


async def _job(pool, tiff_key: str, retries: int = 1) -> uuid.UUID:
    job_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO fax_jobs (id, account_id, status, request, to_number, retries, tiff_key, pages) "
        "VALUES ($1, 'acc', 'pending', $2, '15551234567', $3, $4, 2)",
        job_id,
        {"to_number": "15551234567", "from_number": "15550001111"},
        retries,
        tiff_key,
    )
    return job_id


async def test_job_is_sent_once_even_when_its_event_is_delivered_twice(world) -> None:
    pool, blobs, transmitter, settings = world
    key = f"jobs/{uuid.uuid4()}/fax.tif"
    await blobs.put_bytes(key, _fax_tiff(2))
    job_id = await _job(pool, key)

    await transmitter.attempt(job_id)
    await transmitter.attempt(job_id)  # a redelivered fax.document.ready

    row = await pool.fetchrow("SELECT status, attempts, tx_result FROM fax_jobs WHERE id = $1", job_id)
    assert row["status"] == "completed" and row["attempts"] == 1
    assert row["tx_result"]["pages_sent"] == 2 and row["tx_result"]["fax_receiver_id"] == "LOOPBACK"
    assert sorted(p.name for p in settings.loopback_received_dir.iterdir()) == [f"{job_id}-1.tif"]
    events = await pool.fetch("SELECT routing_key FROM outbox ORDER BY id")
    assert [e["routing_key"] for e in events] == ["fax.transmission.completed.v1"]


async def test_missing_document_ends_the_attempt_instead_of_hanging(world) -> None:
    pool, _, transmitter, _ = world
    job_id = await _job(pool, f"jobs/{uuid.uuid4()}/absent.tif", retries=2)

    await transmitter.attempt(job_id)
    first = await pool.fetchrow("SELECT status, attempts, error_message FROM fax_jobs WHERE id = $1", job_id)
    assert first["status"] == "pending" and first["attempts"] == 1  # one attempt left: back in the queue
    assert first["error_message"].startswith("transmitter error")

    await transmitter.attempt(job_id)
    second = await pool.fetchrow("SELECT status, attempts FROM fax_jobs WHERE id = $1", job_id)
    assert second["status"] == "failed" and second["attempts"] == 2
    finals = await pool.fetch("SELECT payload FROM outbox WHERE routing_key = 'fax.transmission.failed.v1'")
    assert len(finals) == 2


class HeldLine:
    """A line whose calls stay up until released: shows how many calls run at once. It reports every page; with an
    ``owner`` it reports each call answered (a SIP dialog with that contact) and records the calls it hangs up for
    a dead transmitter."""

    def __init__(self, owner: str | None = None) -> None:
        self.release = asyncio.Event()
        self.active = 0
        self.most_at_once = 0
        self.dialled: list[str] = []
        self.owner = owner
        self.hung_up: list[AnsweredCall] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def hang_up_abandoned(self, calls: Iterable[AnsweredCall]) -> None:
        self.hung_up += calls

    async def place_call(self, call: CallRequest) -> TransmissionOutcome:
        self.active += 1
        self.most_at_once = max(self.most_at_once, self.active)
        self.dialled.append(call.to_number)
        if self.owner is not None and call.on_answered is not None:
            call.on_answered(_answered(self.owner))
        try:
            await self.release.wait()
            for page in (1, 2):
                assert call.on_page is not None
                call.on_page(page)
            return TransmissionOutcome(
                success=True, result_code=0, result_text="OK", pages_sent=2, bit_rate=14400, ecm_used=True,
                bad_rows=0, remote_ident="HELD", line_seconds=1.0,
            )  # fmt: skip
        finally:
            self.active -= 1


async def _ready_job(pool, blobs, *, account: str = "acc", to_number: str = "15551234567", retries: int = 1):
    key = f"jobs/{uuid.uuid4()}/fax.tif"
    await blobs.put_bytes(key, _fax_tiff(1))
    job_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO fax_jobs (id, account_id, status, request, to_number, retries, tiff_key, pages) "
        "VALUES ($1, $2, 'pending', $3, $4, $5, $6, 2)",
        job_id, account, {"to_number": to_number}, to_number, retries, key,
    )  # fmt: skip
    return job_id


async def _until(predicate, seconds: float = 20.0) -> None:
    # Job state lives in Postgres, so there is no event to wait on: poll it.
    async with asyncio.timeout(seconds):
        while True:
            if await predicate():
                return
            await asyncio.sleep(0.05)


async def test_an_account_never_has_more_calls_up_than_its_limit(world) -> None:
    pool, blobs, _, settings = world
    line = HeldLine()
    transmitter = Transmitter(
        AttemptJobStore(pool, AnsweredCall), blobs, msgspec.structs.replace(settings, max_calls_per_account=2), line
    )
    jobs = [await _ready_job(pool, blobs, to_number=f"1555123000{n}") for n in range(5)]

    started = [await transmitter.start_attempt(job_id) for job_id in jobs]
    assert started.count(True) == 2  # the other three wait in 'pending', not failed
    statuses = await pool.fetch("SELECT status, count(*) FROM fax_jobs GROUP BY status")
    assert {r["status"]: r["count"] for r in statuses} == {"processing": 2, "pending": 3}

    await _until(lambda: _equals(line.active, 2))  # both calls are up (their TIFFs came from S3 first)
    line.release.set()
    sweeper = asyncio.create_task(transmitter.sweep(poll_seconds=0.2))
    try:
        await _until(lambda: _all_in(pool, "completed"))
    finally:
        sweeper.cancel()
    assert line.most_at_once == 2 and sorted(line.dialled) == sorted(f"1555123000{n}" for n in range(5))


async def test_one_call_at_a_time_to_a_number_even_across_accounts(world) -> None:
    pool, blobs, _, settings = world
    await pool.execute("INSERT INTO accounts (id, name) VALUES ('other', 'Other')")
    line = HeldLine()
    transmitter = Transmitter(AttemptJobStore(pool, AnsweredCall), blobs, settings, line)
    first = await _ready_job(pool, blobs, to_number="15557654321")
    second = await _ready_job(pool, blobs, account="other", to_number="15557654321")

    assert await transmitter.start_attempt(first)
    assert not await transmitter.start_attempt(second)
    line.release.set()
    await _until(lambda: _status_is(pool, first, "completed"))
    assert await transmitter.start_attempt(second)
    await _until(lambda: _status_is(pool, second, "completed"))
    assert line.most_at_once == 1


async def test_pages_are_reported_in_order_while_the_call_runs(world) -> None:
    pool, blobs, _, settings = world
    line = HeldLine()
    line.release.set()
    transmitter = Transmitter(AttemptJobStore(pool, AnsweredCall), blobs, settings, line)
    job_id = await _ready_job(pool, blobs)

    await transmitter.attempt(job_id)

    rows = await pool.fetch("SELECT routing_key, payload FROM outbox ORDER BY id")
    keys = [r["routing_key"] for r in rows]
    assert keys == ["fax.transmission.progress.v1", "fax.transmission.progress.v1", "fax.transmission.completed.v1"]
    progress = [decode_event(r["payload"]) for r in rows[:2]]
    assert [(p.pages_sent, p.pages_total, p.attempt) for p in progress] == [(1, 2, 1), (2, 2, 1)]


@pytest.mark.parametrize(("retries", "expected"), [(2, "pending"), (1, "failed")])
async def test_an_attempt_whose_transmitter_died_is_ended_not_redialled(world, retries: int, expected: str) -> None:
    pool, blobs, _, _ = world
    store = AttemptJobStore(pool, AnsweredCall)
    job_id = await _ready_job(pool, blobs, retries=retries)
    # A transmitter claims the attempt (committed before dialling), then dies: nobody renews the 1 s lease.
    assert await store.claim_attempt(job_id, max_calls_per_account=10, lease_s=1) is not None
    assert await store.reap_abandoned_attempts() == []  # the lease still runs

    await asyncio.sleep(1.5)
    reaped = await store.reap_abandoned_attempts()

    row = await pool.fetchrow("SELECT status, attempts, error_message FROM fax_jobs WHERE id = $1", job_id)
    assert (row["status"], row["attempts"]) == (expected, 1)
    assert row["error_message"] == "call interrupted: transmitter stopped"
    assert [(ended.job_id, ended.retried, ended.call) for ended in reaped] == [(job_id, expected == "pending", None)]
    failed = [decode_event(r["payload"]) for r in await pool.fetch("SELECT payload FROM outbox")]
    assert [(e.attempt, e.final) for e in failed] == [(1, expected == "failed")]


async def test_an_abandoned_attempt_whose_every_page_was_confirmed_is_completed_not_redialled(world) -> None:
    """Before the fix the reaper took it for an interrupted call and the fax was dialled again (10 of 10 in a run)."""
    pool, blobs, _, _ = world
    store = AttemptJobStore(pool, AnsweredCall)
    delivered = await _ready_job(pool, blobs, to_number="15550000021", retries=3)
    cut = await _ready_job(pool, blobs, to_number="15550000022", retries=3)
    for job_id in (delivered, cut):
        assert await store.claim_attempt(job_id, max_calls_per_account=10, lease_s=1) is not None
    await store.record_progress(delivered, 1, 1)
    await store.record_progress(delivered, 1, 2)  # both pages (of 2) confirmed by the far end
    await store.record_progress(cut, 1, 1)

    await asyncio.sleep(1.5)  # the transmitter died: nobody renews the leases
    reaped = {ended.job_id: ended for ended in await store.reap_abandoned_attempts()}

    rows = {
        r["id"]: r for r in await pool.fetch("SELECT id, status, error_message, tx_result, delivered_at FROM fax_jobs")
    }
    assert (rows[delivered]["status"], rows[delivered]["error_message"]) == ("completed", "")
    assert rows[delivered]["delivered_at"] is not None
    assert rows[delivered]["tx_result"]["success"] is True
    assert (reaped[delivered].completed, reaped[cut].completed, reaped[cut].retried) == (True, False, True)
    assert rows[cut]["status"] == "pending"
    events = [decode_event(r["payload"]) for r in await pool.fetch("SELECT payload FROM outbox ORDER BY id")]
    finished = {(type(e).__name__, e.job_id) for e in events if type(e).__name__ != "TransmissionProgress"}
    assert finished == {("TransmissionCompleted", delivered), ("TransmissionFailed", cut)}

    # The retry of the cut attempt starts counting its confirmed pages from 0: the first attempt's page is not it.
    assert await store.claim_attempt(cut, max_calls_per_account=10, lease_s=60) is not None
    tx_result = await pool.fetchval("SELECT tx_result FROM fax_jobs WHERE id = $1", cut)
    assert tx_result["pages_sent"] == 0


async def test_the_reaper_leaves_the_attempts_its_caller_still_runs(world) -> None:
    pool, blobs, _, _ = world
    store = AttemptJobStore(pool, AnsweredCall)
    ours = await _ready_job(pool, blobs, to_number="15550000031")
    theirs = await _ready_job(pool, blobs, to_number="15550000032")
    for job_id in (ours, theirs):
        assert await store.claim_attempt(job_id, max_calls_per_account=10, lease_s=1) is not None
    await asyncio.sleep(1.5)

    reaped = await store.reap_abandoned_attempts(running={ours})

    assert [ended.job_id for ended in reaped] == [theirs]
    assert await pool.fetchval("SELECT status FROM fax_jobs WHERE id = $1", ours) == "processing"


PREDECESSOR, SIBLING = "<sip:fax@127.0.0.1:5060>", "<sip:fax@10.0.0.2:5060>"


def _answered(contact: str) -> AnsweredCall:
    return AnsweredCall(
        dialog=DialogIdentity(
            call_id=f"{uuid.uuid4().hex}@127.0.0.1",
            local="<sip:+15550001111@127.0.0.1>;tag=ours",
            remote="<sip:+15551234567@127.0.0.1:5070>;tag=theirs",
            remote_target="sip:faxsim@127.0.0.1:5070",
            route_set=["<sip:proxy.example.com;lr>"],
            local_cseq=1,
            contact=contact,
            signalling_address=("127.0.0.1", 5070),
        ),
        media_host="127.0.0.1",
        media_ports=(40000, 40002),
    )


async def test_a_successor_ends_its_dead_predecessors_answered_attempts_and_nothing_else(world) -> None:
    pool, blobs, _, _ = world
    store = AttemptJobStore(pool, AnsweredCall)
    ours = await _ready_job(pool, blobs, to_number="15550000001")
    sibling = await _ready_job(pool, blobs, to_number="15550000002")
    retried = await _ready_job(pool, blobs, to_number="15550000003", retries=2)
    for job_id in (ours, sibling, retried):
        assert await store.claim_attempt(job_id, max_calls_per_account=10, lease_s=60) is not None
    left_up = _answered(PREDECESSOR)
    await store.record_answered_call(ours, 1, left_up)
    await store.record_answered_call(sibling, 1, _answered(SIBLING))  # a live transmitter's call
    # The predecessor's first attempt of this job ended; a live sibling now runs the second, not answered yet.
    await store.record_answered_call(retried, 1, _answered(PREDECESSOR))
    await store.record_failure(retried, 1, {"error_message": "SIP 503 Service Unavailable"}, True, 0)
    assert await store.claim_attempt(retried, max_calls_per_account=10, lease_s=60) is not None
    await store.record_answered_call(retried, 1, _answered(PREDECESSOR))  # late: that attempt is over, not kept

    reaped = await store.reap_abandoned_attempts(predecessor=PREDECESSOR)

    assert [(ended.job_id, ended.retried, ended.call) for ended in reaped] == [(ours, False, left_up)]
    rows = {r["id"]: r for r in await pool.fetch("SELECT id, status, attempts, error_message FROM fax_jobs")}
    assert (rows[ours]["status"], rows[ours]["error_message"]) == ("failed", "call interrupted: transmitter stopped")
    assert rows[sibling]["status"] == "processing"
    assert (rows[retried]["status"], rows[retried]["attempts"]) == ("processing", 2)
    assert await store.reap_abandoned_attempts() == []  # their leases still run


async def test_a_dead_transmitters_answered_calls_are_hung_up_by_its_successor_or_the_sweeper(world) -> None:
    pool, blobs, _, settings = world
    dead_line = HeldLine(owner=PREDECESSOR)  # its call stays up: the process dies holding it
    dead = Transmitter(AttemptJobStore(pool, AnsweredCall), blobs, settings, dead_line)
    by_successor = await _ready_job(pool, blobs, to_number="15550000011")
    assert await dead.start_attempt(by_successor)

    async def saved() -> bool:
        return await pool.fetchval("SELECT sip_call IS NOT NULL FROM fax_jobs WHERE id = $1", by_successor)

    await _until(saved)
    # Another job's transmitter died elsewhere: its lease (1 s) runs out, nobody restarts on its address.
    store = AttemptJobStore(pool, AnsweredCall)
    by_sweeper = await _ready_job(pool, blobs, to_number="15550000012")
    assert await store.claim_attempt(by_sweeper, max_calls_per_account=10, lease_s=1) is not None
    elsewhere = _answered(SIBLING)
    await store.record_answered_call(by_sweeper, 1, elsewhere)

    successor_line = HeldLine(owner=PREDECESSOR)
    successor = Transmitter(store, blobs, settings, successor_line)
    await successor.end_predecessors_calls()
    assert [(c.dialog.contact, c.media_ports) for c in successor_line.hung_up] == [(PREDECESSOR, (40000, 40002))]
    assert await _status_is(pool, by_successor, "failed")

    await asyncio.sleep(1.2)
    sweeper = asyncio.create_task(successor.sweep(poll_seconds=0.2))
    try:
        await _until(lambda: _equals(len(successor_line.hung_up), 2))
    finally:
        sweeper.cancel()
        dead_line.release.set()
    assert successor_line.hung_up[1] == elsewhere
    assert await _status_is(pool, by_sweeper, "failed")
    await _until(lambda: _equals(dead_line.active, 0))
    assert await _status_is(pool, by_successor, "failed")  # the dead process's late result changes nothing


async def test_a_reception_whose_holder_is_gone_is_failed_once_by_any_sweeper_never_one_still_held(world) -> None:
    """Caught: a reception whose transmitter died stayed ``receiving`` for good unless a successor started on the same
    SIP address (a restarted Kubernetes pod has a new one). Receptions now hold a lease their transmitter renews (in
    the call, and while the filing waits for S3 or Postgres); any transmitter's sweeper fails one whose lease ran
    out, with one ``fax.inbound.failed``, and hangs up its call."""
    pool, blobs, _, settings = world
    store = InboundStore(pool)
    gone = Reception(uuid.uuid4(), "acc", None, "call-gone", "+15557770001", "", "+15550001111")
    held = Reception(uuid.uuid4(), "acc", None, "call-held", "+15557770002", "", "+15550001111")
    for reception in (gone, held):
        await store.started(reception, lease_s=1)
    left_up = _answered(SIBLING)  # the dead transmitter's address: a successor, if any, starts on another
    await store.answered(gone.fax_id, left_up)
    holder = HeldReceptions(store, lease_s=1)  # a live transmitter, its filing of ``held`` waiting for S3
    filed = asyncio.Event()

    async def file_held() -> None:
        async with holder.hold(held.fax_id):
            await filed.wait()

    holding = asyncio.create_task(file_held())
    line = HeldLine(owner=PREDECESSOR)
    successor = Transmitter(
        AttemptJobStore(pool, AnsweredCall), blobs, settings, line, receptions=HeldReceptions(store, lease_s=1)
    )
    await successor.end_predecessors_calls()
    assert await _reception_is(pool, gone.fax_id, "receiving")  # not its address: only the lease tells
    sweeper = asyncio.create_task(successor.sweep(poll_seconds=0.2))
    try:
        await _until(lambda: _reception_is(pool, gone.fax_id, "failed"), seconds=10)
        await asyncio.sleep(1.5)  # longer than a lease: ``held`` is renewed, never swept
        assert await _reception_is(pool, held.fax_id, "receiving")
    finally:
        sweeper.cancel()
        filed.set()
        await holding
    received = TransmissionOutcome(
        success=True, result_code=0, result_text="OK", pages_sent=1, bit_rate=14400, ecm_used=True, bad_rows=0,
        remote_ident="FAR END", line_seconds=20.0,
    )  # fmt: skip
    assert await store.received(held, received, f"inbound/{held.fax_id}/fax.tif", None)
    assert not await store.failed(gone, None, "reception failed")  # the dead process's late record changes nothing

    assert line.hung_up == [left_up]
    error = await pool.fetchval("SELECT error_message FROM inbound_faxes WHERE id = $1", gone.fax_id)
    assert error == "reception interrupted: transmitter stopped"
    events = [decode_event(r["payload"]) for r in await pool.fetch("SELECT payload FROM outbox ORDER BY id")]
    assert [(type(e).__name__, e.fax_id) for e in events] == [  # type: ignore[attr-defined]
        ("InboundFailed", gone.fax_id),
        ("InboundReceived", held.fax_id),
    ]


async def _reception_is(pool, fax_id: uuid.UUID, status: str) -> bool:
    return await pool.fetchval("SELECT status = $2 FROM inbound_faxes WHERE id = $1", fax_id, status)


async def _all_in(pool, status: str) -> bool:
    return await pool.fetchval("SELECT bool_and(status = $1) FROM fax_jobs", status)


async def _status_is(pool, job_id: uuid.UUID, status: str) -> bool:
    return await pool.fetchval("SELECT status = $2 FROM fax_jobs WHERE id = $1", job_id, status)


async def _equals(value: object, expected: object) -> bool:
    return value == expected


async def test_a_failed_attempt_waits_for_its_retry_time(world) -> None:
    pool, blobs, _, _ = world
    store = AttemptJobStore(pool, AnsweredCall)
    later, soon = (
        await _ready_job(pool, blobs, retries=2),
        await _ready_job(pool, blobs, retries=2, to_number="15550000002"),
    )
    for job_id, delay in ((later, 3600), (soon, 0)):
        assert await store.claim_attempt(job_id, max_calls_per_account=10, lease_s=60) is not None
        await store.record_failure(job_id, 1, {"error_message": "SIP 486 Busy Here"}, True, delay)
    assert await store.due_jobs(retry_delay_s=0, held_back_s=0) == [soon]  # the busy one waits its hour


class ScriptedLine(HeldLine):
    """Answers each attempt with the next of ``outcomes`` at once, keeping every request and the route it reports."""

    def __init__(self, outcomes: list[TransmissionOutcome]) -> None:
        super().__init__()
        self.outcomes = outcomes
        self.requests: list[CallRequest] = []

    async def place_call(self, call: CallRequest) -> TransmissionOutcome:
        self.requests.append(call)
        assert call.on_route is not None
        call.on_route(CallRoute(trunk="carrier-a", transport="tls", t38_policy="prefer", t38=True))
        return self.outcomes.pop(0)


async def test_an_attempt_learns_the_faxbox_policy_and_the_attempts_before_it(world) -> None:
    """The claim hands the line the job's faxbox media.fax_option and the earlier attempts' log; tx_result keeps
    every attempt's trunk and media."""
    pool, blobs, _, settings = world
    await pool.execute(
        "INSERT INTO faxboxes (id, account_id, name, smtp_email, settings) VALUES ('box', 'acc', 'Box', 'b@x', $1)",
        {"media": {"fax_option": False}},
    )
    job_id = await _ready_job(pool, blobs, retries=2)
    await pool.execute('UPDATE fax_jobs SET request = request || \'{"faxbox_id": "box"}\' WHERE id = $1', job_id)
    dropped = TransmissionOutcome(
        success=False, result_code=49, result_text="The call dropped prematurely", pages_sent=0, bit_rate=0,
        ecm_used=False, bad_rows=0, remote_ident="", line_seconds=5.0, t38_used=True,
    )  # fmt: skip
    delivered = TransmissionOutcome(
        success=True, result_code=0, result_text="OK", pages_sent=2, bit_rate=9600, ecm_used=True, bad_rows=0,
        remote_ident="FAR", line_seconds=40.0,
    )  # fmt: skip
    line = ScriptedLine([dropped, delivered])
    transmitter = Transmitter(AttemptJobStore(pool, AnsweredCall), blobs, settings, line)

    await transmitter.attempt(job_id)
    await transmitter.attempt(job_id)  # the retry (claimed at once: its retry time is the sweeper's concern)

    first, second = line.requests
    assert first.fax_option is False and second.fax_option is False
    assert first.history == () and [(a.attempt, a.t38, a.result_code) for a in second.history] == [(1, True, 49)]
    row = await pool.fetchrow("SELECT status, attempts, tx_result FROM fax_jobs WHERE id = $1", job_id)
    assert row["status"] == "completed" and row["attempts"] == 2
    tx = row["tx_result"]
    assert (tx["sip_trunk"], tx["sip_transport"]) == ("carrier-a", "tls")
    assert [(a["attempt"], a["trunk"], a["t38"], a["result_code"]) for a in tx["attempt_log"]] == [
        (1, "carrier-a", True, 49),
        (2, "carrier-a", False, 0),
    ]


async def test_a_reception_is_filed_once_however_often_its_filing_runs(world) -> None:
    """Filing runs until it commits, so it runs again after a commit whose answer was lost: that run (and a late
    failure) must change nothing and enqueue no second event. Before, the second run's UPDATE matched no row but its
    ``fax.inbound.received`` was enqueued anyway: a second event, a second notification plan."""
    pool, _, _, _ = world
    store = InboundStore(pool)
    reception = Reception(uuid.uuid4(), "acc", None, "call-1", "+15557770001", "", "+15550001111")
    received = TransmissionOutcome(
        success=True, result_code=0, result_text="OK", pages_sent=2, bit_rate=14400, ecm_used=True, bad_rows=0,
        remote_ident="FAR END", line_seconds=40.0,
    )  # fmt: skip
    tiff_key = f"inbound/{reception.fax_id}/fax.tif"
    await store.started(reception, lease_s=60)

    assert await store.received(reception, received, tiff_key, None)
    assert not await store.received(reception, received, tiff_key, None)
    assert not await store.failed(reception, received, "reception failed: the received fax could not be stored")

    row = await pool.fetchrow("SELECT status, pages, tiff_key, error_message FROM inbound_faxes")
    assert dict(row) == {"status": "received", "pages": 2, "tiff_key": tiff_key, "error_message": ""}
    events = [decode_event(r["payload"]) for r in await pool.fetch("SELECT payload FROM outbox ORDER BY id")]
    assert [(type(e).__name__, e.fax_id) for e in events] == [("InboundReceived", reception.fax_id)]  # type: ignore[attr-defined]
