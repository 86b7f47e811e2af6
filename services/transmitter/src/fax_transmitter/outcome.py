"""What a transmission attempt means for the job: Kazoo's ``tx_result`` and whether to try again. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from fax_media.t30 import TransmissionOutcome
from fax_runtime.metrics import FaxMetrics
from fax_transmitter.lines import CallRoute
from fax_transmitter.media_policy import AttemptRecord

# spandsp's TIFF errors, T30_ERR_FILEERROR (41) to T30_ERR_BADTIFFHDR (46): the document cannot be read or is not a
# valid TIFF/F. Sending it again cannot help. T30_ERR_NOMEM (47) is left retryable: another attempt may have memory.
T30_ERR_FILEERROR = 41
T30_ERR_BADTIFFHDR = 46
NOT_RETRYABLE_CODES = frozenset(range(T30_ERR_FILEERROR, T30_ERR_BADTIFFHDR + 1))


# Not a spandsp code: the call was never placed (the document could not be read from storage, say).
CALL_NOT_MADE = -1
# Not a spandsp code either: the network refused the call or nobody answered; ``sip_status`` says how.
CALL_NOT_ANSWERED = -2

# Final SIP answers that another attempt cannot change: the number does not exist or is not ours to call, or the
# far end refuses every fax media we offer. Busy (486/600), no answer (408/480/487) and network trouble (5xx) retry.
NOT_RETRYABLE_SIP = frozenset({403, 404, 410, 484, 485, 488, 603, 604, 606})


def call_not_answered(sip_status: int, reason: str) -> TransmissionOutcome:
    return TransmissionOutcome(
        success=False,
        result_code=CALL_NOT_ANSWERED,
        result_text=f"SIP {sip_status} {reason}".strip(),
        pages_sent=0,
        bit_rate=0,
        ecm_used=False,
        bad_rows=0,
        remote_ident="",
        line_seconds=0.0,
        sip_status=sip_status,
    )


def call_not_made(reason: str) -> TransmissionOutcome:
    """The outcome of an attempt that failed before dialling; retried like a dropped call."""
    return TransmissionOutcome(
        success=False,
        result_code=CALL_NOT_MADE,
        result_text=reason,
        pages_sent=0,
        bit_rate=0,
        ecm_used=False,
        bad_rows=0,
        remote_ident="",
        line_seconds=0.0,
    )


def tx_result(
    outcome: TransmissionOutcome,
    *,
    time_elapsed: int,
    attempt: int = 1,
    route: CallRoute | None = None,
    earlier: tuple[AttemptRecord, ...] = (),
) -> dict[str, Any]:
    """Kazoo's ``tx_result`` and ours. ``sip_trunk``/``sip_transport`` name what carried the call, ``sip_failover``
    the trunks it left before, and ``attempt_log`` every attempt so far with its trunk and media (what the next
    attempt learns from: ``fax_transmitter.media_policy``)."""
    record = AttemptRecord(
        attempt=attempt,
        result_code=outcome.result_code,
        sip_status=outcome.sip_status,
        trunk=route.trunk if route else "",
        transport=route.transport if route else "",
        t38_policy=route.t38_policy if route else "",
        t38=outcome.t38_used,
        ecm=route.ecm if route else outcome.ecm_used,
        max_bit_rate=route.max_bit_rate if route else 14400,
    )
    return {
        **_kazoo_fields(outcome, time_elapsed),
        "sip_trunk": route.trunk if route else "",
        "sip_transport": route.transport if route else "",
        "sip_failover": msgspec.to_builtins(list(route.failed_over)) if route else [],
        "attempt_log": msgspec.to_builtins([*earlier, record]),
    }


def _kazoo_fields(outcome: TransmissionOutcome, time_elapsed: int) -> dict[str, Any]:
    return {
        "success": outcome.success,
        "error_message": "" if outcome.success else outcome.result_text,
        "pages_sent": outcome.pages_sent,
        "fax_speed": outcome.bit_rate,
        "fax_error_correction": outcome.ecm_used,
        "fax_bad_rows": outcome.bad_rows,
        "fax_receiver_id": outcome.remote_ident,
        "remote_station_id": outcome.remote_ident,
        "time_elapsed": time_elapsed,
        "result_code": outcome.result_code,
        "result_text": outcome.result_text,
        "fax_t38_used": outcome.t38_used,
        "sip_status": outcome.sip_status,
    }


def should_retry(outcome: TransmissionOutcome, *, attempt: int, retries: int) -> bool:
    """Kazoo's ``retries`` is the total number of attempts."""
    if outcome.success or attempt >= retries or outcome.result_code in NOT_RETRYABLE_CODES:
        return False
    return outcome.sip_status not in NOT_RETRYABLE_SIP


def record_call(
    metrics: FaxMetrics, direction: str, outcome: TransmissionOutcome, *, retry: bool, seconds: float
) -> None:
    """Count an ended call: its result, media, pages, T.30 completion code, or the SIP answer that refused it."""
    result = "delivered" if outcome.success else "retrying" if retry else "failed"
    metrics.calls.labels(direction, result, "t38" if outcome.t38_used else "g711").inc()
    metrics.call_seconds.labels(direction).observe(seconds)
    pages = metrics.pages_sent if direction == "outbound" else metrics.pages_received
    pages.inc(outcome.pages_sent)
    if outcome.sip_status is not None:
        metrics.sip_responses.labels("INVITE", str(outcome.sip_status)).inc()
    elif outcome.result_code >= 0:
        metrics.t30_completions.labels(direction, str(outcome.result_code)).inc()


BUSY_SIP = frozenset({486, 600})
NO_ANSWER_SIP = frozenset({408, 480, 487})


def retry_delay_s(outcome: TransmissionOutcome, delays: RetryDelays) -> int:
    """How long to wait before the next attempt, by why this one failed."""
    if outcome.sip_status in BUSY_SIP:
        return delays.busy_s
    if outcome.sip_status in NO_ANSWER_SIP:
        return delays.no_answer_s
    return delays.other_s


@dataclass(frozen=True)
class RetryDelays:
    busy_s: int = 120  # the line is in use: a few minutes
    no_answer_s: int = 300  # nobody picks up: try later
    other_s: int = 60  # network trouble, a dropped call, a T.30 error
