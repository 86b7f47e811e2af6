"""The events a job's transitions queue, stamped in one place: a fresh id, and the time it happened."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, TypeVar

from fax_contracts import Event

EventT = TypeVar("EventT", bound=Event)


def new_event(event_type: type[EventT], **fields: Any) -> EventT:
    return event_type(event_id=uuid.uuid4(), occurred_at=dt.datetime.now(dt.UTC), **fields)
