"""What every channel's sender reports, so the dispatcher can decide between done, retry and give up."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Outcome(StrEnum):
    SENT = "sent"
    # Worth trying again later: the relay, provider or receiver is down, busy or said "try later".
    RETRY = "retry"
    # Will never work: a refused address, a blocked URL, a permanent SMTP 5xx.
    FAILED = "failed"


class SendResult(msgspec.Struct, frozen=True):
    outcome: Outcome
    detail: str = ""
