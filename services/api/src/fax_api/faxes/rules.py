"""Outbound fax jobs in Kazoo's terms: validating a submitted document and presenting a job.

Pure functions, no I/O. Validation collects every failing field, the way Kazoo reports schema errors:
``{"to_number": {"required": {"message": "Field is required but missing"}}}``.
"""

from __future__ import annotations

from typing import Any

from fax_api.faxes.rows import InboundFax, InboundSummary, SmtpLogEntry
from fax_api.web.kazoo import gregorian_seconds
from fax_jobs import FINISHED_STATES, FaxJob, JobSummary
from fax_runtime.guarded_http import url_problem

# An outbound job's states (Kazoo's outgoing and outbox folders among them) are fax_jobs.lifecycle's.
INBOX_STATES = ("received", "failed")
INCOMING_STATES = ("receiving",)
MAX_RETRIES = 4  # Kazoo's schema allows 1..4 total attempts

TX_RESULT_DEFAULTS: dict[str, Any] = {
    "error_message": "",
    "fax_bad_rows": 0,
    "fax_error_correction": False,
    "fax_receiver_id": "",
    "fax_speed": 0,
    "pages_sent": 0,
    "success": False,
    "time_elapsed": 0,
}

_STRING_FIELDS = ("from_name", "from_number", "to_name", "to_number", "fax_identity", "fax_header", "fax_timezone")
_DOCUMENT_STRINGS = ("url", "host", "referer", "content_type", "content")


class FaxValidationError(ValueError):
    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__("invalid data")
        self.errors = errors


def _add(errors: dict[str, Any], field: str, rule: str, message: str, **extra: Any) -> None:
    errors.setdefault(field, {})[rule] = {"message": message, **extra}


def _check_send_to(errors: dict[str, Any], field: str, value: Any) -> None:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return
    _add(errors, field, "type", "Value is not of type string or array of strings", target="string,array")


def validate_fax_request(doc: Any, *, require_document_url: bool = True) -> dict[str, Any]:
    """Check a Kazoo fax document; return it with defaults applied, or raise FaxValidationError."""
    errors: dict[str, Any] = {}
    if not isinstance(doc, dict):
        raise FaxValidationError({"data": {"type": {"message": "Value is not of type object", "target": "object"}}})
    result = dict(doc)

    for field in _STRING_FIELDS:
        if field in doc and not isinstance(doc[field], str):
            _add(errors, field, "type", "Value is not of type string", target="string")
    to_number = doc.get("to_number")
    if not isinstance(to_number, str) or not to_number.strip():
        if "to_number" not in errors:
            _add(errors, "to_number", "required", "Field is required but missing")
    elif not any(ch.isdigit() for ch in to_number):
        _add(errors, "to_number", "pattern", "Value is not a phone number")

    document = doc.get("document", {})
    if not isinstance(document, dict):
        _add(errors, "document", "type", "Value is not of type object", target="object")
        document = {}
    # document.uploads names objects this API stored; a client cannot point a job at other objects.
    document = {"method": "get", **{k: v for k, v in document.items() if k != "uploads"}}
    for field in _DOCUMENT_STRINGS:
        if field in document and not isinstance(document[field], str):
            _add(errors, f"document.{field}", "type", "Value is not of type string", target="string")
    if document["method"] not in ("get", "post"):
        _add(errors, "document.method", "enum", "Value not found in enumerated list of values", target=["get", "post"])
    if isinstance(document.get("content"), str) and len(document["content"]) > 256:
        _add(errors, "document.content", "maxLength", "String must not be more than 256 characters", target=256)
    url = document.get("url")
    if require_document_url and not (isinstance(url, str) and url.strip()):
        if "document.url" not in errors:
            _add(errors, "document.url", "required", "Field is required but missing")
    elif isinstance(url, str) and url_problem(url):
        _add(errors, "document.url", "pattern", url_problem(url))
    result["document"] = document

    retries = doc.get("retries", 1)
    if not isinstance(retries, int) or isinstance(retries, bool):
        _add(errors, "retries", "type", "Value is not of type integer", target="integer")
    elif not 1 <= retries <= MAX_RETRIES:
        _add(
            errors,
            "retries",
            "maximum" if retries > MAX_RETRIES else "minimum",
            f"Value must be between 1 and {MAX_RETRIES}",
            target=MAX_RETRIES if retries > MAX_RETRIES else 1,
        )
    result["retries"] = retries

    notifications = doc.get("notifications")
    if notifications is not None:
        if not isinstance(notifications, dict):
            _add(errors, "notifications", "type", "Value is not of type object", target="object")
        else:
            for channel in ("email", "sms"):
                target = notifications.get(channel)
                if target is not None:
                    if not isinstance(target, dict):
                        _add(errors, f"notifications.{channel}", "type", "Value is not of type object", target="object")
                    elif "send_to" in target:
                        _check_send_to(errors, f"notifications.{channel}.send_to", target["send_to"])

    callback = doc.get("callback")
    if callback is not None:
        if not isinstance(callback, dict):
            _add(errors, "callback", "type", "Value is not of type object", target="object")
        else:
            if callback.get("method", "post") not in ("post", "put"):
                _add(
                    errors,
                    "callback.method",
                    "enum",
                    "Value not found in enumerated list of values",
                    target=["post", "put"],
                )
            if callback.get("type", "json") not in ("json", "www-url-form-encoded"):
                _add(
                    errors,
                    "callback.type",
                    "enum",
                    "Value not found in enumerated list of values",
                    target=["json", "www-url-form-encoded"],
                )
            callback_url = callback.get("url")
            if callback_url is not None and not isinstance(callback_url, str):
                _add(errors, "callback.url", "type", "Value is not of type string", target="string")
            elif callback_url and url_problem(callback_url):
                _add(errors, "callback.url", "pattern", url_problem(callback_url))

    # Fields the system owns are reset on every put/post, as Kazoo does.
    for owned in ("attempts", "tx_result", "id", "status", "created", "delivered"):
        result.pop(owned, None)
    if errors:
        raise FaxValidationError(errors)
    return result


def job_view(job: FaxJob) -> dict[str, Any]:
    """The Kazoo representation of a stored job."""
    data: dict[str, Any] = dict(job.request)
    data.update(
        id=job.id.hex,
        status=job.status,
        attempts=job.attempts,
        retries=job.retries,
        created=gregorian_seconds(job.created_at),
        delivered=gregorian_seconds(job.delivered_at) if job.delivered_at else "undefined",
        tx_result={**TX_RESULT_DEFAULTS, **job.tx_result},
    )
    data.setdefault("fax_timezone", "undefined")
    if job.pages is not None:
        data["pages"] = job.pages
        # A rendered job always has its TIFF; a finished one without it had its attachment removed.
        if job.tiff_key is None and job.status in FINISHED_STATES:
            data["attachment_deleted"] = True
    return data


def job_summary(job: JobSummary | InboundSummary) -> dict[str, Any]:
    """One row of an outgoing/outbox listing (and the start of an inbox/incoming one)."""
    return {
        "id": job.id.hex,
        "status": job.status,
        "created": gregorian_seconds(job.created_at),
        "from": job.from_number,
        "to": job.to_number,
    }


def revised_request(current: dict[str, Any], document: Any) -> dict[str, Any]:
    """A queued job's new request (POST replaces, PATCH merges first): validated, its uploads kept.

    An uploaded job keeps its uploaded documents unless the new request names a document URL instead.
    """
    uploads = (current.get("document") or {}).get("uploads")
    new_document = document.get("document") if isinstance(document, dict) else None
    new_url = isinstance(new_document, dict) and new_document.get("url")
    request = validate_fax_request(document, require_document_url=not uploads)
    if uploads and not new_url:
        request["document"]["uploads"] = uploads
    return request


def attachment_format(accept: str) -> str | None:
    """``"tiff"`` or ``"pdf"`` as the Accept header asks (TIFF, the fax itself, if either will do); None if neither."""
    if not accept.strip():
        return "tiff"
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(accept.split(",")):
        kind, *params = (p.strip() for p in item.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        fmt = {
            "image/tiff": "tiff",
            "image/tif": "tiff",
            "application/pdf": "pdf",
            "image/*": "tiff",
            "application/*": "pdf",
            "*/*": "tiff",
        }.get(kind.lower())
        if fmt and quality > 0:
            ranked.append((-quality, index, fmt))
    return min(ranked)[2] if ranked else None


def inbound_summary(fax: InboundSummary) -> dict[str, Any]:
    """One row of an inbox/incoming listing."""
    return {**job_summary(fax), "pages": fax.pages}


def inbound_view(fax: InboundFax) -> dict[str, Any]:
    """A received (or being received) fax in Kazoo's terms: rx_result in the shape of an outbound tx_result."""
    data: dict[str, Any] = {
        "id": fax.id.hex,
        "status": fax.status,
        "faxbox_id": fax.faxbox_id or "undefined",
        "call_id": fax.call_id,
        "from_number": fax.from_number,
        "from_name": fax.from_name,
        "to_number": fax.to_number,
        "remote_station_id": fax.remote_station_id,
        "pages": fax.pages,
        "created": gregorian_seconds(fax.created_at),
        "completed": gregorian_seconds(fax.completed_at) if fax.completed_at else "undefined",
        "rx_result": {**TX_RESULT_DEFAULTS, "pages_received": 0, **fax.rx_result},
    }
    data["rx_result"].pop("pages_sent", None)
    if fax.error_message:
        data["rx_result"]["error_message"] = fax.error_message
    if fax.status == "received" and fax.tiff_key is None and fax.pdf_key is None:
        data["attachment_deleted"] = True
    return data


def smtplog_summary(entry: SmtpLogEntry) -> dict[str, Any]:
    return {
        "id": entry.id.hex,
        "created": gregorian_seconds(entry.created_at),
        "from": entry.from_address,
        "to": entry.to_address,
        "faxbox_id": entry.faxbox_id or "undefined",
        "errors": entry.errors,
    }


def smtplog_view(entry: SmtpLogEntry) -> dict[str, Any]:
    data = smtplog_summary(entry)
    data.update(
        faxbox_name=entry.faxbox_name,
        number=entry.number,
        content_type=entry.content_type,
        filename=entry.filename,
        job_id=entry.job_id.hex if entry.job_id else "undefined",
    )
    return data
