import datetime as dt
import uuid

import msgspec
import pytest

from fax_api.faxes.rows import InboundFax
from fax_api.faxes.rules import (
    FaxValidationError,
    attachment_format,
    inbound_view,
    job_view,
    revised_request,
    validate_fax_request,
)
from fax_jobs import FaxJob, job_object_keys

JOB_ID = uuid.UUID("0123456789abcdef0123456789abcdef")
UPLOADS = [f"jobs/{JOB_ID}/upload-0"]


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [
        ("", "tiff"),
        ("*/*", "tiff"),
        ("application/pdf", "pdf"),
        ("image/tiff", "tiff"),
        ("image/tiff;q=0.5, application/pdf", "pdf"),
        ("text/html, application/*;q=0.8", "pdf"),
        ("text/html", None),
        ("application/pdf;q=0", None),
    ],
)
def test_attachment_format_follows_accept(accept: str, fmt: str | None) -> None:
    assert attachment_format(accept) == fmt


def test_client_cannot_name_upload_keys() -> None:
    request = validate_fax_request(
        {"to_number": "1555", "document": {"url": "http://x/y.pdf", "uploads": ["jobs/other/x"]}}
    )
    assert "uploads" not in request["document"]


def test_revised_request_keeps_uploads_unless_a_url_replaces_them() -> None:
    current = {"to_number": "1555", "document": {"method": "get", "uploads": UPLOADS}}
    patched = revised_request(current, {**current, "to_name": "N"})
    assert patched["document"]["uploads"] == UPLOADS and patched["to_name"] == "N"
    replaced = revised_request(current, {"to_number": "1666", "document": {"url": "http://x/new.pdf"}})
    assert "uploads" not in replaced["document"] and replaced["document"]["url"] == "http://x/new.pdf"
    with pytest.raises(FaxValidationError) as caught:
        revised_request({"to_number": "1", "document": {"url": "http://x"}}, {"to_number": "1"})
    assert "document.url" in caught.value.errors


def _job(**overrides: object) -> FaxJob:
    row = {
        "id": JOB_ID,
        "int_id": 1,
        "account_id": "acc",
        "status": "completed",
        "request": {"to_number": "1555", "document": {"uploads": UPLOADS}},
        "to_number": "1555",
        "from_number": "",
        "retries": 1,
        "attempts": 1,
        "tiff_key": f"jobs/{JOB_ID}/fax.tif",
        "pages": 2,
        "tx_result": {},
        "revision": 1,
        "created_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        "delivered_at": None,
    }
    row.update(overrides)
    return msgspec.convert(row, FaxJob)


def test_removed_attachment_is_said() -> None:
    assert "attachment_deleted" not in job_view(_job())
    assert job_view(_job(tiff_key=None))["attachment_deleted"] is True
    assert "attachment_deleted" not in job_view(_job(tiff_key=None, pages=None, status="failed"))


def test_job_object_keys_cover_everything_the_job_wrote() -> None:
    prefix = f"jobs/{JOB_ID}/"
    assert set(job_object_keys(_job())) == {
        *UPLOADS,
        prefix + "original",
        prefix + "fax.tif",
        prefix + "fax.pdf",
        prefix + "preview-1.png",
        prefix + "preview-2.png",
    }


def test_job_object_keys_follow_the_render_the_row_names() -> None:
    render = f"jobs/{JOB_ID}/r2/{'a' * 32}/"
    assert set(job_object_keys(_job(tiff_key=render + "fax.tif", pages=1))) == {
        *UPLOADS,
        f"jobs/{JOB_ID}/original",  # where renders kept it before they had a directory each
        render + "original",
        render + "fax.tif",
        render + "fax.pdf",
        render + "preview-1.png",
    }


def test_inbound_view_uses_kazoo_shapes() -> None:
    fax = {
        "id": JOB_ID,
        "account_id": "acc",
        "status": "received",
        "faxbox_id": None,
        "call_id": "c",
        "from_number": "1",
        "from_name": "",
        "to_number": "2",
        "remote_station_id": "R",
        "pages": 1,
        "tiff_key": None,
        "pdf_key": None,
        "rx_result": {"success": True},
        "error_message": "",
        "revision": 1,
        "created_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        "completed_at": None,
    }
    view = inbound_view(msgspec.convert(fax, InboundFax))
    assert view["id"] == JOB_ID.hex and view["faxbox_id"] == "undefined" and view["completed"] == "undefined"
    assert view["rx_result"]["success"] is True and view["rx_result"]["fax_speed"] == 0
    assert view["attachment_deleted"] is True
