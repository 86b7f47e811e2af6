"""A fax sent to an in-process far end, with real T.30 and real modems on both sides (the ``loopback`` line, benches).

Two spandsp audio terminals, a caller sending the TIFF and an answerer receiving into a file, exchange 20 ms blocks of
8 kHz audio as fast as the CPU allows, in the calling thread. Nothing is faked: negotiation, training, ECM and page
transfer run exactly as on a telephone line, so the outcome and the received file are what a fax machine would get.
"""

from __future__ import annotations

import ctypes
import logging
import time
from pathlib import Path

from fax_media import spandsp
from fax_media.t30 import FaxOptions, T30Progress, TransmissionOutcome, configure, modems_for

_LOG = logging.getLogger(__name__)

BLOCK_SAMPLES = 160
# After one side ends its call, the other still gets this much audio (to hear the DCN), then the line is dropped.
HANGUP_GRACE_SAMPLES = spandsp.SAMPLE_RATE


def send_over_loopback(
    tiff_path: Path,
    received_path: Path,
    options: FaxOptions,
    *,
    remote_ident: str = "LOOPBACK",
    max_line_seconds: float = 600.0,
) -> TransmissionOutcome:
    """Send ``tiff_path`` to an in-process fax machine that writes what it receives to ``received_path``.

    Blocks until the call ends (run it in a worker thread from async code). A file spandsp cannot send is reported
    as a failed transmission, not raised; invalid options raise ``ValueError``. If the simulated line time exceeds
    ``max_line_seconds`` both ends hang up and the outcome is a failure.
    """
    modems_for(options.max_bit_rate)  # invalid options raise before anything is touched
    # A stale file from an earlier attempt must never pass for this call's pages.
    received_path.unlink(missing_ok=True)
    with (
        spandsp.AudioFaxTerminal(calling=True, name="loopback caller") as caller,
        spandsp.AudioFaxTerminal(calling=False, name="loopback answerer") as answerer,
    ):
        configure(caller.t30, options)
        caller.t30.set_tx_file(tiff_path)
        # The far end is a capable fax machine, so what gets negotiated is decided by our options alone.
        configure(answerer.t30, FaxOptions(local_ident=remote_ident))
        answerer.t30.set_rx_file(received_path)

        sender = _observe(caller.t30)
        receiver = _observe(answerer.t30)
        started = time.process_time()
        samples, timed_out = _run_line(caller, answerer, max_samples=int(max_line_seconds * spandsp.SAMPLE_RATE))
        cpu_seconds = time.process_time() - started

    line_seconds = samples / spandsp.SAMPLE_RATE
    # The sender's view of the call, with the rows the receiver found bad.
    outcome = sender.outcome(calling=True, timed_out=timed_out, line_seconds=line_seconds, bad_rows=receiver.bad_rows)
    _LOG.info(
        "loopback fax %s: %s (code %d), %d pages at %d bit/s, ECM %s, %.1f s line time, %.3f CPU-s",
        tiff_path,
        outcome.result_text,
        outcome.result_code,
        outcome.pages_sent,
        outcome.bit_rate,
        outcome.ecm_used,
        line_seconds,
        cpu_seconds,
    )
    return outcome


def _observe(t30: spandsp.T30Session) -> T30Progress:
    """Collect what one side's T.30 handlers report during the call."""
    progress = T30Progress()

    def page_done(_result: int) -> int:
        progress.page_done(t30)
        return spandsp.T30_ERR_OK

    t30.set_phase_d_handler(page_done)
    t30.set_phase_e_handler(lambda completion_code: progress.ended(t30, completion_code))
    return progress


def _run_line(
    caller: spandsp.AudioFaxTerminal, answerer: spandsp.AudioFaxTerminal, *, max_samples: int
) -> tuple[int, bool]:
    """Exchange audio until both calls end; returns the samples carried and whether the watchdog hung up."""
    caller.set_transmit_on_idle(True)
    answerer.set_transmit_on_idle(True)
    caller_audio = (ctypes.c_int16 * BLOCK_SAMPLES)()
    answerer_audio = (ctypes.c_int16 * BLOCK_SAMPLES)()
    samples = 0
    hangup_at: int | None = None
    while True:
        for terminal, audio in ((caller, caller_audio), (answerer, answerer_audio)):
            produced = terminal.tx(audio, BLOCK_SAMPLES)
            if produced < BLOCK_SAMPLES:
                ctypes.memset(ctypes.addressof(audio) + 2 * produced, 0, 2 * (BLOCK_SAMPLES - produced))
        answerer.rx(caller_audio, BLOCK_SAMPLES)
        caller.rx(answerer_audio, BLOCK_SAMPLES)
        samples += BLOCK_SAMPLES

        caller_active = caller.t30.call_active()
        answerer_active = answerer.t30.call_active()
        if not caller_active and not answerer_active:
            return samples, False
        if samples >= max_samples:
            _LOG.warning("loopback line time limit of %.0f s reached: hanging up", max_samples / spandsp.SAMPLE_RATE)
            caller.t30.terminate()
            answerer.t30.terminate()
            return samples, True
        if hangup_at is None and not (caller_active and answerer_active):
            hangup_at = samples + HANGUP_GRACE_SAMPLES
        if hangup_at is not None and samples >= hangup_at:
            # One side has finished and the other is still waiting: drop the line as a real hangup would.
            _LOG.debug(
                "loopback: %s still in the call after the other hung up", "caller" if caller_active else "answerer"
            )
            caller.t30.terminate()
            answerer.t30.terminate()
            return samples, False
