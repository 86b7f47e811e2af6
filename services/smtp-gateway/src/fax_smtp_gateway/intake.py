"""Email-to-fax rules, no I/O: who may fax through a faxbox, to which number, and which parts of a mail are faxed."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import PurePosixPath

from fax_runtime.numbers import NotE164, e164

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
# Deeper MIME trees are refused before anything recursive walks them (Postfix's mime_nesting_limit is 100).
MAX_MIME_DEPTH = 50
# RFC 5321 4.5.3.1.5: a reply line is at most 512 octets, its CRLF included.
MAX_REPLY_OCTETS = 510
_MAX_SUBJECT_CHARS = 998


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
    """The fax number of ``{number}@{faxbox address}``, read as E.164 (fax_runtime.numbers)."""
    local, domain = split_address(address)
    try:
        number = e164(local)
    except NotE164 as exc:
        raise IntakeRefused(f"553 5.1.3 {exc}", f"invalid fax number {local}") from None
    return Recipient(number=number, domain=domain, address=address)


@dataclass(frozen=True)
class Document:
    data: bytes
    content_type: str
    filename: str


@dataclass(frozen=True)
class Mail:
    """What intake needs of a parsed message; every text in it is safe to store."""

    documents: list[Document]
    skipped: list[str]  # names of the attachments that are not a fax format
    subject: str
    content_type: str
    text: str  # the plain-text body, read only when there is nothing else to fax
    text_problem: str = ""  # why the plain-text body cannot be read (its charset)


def read_mail(raw: bytes) -> Mail:
    """Parse a message and take out what intake uses. CPU-bound: run it off the event loop.

    Raises IntakeRefused (554 5.6.0) for a message whose MIME structure is nested too deeply to be read safely.
    """
    too_deep = IntakeRefused(
        f"554 5.6.0 MIME parts nested more than {MAX_MIME_DEPTH} levels deep: the message cannot be read",
        f"MIME parts nested more than {MAX_MIME_DEPTH} levels deep",
    )
    try:
        message: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[assignment]
    except RecursionError:
        raise too_deep from None
    if _depth_exceeds(message, MAX_MIME_DEPTH):
        raise too_deep
    documents, skipped = faxable_documents(message)
    text, text_problem = "", ""
    if not documents:
        try:
            text = text_body(message)
        except LookupError:
            part = message.get_body(preferencelist=("plain",))
            charset = part.get_content_charset() if part is not None else None
            text_problem = f"the text is in an unknown character set {clean_text(str(charset or ''))!r}"
    return Mail(
        documents=documents,
        skipped=skipped,
        subject=clean_text(str(message.get("subject", "")))[:_MAX_SUBJECT_CHARS],
        content_type=clean_text(message.get_content_type()),
        text=text,
        text_problem=text_problem,
    )


def _depth_exceeds(message: Message, limit: int) -> bool:
    """Whether the MIME tree is deeper than ``limit``, found without recursion (the stdlib's walk recurses)."""
    pending: list[tuple[Message, int]] = [(message, 1)]
    while pending:
        part, depth = pending.pop()
        if depth > limit:
            return True
        if part.is_multipart():
            pending.extend((child, depth + 1) for child in part.get_payload())  # type: ignore[union-attr]
    return False


def clean_text(text: str) -> str:
    """``text`` without control characters (NUL among them: Postgres refuses it), tabs kept."""
    return "".join(char for char in text if char >= " " or char == "\t").replace("\x7f", "")


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
        filename = clean_text(part.get_filename() or "")
        if content_type.startswith("text/") and not filename:
            continue  # the body, not an attachment
        suffix = PurePosixPath(filename.lower()).suffix
        if content_type in FAXABLE_TYPES or suffix in FAXABLE_SUFFIXES:
            data = part.get_payload(decode=True) or b""
            if data:
                documents.append(Document(data, content_type, filename))
                continue
        skipped.append(filename or clean_text(content_type))
    return documents, skipped


def text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content().strip() if part is not None else ""


def accepted_reply(job_ids: list[str]) -> str:
    """``250 OK fax <id> <id> queued``, naming as many ids as one reply line holds and counting the rest."""
    reply = f"250 OK fax {' '.join(job_ids)} queued"
    if len(reply) <= MAX_REPLY_OCTETS:
        return reply
    named: list[str] = []
    for job_id in job_ids:
        longer = f"250 OK fax {' '.join([*named, job_id])} and {len(job_ids) - len(named) - 1} more queued"
        if len(longer) > MAX_REPLY_OCTETS:
            break
        named.append(job_id)
    return f"250 OK fax {' '.join(named)} and {len(job_ids) - len(named)} more queued"


def clip_reply(reply: str | bytes) -> bytes:
    """A reply line cut to RFC 5321's 512 octets (CRLF included), whatever the text it carries."""
    line = reply.encode("utf-8", errors="replace") if isinstance(reply, str) else reply
    if len(line) <= MAX_REPLY_OCTETS:
        return line
    # Cut on a character boundary: an SMTPUTF8 reply must stay valid UTF-8.
    return line[: MAX_REPLY_OCTETS - 3].decode("utf-8", errors="ignore").encode() + b"..."
