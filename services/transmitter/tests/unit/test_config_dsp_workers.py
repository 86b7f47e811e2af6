"""``FAX_DSP_WORKERS``: how many media worker processes the ``sip`` line runs (0 = one per core), bounded."""

import pytest

from fax_runtime.config import ConfigError
from fax_transmitter.config import MAX_DSP_WORKERS, SipLineConfig


def test_by_default_the_line_runs_one_worker_per_core() -> None:
    assert SipLineConfig.from_env({}).dsp_workers == 0


def test_a_number_of_workers_is_taken() -> None:
    assert SipLineConfig.from_env({"FAX_DSP_WORKERS": "3"}).dsp_workers == 3


@pytest.mark.parametrize("value", ["-1", str(MAX_DSP_WORKERS + 1), "two"])
def test_a_bad_number_of_workers_is_refused_clearly(value: str) -> None:
    with pytest.raises(ConfigError, match="FAX_DSP_WORKERS"):
        SipLineConfig.from_env({"FAX_DSP_WORKERS": value})
