"""Kazoo faxboxes: validating a faxbox document and presenting a stored one.

Pure functions, no I/O. A faxbox is stored as ``name``, the two addresses and ``settings``: every other field of
the Kazoo document, defaults applied. The notifier and the SMTP gateway read ``settings`` in that shape
(``notifications.inbound.email.send_to``, ``smtp_permission_list``, ...).
"""

from __future__ import annotations

import re
from typing import Any

from fax_api.faxboxes.rows import FaxboxRecord
from fax_api.faxes.rules import MAX_RETRIES
from fax_runtime.guarded_http import url_problem
from fax_runtime.permission_list import MAX_ENTRIES, entry_problem, list_problem

NAME_MAX_LENGTH = 128
DEFAULT_PRINTER_NAME = "Kazoo Fax Printer"
SETTINGS_DEFAULTS: dict[str, Any] = {
    "attempts": 0,
    "caller_name": DEFAULT_PRINTER_NAME,
    "fax_header": DEFAULT_PRINTER_NAME,
    "media": {},
    "retries": 1,
    "smtp_permission_list": [],
}
_STRING_FIELDS = ("caller_id", "caller_name", "fax_header", "fax_identity", "fax_timezone")
# Fields the system owns: whatever a client sends for them is dropped.
_SYSTEM_FIELDS = ("id", "smtp_email_address", "attempts")
# Like the generated ``<id>.<domain>``, a custom address may be a mail domain (mail goes to ``<number>@<domain>``)
# or a whole address.
_ADDRESS = re.compile(r"^([^@\s]+@)?[^@\s]+\.[^@\s]+$")


class FaxboxValidationError(ValueError):
    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__("invalid data")
        self.errors = errors


def _add(errors: dict[str, Any], field: str, rule: str, message: str, **extra: Any) -> None:
    errors.setdefault(field, {})[rule] = {"message": message, **extra}


def _type_error(errors: dict[str, Any], field: str, target: str) -> None:
    _add(errors, field, "type", f"Value is not of type {target}", target=target)


def _check_recipients(errors: dict[str, Any], field: str, holder: Any) -> None:
    if not isinstance(holder, dict):
        _type_error(errors, field, "object")
        return
    if "send_to" not in holder:
        return
    send_to = holder["send_to"]
    if isinstance(send_to, str) or (isinstance(send_to, list) and all(isinstance(v, str) for v in send_to)):
        return
    _add(errors, f"{field}.send_to", "type", "Value is not of type string or array of strings", target="string,array")


def _check_callback(errors: dict[str, Any], field: str, callback: Any) -> None:
    if not isinstance(callback, dict):
        _type_error(errors, field, "object")
        return
    if "method" in callback and callback["method"] not in ("post", "put"):
        _add(errors, f"{field}.method", "enum", "Value not found in enumerated list of values", target=["post", "put"])
    if "type" in callback and callback["type"] not in ("json", "www-url-form-encoded"):
        _add(
            errors,
            f"{field}.type",
            "enum",
            "Value not found in enumerated list of values",
            target=["json", "www-url-form-encoded"],
        )
    if "url" in callback:
        url = callback["url"]
        if not isinstance(url, str):
            _type_error(errors, f"{field}.url", "string")
        elif url and url_problem(url):
            _add(errors, f"{field}.url", "pattern", url_problem(url))


def _check_notifications(errors: dict[str, Any], notifications: Any) -> None:
    if not isinstance(notifications, dict):
        _type_error(errors, "notifications", "object")
        return
    for direction in ("inbound", "outbound"):
        if direction not in notifications:
            continue
        section = notifications[direction]
        field = f"notifications.{direction}"
        if not isinstance(section, dict):
            _type_error(errors, field, "object")
            continue
        for channel in ("email", "sms"):
            if channel in section:
                _check_recipients(errors, f"{field}.{channel}", section[channel])
        if "callback" in section:
            _check_callback(errors, f"{field}.callback", section["callback"])


def _check_permission_list(errors: dict[str, Any], permissions: Any) -> None:
    if not isinstance(permissions, list):
        _type_error(errors, "smtp_permission_list", "array")
        return
    if list_problem(permissions):
        _add(errors, "smtp_permission_list", "maxItems", f"Value has {list_problem(permissions)}", target=MAX_ENTRIES)
        return
    for index, pattern in enumerate(permissions):
        field = f"smtp_permission_list.{index}"
        if not isinstance(pattern, str):
            _type_error(errors, field, "string")
        elif entry_problem(pattern):
            problem = entry_problem(pattern)
            _add(errors, field, "format", f"Value is not an RE2 regular expression: {problem}", target="re2")


def normalise_address(address: str) -> str:
    return address.strip().lower()


def validate_faxbox(doc: Any) -> tuple[str, str | None, dict[str, Any]]:
    """Check a Kazoo faxbox document (a whole one: create or replace).

    Returns ``(name, custom_smtp_email_address, settings)`` with defaults applied, or raises FaxboxValidationError
    naming every failing field.
    """
    if not isinstance(doc, dict):
        raise FaxboxValidationError({"data": {"type": {"message": "Value is not of type object", "target": "object"}}})
    errors: dict[str, Any] = {}

    name = doc.get("name")
    if name is None:
        _add(errors, "name", "required", "Field is required but missing")
    elif not isinstance(name, str):
        _type_error(errors, "name", "string")
    elif not name.strip():
        _add(errors, "name", "minLength", "Value is shorter than 1 characters", target=1)
    elif len(name) > NAME_MAX_LENGTH:
        _add(
            errors,
            "name",
            "maxLength",
            f"Value is longer than {NAME_MAX_LENGTH} characters",
            target=NAME_MAX_LENGTH,
        )

    for field in _STRING_FIELDS:
        if field in doc and not isinstance(doc[field], str):
            _type_error(errors, field, "string")

    custom = doc.get("custom_smtp_email_address")
    if custom is not None and not isinstance(custom, str):
        _type_error(errors, "custom_smtp_email_address", "string")
        custom = None
    elif isinstance(custom, str):
        custom = normalise_address(custom) or None
        if custom is not None and not _ADDRESS.match(custom):
            _add(
                errors, "custom_smtp_email_address", "format", "Value is not an email address or domain", target="email"
            )

    retries = doc.get("retries", SETTINGS_DEFAULTS["retries"])
    if not isinstance(retries, int) or isinstance(retries, bool):
        _type_error(errors, "retries", "integer")
    elif not 1 <= retries <= MAX_RETRIES:
        too_many = retries > MAX_RETRIES
        _add(
            errors,
            "retries",
            "maximum" if too_many else "minimum",
            f"Value must be between 1 and {MAX_RETRIES}",
            target=MAX_RETRIES if too_many else 1,
        )

    media = doc.get("media", {})
    if not isinstance(media, dict):
        _type_error(errors, "media", "object")
    elif "fax_option" in media and not isinstance(media["fax_option"], bool):
        _type_error(errors, "media.fax_option", "boolean")

    if "smtp_permission_list" in doc:
        _check_permission_list(errors, doc["smtp_permission_list"])
    if "notifications" in doc:
        _check_notifications(errors, doc["notifications"])

    if errors:
        raise FaxboxValidationError(errors)
    settings = {**SETTINGS_DEFAULTS}
    settings.update(
        (key, value)
        for key, value in doc.items()
        if key not in ("name", "custom_smtp_email_address", *_SYSTEM_FIELDS) and value is not None
    )
    settings["attempts"] = 0  # reset on every put/post, as Kazoo does
    return name, custom, settings  # type: ignore[return-value]


def faxbox_document(faxbox: FaxboxRecord) -> dict[str, Any]:
    """The Kazoo document of a stored faxbox, without what the system adds (id, generated address)."""
    doc: dict[str, Any] = {**SETTINGS_DEFAULTS, **faxbox.settings, "name": faxbox.name}
    if faxbox.custom_smtp_email_address:
        doc["custom_smtp_email_address"] = faxbox.custom_smtp_email_address
    return doc


def faxbox_view(faxbox: FaxboxRecord) -> dict[str, Any]:
    """What GET returns: the document plus ``id`` and the generated ``smtp_email_address``."""
    return {**faxbox_document(faxbox), "id": faxbox.id, "smtp_email_address": faxbox.smtp_email}


def faxbox_summary(faxbox: FaxboxRecord) -> dict[str, Any]:
    """One row of the faxbox listing."""
    summary = {"id": faxbox.id, "name": faxbox.name, "smtp_email_address": faxbox.smtp_email}
    if faxbox.custom_smtp_email_address:
        summary["custom_smtp_email_address"] = faxbox.custom_smtp_email_address
    return summary
