import datetime as dt
import uuid

import msgspec
import pytest

from fax_contracts import (
    ALL_EVENTS,
    DocumentReady,
    JobSubmitted,
    TransmissionFailed,
    decode_event,
    encode_event,
    routing_key,
)


def _common() -> dict:
    return {"event_id": uuid.uuid4(), "occurred_at": dt.datetime.now(dt.UTC)}


def test_every_event_has_a_versioned_routing_key_unique_to_it() -> None:
    keys = [routing_key(event) for event in ALL_EVENTS]
    assert len(set(keys)) == len(keys)
    assert all(key.startswith("fax.") and key.rsplit(".", 1)[1].startswith("v") for key in keys)


def test_round_trip_keeps_type_and_fields() -> None:
    event = DocumentReady(**_common(), job_id=uuid.uuid4(), account_id="acc", tiff_key="jobs/x/fax.tif", pages=2)
    decoded = decode_event(encode_event(event))
    assert type(decoded) is DocumentReady and decoded == event


def test_wire_format_carries_the_tag() -> None:
    event = JobSubmitted(**_common(), job_id=uuid.uuid4(), account_id="acc")
    assert msgspec.json.decode(encode_event(event))["type"] == "fax.job.submitted.v1"


def test_fields_with_defaults_may_be_absent_so_older_producers_still_decode() -> None:
    event = TransmissionFailed(**_common(), job_id=uuid.uuid4(), account_id="a", attempt=1, final=True, error="busy")
    raw = msgspec.json.decode(encode_event(event))
    del raw["result_code"]
    assert decode_event(msgspec.json.encode(raw)).result_code == 0


def test_events_are_immutable() -> None:
    event = JobSubmitted(**_common(), job_id=uuid.uuid4(), account_id="acc")
    with pytest.raises(AttributeError):
        event.account_id = "other"  # type: ignore[misc]
