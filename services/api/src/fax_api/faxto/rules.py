"""Fax.to's parameters and the job a send makes: pure rules, no I/O. A bad parameter is a ``FaxtoError`` that says
which and why."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fax_api.accounts.rules import PASSWORD_MIN_LENGTH
from fax_api.faxes.rules import FaxValidationError, validate_fax_request
from fax_api.faxto.rates import fax_cost
from fax_api.faxto.rows import FaxtoDocument, FaxtoUser
from fax_api.web.faxto import FaxtoError
from fax_runtime.db import BIGINT_MAX
from fax_runtime.numbers import NotE164, e164


def credentials(params: Mapping[str, Any]) -> tuple[str, str]:
    """``(email, password)`` of a register, login or sub-user call; the email lower-cased."""
    email, password = params.get("email"), params.get("password")
    if not isinstance(email, str) or "@" not in email.strip() or len(email) > 254:
        raise FaxtoError(400, "email is required and must be an email address")
    if not isinstance(password, str) or len(password) < PASSWORD_MIN_LENGTH:
        raise FaxtoError(400, f"password is required and must be at least {PASSWORD_MIN_LENGTH} characters")
    return email.strip().lower(), password


def fax_number(params: Mapping[str, Any]) -> str:
    """The ``fax_number`` to send to, in E.164."""
    number = params.get("fax_number")
    if not isinstance(number, str):
        raise FaxtoError(400, "fax_number is required: a fax number in international format, e.g. +441224459292")
    try:
        return e164(number)
    except NotE164 as exc:
        raise FaxtoError(400, f"fax_number: {exc}, e.g. +441224459292") from None


def fax_job_id(raw: str) -> int | uuid.UUID | None:
    """What send answered (an integer), or the job's Kazoo id (32 hex digits); None: neither."""
    if raw.isdigit() and raw.isascii() and len(raw) <= 18:  # a bigint; 32 hex digits can be all decimal digits
        return int(raw)
    try:
        return uuid.UUID(hex=raw)
    except ValueError:
        return None


def document_id(value: Any) -> int:
    """A call's ``document_id``: a document's number (a bigserial, so from 1 to BIGINT_MAX)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if not 1 <= number <= BIGINT_MAX:
        raise FaxtoError(400, "document_id is required and must be a document's number")
    return number


def send_cost(number: str, pages: int) -> Decimal:
    """What faxing ``pages`` pages to ``number`` costs; refused where no rate covers the number."""
    cost = fax_cost(number, pages)
    if cost is None:
        raise FaxtoError(400, f"No rate for destination {number}: faxes there cannot be sent")
    return cost


def faxable(document: FaxtoDocument) -> FaxtoDocument:
    """``document``, refused if the fetcher could not render it: it would fail only after being charged."""
    if document.preview_status == "failed":
        raise FaxtoError(422, f"The document cannot be faxed: {document.preview_error}")
    return document


def tsi_number(params: Mapping[str, Any]) -> str | None:
    """The ``tsi_number`` the fax identifies itself with (its sender number), if given."""
    tsi = params.get("tsi_number")
    if tsi is not None and (not isinstance(tsi, str) or len(tsi) > 20):
        raise FaxtoError(400, "tsi_number must be a string of at most 20 characters")
    return tsi


def send_request(
    number: str, document: FaxtoDocument, user: FaxtoUser, tsi: str | None, callback_url: str
) -> dict[str, Any]:
    """The Kazoo fax document of a Fax.to send, validated as every job's is; the document itself is uploaded."""
    request: dict[str, Any] = {
        "to_number": number,
        "retries": 1,
        "document": {},
        "faxto": {"document_id": document.id, "document": document.filename_uploaded, "user_id": user.id},
    }
    if tsi:
        request.update(from_number=tsi, fax_identity=tsi)
    if callback_url:
        # The notifier posts Fax.to's delivery receipt (fax_job_id, status, msg_code) to the job's callback.
        request["callback"] = {"url": callback_url, "method": "post", "type": "www-url-form-encoded"}
    try:
        return validate_fax_request(request, require_document_url=False)
    except FaxValidationError as exc:
        raise FaxtoError(400, f"Invalid fax: {sorted(exc.errors)}") from None


def wants_file_deleted(params: Mapping[str, Any]) -> bool:
    return str(params.get("delete_file", "")).lower() in ("1", "true", "yes")
