from fax_media.t30 import TransmissionOutcome
from fax_transmitter.lines import CallRoute, TrunkTry
from fax_transmitter.media_policy import AttemptRecord, attempt_log
from fax_transmitter.outcome import (
    T30_ERR_FILEERROR,
    RetryDelays,
    call_not_answered,
    call_not_made,
    retry_delay_s,
    should_retry,
    tx_result,
)


def _outcome(**overrides: object) -> TransmissionOutcome:
    values = dict(
        success=True,
        result_code=0,
        result_text="OK",
        pages_sent=2,
        bit_rate=14400,
        ecm_used=True,
        bad_rows=0,
        remote_ident="FAR END",
        line_seconds=45.6,
    )
    values.update(overrides)
    return TransmissionOutcome(**values)  # type: ignore[arg-type]


def test_tx_result_has_kazoo_fields_and_ours() -> None:
    result = tx_result(_outcome(), time_elapsed=50)
    assert result == {
        "success": True,
        "error_message": "",
        "pages_sent": 2,
        "fax_speed": 14400,
        "fax_error_correction": True,
        "fax_bad_rows": 0,
        "fax_receiver_id": "FAR END",
        "remote_station_id": "FAR END",
        "time_elapsed": 50,
        "result_code": 0,
        "result_text": "OK",
        "fax_t38_used": False,
        "sip_status": None,
        "sip_trunk": "",
        "sip_transport": "",
        "sip_failover": [],
        "attempt_log": [
            {
                "attempt": 1,
                "result_code": 0,
                "sip_status": None,
                "trunk": "",
                "transport": "",
                "t38_policy": "",
                "t38": False,
                "ecm": True,
                "max_bit_rate": 14400,
            }
        ],
    }


def test_tx_result_names_the_trunk_the_failover_and_every_attempts_media() -> None:
    earlier = AttemptRecord(attempt=1, result_code=49, trunk="a", transport="udp", t38_policy="prefer", t38=True)
    route = CallRoute(
        trunk="b",
        transport="tls",
        failed_over=(TrunkTry(trunk="a", transport="udp", sip_status=503, reason="Service Unavailable"),),
        t38_policy="prefer",
        t38=False,
        ecm=True,
        max_bit_rate=9600,
    )
    result = tx_result(_outcome(bit_rate=9600), time_elapsed=80, attempt=2, route=route, earlier=(earlier,))
    assert (result["sip_trunk"], result["sip_transport"]) == ("b", "tls")
    assert result["sip_failover"] == [
        {"trunk": "a", "transport": "udp", "sip_status": 503, "reason": "Service Unavailable"}
    ]
    assert [(a["attempt"], a["trunk"], a["t38"], a["max_bit_rate"]) for a in result["attempt_log"]] == [
        (1, "a", True, 14400),
        (2, "b", False, 9600),
    ]
    assert attempt_log(result) == (earlier, AttemptRecord(**result["attempt_log"][1]))


def test_failure_text_becomes_the_error_message() -> None:
    result = tx_result(_outcome(success=False, result_code=2, result_text="T0 expired"), time_elapsed=61)
    assert result["success"] is False and result["error_message"] == "T0 expired"


def test_retries_is_the_total_number_of_attempts() -> None:
    failed = _outcome(success=False, result_code=2, result_text="T0 expired")
    assert should_retry(failed, attempt=1, retries=3)
    assert should_retry(failed, attempt=2, retries=3)
    assert not should_retry(failed, attempt=3, retries=3)
    assert not should_retry(failed, attempt=1, retries=1)


def test_unreadable_document_is_not_retried_and_success_never_is() -> None:
    assert not should_retry(_outcome(success=False, result_code=T30_ERR_FILEERROR), attempt=1, retries=4)
    assert not should_retry(_outcome(), attempt=1, retries=4)


def test_an_attempt_that_never_dialled_is_a_retryable_failure_with_its_reason() -> None:
    outcome = call_not_made("transmitter error: S3 unavailable")
    assert tx_result(outcome, time_elapsed=3)["error_message"] == "transmitter error: S3 unavailable"
    assert should_retry(outcome, attempt=1, retries=2) and not should_retry(outcome, attempt=2, retries=2)


def test_the_network_decides_which_unanswered_calls_are_retried() -> None:
    for busy_or_silent in (486, 600, 408, 480, 487, 500, 503):
        assert should_retry(call_not_answered(busy_or_silent, "x"), attempt=1, retries=2), busy_or_silent
    for hopeless in (404, 484, 604, 403, 603, 488):
        assert not should_retry(call_not_answered(hopeless, "x"), attempt=1, retries=4), hopeless
    result = tx_result(call_not_answered(486, "Busy Here"), time_elapsed=1)
    assert result["error_message"] == "SIP 486 Busy Here" and result["sip_status"] == 486


def test_every_tiff_error_of_spandsp_is_final_but_out_of_memory_is_retried() -> None:
    # 41 cannot open, 42 no page, 43 bad TIFF, 44 page tag missing, 45 bad tags, 46 bad header; 47 no memory.
    for code in range(41, 47):
        assert not should_retry(_outcome(success=False, result_code=code), attempt=1, retries=4), code
    assert should_retry(_outcome(success=False, result_code=47), attempt=1, retries=4)


def test_the_wait_before_a_retry_depends_on_why_the_call_failed() -> None:
    delays = RetryDelays(busy_s=120, no_answer_s=300, other_s=60)
    assert retry_delay_s(call_not_answered(486, "Busy Here"), delays) == 120
    assert retry_delay_s(call_not_answered(480, "Temporarily Unavailable"), delays) == 300
    assert retry_delay_s(call_not_answered(503, "Service Unavailable"), delays) == 60
    assert retry_delay_s(_outcome(success=False, result_code=49, result_text="dropped"), delays) == 60
