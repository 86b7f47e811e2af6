"""The loopback line: real spandsp on both ends, real TIFFs in and out."""

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageSequence

from fax_media import spandsp
from fax_media.loopback import send_over_loopback
from fax_media.t30 import FaxOptions, TransmissionOutcome

A4_WIDTH = 1728
A4_FINE_ROWS = 2292

MakeFax = Callable[..., Path]


def _page(number: int) -> Image.Image:
    page = Image.new("1", (A4_WIDTH, A4_FINE_ROWS), 1)
    draw = ImageDraw.Draw(page)
    draw.text((120, 100 + 40 * number), f"Loopback test page {number}", fill=0, font_size=48)
    draw.rectangle((150, 400 + 90 * number, 1500, 900 + 120 * number), outline=0, width=6)
    draw.ellipse((300 + 100 * number, 1200, 1400, 2000 - 50 * number), fill=0)
    # Single-pixel detail catches any bit lost or shifted in coding, which solid shapes alone might not.
    for row in range(1000, 1100, 3):
        for column in range(200 + number, 1600, 7 + number):
            page.putpixel((column, row), 0)
    return page


@pytest.fixture
def make_fax(tmp_path: Path) -> MakeFax:
    def make(pages: int = 2, name: str = "document.tif") -> Path:
        images = [_page(number) for number in range(1, pages + 1)]
        path = tmp_path / name
        images[0].save(path, compression="group4", dpi=(204, 196), save_all=True, append_images=images[1:])
        return path

    return make


def _pages(path: Path) -> list[Image.Image]:
    with Image.open(path) as image:
        return [frame.convert("1") for frame in ImageSequence.Iterator(image)]


def _assert_received_identical(sent: Path, received: Path) -> None:
    sent_pages, received_pages = _pages(sent), _pages(received)
    assert len(received_pages) == len(sent_pages)
    for number, (ours, theirs) in enumerate(zip(sent_pages, received_pages, strict=True), start=1):
        assert theirs.size == ours.size, f"page {number}"
        assert theirs.tobytes() == ours.tobytes(), f"page {number} differs"


def _assert_failed_cleanly(outcome: TransmissionOutcome, received: Path) -> None:
    assert not outcome.success
    assert outcome.result_code != spandsp.T30_ERR_OK
    assert outcome.result_text == spandsp.completion_code_to_str(outcome.result_code)
    assert outcome.pages_sent == 0
    assert not received.exists()


def test_two_pages_arrive_pixel_identical_over_v17_with_ecm(make_fax: MakeFax, tmp_path: Path) -> None:
    document = make_fax(pages=2)
    received = tmp_path / "received.tif"

    outcome = send_over_loopback(document, received, FaxOptions(local_ident="+1 555 0100"))

    assert outcome.success, outcome
    assert (outcome.result_code, outcome.result_text) == (0, "OK")
    assert outcome.pages_sent == 2
    assert outcome.ecm_used
    assert outcome.bit_rate == 14400
    assert outcome.bad_rows == 0
    assert outcome.remote_ident == "LOOPBACK"
    assert not outcome.t38_used
    # Training, two pages and the closing exchange cannot take less than ~10 s of line time, nor anything like 600.
    assert 10 < outcome.line_seconds < 120
    _assert_received_identical(document, received)


def test_without_ecm_pages_still_arrive_identical(make_fax: MakeFax, tmp_path: Path) -> None:
    document = make_fax(pages=2)
    received = tmp_path / "received.tif"

    outcome = send_over_loopback(document, received, FaxOptions(ecm=False))

    assert outcome.success, outcome
    assert not outcome.ecm_used
    assert outcome.pages_sent == 2
    _assert_received_identical(document, received)


@pytest.mark.parametrize(("max_bit_rate", "ecm"), [(9600, True), (4800, False)])
def test_max_bit_rate_limits_the_modem(make_fax: MakeFax, tmp_path: Path, max_bit_rate: int, ecm: bool) -> None:
    document = make_fax(pages=1)
    received = tmp_path / "received.tif"

    outcome = send_over_loopback(document, received, FaxOptions(max_bit_rate=max_bit_rate, ecm=ecm))

    assert outcome.success, outcome
    assert outcome.bit_rate == max_bit_rate
    assert outcome.ecm_used is ecm
    _assert_received_identical(document, received)


def test_slower_modem_takes_longer_on_the_line(make_fax: MakeFax, tmp_path: Path) -> None:
    document = make_fax(pages=1)
    fast = send_over_loopback(document, tmp_path / "fast.tif", FaxOptions(ecm=False))
    slow = send_over_loopback(document, tmp_path / "slow.tif", FaxOptions(ecm=False, max_bit_rate=4800))
    assert fast.success and slow.success
    assert slow.line_seconds > fast.line_seconds + 2


def test_far_end_ident_comes_back(make_fax: MakeFax, tmp_path: Path) -> None:
    outcome = send_over_loopback(
        make_fax(pages=1), tmp_path / "received.tif", FaxOptions(), remote_ident="+44 20 7946 0000"
    )
    assert outcome.success, outcome
    assert outcome.remote_ident == "+44 20 7946 0000"


def test_page_header_adds_rows_to_every_page(make_fax: MakeFax, tmp_path: Path) -> None:
    received = tmp_path / "received.tif"
    outcome = send_over_loopback(make_fax(pages=2), received, FaxOptions(page_header="ACME Corp"))
    assert outcome.success, outcome
    heights = [page.height for page in _pages(received)]
    assert len(heights) == 2
    assert all(height > A4_FINE_ROWS for height in heights)


def test_the_header_clock_keeps_the_jobs_time_zone(make_fax: MakeFax, tmp_path: Path) -> None:
    """UTC+14 and UTC-12 are 26 hours apart, so their header lines differ in date and time; the same zone twice
    gives the same line (a run that straddles a minute is repeated)."""

    def header(tz: str) -> bytes:
        received = tmp_path / "received.tif"
        outcome = send_over_loopback(fax, received, FaxOptions(page_header="ACME", header_tz=tz))
        assert outcome.success, outcome
        page = _pages(received)[0]
        return page.crop((0, 0, page.width, page.height - A4_FINE_ROWS)).tobytes()

    fax = make_fax(pages=1)
    for _ in range(3):
        minute = time.gmtime().tm_min
        east, west, east_again = header("ZZA-14"), header("ZZA12"), header("ZZA-14")
        if time.gmtime().tm_min == minute:
            break
    assert east != west
    assert east == east_again


def test_missing_file_fails_cleanly(tmp_path: Path) -> None:
    received = tmp_path / "received.tif"
    outcome = send_over_loopback(tmp_path / "does-not-exist.tif", received, FaxOptions())
    _assert_failed_cleanly(outcome, received)
    assert outcome.bit_rate == 0


def test_garbage_file_fails_cleanly(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"%PDF-1.4 this is not a TIFF at all\n" * 200)
    received = tmp_path / "received.tif"
    outcome = send_over_loopback(garbage, received, FaxOptions())
    _assert_failed_cleanly(outcome, received)


def test_a_stale_received_file_is_not_left_behind(tmp_path: Path) -> None:
    received = tmp_path / "received.tif"
    received.write_bytes(b"pages from an earlier attempt")
    outcome = send_over_loopback(tmp_path / "does-not-exist.tif", received, FaxOptions())
    _assert_failed_cleanly(outcome, received)


def test_watchdog_hangs_up_when_line_time_runs_out(make_fax: MakeFax, tmp_path: Path) -> None:
    received = tmp_path / "received.tif"
    outcome = send_over_loopback(make_fax(pages=2), received, FaxOptions(), max_line_seconds=5.0)
    assert not outcome.success
    assert outcome.result_code != spandsp.T30_ERR_OK
    assert outcome.pages_sent == 0
    assert outcome.line_seconds == pytest.approx(5.0, abs=0.05)


def test_diagnostics_go_to_logging_not_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="fax_media")
    outcome = send_over_loopback(tmp_path / "does-not-exist.tif", tmp_path / "received.tif", FaxOptions())
    assert not outcome.success
    assert capfd.readouterr().err == ""
    messages = [record.getMessage() for record in caplog.records]
    assert any("does-not-exist.tif" in message and "TIFFOpen" in message for message in messages)  # libtiff
    assert any("loopback caller: T.30" in message for message in messages)  # spandsp


@pytest.mark.parametrize(
    "options",
    [FaxOptions(local_ident="x" * 21), FaxOptions(max_bit_rate=12000), FaxOptions(page_header="h" * 51)],
)
def test_invalid_options_are_rejected(make_fax: MakeFax, tmp_path: Path, options: FaxOptions) -> None:
    with pytest.raises(ValueError):
        send_over_loopback(make_fax(pages=1), tmp_path / "received.tif", options)
