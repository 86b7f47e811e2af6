"""Which fax media an attempt uses: the T.38 policy of the trunk and the faxbox, and what earlier attempts taught.
Pure rules, no I/O.

Retrying a failing fax the same way fails the same way (FusionPBX's fax retry alternates T.38, ECM and the modem for
this reason). So an attempt looks at the attempts before it, as ``tx_result["attempt_log"]`` keeps them:

- a T.30 failure over T.38 sends the next attempt over G.711, and a T.30 failure over G.711 the next one over T.38,
  where the policy lets it choose;
- training failing again and again lowers the modem (V.17 14400 → V.29 9600 → V.27ter 4800), then turns ECM off;
- an ECM failure (the receiver's responses or its readiness in ECM) turns ECM off.

Nothing here raises the speed above what the job allows or turns ECM on for a job that turned it off.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from fax_media.t30 import FaxOptions

PREFER, ONLY, OFF = "prefer", "only", "off"

# spandsp's T.30 completion codes (spandsp/t30.h).
T30_ERR_CANNOT_TRAIN = 6  # failed to train with any of the compatible modems
T30_ERR_TX_BADDCS = 14  # bad response to DCS or training
T30_ERR_TX_ECMPHD = 16  # invalid ECM response from the receiver
T30_ERR_TX_PHBDEAD = 20  # no response to DCS, training or TCF
T30_ERR_TX_T5EXP = 22  # timed out waiting for the receiver to be ready (ECM)
TRAINING_FAILURES = frozenset({T30_ERR_CANNOT_TRAIN, T30_ERR_TX_BADDCS, T30_ERR_TX_PHBDEAD})
ECM_FAILURES = frozenset({T30_ERR_TX_ECMPHD, T30_ERR_TX_T5EXP})
# spandsp's TIFF errors: the document, not the line, failed (fax_transmitter.outcome.NOT_RETRYABLE_CODES).
DOCUMENT_FAILURES = frozenset(range(41, 47))
SLOWER = {14400: 9600, 9600: 4800}


class AttemptRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt as ``tx_result["attempt_log"]`` keeps it: where it went and the media it used, and how it ended
    (a T.30 completion code; below 0 when no call was made or answered, ``sip_status`` then says why)."""

    attempt: int
    result_code: int
    sip_status: int | None = None
    trunk: str = ""
    transport: str = ""
    t38_policy: str = ""
    t38: bool = False  # T.38 carried the fax
    ecm: bool = True  # ECM allowed
    max_bit_rate: int = 14400  # the fastest modem allowed

    @property
    def failed_in_t30(self) -> bool:
        """The far end answered and T.30 failed (not the document: sending it again cannot help)."""
        return self.result_code > 0 and self.result_code not in DOCUMENT_FAILURES


@dataclasses.dataclass(frozen=True)
class MediaPlan:
    """What one attempt through one trunk asks for."""

    t38_policy: str  # the policy in force: prefer | only | off
    t38: bool  # ask for T.38 (and take the network's T.38 re-INVITE); False: G.711 only, this time
    options: FaxOptions  # with ECM and the fastest modem this attempt may use
    reason: str = ""  # why it differs from the first attempt's choice ("" when it does not)


def faxbox_policy(fax_option: Any) -> str | None:
    """Kazoo's faxbox ``media.fax_option`` ("Is T.38 supported?"): false keeps the faxbox's faxes on G.711; true,
    "auto" or nothing leaves the choice to the trunk."""
    if fax_option is False or (isinstance(fax_option, str) and fax_option.lower() == "false"):
        return OFF
    return None


def effective_policy(trunk_policy: str, faxbox: str | None) -> str:
    """A trunk that can only do T.38, or never does, decides; otherwise the faxbox may keep to G.711."""
    if trunk_policy in (ONLY, OFF):
        return trunk_policy
    return faxbox or trunk_policy


def plan_media(policy: str, history: tuple[AttemptRecord, ...], options: FaxOptions) -> MediaPlan:
    """The media for the next attempt, under ``policy``, after the attempts in ``history`` (oldest first)."""
    answered = [record for record in history if record.failed_in_t30]
    reasons: list[str] = []
    t38 = policy != OFF
    if policy == PREFER and answered:
        last = answered[-1]
        t38 = not last.t38
        reasons.append(f"attempt {last.attempt} failed over {'T.38' if last.t38 else 'G.711'}")
    max_bit_rate, ecm = options.max_bit_rate, options.ecm
    trainings = sum(record.result_code in TRAINING_FAILURES for record in answered)
    for _ in range(max(0, trainings - 1)):  # one failed training may be the line; again, the modem or the far end
        if max_bit_rate in SLOWER:
            max_bit_rate = SLOWER[max_bit_rate]
        else:
            ecm = False
    if trainings > 1:
        reasons.append(f"training failed {trainings} times")
    if any(record.result_code in ECM_FAILURES for record in answered) and ecm:
        ecm = False
        reasons.append("ECM failed")
    return MediaPlan(
        t38_policy=policy,
        t38=t38,
        options=dataclasses.replace(options, ecm=ecm, max_bit_rate=max_bit_rate),
        reason="; ".join(reasons),
    )


def attempt_log(tx_result: Any) -> tuple[AttemptRecord, ...]:
    """The attempts an earlier ``tx_result`` recorded (none when it has no readable log)."""
    if not isinstance(tx_result, dict):
        return ()
    try:
        return tuple(msgspec.convert(tx_result.get("attempt_log", []), list[AttemptRecord]))
    except msgspec.ValidationError:
        return ()
