"""What a fax endpoint asks of T.30 and what T.30 did: the options a call is placed with and the outcome it ends in.

``configure`` sets a spandsp T.30 session up from ``FaxOptions``: our identity, page header, ECM and fastest modem,
and every compression, resolution and page size spandsp supports, so what gets negotiated is decided by the options
and the far end alone. ``T30Progress`` collects what a session's phase handlers report and turns it into the
``TransmissionOutcome`` its owner acts on. The in-process loopback and every call's media channel use both, so an
outcome means the same on every line and at both ends of a call. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fax_media import spandsp

MODEMS_BY_MAX_BIT_RATE = {
    14400: spandsp.T30_SUPPORT_V17 | spandsp.T30_SUPPORT_V29 | spandsp.T30_SUPPORT_V27TER,
    9600: spandsp.T30_SUPPORT_V29 | spandsp.T30_SUPPORT_V27TER,
    4800: spandsp.T30_SUPPORT_V27TER,
}
ALL_COMPRESSIONS = (
    spandsp.T30_SUPPORT_T4_1D_COMPRESSION | spandsp.T30_SUPPORT_T4_2D_COMPRESSION | spandsp.T30_SUPPORT_T6_COMPRESSION
)
ALL_RESOLUTIONS = (
    spandsp.T30_SUPPORT_STANDARD_RESOLUTION
    | spandsp.T30_SUPPORT_FINE_RESOLUTION
    | spandsp.T30_SUPPORT_SUPERFINE_RESOLUTION
    | spandsp.T30_SUPPORT_R8_RESOLUTION
    | spandsp.T30_SUPPORT_R16_RESOLUTION
)
ALL_IMAGE_SIZES = (
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


def modems_for(max_bit_rate: int) -> int:
    """The modems a session may use to reach at most ``max_bit_rate``; ``ValueError`` for a rate no modem has."""
    try:
        return MODEMS_BY_MAX_BIT_RATE[max_bit_rate]
    except KeyError:
        raise ValueError(f"max_bit_rate must be one of {sorted(MODEMS_BY_MAX_BIT_RATE)}: {max_bit_rate}") from None


def configure(t30: spandsp.T30Session, options: FaxOptions) -> None:
    """Set ``t30`` up to negotiate as ``options`` say, with every compression, resolution and page size."""
    t30.set_tx_ident(options.local_ident)
    t30.set_tx_page_header_info(options.page_header)
    if options.header_tz:
        t30.set_tx_page_header_tz(options.header_tz)
    t30.set_ecm_capability(options.ecm)
    t30.set_supported_modems(modems_for(options.max_bit_rate))
    t30.set_supported_compressions(ALL_COMPRESSIONS)
    t30.set_supported_resolutions(ALL_RESOLUTIONS)
    t30.set_supported_image_sizes(ALL_IMAGE_SIZES)


@dataclass
class T30Progress:
    """What one session's T.30 phase handlers reported: each page's statistics (phase D), then how it ended (E)."""

    completion_code: int | None = None
    final: spandsp.TransferStatistics | None = None
    remote_ident: str = ""
    pages: list[spandsp.TransferStatistics] = field(default_factory=list)

    def page_done(self, t30: spandsp.T30Session) -> spandsp.TransferStatistics:
        """Phase D: a page went through; its statistics are valid only now."""
        statistics = t30.transfer_statistics()
        self.pages.append(statistics)
        return statistics

    def ended(self, t30: spandsp.T30Session, completion_code: int) -> None:
        """Phase E: the call is over, with ``completion_code``."""
        self.completion_code = completion_code
        self.final = t30.transfer_statistics()
        self.remote_ident = t30.rx_ident()

    @property
    def bad_rows(self) -> int:
        return sum(page.bad_rows for page in self.pages)

    def outcome(
        self,
        *,
        calling: bool,
        timed_out: bool,
        line_seconds: float,
        t38_used: bool = False,
        bad_rows: int | None = None,
    ) -> TransmissionOutcome:
        """The call's outcome: for a calling session ``pages_sent`` counts the pages sent, for an answering one the
        pages received. ``bad_rows`` defaults to those of the pages this session saw. A call the watchdog cut is
        never a success."""
        code = self.completion_code
        if code is None or (timed_out and code == spandsp.T30_ERR_OK):
            # t30_terminate always fires phase E, so this is belt and braces: never report a cut call as sent.
            code = spandsp.T30_ERR_CALLDROPPED
        final = self.final
        # Only a sent page proves a rate and mode: before DCS the statistics just echo the configured defaults.
        last_page = self.pages[-1] if self.pages else None
        pages = (final.pages_tx if calling else final.pages_rx) if final else 0
        return TransmissionOutcome(
            success=code == spandsp.T30_ERR_OK and not timed_out,
            result_code=code,
            result_text=spandsp.completion_code_to_str(code),
            pages_sent=pages,
            bit_rate=last_page.bit_rate if last_page else 0,
            ecm_used=last_page.ecm if last_page else False,
            compression=spandsp.compression_name(last_page.encoding) if last_page else "",
            bad_rows=self.bad_rows if bad_rows is None else bad_rows,
            remote_ident=self.remote_ident,
            line_seconds=line_seconds,
            t38_used=t38_used,
        )
