"""What the job stores hand back: one typed row per use, never a bare ``dict``."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Generic, TypeVar

import msgspec

from fax_jobs.lifecycle import JobState

CallT = TypeVar("CallT")


class FaxJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job as its owner sees it: what the API shows and the SMTP gateway answers with."""

    id: uuid.UUID
    int_id: int  # the integer id Fax.to and VoipNow answer with
    account_id: str
    status: JobState
    request: dict[str, Any]  # the Kazoo fax document as submitted (or last changed)
    to_number: str
    from_number: str
    retries: int  # Kazoo's: the total number of attempts
    attempts: int
    tiff_key: str | None  # the rendered fax; None until it is ready, or after its attachment was removed
    pages: int | None
    tx_result: dict[str, Any]
    revision: int
    created_at: dt.datetime
    delivered_at: dt.datetime | None


class JobSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a listing (Kazoo's outgoing and outbox)."""

    id: uuid.UUID
    status: JobState
    from_number: str
    to_number: str
    created_at: dt.datetime


class JobToPrepare(msgspec.Struct, frozen=True, kw_only=True):
    """A job whose document the fetcher is to prepare: the request it renders, and which one that is."""

    id: uuid.UUID
    account_id: str
    status: JobState
    request: dict[str, Any]
    request_revision: int


class RecordedRender(msgspec.Struct, frozen=True, kw_only=True):
    """The render a job's row names (its current request's): where its TIFF is and how many pages it has."""

    tiff_key: str
    pages: int | None


class ClaimedAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """An attempt a transmitter now owns (its lease runs): what it dials and sends."""

    id: uuid.UUID
    account_id: str
    request: dict[str, Any]
    to_number: str
    from_number: str
    tiff_key: str
    pages: int | None
    attempts: int  # this attempt's number, from 1
    retries: int
    created_at: dt.datetime
    tx_result: dict[str, Any]  # as the previous attempt left it: its media choices steer this one's
    fax_option: Any = None  # the sending faxbox's media.fax_option (Kazoo: true, false or "auto"), if any


class AbandonedAttempt(msgspec.Struct, Generic[CallT], frozen=True, kw_only=True):
    """An attempt ended because its transmitter is gone; its call, when it was answered, may still be up.
    ``completed``: the far end had confirmed every page, so the job is delivered; else ``retried`` says whether
    another attempt follows."""

    job_id: uuid.UUID
    retried: bool
    call: CallT | None
    completed: bool = False


class StalledDocument(msgspec.Struct, frozen=True, kw_only=True):
    """A queued job whose document nobody prepared in time, now taken by the fetcher that re-drives it."""

    id: uuid.UUID
    account_id: str
