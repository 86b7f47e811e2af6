"""Which uploaded objects a job may render: its own, or its account's shared uploads."""

from __future__ import annotations

import uuid

import pytest

from fax_fetcher.handlers import upload_keys
from fax_render.render import RenderError


def test_uploads_must_belong_to_the_job_or_its_account() -> None:
    job_id = uuid.uuid4()
    assert upload_keys(job_id, "acc1", {"url": "http://example.com/"}) is None
    assert upload_keys(job_id, "acc1", {"uploads": [f"jobs/{job_id}/upload-0"]}) == [f"jobs/{job_id}/upload-0"]
    shared = f"shared/acc1/{uuid.uuid4()}/upload-0"
    assert upload_keys(job_id, "acc1", {"uploads": [shared]}) == [shared]
    for foreign in (f"jobs/{uuid.uuid4()}/upload-0", shared.replace("acc1", "acc2"), "shared/acc1x/b/upload-0"):
        with pytest.raises(RenderError, match="does not belong to this job"):
            upload_keys(job_id, "acc1", {"uploads": [foreign]})
    with pytest.raises(RenderError, match="non-empty list"):
        upload_keys(job_id, "acc1", {"uploads": []})
    with pytest.raises(RenderError, match=r"^the job has no document"):
        upload_keys(job_id, "acc1", {})
