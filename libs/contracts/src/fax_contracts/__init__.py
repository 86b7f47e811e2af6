"""Events on the ``fax.events`` topic exchange: the only wire format shared by the services.

Every event is a frozen, tagged msgspec Struct. Its tag is also its routing key, and ends in a version:
a version only gains fields with defaults; a breaking change is a new tag (``.v2``) and a new Struct.
Events carry identifiers, not state: Postgres holds a job's state, consumers read it from there.
"""

from fax_contracts.events import (
    ALL_EVENTS,
    EXCHANGE,
    DocumentFailed,
    DocumentReady,
    DocumentStored,
    Event,
    InboundFailed,
    InboundReceived,
    IntakeRejected,
    JobSubmitted,
    TransmissionCompleted,
    TransmissionFailed,
    TransmissionProgress,
    decode_event,
    encode_event,
    routing_key,
)

__all__ = [
    "ALL_EVENTS",
    "EXCHANGE",
    "DocumentFailed",
    "DocumentReady",
    "DocumentStored",
    "Event",
    "InboundFailed",
    "InboundReceived",
    "IntakeRejected",
    "JobSubmitted",
    "TransmissionCompleted",
    "TransmissionFailed",
    "TransmissionProgress",
    "decode_event",
    "encode_event",
    "routing_key",
]
