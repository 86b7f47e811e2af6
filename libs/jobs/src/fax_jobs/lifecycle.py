"""The outbound fax job's life cycle: its states, every transition between them, and the SQL block that makes each.

Everything that decides a job's state lives in this table (the rule h11 keeps for its connection states). The named
SQL blocks it lists (``fax_jobs/sql/*.sql``) are the only code that writes ``fax_jobs``, and each is guarded by
exactly the states its row names; ``tests/unit/test_lifecycle.py`` holds the blocks to the table, and the table to
the CHECK constraint on ``fax_jobs.status`` (migration 0001).

States (Kazoo's, shown verbatim by the API):

- ``attaching_files``: submitted with uploaded documents, which the fetcher has not rendered yet.
- ``pending``: waiting: for its document to be fetched (a URL job), or, once it is ready (``tiff_key``), for an
  attempt: the first, a retry after ``next_attempt_at``, or one a call limit held back.
- ``processing``: an attempt is on the line, under a lease (``lease_expires_at``) its transmitter renews.
- ``completed``: delivered.
- ``failed``: its document could not be prepared, or its last attempt failed.

Three more columns take part in the guards. ``tiff_key``: the rendered document, recorded once per request.
``request_revision``: which request the job carries; a change moves it, so a render of an earlier request is never
recorded. ``attempts``: an attempt's lease, progress and outcome count only while it is still the job's current one.
``revision`` is the row's version (Kazoo's revision): every write moves it and no guard reads it.

Billing (migration 0006). Jobs sent through a dialect that bills (Fax.to) reserve their cost when they are
submitted, in the submission's transaction. The trigger ``fax_jobs_settle_charge`` runs in the transaction of every
transition that moves a job into ``completed`` (the reserved charge is settled) or ``failed`` (it is released: the
money goes back to the balance), and ``fax_jobs_release_charge`` in that of ``delete_queued`` and
``delete_finished`` (a charge still reserved is released). So whichever service ends a job also settles its bill,
atomically; a job without a charge is untouched by either.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final


class JobState(enum.StrEnum):
    ATTACHING_FILES = "attaching_files"
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


ATTACHING_FILES: Final = JobState.ATTACHING_FILES
PENDING: Final = JobState.PENDING
PROCESSING: Final = JobState.PROCESSING
COMPLETED: Final = JobState.COMPLETED
FAILED: Final = JobState.FAILED


UNCHANGED: Final = None  # a transition that leaves the job in the state it found it in
DELETED: Final[tuple[JobState, ...]] = ()  # a transition that removes the job


@dataclass(frozen=True)
class Transition:
    """``event`` may happen to a job in one of ``sources`` and leaves it in one of ``targets`` (None: in the state it
    was in; empty: the job is gone). ``sql`` names the blocks that make it, each guarded by ``sources``."""

    event: str
    sources: frozenset[JobState]
    targets: frozenset[JobState] | None
    sql: tuple[str, ...]


def _row(event: str, sources: Iterable[JobState], targets: Iterable[JobState] | None, *sql: str) -> Transition:
    return Transition(event, frozenset(sources), None if targets is None else frozenset(targets), sql)


TRANSITIONS: Final[tuple[Transition, ...]] = (
    # event                   from                        to                          its SQL blocks (fax_jobs/sql)
    _row("submit",            (),                         (ATTACHING_FILES, PENDING), "submit_job"),
    _row("change",            (ATTACHING_FILES, PENDING), (ATTACHING_FILES, PENDING), "change_queued_job"),
    _row("delete_queued",     (ATTACHING_FILES, PENDING), DELETED,                    "delete_queued_job"),
    _row("document_ready",    (ATTACHING_FILES, PENDING), (PENDING,),                 "job_to_prepare",
                                                                                      "document_ready"),
    _row("document_failed",   (ATTACHING_FILES, PENDING), (FAILED,),                  "job_to_prepare",
                                                                                      "document_failed"),
    _row("redrive_document",  (ATTACHING_FILES, PENDING), UNCHANGED,                  "stalled_documents"),
    _row("claim",             (PENDING,),                 (PROCESSING,),              "due_jobs", "claim_attempt"),
    _row("renew_lease",       (PROCESSING,),              UNCHANGED,                  "renew_lease"),
    _row("progress",          (PROCESSING,),              UNCHANGED,                  "attempt_progress"),
    _row("answered",          (PROCESSING,),              UNCHANGED,                  "attempt_answered"),
    _row("succeeded",         (PROCESSING,),              (COMPLETED,),               "attempt_succeeded"),
    _row("failed",            (PROCESSING,),              (PENDING, FAILED),          "attempt_failed"),
    _row("abandoned",         (PROCESSING,),              (PENDING, FAILED, COMPLETED),
                                                                                      "reap_abandoned_attempts"),
    _row("resubmit",          (COMPLETED, FAILED),        UNCHANGED),  # its request is submitted again, as a new job
    _row("remove_attachment", (COMPLETED, FAILED),        UNCHANGED,                  "lock_finished_job",
                                                                                      "forget_job_attachment"),
    _row("delete_finished",   (COMPLETED, FAILED),        DELETED,                    "delete_finished_job"),
)  # fmt: skip

TRANSITION: Final[Mapping[str, Transition]] = {transition.event: transition for transition in TRANSITIONS}


def may(event: str, state: str) -> bool:
    """Whether ``event`` may happen to a job in ``state``."""
    return state in TRANSITION[event].sources


def _in_order(states: frozenset[JobState]) -> tuple[JobState, ...]:
    return tuple(state for state in JobState if state in states)


# Kazoo's folders: ``outgoing`` holds the jobs still on their way, ``outbox`` the finished ones, which no transition
# moves on (they can only be resubmitted as a new job, lose their documents, or be deleted).
QUEUED_STATES: Final = (ATTACHING_FILES, PENDING, PROCESSING)
FINISHED_STATES: Final = (COMPLETED, FAILED)
# A queued job may be changed or removed until the transmitter claims it.
CHANGEABLE_STATES: Final = _in_order(TRANSITION["change"].sources)
