"""ctypes binding to spandsp 0.0.6 (``libspandsp.so.2``): the T.30 fax engine over 8 kHz linear audio.

Only what a fax endpoint needs is bound. ``AudioFaxTerminal`` owns one ``fax_state_t`` (modems + T.30) and frees it
with ``fax_free``; its ``t30`` attribute exposes the T.30 settings, handlers and statistics. Every C callback is a
ctypes thunk kept referenced by the terminal until the state is freed, and no Python exception ever escapes into C:
handlers are wrapped so an exception is logged and the call continues.

spandsp's and libtiff's diagnostics, which both print to stderr by default, are routed to the ``logging`` module
(``fax_media.spandsp`` and ``fax_media.spandsp.libtiff``), one severity step below what the libraries call
them. How much spandsp logs is fixed when a terminal is created, from its logger's effective level. The libraries
are loaded, and the process-wide handlers installed, on first use rather than at import time.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, TypeAlias

_LOG = logging.getLogger(__name__)
_TIFF_LOG = logging.getLogger(f"{__name__}.libtiff")

SAMPLE_RATE = 8000

# T.30 completion codes used by callers (spandsp t30.h; 0.0.6 numbering).
T30_ERR_OK = 0
T30_ERR_CALLDROPPED = 49

# Image-transfer modems (t30.h T30_SUPPORT_*).
T30_SUPPORT_V27TER = 0x01
T30_SUPPORT_V29 = 0x02
T30_SUPPORT_V17 = 0x04

# Compressions; T.6 is only ever negotiated when ECM is in use.
T30_SUPPORT_T4_1D_COMPRESSION = 0x02
T30_SUPPORT_T4_2D_COMPRESSION = 0x04
T30_SUPPORT_T6_COMPRESSION = 0x08

# Resolutions.
T30_SUPPORT_STANDARD_RESOLUTION = 0x01
T30_SUPPORT_FINE_RESOLUTION = 0x02
T30_SUPPORT_SUPERFINE_RESOLUTION = 0x04
T30_SUPPORT_R8_RESOLUTION = 0x20000
T30_SUPPORT_R16_RESOLUTION = 0x40000

# Image sizes.
T30_SUPPORT_215MM_WIDTH = 0x01
T30_SUPPORT_255MM_WIDTH = 0x02
T30_SUPPORT_303MM_WIDTH = 0x04
T30_SUPPORT_UNLIMITED_LENGTH = 0x10000
T30_SUPPORT_A4_LENGTH = 0x20000
T30_SUPPORT_B4_LENGTH = 0x40000
T30_SUPPORT_US_LETTER_LENGTH = 0x80000
T30_SUPPORT_US_LEGAL_LENGTH = 0x100000

# span_log levels and flags (logging.h).
SPAN_LOG_ERROR = 1
SPAN_LOG_WARNING = 2
SPAN_LOG_PROTOCOL_ERROR = 3
SPAN_LOG_PROTOCOL_WARNING = 4
SPAN_LOG_FLOW = 5
SPAN_LOG_SHOW_PROTOCOL = 0x0800

T30_MAX_IDENT_LEN = 20
T30_MAX_PAGE_HEADER_INFO = 50
# t30_state_t keeps file names in char[256] and silently truncates longer ones.
_MAX_FILE_NAME_BYTES = 255

_PhaseBDHandler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
_PhaseEHandler = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
_SpanMessageHandler = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p)
_SpanErrorHandler = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
# libtiff's handler gets a va_list; on the x86-64 and AArch64 ABIs it arrives as a pointer that vsnprintf accepts.
_TiffHandler = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
# t38_tx_packet_handler_t: (t38_core_state_t*, void *user_data, const uint8_t *buf, int len, int count) -> int.
_T38TxHandler = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_int, ctypes.c_int
)

PhaseHandler: TypeAlias = Callable[[int], int]
PhaseEHandler: TypeAlias = Callable[[int], None]
# Gets one IFP packet (a copy, safe to keep) and how many times to send it.
T38PacketSender: TypeAlias = Callable[[bytes, int], None]

# g711_init modes.
G711_ALAW = 0
G711_ULAW = 1


class _T30Stats(ctypes.Structure):
    """``t30_stats_t`` exactly as spandsp 0.0.6 lays it out (upstream 3.x differs)."""

    _fields_ = [
        ("bit_rate", ctypes.c_int),
        ("error_correcting_mode", ctypes.c_int),
        ("pages_tx", ctypes.c_int),
        ("pages_rx", ctypes.c_int),
        ("pages_in_file", ctypes.c_int),
        ("x_resolution", ctypes.c_int),
        ("y_resolution", ctypes.c_int),
        ("width", ctypes.c_int),
        ("length", ctypes.c_int),
        ("image_size", ctypes.c_int),
        ("encoding", ctypes.c_int),
        ("bad_rows", ctypes.c_int),
        ("longest_bad_row_run", ctypes.c_int),
        ("error_correcting_mode_retries", ctypes.c_int),
        ("current_status", ctypes.c_int),
    ]


assert ctypes.sizeof(_T30Stats) == 60


@dataclass(frozen=True)
class TransferStatistics:
    """A snapshot of ``t30_get_transfer_statistics``; per-page fields describe the most recent page."""

    bit_rate: int
    ecm: bool
    pages_tx: int
    pages_rx: int
    pages_in_file: int
    x_resolution: int  # pixels per metre
    y_resolution: int  # pixels per metre
    width: int
    length: int
    image_size: int
    encoding: int
    bad_rows: int
    longest_bad_row_run: int
    ecm_retries: int
    current_status: int


@dataclass(frozen=True)
class _Libraries:
    spandsp: ctypes.CDLL
    # Process-wide thunks handed to spandsp and libtiff; they must live as long as the process.
    keepalive: tuple[object, ...]


_load_lock = threading.Lock()
_loaded: _Libraries | None = None


def _spandsp() -> ctypes.CDLL:
    """Load libspandsp and libtiff once, declare signatures and route their diagnostics to ``logging``."""
    global _loaded
    with _load_lock:
        if _loaded is None:
            _loaded = _load()
        return _loaded.spandsp


def _load() -> _Libraries:
    lib = ctypes.CDLL("libspandsp.so.2")
    _declare(lib)
    # span_log_init copies these globals into every logging state, including the modems' and T.4's inner ones, so
    # installing them before the first fax_init keeps all of spandsp off stderr.
    span_message = _SpanMessageHandler(_log_span_message)
    span_error = _SpanErrorHandler(_log_span_error)
    lib.span_set_message_handler(span_message)
    lib.span_set_error_handler(span_error)

    # Same soname as spandsp's dependency, so this is the very libtiff instance spandsp calls.
    libtiff = ctypes.CDLL("libtiff.so.6")
    libc = ctypes.CDLL(None)
    vsnprintf = libc.vsnprintf
    vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    vsnprintf.restype = ctypes.c_int

    def tiff_handler(level: int) -> object:
        def handle(module: bytes | None, fmt: bytes | None, args: int | None) -> None:
            try:
                text = _format_va_list(vsnprintf, fmt, args)
                _TIFF_LOG.log(level, "%s: %s", (module or b"libtiff").decode("utf-8", "replace"), text)
            except Exception:
                _LOG.exception("libtiff message handler failed")

        return _TiffHandler(handle)

    # An unreadable document is reported as the fax's result, so libtiff's complaints are supporting detail.
    tiff_error = tiff_handler(logging.WARNING)
    tiff_warning = tiff_handler(logging.INFO)
    for name, thunk in (("TIFFSetErrorHandler", tiff_error), ("TIFFSetWarningHandler", tiff_warning)):
        setter = getattr(libtiff, name)
        setter.argtypes = [_TiffHandler]
        setter.restype = ctypes.c_void_p
        setter(thunk)
    return _Libraries(spandsp=lib, keepalive=(span_message, span_error, tiff_error, tiff_warning, libtiff, libc))


def _format_va_list(vsnprintf: Callable[..., int], fmt: bytes | None, args: int | None) -> str:
    if fmt is None:
        return ""
    buffer = ctypes.create_string_buffer(1024)
    if vsnprintf(buffer, len(buffer), fmt, args) < 0:
        return fmt.decode("utf-8", "replace")
    return buffer.value.decode("utf-8", "replace")


def _declare(lib: ctypes.CDLL) -> None:
    vp, i, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    signatures: dict[str, tuple[list[object], object]] = {
        "fax_init": ([vp, i], vp),
        "fax_free": ([vp], i),
        "fax_rx": ([vp, ctypes.POINTER(ctypes.c_int16), i], i),
        "fax_tx": ([vp, ctypes.POINTER(ctypes.c_int16), i], i),
        "fax_rx_fillin": ([vp, i], i),
        "fax_set_transmit_on_idle": ([vp, i], None),
        "fax_get_t30_state": ([vp], vp),
        "fax_get_logging_state": ([vp], vp),
        "t30_get_logging_state": ([vp], vp),
        "t30_set_tx_ident": ([vp, cp], i),
        "t30_get_rx_ident": ([vp], cp),
        "t30_set_tx_page_header_info": ([vp, cp], i),
        "t30_set_tx_page_header_tz": ([vp, cp], i),
        "t30_set_tx_file": ([vp, cp, i, i], None),
        "t30_set_rx_file": ([vp, cp, i], None),
        "t30_set_ecm_capability": ([vp, i], i),
        "t30_set_supported_modems": ([vp, i], i),
        "t30_set_supported_compressions": ([vp, i], i),
        "t30_set_supported_resolutions": ([vp, i], i),
        "t30_set_supported_image_sizes": ([vp, i], i),
        "t30_set_phase_b_handler": ([vp, _PhaseBDHandler, vp], None),
        "t30_set_phase_d_handler": ([vp, _PhaseBDHandler, vp], None),
        "t30_set_phase_e_handler": ([vp, _PhaseEHandler, vp], None),
        "t30_get_transfer_statistics": ([vp, ctypes.POINTER(_T30Stats)], None),
        "t30_completion_code_to_str": ([i], cp),
        "t30_call_active": ([vp], i),
        "t30_terminate": ([vp], None),
        "span_log_set_level": ([vp, i], i),
        "span_log_set_message_handler": ([vp, _SpanMessageHandler], None),
        "span_log_set_error_handler": ([vp, _SpanErrorHandler], None),
        "span_set_message_handler": ([_SpanMessageHandler], None),
        "span_set_error_handler": ([_SpanErrorHandler], None),
        "t38_terminal_init": ([vp, i, _T38TxHandler, vp], vp),
        "t38_terminal_free": ([vp], i),
        "t38_terminal_send_timeout": ([vp, i], i),
        "t38_terminal_get_t30_state": ([vp], vp),
        "t38_terminal_get_t38_core_state": ([vp], vp),
        "t38_terminal_get_logging_state": ([vp], vp),
        "t38_core_get_logging_state": ([vp], vp),
        "t38_core_rx_ifp_packet": ([vp, ctypes.POINTER(ctypes.c_uint8), i, ctypes.c_uint16], i),
        "t38_set_max_datagram_size": ([vp, i], None),
        "t38_set_t38_version": ([vp, i], None),
        "g711_init": ([vp, i], vp),
        "g711_free": ([vp], i),
        "g711_encode": ([vp, ctypes.POINTER(ctypes.c_uint8), ctypes.POINTER(ctypes.c_int16), i], i),
        "g711_decode": ([vp, ctypes.POINTER(ctypes.c_int16), ctypes.POINTER(ctypes.c_uint8), i], i),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype


def _python_level(span_level: int) -> int:
    # One step below spandsp's own severity: its warnings fire in every healthy ECM call ("ECM carrier not found"),
    # and whatever really went wrong reaches the caller as the T.30 completion code anyway.
    severity = span_level & 0xFF
    if severity <= SPAN_LOG_ERROR:
        return logging.WARNING
    if severity <= SPAN_LOG_PROTOCOL_WARNING:
        return logging.INFO
    return logging.DEBUG


def _log_span_message(level: int, text: bytes | None, logger: logging.Logger = _LOG, prefix: str = "") -> None:
    try:
        logger.log(_python_level(level), "%s%s", prefix, (text or b"").decode("utf-8", "replace").rstrip())
    except Exception:
        _LOG.exception("spandsp message handler failed")


def _log_span_error(text: bytes | None, logger: logging.Logger = _LOG, prefix: str = "") -> None:
    _log_span_message(SPAN_LOG_ERROR, text, logger, prefix)


# T4_COMPRESSION_* of t4_rx.h (spandsp 0.0.6) by the names fax machines and HylaFAX report them under.
_COMPRESSION_NAMES = {1: "MH", 2: "MR", 3: "MMR", 4: "JBIG", 5: "JBIG", 6: "T.43", 7: "T.45"}


def compression_name(encoding: int) -> str:
    """The page coding a transfer used (``TransferStatistics.encoding``); "" if none was negotiated."""
    return _COMPRESSION_NAMES.get(encoding, "")


def completion_code_to_str(code: int) -> str:
    """spandsp's description of a T.30 completion code (as passed to the phase E handler)."""
    text = _spandsp().t30_completion_code_to_str(code)
    return text.decode("ascii", "replace") if text else f"unknown completion code {code}"


def _span_level_for(logger: logging.Logger) -> int:
    """The spandsp level that produces exactly the records ``logger`` would keep (see ``_python_level``)."""
    if logger.isEnabledFor(logging.DEBUG):
        return SPAN_LOG_FLOW
    if logger.isEnabledFor(logging.INFO):
        return SPAN_LOG_PROTOCOL_WARNING
    return SPAN_LOG_ERROR


def _encode_file_name(path: Path) -> bytes:
    encoded = os.fsencode(path)
    if len(encoded) > _MAX_FILE_NAME_BYTES:
        raise ValueError(f"spandsp truncates file names over {_MAX_FILE_NAME_BYTES} bytes: {path}")
    return encoded


class T30Session:
    """The T.30 protocol engine inside an ``AudioFaxTerminal`` or ``T38FaxTerminal``; valid while it is open."""

    def __init__(self, terminal: _FaxTerminal, lib: ctypes.CDLL, pointer: int) -> None:
        self._terminal = terminal
        self._lib = lib
        self._pointer = pointer

    @property
    def _ptr(self) -> int:
        self._terminal._ensure_open()
        return self._pointer

    def set_tx_ident(self, ident: str) -> None:
        """Our identity: TSI when calling, CSI when answering (at most 20 printable ASCII characters)."""
        if len(ident) > T30_MAX_IDENT_LEN:
            raise ValueError(f"a T.30 ident is at most {T30_MAX_IDENT_LEN} characters: {ident!r}")
        if self._lib.t30_set_tx_ident(self._ptr, ident.encode("ascii")) != 0:
            raise ValueError(f"spandsp rejected the ident {ident!r}")

    def rx_ident(self) -> str:
        """The far end's identity (its CSI when we call, its TSI when we answer), "" if it sent none."""
        ident = self._lib.t30_get_rx_ident(self._ptr)
        return ident.decode("ascii", "replace").strip() if ident else ""

    def set_tx_page_header_info(self, info: str) -> None:
        """Text for the header line spandsp adds to each sent page; "" sends pages without a header line."""
        if len(info) > T30_MAX_PAGE_HEADER_INFO:
            raise ValueError(f"page header info is at most {T30_MAX_PAGE_HEADER_INFO} characters")
        if self._lib.t30_set_tx_page_header_info(self._ptr, info.encode("ascii")) != 0:
            raise ValueError(f"spandsp rejected the page header info {info!r}")

    def set_tx_page_header_tz(self, posix_tz: str) -> None:
        """The time zone of the header line's date and time, as a POSIX TZ string ("EST5EDT,M3.2.0,M11.1.0")."""
        if self._lib.t30_set_tx_page_header_tz(self._ptr, posix_tz.encode("ascii")) != 0:
            raise ValueError(f"spandsp rejected the time zone {posix_tz!r}")

    def set_tx_file(self, path: Path, start_page: int = -1, stop_page: int = -1) -> None:
        """The TIFF/F to send; pages are counted from 0 and -1 means from the first / to the last."""
        self._lib.t30_set_tx_file(self._ptr, _encode_file_name(path), start_page, stop_page)

    def set_rx_file(self, path: Path, stop_page: int = -1) -> None:
        """Where received pages are written as TIFF/F."""
        self._lib.t30_set_rx_file(self._ptr, _encode_file_name(path), stop_page)

    def set_ecm_capability(self, enabled: bool) -> None:
        self._lib.t30_set_ecm_capability(self._ptr, int(enabled))

    def set_supported_modems(self, modems: int) -> None:
        """A mask of ``T30_SUPPORT_V27TER``, ``T30_SUPPORT_V29`` and ``T30_SUPPORT_V17``."""
        self._lib.t30_set_supported_modems(self._ptr, modems)

    def set_supported_compressions(self, compressions: int) -> None:
        self._lib.t30_set_supported_compressions(self._ptr, compressions)

    def set_supported_resolutions(self, resolutions: int) -> None:
        self._lib.t30_set_supported_resolutions(self._ptr, resolutions)

    def set_supported_image_sizes(self, image_sizes: int) -> None:
        self._lib.t30_set_supported_image_sizes(self._ptr, image_sizes)

    def set_phase_b_handler(self, handler: PhaseHandler) -> None:
        """Called with the phase B event (the frame type that started negotiation); return 0 to continue."""
        thunk = _PhaseBDHandler(self._terminal._guard_phase_handler("phase B", handler))
        self._terminal._keep("phase_b", thunk)
        self._lib.t30_set_phase_b_handler(self._ptr, thunk, None)

    def set_phase_d_handler(self, handler: PhaseHandler) -> None:
        """Called after each page (the post-page message); per-page statistics are valid here."""
        thunk = _PhaseBDHandler(self._terminal._guard_phase_handler("phase D", handler))
        self._terminal._keep("phase_d", thunk)
        self._lib.t30_set_phase_d_handler(self._ptr, thunk, None)

    def set_phase_e_handler(self, handler: PhaseEHandler) -> None:
        """Called once when the call ends, with the completion code (``T30_ERR_OK`` on success)."""
        name = self._terminal.name

        def call(_state: int | None, _user_data: int | None, completion_code: int) -> None:
            try:
                handler(completion_code)
            except Exception:
                _LOG.exception("%s: phase E handler failed", name)

        thunk = _PhaseEHandler(call)
        self._terminal._keep("phase_e", thunk)
        self._lib.t30_set_phase_e_handler(self._ptr, thunk, None)

    def transfer_statistics(self) -> TransferStatistics:
        raw = _T30Stats()
        self._lib.t30_get_transfer_statistics(self._ptr, ctypes.byref(raw))
        return TransferStatistics(
            bit_rate=raw.bit_rate,
            ecm=bool(raw.error_correcting_mode),
            pages_tx=raw.pages_tx,
            pages_rx=raw.pages_rx,
            pages_in_file=raw.pages_in_file,
            x_resolution=raw.x_resolution,
            y_resolution=raw.y_resolution,
            width=raw.width,
            length=raw.length,
            image_size=raw.image_size,
            encoding=raw.encoding,
            bad_rows=raw.bad_rows,
            longest_bad_row_run=raw.longest_bad_row_run,
            ecm_retries=raw.error_correcting_mode_retries,
            current_status=raw.current_status,
        )

    def call_active(self) -> bool:
        return bool(self._lib.t30_call_active(self._ptr))

    def terminate(self) -> None:
        """End the call as a hangup would: fires phase E (if not yet fired) and closes the TIFF files."""
        self._lib.t30_terminate(self._ptr)


class _FaxTerminal:
    """What audio and T.38 terminals share: the C pointer, kept callbacks, logging routes and ``t30``."""

    name: str
    t30: T30Session

    def __init__(self, name: str, logger: logging.Logger | None) -> None:
        self.name = name
        self._lib = _spandsp()
        self._logger = logger or _LOG
        self._callbacks: dict[str, object] = {}
        self._pointer: int | None = None

    def _route_logging(self, states: tuple[int, ...]) -> None:
        prefix = f"{self.name}: "
        logger = self._logger

        def message(level: int, text: bytes | None) -> None:
            _log_span_message(level, text, logger, prefix)

        def error(text: bytes | None) -> None:
            _log_span_error(text, logger, prefix)

        message_thunk = _SpanMessageHandler(message)
        error_thunk = _SpanErrorHandler(error)
        self._keep("log_message", message_thunk)
        self._keep("log_error", error_thunk)
        level = _span_level_for(logger) | SPAN_LOG_SHOW_PROTOCOL
        for state in states:
            self._lib.span_log_set_message_handler(state, message_thunk)
            self._lib.span_log_set_error_handler(state, error_thunk)
            self._lib.span_log_set_level(state, level)

    def _keep(self, role: str, thunk: object) -> None:
        """Hold a C callback until the state is freed (a collected thunk gets reused by another callback)."""
        self._callbacks[role] = thunk

    def _guard_phase_handler(self, phase: str, handler: PhaseHandler) -> Callable[[int | None, int | None, int], int]:
        name = self.name

        def call(_state: int | None, _user_data: int | None, result: int) -> int:
            try:
                return int(handler(result))
            except Exception:
                _LOG.exception("%s: %s handler failed", name, phase)
                return T30_ERR_OK

        return call

    def _ensure_open(self) -> int:
        if self._pointer is None:
            raise RuntimeError(f"fax terminal {self.name} is closed")
        return self._pointer

    def _free(self, pointer: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Free the C state; callbacks are released only afterwards."""
        pointer, self._pointer = self._pointer, None
        if pointer is not None:
            self._free(pointer)
        self._callbacks.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class AudioFaxTerminal(_FaxTerminal):
    """A ``fax_state_t``: a fax machine speaking T.30 over 8 kHz 16-bit linear audio.

    Not thread-safe; use one terminal from one thread at a time. Close it (or use it as a context manager) to free
    the C state (``fax_free``); callbacks registered on it stay alive until then.
    """

    def __init__(self, *, calling: bool, name: str, logger: logging.Logger | None = None) -> None:
        super().__init__(name, logger)
        pointer = self._lib.fax_init(None, int(calling))
        if not pointer:
            raise MemoryError("fax_init failed")
        self._pointer = pointer
        try:
            t30_pointer = self._lib.fax_get_t30_state(pointer)
            fax_logging = self._lib.fax_get_logging_state(pointer)
            self._route_logging((fax_logging, self._lib.t30_get_logging_state(t30_pointer)))
            self.t30 = T30Session(self, self._lib, t30_pointer)
        except BaseException:
            self.close()
            raise

    def _free(self, pointer: int) -> None:
        self._lib.fax_free(pointer)

    def set_transmit_on_idle(self, enabled: bool) -> None:
        """When enabled, ``tx`` always fills the whole buffer, with silence when there is nothing to send."""
        self._lib.fax_set_transmit_on_idle(self._ensure_open(), int(enabled))

    def rx(self, samples: ctypes.Array[ctypes.c_int16], count: int) -> None:
        """Feed received audio. spandsp may modify ``samples`` in place."""
        self._lib.fax_rx(self._ensure_open(), samples, count)

    def rx_fillin(self, count: int) -> None:
        """Tell the receiver ``count`` samples were lost (e.g. a missing RTP packet)."""
        self._lib.fax_rx_fillin(self._ensure_open(), count)

    def tx(self, samples: ctypes.Array[ctypes.c_int16], max_count: int) -> int:
        """Generate up to ``max_count`` samples of audio to send; returns how many were written."""
        return self._lib.fax_tx(self._ensure_open(), samples, max_count)


class T38FaxTerminal(_FaxTerminal):
    """A ``t38_terminal_state_t``: a fax machine speaking T.30 as T.38 IFP packets.

    ``send_packet(ifp, count)`` is called, on the thread that drives the terminal, for every IFP packet spandsp
    emits; ``count`` is how many copies to send (3 for indicators, 1 for data). Received IFPs go to ``rx_packet``,
    never from inside ``send_packet``. Drive it with ``send_timeout(160)`` every 20 ms. Not thread-safe.
    """

    def __init__(
        self,
        *,
        calling: bool,
        name: str,
        send_packet: T38PacketSender,
        max_datagram: int = 400,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(name, logger)

        def transmit(_core: int | None, _user_data: int | None, buf: ctypes._Pointer, length: int, count: int) -> int:
            try:
                send_packet(ctypes.string_at(buf, length), count)
            except Exception:
                _LOG.exception("%s: T.38 packet sender failed", name)
            # spandsp only logs a failed send; the packet is lost as on a lossy network either way.
            return 0

        thunk = _T38TxHandler(transmit)
        self._keep("t38_tx", thunk)
        pointer = self._lib.t38_terminal_init(None, int(calling), thunk, None)
        if not pointer:
            raise MemoryError("t38_terminal_init failed")
        self._pointer = pointer
        try:
            self._core = self._lib.t38_terminal_get_t38_core_state(pointer)
            t30_pointer = self._lib.t38_terminal_get_t30_state(pointer)
            self._route_logging(
                (
                    self._lib.t38_terminal_get_logging_state(pointer),
                    self._lib.t38_core_get_logging_state(self._core),
                    self._lib.t30_get_logging_state(t30_pointer),
                )
            )
            self._lib.t38_set_t38_version(self._core, 0)
            self._lib.t38_set_max_datagram_size(self._core, max_datagram)
            self.t30 = T30Session(self, self._lib, t30_pointer)
        except BaseException:
            self.close()
            raise

    def _free(self, pointer: int) -> None:
        self._lib.t38_terminal_free(pointer)

    def send_timeout(self, samples: int) -> None:
        """Advance the terminal's clock by ``samples`` (at 8 kHz); it sends whatever is due meanwhile."""
        self._lib.t38_terminal_send_timeout(self._ensure_open(), samples)

    def rx_packet(self, ifp: bytes, seq_no: int) -> None:
        """Deliver one received IFP packet with its UDPTL sequence number (in order, duplicates removed)."""
        self._ensure_open()
        buffer = (ctypes.c_uint8 * len(ifp)).from_buffer_copy(ifp)
        self._lib.t38_core_rx_ifp_packet(self._core, buffer, len(ifp), seq_no & 0xFFFF)


class G711Codec:
    """spandsp's G.711 coder for one direction of one call (A-law or mu-law), over ctypes buffers."""

    def __init__(self, *, alaw: bool) -> None:
        self._lib = _spandsp()
        pointer = self._lib.g711_init(None, G711_ALAW if alaw else G711_ULAW)
        if not pointer:
            raise MemoryError("g711_init failed")
        self._pointer: int | None = pointer

    def encode(self, samples: ctypes.Array[ctypes.c_int16], count: int) -> bytes:
        encoded = (ctypes.c_uint8 * count)()
        produced = self._lib.g711_encode(self._ensure_open(), encoded, samples, count)
        return bytes(encoded)[:produced]

    def decode(self, payload: bytes, samples: ctypes.Array[ctypes.c_int16]) -> int:
        """Decode ``payload`` into ``samples`` (at most its length); returns the sample count."""
        count = min(len(payload), len(samples))
        encoded = (ctypes.c_uint8 * count).from_buffer_copy(payload[:count])
        return self._lib.g711_decode(self._ensure_open(), samples, encoded, count)

    def _ensure_open(self) -> int:
        if self._pointer is None:
            raise RuntimeError("G.711 codec is closed")
        return self._pointer

    def close(self) -> None:
        pointer, self._pointer = self._pointer, None
        if pointer is not None:
            self._lib.g711_free(pointer)
