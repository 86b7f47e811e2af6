"""Fax.to's response shapes for jobs, documents and numbers (pure functions)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from fax_api.faxto import inventory
from fax_api.faxto.rows import FaxtoDocument, FaxtoNumber, ReceivedFax, SentFax
from fax_jobs import FaxJob
from fax_runtime import signing

# fax_jobs.status -> Fax.to's status message (GET /fax/{id}/status) and history status.
_MESSAGES = {
    "attaching_files": "Queued: Preparing The Document.",
    "pending": "Queued: Waiting To Be Sent.",
    "processing": "Sending: Fax Is Being Transmitted.",
    "completed": "Sent! Fax Has Been Answered.",
}


def money(amount: Decimal) -> float:
    return float(round(amount, 4))


def sent(fax: SentFax) -> dict[str, Any]:
    """A send's answer: the job's integer id, its cost and the balance left after reserving it."""
    return {
        "status": "executed",
        "fax_job_id": fax.job.int_id,
        "user_cash_balance": money(fax.balance_left),
        "cost": money(fax.cost),
    }


def status_message(job: FaxJob) -> str:
    if job.status == "failed":
        reason = job.tx_result.get("error_message") or "Unknown Error"
        return f"Failed: {reason}"
    return _MESSAGES[job.status]


def history_status(status: str) -> str:
    return {"completed": "success", "failed": "failed"}.get(status, "pending")


def php_date(moment: dt.datetime) -> dict[str, Any]:
    """PHP's DateTime as json_encode shows it, which is what Fax.to's history returns."""
    return {
        "date": moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "timezone_type": 3,
        "timezone": "UTC",
    }


def history_entry(job: FaxJob) -> dict[str, Any]:
    faxto = job.request.get("faxto") or {}
    return {
        "id": job.int_id,
        "created": php_date(job.created_at),
        "document_id": faxto.get("document_id"),
        "document": faxto.get("document", ""),
        "recipient": job.to_number.lstrip("+"),
        "status": history_status(job.status),
    }


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def document_view(document: FaxtoDocument) -> dict[str, Any]:
    """The upload response's ``document`` object, its names in the text's forms: ``<stored>.<ext>`` for the file,
    ``<orig_filename>.tiff`` for the fax and ``<orig_filename>.preview.png`` for its first page's preview."""
    stored = document.object_key.rsplit("/", 1)[-1]
    original = f"{stored}.{document.file_extension}" if document.file_extension else stored
    return {
        "filename": f"{original}.tiff",
        "filename_uploaded": document.filename_uploaded,
        "orig_filename": original,
        "file_extension": document.file_extension,
        "total_pages": document.total_pages,
        "filesize": document.filesize,
        # The fetcher draws the previews as soon as the file is stored (fax.document.stored.v1, queued with the
        # upload's row), so the preview is named from the start, and in storage once drawn; none for a file the
        # fetcher could not render.
        "preview_in_storage": 1 if document.preview_status == "ready" else 0,
        "preview_file": None if document.preview_status == "failed" else f"{original}.preview.png",
        "preview_image": None,
        "s3": None,
        "user_id": document.user_id,
        "updated_at": _stamp(document.updated_at),
        "created_at": _stamp(document.created_at),
        "id": document.id,
    }


def file_entry(document: FaxtoDocument) -> dict[str, Any]:
    """One element of GET /files."""
    return {
        "id": document.id,
        "filename": document.filename_uploaded,
        "pages": document.total_pages,
        "size": document.filesize,
        "uploaded": document.created_at.astimezone(dt.UTC).strftime("%Y-%m-%d"),
    }


def human_size(size: int | None) -> str | None:
    """Bytes as Fax.to shows a file's size: "120.45 KB"."""
    if size is None:
        return None
    amount, unit = float(size), "B"
    for bigger in ("KB", "MB", "GB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, bigger
    return f"{size} B" if unit == "B" else f"{amount:.2f} {unit}"


def incoming_entry(fax: ReceivedFax, base_url: str, key: bytes) -> dict[str, Any]:
    """One received fax as Fax.to lists it; its links are signed and expire (signing.LINK_TTL_SECONDS)."""
    stored = fax.pdf_key or fax.tiff_key or ""
    return {
        "id": fax.int_id,
        "did_id": fax.did_id,
        "filename": stored.rsplit("/", 1)[-1],
        "filesize": human_size(fax.filesize),
        "number": fax.to_number,
        "sender": fax.from_number.lstrip("+"),
        "total_pages": fax.pages,
        "created_at": php_date(fax.created_at),
        "preview_file": signing.inbound_fax_link(key, base_url, fax.id.hex, "preview"),
        "file_url": signing.inbound_fax_link(key, base_url, fax.id.hex, "file"),
    }


def provisioned_number(number: FaxtoNumber) -> dict[str, Any]:
    """A number just provisioned, as the provisioning calls answer it."""
    group, country = _group_of(number)
    return {
        "id": number.id,
        "didid": number.id,
        "did_group_id": group["did_group_id"],
        "country_code": country["a2_code"],
        "city_name": group["city_name"],
        "area_code": group["area_code"],
        "number": number.e164,
        "type": group["type"],
        "trunk_id": inventory.TRUNK_ID,
    }


def number_entry(number: FaxtoNumber) -> dict[str, Any]:
    """One element of GET /numbers."""
    group, country = _group_of(number)
    return {
        "id": number.id,
        "order_reference": None,
        "country_code": country["a2_code"],
        "country": country["country"],
        "city_name": group["city_name"],
        "area_code": group["area_code"],
        "did_group_id": group["did_group_id"],
        "did_number": number.e164,
        "expiration_date": number.expiration_date.isoformat(),
        "status": "Active",
    }


def _group_of(number: FaxtoNumber) -> tuple[dict[str, Any], dict[str, Any]]:
    found = inventory.group(number.did_group_id)
    if found is None:  # numbers are provisioned from the inventory only
        raise LookupError(f"DID group {number.did_group_id} is not in the inventory")
    return found
