"""Pure notification rules: who hears about what, how an outcome maps to Fax.to codes, callback bodies, signatures.

No I/O here; the handlers feed it job rows and events, the dispatcher sends what it plans.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

import msgspec

from fax_runtime.guarded_http import url_problem


class Kind(StrEnum):
    """What a notification is about (names the templates)."""

    OUTBOUND_SUCCESS = "outbound_success"
    OUTBOUND_FAILURE = "outbound_failure"
    INBOUND_RECEIVED = "inbound_received"
    INBOUND_FAILURE = "inbound_failure"
    INTAKE_REJECTED = "intake_rejected"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    CALLBACK = "callback"


class PlannedDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """One message to one recipient; ``invalid`` holds why it can never be sent (reported, not retried)."""

    channel: Channel
    recipient: str
    kind: Kind
    payload: dict[str, Any]
    invalid: str = ""


# Deliberately loose (RFC 5322 allows far more); it only has to catch what can never be delivered.
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_PHONE = re.compile(r"^\+?[0-9]{3,15}$")


def recipients(value: object) -> list[str]:
    """Kazoo's ``send_to``: a string or a list of strings; blanks dropped, duplicates once, order kept."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    seen: dict[str, None] = {}
    for item in items:
        if isinstance(item, str) and item.strip():
            seen.setdefault(item.strip(), None)
    return list(seen)


def address_problem(address: str) -> str:
    """Why ``address`` cannot receive email, or "" when it looks deliverable."""
    return "" if _ADDRESS.match(address) else f"invalid email address {address!r}"


def phone_problem(number: str) -> str:
    """Why ``number`` cannot receive an SMS, or ""."""
    return "" if _PHONE.match(re.sub(r"[\s().-]", "", number)) else f"invalid phone number {number!r}"


def _dig(document: Mapping[str, Any] | None, *path: str) -> object:
    node: object = document or {}
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def outbound_email_recipients(request: Mapping[str, Any], faxbox_settings: Mapping[str, Any] | None) -> list[str]:
    """The job's own ``notifications.email.send_to`` plus its faxbox's outbound ones."""
    mine = recipients(_dig(request, "notifications", "email", "send_to"))
    boxed = recipients(_dig(faxbox_settings, "notifications", "outbound", "email", "send_to"))
    return recipients(mine + boxed)


def outbound_sms_recipients(request: Mapping[str, Any], faxbox_settings: Mapping[str, Any] | None) -> list[str]:
    mine = recipients(_dig(request, "notifications", "sms", "send_to"))
    boxed = recipients(_dig(faxbox_settings, "notifications", "outbound", "sms", "send_to"))
    return recipients(mine + boxed)


def inbound_email_recipients(faxbox_settings: Mapping[str, Any] | None) -> list[str]:
    return recipients(_dig(faxbox_settings, "notifications", "inbound", "email", "send_to"))


def inbound_sms_recipients(faxbox_settings: Mapping[str, Any] | None) -> list[str]:
    return recipients(_dig(faxbox_settings, "notifications", "inbound", "sms", "send_to"))


class CallbackTarget(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    method: str = "post"
    body_type: str = "json"
    # Why a request to ``url`` can never be made (not http, no host, ...): planned as failed, never sent.
    problem: str = ""


def callback_target(holder: object) -> CallbackTarget | None:
    """``holder``'s ``callback`` ({url, method post|put, type json|www-url-form-encoded}); None if it has no URL.

    ``holder`` is a job's request, or a faxbox's ``notifications.inbound`` / ``notifications.outbound``. The API
    refuses unusable URLs when they are written; one that got into the database all the same is reported once.
    """
    callback = holder.get("callback") if isinstance(holder, Mapping) else None
    if not isinstance(callback, Mapping):
        return None
    url = callback.get("url")
    if url is None or url == "":
        return None
    problem = url_problem(url) if isinstance(url, str) else f"invalid URL {url!r}"
    url = url if isinstance(url, str) else str(url)
    method = str(callback.get("method") or "post").lower()
    body_type = str(callback.get("type") or "json").lower()
    return CallbackTarget(
        url=url,
        method=method if method in {"post", "put"} else "post",
        body_type="form" if body_type.startswith("www") or body_type == "form" else "json",
        problem=problem,
    )


# SIP responses and spandsp completion codes that name a Fax.to msg_code outright.
_BUSY_CODES = {486, 600}
_NO_ANSWER_CODES = {2, 408, 480, 487}  # 2 = spandsp T30_ERR_T0_EXPIRED: nobody answered with fax tones


def msg_code(*, success: bool, error: str = "", result_code: int = 0, document_failed: bool = False) -> str:
    """Fax.to's delivery-receipt ``msg_code``: ok, unknown, no_answer, busy, file_error or hangup."""
    if success:
        return "ok"
    if document_failed:
        return "file_error"
    if result_code in _BUSY_CODES:
        return "busy"
    if result_code in _NO_ANSWER_CODES:
        return "no_answer"
    text = error.lower()
    if "busy" in text:
        return "busy"
    # spandsp's T0 text is "Timed out waiting for initial communication".
    if any(word in text for word in ("no answer", "not answer", "waiting for initial", "t0 expired", "ringing")):
        return "no_answer"
    if any(word in text for word in ("hang", "hung", "dropped", "disconnect", "bye")):
        return "hangup"
    if "document" in text or "file" in text or "tiff" in text:
        return "file_error"
    return "unknown"


def outbound_callback(request: Mapping[str, Any], faxbox_settings: Mapping[str, Any] | None) -> CallbackTarget | None:
    """The job's own callback, else its faxbox's ``notifications.outbound.callback``."""
    return callback_target(request) or callback_target(_dig(faxbox_settings, "notifications", "outbound"))


def inbound_callback(faxbox_settings: Mapping[str, Any] | None) -> CallbackTarget | None:
    return callback_target(_dig(faxbox_settings, "notifications", "inbound"))


def account_callback(url: str | None) -> CallbackTarget | None:
    """The account's Fax.to API-settings callback: posted url-encoded, as Fax.to does."""
    return callback_target({"callback": {"url": url, "type": "www-url-form-encoded"}}) if url else None


def receive_fields(
    fax_id: str,
    from_number: str,
    to_number: str,
    received_at: dt.datetime,
    pages: int,
    file_url: str,
    reception: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Fax.to's receive-callback fields; ``reception`` is the fax's ``rx_result`` (station id, rate, ECM, coding)."""
    rx = reception or {}
    seconds = rx.get("fax_line_seconds")
    return {
        "uuid": fax_id,
        "from": from_number,
        "to": to_number,
        "time": received_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "file": file_url,
        "rsid": str(rx.get("remote_station_id") or ""),
        "speed": str(rx.get("fax_speed") or ""),
        "duration": str(round(seconds)) if isinstance(seconds, int | float) else "",
        "ecm": "1" if rx.get("fax_error_correction") else "0",
        "pages": str(pages),
        "compression": str(rx.get("fax_compression") or ""),
    }


def receipt_job_id(request: Mapping[str, Any], job_id: uuid.UUID, int_id: int) -> str:
    """The job's id as the API that sent it answered it: Fax.to's integer ``fax_job_id`` for a Fax.to send (its
    request carries ``faxto``), the Kazoo id (32 hex digits) for any other."""
    return str(int_id) if "faxto" in request else job_id.hex


def receipt(job_id: str, *, success: bool, code: str, message: str) -> dict[str, str]:
    """The Fax.to delivery-receipt fields a callback carries; ``job_id`` from ``receipt_job_id``."""
    return {"fax_job_id": job_id, "status": "success" if success else "failed", "msg_code": code, "message": message}


def encode_callback_body(fields: Mapping[str, Any], body_type: str) -> tuple[bytes, str]:
    """The body bytes and their content type."""
    if body_type == "form":
        return urlencode({k: "" if v is None else str(v) for k, v in fields.items()}).encode(), (
            "application/x-www-form-urlencoded"
        )
    return json.dumps(dict(fields), separators=(",", ":")).encode(), "application/json"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Fax-Signature`` value: ``t=<unix>,v1=<hex hmac-sha256(secret, f"{t}.{body}")>``.

    The timestamp is inside the MAC so a captured request cannot be replayed later with a fresh ``t``.
    """
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """Check a ``X-Fax-Signature`` header (what a receiver does); constant-time comparison."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header.strip())


def is_success_status(status: int) -> bool:
    return 200 <= status < 300


def plan_messages(
    kind: Kind,
    context: Mapping[str, Any],
    emails: list[str],
    phones: list[str],
    *,
    attach_fax_of: str | None = None,
    tiff_key: str | None = None,
) -> list[PlannedDelivery]:
    """One email per address and one SMS per number; the invalid ones planned as such (reported, never sent)."""
    email_payload: dict[str, Any] = {"context": dict(context), "attach_fax_of": attach_fax_of, "tiff_key": tiff_key}
    planned = [
        PlannedDelivery(
            channel=Channel.EMAIL, recipient=address, kind=kind, payload=email_payload, invalid=address_problem(address)
        )
        for address in emails
    ]
    planned += [
        PlannedDelivery(
            channel=Channel.SMS,
            recipient=number,
            kind=kind,
            payload={"context": dict(context)},
            invalid=phone_problem(number),
        )
        for number in phones
    ]
    return planned


def plan_callback(target: CallbackTarget | None, fields: Mapping[str, str], kind: Kind) -> list[PlannedDelivery]:
    if target is None:
        return []
    return [
        PlannedDelivery(
            channel=Channel.CALLBACK,
            recipient=target.url,
            kind=kind,
            payload={"method": target.method, "body_type": target.body_type, "fields": dict(fields)},
            invalid=target.problem,
        )
    ]
