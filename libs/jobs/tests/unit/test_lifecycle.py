"""The life cycle's table against the SQL that makes each transition and the schema that constrains the states.

Each SQL block that writes a job must be a row of the table, guarded by exactly the states that row names and leaving
the job in the states it names; the states must be those ``fax_jobs.status`` accepts, the billing trigger must fire on
exactly the finished ones, and no code outside this library may write ``fax_jobs``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fax_jobs import lifecycle
from fax_jobs.lifecycle import TRANSITION, TRANSITIONS, JobState, Transition
from fax_runtime.migrations import bundled_migrations
from fax_runtime.sql import load_queries

REPO = Path(__file__).resolve().parents[4]
BLOCKS = {
    name: sql
    for filename in ("sql/jobs.sql", "sql/documents.sql", "sql/attempts.sql")
    for name, sql in load_queries("fax_jobs", filename).items()
}
_WRITES = re.compile(r"\b(?:UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+fax_jobs\b", re.IGNORECASE)
_WHERE = re.compile(r"\bWHERE\b", re.IGNORECASE)
# `status` of the job itself, not `a.status` of the other jobs a subquery counts.
_STATUS_GUARD = re.compile(r"(?<![.\w])status\s*(?:=\s*'(\w+)'|IN\s*\(([^)]*)\))", re.IGNORECASE)
_STATUS_SET = re.compile(r"(?<![.\w])status\s*=\s*(CASE\b.*?\bEND|'\w+')", re.IGNORECASE | re.DOTALL)
_CASE_RESULT = re.compile(r"\b(?:THEN|ELSE)\s+'(\w+)'", re.IGNORECASE)
_LITERAL = re.compile(r"'(\w+)'")


def _code(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def guard_of(sql: str) -> frozenset[str]:
    """The states a block's WHERE clause lets a job through in (none: the block reads or writes any job)."""
    parts = _WHERE.split(_code(sql), maxsplit=1)
    guards = _STATUS_GUARD.findall(parts[1]) if len(parts) == 2 else []
    assert len(guards) <= 1, f"more than one guard on the job's status: {guards}"
    if not guards:
        return frozenset()
    equals, within = guards[0]
    return frozenset([equals] if equals else _LITERAL.findall(within))


def targets_of(sql: str) -> frozenset[str] | None:
    """The states a block that writes a job leaves it in: empty when it deletes it, None when it keeps its state."""
    code = _code(sql)
    if re.search(r"\bDELETE\s+FROM\b", code, re.IGNORECASE):
        return frozenset()
    if re.search(r"\bINSERT\s+INTO\s+fax_jobs\b", code, re.IGNORECASE):
        case = re.search(r"\bCASE\b.*?\bEND\b", code, re.IGNORECASE | re.DOTALL)
        assert case, "a new job's state is decided in its INSERT"
        return frozenset(_CASE_RESULT.findall(case[0]))
    assignments = _STATUS_SET.findall(_WHERE.split(code, maxsplit=1)[0])
    if not assignments:
        return None
    (assigned,) = assignments
    results = _CASE_RESULT if assigned.upper().startswith("CASE") else _LITERAL
    return frozenset(results.findall(assigned))


ROWS = [(transition, block) for transition in TRANSITIONS for block in transition.sql]


def test_every_block_that_writes_a_job_is_a_row_of_the_table() -> None:
    writers = {name for name, sql in BLOCKS.items() if _WRITES.search(_code(sql))}
    listed = {block for _, block in ROWS}
    assert listed <= BLOCKS.keys(), f"the table names blocks that do not exist: {listed - BLOCKS.keys()}"
    assert writers <= listed, f"blocks that change a job outside the table: {writers - listed}"


@pytest.mark.parametrize(("transition", "block"), ROWS, ids=[f"{t.event}:{block}" for t, block in ROWS])
def test_each_block_is_guarded_by_the_states_its_row_names(transition: Transition, block: str) -> None:
    assert guard_of(BLOCKS[block]) == transition.sources


WRITERS = [(transition, block) for transition, block in ROWS if _WRITES.search(_code(BLOCKS[block]))]


@pytest.mark.parametrize(("transition", "block"), WRITERS, ids=[f"{t.event}:{block}" for t, block in WRITERS])
def test_each_block_leaves_the_job_in_the_states_its_row_names(transition: Transition, block: str) -> None:
    assert targets_of(BLOCKS[block]) == transition.targets


def test_the_guard_reader_sees_what_the_sql_says() -> None:
    """The readers above, on the shapes the blocks use: a subquery's other jobs and comments are not the guard."""
    sql = """UPDATE fax_jobs j SET status = 'processing' -- status = 'completed'
             WHERE id = $1 AND status = 'pending'
               AND (SELECT count(*) FROM fax_jobs a WHERE a.status = 'processing') < 2"""
    assert (guard_of(sql), targets_of(sql)) == ({"pending"}, {"processing"})
    sql = "UPDATE fax_jobs SET status = CASE WHEN $4::bool THEN 'pending' ELSE 'failed' END WHERE status IN ('a', 'b')"
    assert (guard_of(sql), targets_of(sql)) == ({"a", "b"}, {"pending", "failed"})
    assert targets_of("UPDATE fax_jobs SET tiff_key = NULL WHERE status IN ('completed')") is None
    assert targets_of("DELETE FROM fax_jobs WHERE id = $1 AND status = 'failed'") == frozenset()


def _status_check(sql: str) -> list[str]:
    """Every CHECK on fax_jobs.status a migration declares, in order."""
    found = []
    for statement in re.findall(r"(?:CREATE|ALTER)\s+TABLE\s+fax_jobs\b.*?;", sql, re.IGNORECASE | re.DOTALL):
        found += re.findall(r"CHECK\s*\(\s*status\s+IN\s*\(([^)]*)\)", statement, re.IGNORECASE)
    return found


def test_the_states_are_those_the_schema_allows() -> None:
    checks = [check for migration in bundled_migrations() for check in _status_check(migration.sql)]
    assert checks, "no migration constrains fax_jobs.status"
    assert set(_LITERAL.findall(checks[-1])) == set(JobState)


def test_billing_settles_exactly_when_a_job_finishes() -> None:
    """Migration 0006's trigger settles or releases a charge on the states FINISHED_STATES names: the states no
    transition leads out of (a finished job can only be resubmitted as a new one, or removed)."""
    (billing,) = [m.sql for m in bundled_migrations() if "fax_jobs_settle_charge" in m.sql]
    when = re.search(r"NEW\.status\s+IN\s*\(([^)]*)\)", billing)
    assert when and set(_LITERAL.findall(when[1])) == set(lifecycle.FINISHED_STATES)
    leaving = {state for t in TRANSITIONS if t.targets for state in t.sources if t.targets - {state}}
    assert set(lifecycle.FINISHED_STATES) == set(JobState) - leaving
    assert set(lifecycle.QUEUED_STATES) == leaving


def test_every_state_is_reached_from_a_submission() -> None:
    reached, frontier = set(), set(TRANSITION["submit"].targets or ())
    while frontier:
        reached |= frontier
        frontier = {s for t in TRANSITIONS if t.targets and t.sources & reached for s in t.targets} - reached
    assert reached == set(JobState)


def test_a_queued_job_may_be_changed_or_withdrawn_until_it_is_claimed() -> None:
    assert set(lifecycle.CHANGEABLE_STATES) == TRANSITION["change"].sources == TRANSITION["delete_queued"].sources
    assert TRANSITION["claim"].sources <= set(lifecycle.CHANGEABLE_STATES) and not set(lifecycle.CHANGEABLE_STATES) & {
        "processing"
    }


def test_no_code_outside_fax_jobs_writes_a_job() -> None:
    sources = [
        path
        for pattern in ("libs/*/src/**/*", "services/*/src/**/*", "tools/*/src/**/*")
        for path in REPO.glob(pattern)
        if path.suffix in (".py", ".sql") and "migrations" not in path.parts
    ]
    assert any(path.name == "jobs.sql" for path in sources), "the scan found the library's own SQL"
    writers = [
        str(path.relative_to(REPO))
        for path in sources
        if "fax_jobs" not in path.parts and _WRITES.search(path.read_text(encoding="utf-8"))
    ]
    assert writers == []
