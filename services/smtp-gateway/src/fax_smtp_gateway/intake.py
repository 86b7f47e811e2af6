"""Email-to-fax rules, no I/O: who may fax through a faxbox, to which number, and which parts of a mail are faxed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import PurePosixPath

# What the fetcher renders; a generic type is accepted when the file name says what it is.
FAXABLE_TYPES = {
    "application/pdf": "pdf",
    "application/postscript": "ps",
    "image/tiff": "tif",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/rtf": "rtf",
}
FAXABLE_SUFFIXES = {f".{suffix}" for suffix in FAXABLE_TYPES.values()} | {".tiff", ".jpeg"}


class IntakeRefused(Exception):
    """A refusal with its SMTP reply (``code``, enhanced status and text)."""

    def __init__(self, reply: str, reason: str) -> None:
        super().__init__(reason)
        self.reply = reply
        self.reason = reason


@dataclass(frozen=True)
class Recipient:
    number: str  # E.164
    domain: str  # the faxbox part
    address: str  # as written


def split_address(address: str) -> tuple[str, str]:
    """``{number}@{faxbox address}`` into its two parts (the domain lower-cased)."""
    local, at, domain = address.strip().strip("<>").rpartition("@")
    if not at or not local or not domain:
        raise IntakeRefused("553 5.1.3 Address must be {number}@{faxbox address}", f"not an address: {address}")
    return local, domain.lower()


def parse_recipient(address: str) -> Recipient:
    """The fax number of ``{number}@{faxbox address}``: punctuation is dropped, the result must be E.164."""
    local, domain = split_address(address)
    digits = re.sub(r"[\s().\-/+]", "", local)
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        raise IntakeRefused(
            f"553 5.1.3 {local} is not a fax number (E.164: 7 to 15 digits)", f"invalid fax number {local}"
        )
    return Recipient(number=f"+{digits}", domain=domain, address=address)


@dataclass(frozen=True)
class Document:
    data: bytes
    content_type: str
    filename: str


def faxable_documents(message: EmailMessage) -> tuple[list[Document], list[str]]:
    """The attachments to fax, in the order they appear, and the names of those skipped (not a fax format)."""
    documents: list[Document] = []
    skipped: list[str] = []
    for part in message.walk():
        if part.is_multipart() or (
            part.get_content_disposition() not in ("attachment", "inline") and not (part.get_filename())
        ):
            continue
        content_type = part.get_content_type()
        filename = part.get_filename() or ""
        if content_type.startswith("text/") and not filename:
            continue  # the body, not an attachment
        suffix = PurePosixPath(filename.lower()).suffix
        if content_type in FAXABLE_TYPES or suffix in FAXABLE_SUFFIXES:
            data = part.get_payload(decode=True) or b""
            if data:
                documents.append(Document(data, content_type, filename))
                continue
        skipped.append(filename or content_type)
    return documents, skipped


def text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content().strip() if part is not None else ""
