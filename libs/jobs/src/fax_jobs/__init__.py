"""The outbound fax job: its life cycle (``fax_jobs.lifecycle``) and the only code that changes a job's state.

Who calls what: the API's dialects and the SMTP gateway submit, read, change and remove jobs (``JobStore``); the
fetcher prepares a job's document (``DocumentJobStore``, behind the ``DocumentJobs`` protocol); the transmitter makes
its attempts (``AttemptJobStore``, behind ``AttemptJobs``). ``fax_jobs.testing`` has in-memory stand-ins for unit
tests.
"""

from fax_jobs.attempts import AttemptJobs, AttemptJobStore
from fax_jobs.documents import DocumentJobs, DocumentJobStore
from fax_jobs.lifecycle import (
    CHANGEABLE_STATES,
    FINISHED_STATES,
    QUEUED_STATES,
    TRANSITION,
    TRANSITIONS,
    JobState,
    Transition,
    may,
)
from fax_jobs.objects import is_shared_upload, job_object_keys, shared_upload_keys, upload_key, upload_keys
from fax_jobs.rows import (
    AbandonedAttempt,
    ClaimedAttempt,
    FaxJob,
    JobSummary,
    JobToPrepare,
    RecordedRender,
    StalledDocument,
)
from fax_jobs.store import DocumentsGone, JobNotChangeable, JobStore, Submission

__all__ = [
    "CHANGEABLE_STATES",
    "FINISHED_STATES",
    "QUEUED_STATES",
    "TRANSITION",
    "TRANSITIONS",
    "AbandonedAttempt",
    "AttemptJobStore",
    "AttemptJobs",
    "ClaimedAttempt",
    "DocumentJobStore",
    "DocumentJobs",
    "DocumentsGone",
    "FaxJob",
    "JobNotChangeable",
    "JobState",
    "JobStore",
    "JobSummary",
    "JobToPrepare",
    "RecordedRender",
    "StalledDocument",
    "Submission",
    "Transition",
    "is_shared_upload",
    "job_object_keys",
    "may",
    "shared_upload_keys",
    "upload_key",
    "upload_keys",
]
