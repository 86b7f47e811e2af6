"""The spandsp binding itself: struct layout, callback safety, freeing."""

import ctypes
import gc
from pathlib import Path

import pytest
from PIL import Image

from fax_media import spandsp


def test_completion_codes_have_spandsp_texts() -> None:
    assert spandsp.completion_code_to_str(spandsp.T30_ERR_OK) == "OK"
    assert spandsp.completion_code_to_str(spandsp.T30_ERR_CALLDROPPED) == "The call dropped prematurely"


def test_a_fresh_terminal_reports_its_statistics_and_frees() -> None:
    with spandsp.AudioFaxTerminal(calling=True, name="fresh") as terminal:
        assert terminal.t30.call_active()
        statistics = terminal.t30.transfer_statistics()
        assert (statistics.pages_tx, statistics.pages_rx, statistics.current_status) == (0, 0, 0)
        assert terminal.t30.rx_ident() == ""
    with pytest.raises(RuntimeError):
        terminal.t30.call_active()
    terminal.close()  # a second close is harmless


def test_a_raising_handler_does_not_break_the_call(tmp_path: Path) -> None:
    """Exceptions in every handler are logged and swallowed; the fax still goes through with the thunks collected."""
    document = tmp_path / "page.tif"
    Image.new("1", (1728, 1100), 1).save(document, compression="group4", dpi=(204, 98))
    received = tmp_path / "received.tif"
    completion_codes: list[int] = []

    def explode(_result: int) -> int:
        raise RuntimeError("handler bug")

    def record_then_explode(code: int) -> None:
        completion_codes.append(code)
        raise RuntimeError("handler bug")

    with (
        spandsp.AudioFaxTerminal(calling=True, name="caller") as caller,
        spandsp.AudioFaxTerminal(calling=False, name="answerer") as answerer,
    ):
        caller.t30.set_tx_file(document)
        answerer.t30.set_rx_file(received)
        for terminal in (caller, answerer):
            terminal.t30.set_phase_b_handler(explode)
            terminal.t30.set_phase_d_handler(explode)
            terminal.t30.set_phase_e_handler(record_then_explode)
            terminal.set_transmit_on_idle(True)
        gc.collect()  # the terminals, not the caller's locals, must be what keeps the thunks alive

        caller_audio, answerer_audio = (ctypes.c_int16 * 160)(), (ctypes.c_int16 * 160)()
        for _ in range(60 * 50):
            assert caller.tx(caller_audio, 160) == 160
            assert answerer.tx(answerer_audio, 160) == 160
            answerer.rx(caller_audio, 160)
            caller.rx(answerer_audio, 160)
            if not caller.t30.call_active() and not answerer.t30.call_active():
                break
        statistics = caller.t30.transfer_statistics()

    assert completion_codes == [spandsp.T30_ERR_OK, spandsp.T30_ERR_OK]
    assert statistics.pages_tx == 1
    assert received.exists()


def test_over_long_file_names_are_refused_rather_than_truncated(tmp_path: Path) -> None:
    with spandsp.AudioFaxTerminal(calling=True, name="long name") as terminal, pytest.raises(ValueError):
        terminal.t30.set_tx_file(tmp_path / ("x" * 300))
