"""Where a job's documents live in S3: its uploads, shared uploads, and the render its row names."""

from __future__ import annotations

import uuid

from fax_jobs.rows import FaxJob
from fax_runtime.blobs import fax_render_keys


def upload_key(job_id: uuid.UUID, index: int) -> str:
    return f"jobs/{job_id}/upload-{index}"


def upload_keys(job_id: uuid.UUID, count: int) -> list[str]:
    """Where a job's ``count`` uploaded documents go, in order."""
    return [upload_key(job_id, index) for index in range(count)]


def shared_upload_keys(account_id: str, count: int) -> list[str]:
    """Where uploads several jobs of one account send go (one VoipNow request to many recipients)."""
    batch = uuid.uuid4()
    return [f"shared/{account_id}/{batch}/upload-{index}" for index in range(count)]


def is_shared_upload(key: str) -> bool:
    return key.startswith("shared/")


def job_object_keys(job: FaxJob) -> list[str]:
    """Every S3 object a job may have: uploads, and the render its row names (TIFF, PDF copy, page previews, the
    fetched original)."""
    keys = list((job.request.get("document") or {}).get("uploads") or [])
    keys.append(f"jobs/{job.id}/original")  # where renders kept the original before they had a directory each
    if job.tiff_key:
        keys += fax_render_keys(job.tiff_key, job.pages)
    return list(dict.fromkeys(keys))
