"""What an attempt's media learn from the attempts before it, and who decides T.38 (fax_transmitter.media_policy)."""

from __future__ import annotations

import pytest

from fax_media.t30 import FaxOptions
from fax_transmitter.media_policy import (
    OFF,
    ONLY,
    PREFER,
    AttemptRecord,
    attempt_log,
    effective_policy,
    faxbox_policy,
    plan_media,
)

OPTIONS = FaxOptions(local_ident="+1555", ecm=True, max_bit_rate=14400)
CALL_DROPPED, CANNOT_TRAIN, TX_PHBDEAD, TX_ECMPHD, FILE_ERROR = 49, 6, 20, 16, 41


def _attempt(number: int, code: int, *, t38: bool = False, sip: int | None = None) -> AttemptRecord:
    return AttemptRecord(attempt=number, result_code=code, t38=t38, sip_status=sip)


def test_a_first_attempt_asks_for_t38_unless_the_policy_is_g711() -> None:
    assert plan_media(PREFER, (), OPTIONS).t38 and plan_media(ONLY, (), OPTIONS).t38
    assert not plan_media(OFF, (), OPTIONS).t38
    assert plan_media(PREFER, (), OPTIONS).options == OPTIONS and plan_media(PREFER, (), OPTIONS).reason == ""


def test_a_t30_failure_over_t38_sends_the_next_attempt_over_g711_and_back() -> None:
    after_t38 = plan_media(PREFER, (_attempt(1, CALL_DROPPED, t38=True),), OPTIONS)
    assert not after_t38.t38 and "attempt 1 failed over T.38" in after_t38.reason
    after_both = plan_media(PREFER, (_attempt(1, CALL_DROPPED, t38=True), _attempt(2, CALL_DROPPED)), OPTIONS)
    assert after_both.t38  # G.711 failed too: T.38 again


def test_only_a_t30_failure_counts_not_busy_or_a_bad_document() -> None:
    history = (_attempt(1, CALL_DROPPED, t38=True), _attempt(2, -2, sip=486), _attempt(3, FILE_ERROR, t38=True))
    assert not plan_media(PREFER, history, OPTIONS).t38  # attempt 1 is the last one T.30 failed in


@pytest.mark.parametrize("policy", [ONLY, OFF])
def test_a_policy_without_choice_is_kept_whatever_failed(policy: str) -> None:
    history = (_attempt(1, CALL_DROPPED, t38=policy == ONLY),)
    assert plan_media(policy, history, OPTIONS).t38 is (policy == ONLY)


def test_repeated_training_failures_lower_the_modem_then_turn_ecm_off() -> None:
    def after(failures: int) -> tuple[int, bool]:
        history = tuple(_attempt(n, CANNOT_TRAIN if n % 2 else TX_PHBDEAD) for n in range(1, failures + 1))
        options = plan_media(OFF, history, OPTIONS).options
        return options.max_bit_rate, options.ecm

    assert [after(n) for n in range(5)] == [
        (14400, True), (14400, True), (9600, True), (4800, True), (4800, False),
    ]  # fmt: skip
    twice = tuple(_attempt(n, CANNOT_TRAIN) for n in (1, 2))
    assert "training failed 2 times" in plan_media(OFF, twice, OPTIONS).reason


def test_an_ecm_failure_turns_ecm_off_and_nothing_goes_above_what_the_job_allows() -> None:
    assert not plan_media(PREFER, (_attempt(1, TX_ECMPHD),), OPTIONS).options.ecm
    slow = FaxOptions(ecm=False, max_bit_rate=4800)
    history = tuple(_attempt(n, CANNOT_TRAIN) for n in range(1, 5))
    assert plan_media(PREFER, history, slow).options == slow


def test_the_faxbox_keeps_to_g711_only_where_the_trunk_lets_it_choose() -> None:
    assert faxbox_policy(False) == OFF and faxbox_policy("false") == OFF
    assert faxbox_policy(True) is None and faxbox_policy("auto") is None and faxbox_policy(None) is None
    assert effective_policy(PREFER, OFF) == OFF and effective_policy(PREFER, None) == PREFER
    assert effective_policy(ONLY, OFF) == ONLY and effective_policy(OFF, None) == OFF


def test_an_unreadable_log_is_no_history() -> None:
    assert attempt_log({"attempt_log": [{"attempt": "x"}]}) == () and attempt_log(None) == ()
    assert attempt_log({}) == ()
