"""The ``loopback`` line: a fax sent to an in-process far end, with real T.30 and real modems on both sides.

Two spandsp audio terminals, a caller sending the TIFF and an answerer receiving into a file, exchange 20 ms blocks of
8 kHz audio as fast as the CPU allows, in the calling thread. Nothing is faked: negotiation, training, ECM and page
transfer run exactly as on a telephone line, so the outcome and the received file are what a fax machine would get.
"""

from __future__ import annotations

import ctypes
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from fax_transmitter import spandsp

_LOG = logging.getLogger(__name__)

BLOCK_SAMPLES = 160
# After one side ends its call, the other still gets this much audio (to hear the DCN), then the line is dropped.
HANGUP_GRACE_SAMPLES = spandsp.SAMPLE_RATE

_MODEMS_BY_MAX_BIT_RATE = {
    14400: spandsp.T30_SUPPORT_V17 | spandsp.T30_SUPPORT_V29 | spandsp.T30_SUPPORT_V27TER,
    9600: spandsp.T30_SUPPORT_V29 | spandsp.T30_SUPPORT_V27TER,
    4800: spandsp.T30_SUPPORT_V27TER,
}
_ALL_COMPRESSIONS = (
    spandsp.T30_SUPPORT_T4_1D_COMPRESSION | spandsp.T30_SUPPORT_T4_2D_COMPRESSION | spandsp.T30_SUPPORT_T6_COMPRESSION
)
_ALL_RESOLUTIONS = (
    spandsp.T30_SUPPORT_STANDARD_RESOLUTION
    | spandsp.T30_SUPPORT_FINE_RESOLUTION
    | spandsp.T30_SUPPORT_SUPERFINE_RESOLUTION
    | spandsp.T30_SUPPORT_R8_RESOLUTION
    | spandsp.T30_SUPPORT_R16_RESOLUTION
)
_ALL_IMAGE_SIZES = (
    spandsp.T30_SUPPORT_215MM_WIDTH
    | spandsp.T30_SUPPORT_255MM_WIDTH
    | spandsp.T30_SUPPORT_303MM_WIDTH
    | spandsp.T30_SUPPORT_UNLIMITED_LENGTH
    | spandsp.T30_SUPPORT_A4_LENGTH
    | spandsp.T30_SUPPORT_B4_LENGTH
    | spandsp.T30_SUPPORT_US_LETTER_LENGTH
    | spandsp.T30_SUPPORT_US_LEGAL_LENGTH
)


@dataclass(frozen=True)
class FaxOptions:
    """How we send: our identity, the page header line, ECM and the fastest modem we may use."""

    local_ident: str = ""  # our TSI (<=20 chars)
    page_header: str = ""  # "" = no header line (a header adds rows to every page)
    header_tz: str = ""  # POSIX TZ string of the header's date and time; "" = the machine's own zone
    ecm: bool = True
    max_bit_rate: int = 14400  # 14400 -> V17|V29|V27ter, 9600 -> V29|V27ter, 4800 -> V27ter


@dataclass(frozen=True)
class TransmissionOutcome:
    """What happened on the line, as the sending fax machine saw it."""

    success: bool
    result_code: int  # spandsp T30 completion code (0 = OK)
    result_text: str  # t30_completion_code_to_str
    pages_sent: int
    bit_rate: int
    ecm_used: bool
    bad_rows: int
    remote_ident: str  # the far end's CSI ("" if none)
    line_seconds: float  # simulated line time (samples / 8000)
    t38_used: bool = False
    compression: str = ""  # MH, MR or MMR: the coding of the last page (spandsp.compression_name)
    sip_status: int | None = None  # the final SIP answer when the call was refused or never answered


class _Observer:
    """Collects what one side's T.30 handlers report during the call."""

    def __init__(self, t30: spandsp.T30Session) -> None:
        self._t30 = t30
        self.completion_code: int | None = None
        self.final: spandsp.TransferStatistics | None = None
        self.remote_ident = ""
        self.pages: list[spandsp.TransferStatistics] = []
        t30.set_phase_d_handler(self._phase_d)
        t30.set_phase_e_handler(self._phase_e)

    def _phase_d(self, _result: int) -> int:
        self.pages.append(self._t30.transfer_statistics())
        return spandsp.T30_ERR_OK

    def _phase_e(self, completion_code: int) -> None:
        self.completion_code = completion_code
        self.final = self._t30.transfer_statistics()
        self.remote_ident = self._t30.rx_ident()


def _modems_for(max_bit_rate: int) -> int:
    try:
        return _MODEMS_BY_MAX_BIT_RATE[max_bit_rate]
    except KeyError:
        raise ValueError(f"max_bit_rate must be one of {sorted(_MODEMS_BY_MAX_BIT_RATE)}: {max_bit_rate}") from None


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
    modems = _modems_for(options.max_bit_rate)
    # A stale file from an earlier attempt must never pass for this call's pages.
    received_path.unlink(missing_ok=True)
    with (
        spandsp.AudioFaxTerminal(calling=True, name="loopback caller") as caller,
        spandsp.AudioFaxTerminal(calling=False, name="loopback answerer") as answerer,
    ):
        caller.t30.set_tx_ident(options.local_ident)
        caller.t30.set_tx_page_header_info(options.page_header)
        if options.header_tz:
            caller.t30.set_tx_page_header_tz(options.header_tz)
        caller.t30.set_ecm_capability(options.ecm)
        caller.t30.set_supported_modems(modems)
        caller.t30.set_supported_compressions(_ALL_COMPRESSIONS)
        caller.t30.set_supported_resolutions(_ALL_RESOLUTIONS)
        caller.t30.set_supported_image_sizes(_ALL_IMAGE_SIZES)
        caller.t30.set_tx_file(tiff_path)

        # The far end is a capable fax machine, so what gets negotiated is decided by our options alone.
        answerer.t30.set_tx_ident(remote_ident)
        answerer.t30.set_ecm_capability(True)
        answerer.t30.set_supported_modems(_MODEMS_BY_MAX_BIT_RATE[14400])
        answerer.t30.set_supported_compressions(_ALL_COMPRESSIONS)
        answerer.t30.set_supported_resolutions(_ALL_RESOLUTIONS)
        answerer.t30.set_supported_image_sizes(_ALL_IMAGE_SIZES)
        answerer.t30.set_rx_file(received_path)

        sender = _Observer(caller.t30)
        receiver = _Observer(answerer.t30)
        started = time.process_time()
        samples, timed_out = _run_line(caller, answerer, max_samples=int(max_line_seconds * spandsp.SAMPLE_RATE))
        cpu_seconds = time.process_time() - started

    line_seconds = samples / spandsp.SAMPLE_RATE
    outcome = _outcome(sender, receiver, timed_out=timed_out, line_seconds=line_seconds)
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


def _outcome(sender: _Observer, receiver: _Observer, *, timed_out: bool, line_seconds: float) -> TransmissionOutcome:
    code = sender.completion_code
    if code is None or (timed_out and code == spandsp.T30_ERR_OK):
        # t30_terminate always fires phase E, so this is belt and braces: never report a cut call as sent.
        code = spandsp.T30_ERR_CALLDROPPED
    final = sender.final
    # Only a sent page proves a rate and mode: before DCS the statistics just echo the configured defaults.
    last_page = sender.pages[-1] if sender.pages else None
    return TransmissionOutcome(
        success=code == spandsp.T30_ERR_OK and not timed_out,
        result_code=code,
        result_text=spandsp.completion_code_to_str(code),
        pages_sent=final.pages_tx if final else 0,
        bit_rate=last_page.bit_rate if last_page else 0,
        ecm_used=last_page.ecm if last_page else False,
        compression=spandsp.compression_name(last_page.encoding) if last_page else "",
        bad_rows=sum(page.bad_rows for page in receiver.pages),
        remote_ident=sender.remote_ident,
        line_seconds=line_seconds,
    )
