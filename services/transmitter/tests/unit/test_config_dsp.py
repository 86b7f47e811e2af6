"""``FAX_DSP_WORKERS``: how many media worker processes the ``sip`` line runs (0 = one per core), bounded;
``FAX_DSP_REALTIME``: whether they ask for real-time scheduling."""

import pytest

from fax_runtime.config import ConfigError
from fax_transmitter.config import MAX_DSP_WORKERS, SipLineConfig


def test_by_default_the_line_runs_one_worker_per_core_in_real_time() -> None:
    config = SipLineConfig.from_env({})
    assert config.dsp_workers == 0 and config.dsp_realtime


def test_real_time_scheduling_can_be_turned_off() -> None:
    assert not SipLineConfig.from_env({"FAX_DSP_REALTIME": "false"}).dsp_realtime


def test_a_number_of_workers_is_taken() -> None:
    assert SipLineConfig.from_env({"FAX_DSP_WORKERS": "3"}).dsp_workers == 3


@pytest.mark.parametrize("value", ["-1", str(MAX_DSP_WORKERS + 1), "two"])
def test_a_bad_number_of_workers_is_refused_clearly(value: str) -> None:
    with pytest.raises(ConfigError, match="FAX_DSP_WORKERS"):
        SipLineConfig.from_env({"FAX_DSP_WORKERS": value})
