"""Versioned fax events (tag = routing key on ``fax.events``)."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

EXCHANGE = "fax.events"


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event: a unique id for de-duplication and the time it happened."""

    event_id: uuid.UUID
    occurred_at: dt.datetime


class JobSubmitted(Event, frozen=True, kw_only=True, tag="fax.job.submitted.v1"):
    """An outbound job was accepted; its document must be fetched (``document.url``) or read (upload)."""

    job_id: uuid.UUID
    account_id: str


class DocumentStored(Event, frozen=True, kw_only=True, tag="fax.document.stored.v1"):
    """A document was stored to be sent later (a Fax.to file, ``faxto_documents``); its previews are to be drawn."""

    document_id: int
    account_id: str
    object_key: str


class DocumentReady(Event, frozen=True, kw_only=True, tag="fax.document.ready.v1"):
    """The job's document was rendered to TIFF-F, decoded back page by page, and stored."""

    job_id: uuid.UUID
    account_id: str
    tiff_key: str
    pages: int


class DocumentFailed(Event, frozen=True, kw_only=True, tag="fax.document.failed.v1"):
    """The document could not be fetched or rendered; the job ended ``failed`` with ``error``."""

    job_id: uuid.UUID
    account_id: str
    error: str


class TransmissionCompleted(Event, frozen=True, kw_only=True, tag="fax.transmission.completed.v1"):
    """The fax was delivered; the job is ``completed``."""

    job_id: uuid.UUID
    account_id: str
    attempt: int
    pages_sent: int


class TransmissionProgress(Event, frozen=True, kw_only=True, tag="fax.transmission.progress.v1"):
    """A page of an attempt was confirmed by the far end (one event per page, in order)."""

    job_id: uuid.UUID
    account_id: str
    attempt: int
    pages_sent: int
    pages_total: int


class TransmissionFailed(Event, frozen=True, kw_only=True, tag="fax.transmission.failed.v1"):
    """An attempt failed. ``final`` is true when the job is ``failed`` (no attempts left or not retryable)."""

    job_id: uuid.UUID
    account_id: str
    attempt: int
    final: bool
    error: str
    result_code: int = 0


class InboundReceived(Event, frozen=True, kw_only=True, tag="fax.inbound.received.v1"):
    """A fax was received on one of the account's numbers and stored as a TIFF at ``tiff_key``."""

    fax_id: uuid.UUID
    account_id: str
    faxbox_id: str | None = None
    from_number: str
    to_number: str
    pages: int
    tiff_key: str


class InboundFailed(Event, frozen=True, kw_only=True, tag="fax.inbound.failed.v1"):
    """An incoming fax call ended without a usable fax."""

    fax_id: uuid.UUID
    account_id: str
    faxbox_id: str | None = None
    from_number: str
    to_number: str
    pages: int = 0
    error: str


class IntakeRejected(Event, frozen=True, kw_only=True, tag="fax.intake.rejected.v1"):
    """An email to a faxbox was not turned into a fax (sender not permitted, no attachment, ...)."""

    account_id: str
    faxbox_id: str | None = None
    sender: str
    to_number: str = ""
    error: str


ALL_EVENTS: tuple[type[Event], ...] = (
    JobSubmitted,
    DocumentStored,
    DocumentReady,
    DocumentFailed,
    TransmissionProgress,
    TransmissionCompleted,
    TransmissionFailed,
    InboundReceived,
    InboundFailed,
    IntakeRejected,
)

AnyEvent = (
    JobSubmitted
    | DocumentStored
    | DocumentReady
    | DocumentFailed
    | TransmissionProgress
    | TransmissionCompleted
    | TransmissionFailed
    | InboundReceived
    | InboundFailed
    | IntakeRejected
)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def routing_key(event_type: type[Event]) -> str:
    """The routing key (= tag) of an event class."""
    return str(event_type.__struct_config__.tag)


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event(payload: bytes) -> Event:
    return _decoder.decode(payload)
