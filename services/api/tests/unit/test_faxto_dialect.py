"""Fax.to dialect rules without I/O: rates by longest prefix, page counting for pricing, signed links, views."""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from decimal import Decimal

import msgspec

from fax_api.faxto import views
from fax_api.faxto.billing import count_pages
from fax_api.faxto.rates import fax_cost, price_per_page
from fax_jobs import FaxJob
from fax_runtime import signing


def test_longest_prefix_wins() -> None:
    assert price_per_page("+12025550100") == Decimal("0.05")
    assert price_per_page("+12425550100") == Decimal("0.12")  # 1242 (Bahamas) before 1
    assert price_per_page("442071234567") == Decimal("0.06")  # 4420 before 44
    assert price_per_page("+80012345678") is None
    assert fax_cost("+441224459292", 3) == Decimal("0.21")
    assert fax_cost("+80012345678", 3) is None


def _tiff(pages: int) -> bytes:
    """A little-endian TIFF skeleton: a chain of ``pages`` one-entry IFDs."""
    body = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for page in range(pages):
        offset = len(body)
        following = 0 if page == pages - 1 else offset + 18
        body += struct.pack("<H", 1) + b"\x00" * 12 + struct.pack("<I", following)
    return bytes(body)


def test_count_pages() -> None:
    pdf = b"%PDF-1.4\n<< /Type /Pages /Count 2 >>\n<< /Type /Page >>\n<< /Type/Page >>\n%%EOF"
    assert count_pages(pdf) == 2
    assert count_pages(_tiff(1)) == 1
    assert count_pages(_tiff(4)) == 4
    assert count_pages(b"plain text") == 1
    looping = bytearray(_tiff(2))
    looping[-4:] = struct.pack("<I", 8)  # the last IFD points back at the first: counted once each
    assert count_pages(bytes(looping)) == 2


def test_signed_links_check_path_expiry_and_key() -> None:
    key = signing.signing_key("s3-secret")
    query = dict(p.split("=") for p in signing.signed_query(key, "/a/b", ttl=60, now=1000).split("&"))
    assert query["expires"] == "1060"
    assert signing.valid(key, "/a/b", query["expires"], query["signature"], now=1059)
    assert not signing.valid(key, "/a/b", query["expires"], query["signature"], now=1061)
    assert not signing.valid(key, "/a/c", query["expires"], query["signature"], now=1000)
    assert not signing.valid(signing.signing_key("other"), "/a/b", query["expires"], query["signature"], now=1000)
    assert not signing.valid(key, "/a/b", "1070", query["signature"], now=1000)


def test_status_message_and_history_entry() -> None:
    job = {
        "id": uuid.UUID(int=5),
        "int_id": 92334,
        "status": "failed",
        "tx_result": {"error_message": "busy"},
        "to_number": "+441224459292",
        "created_at": dt.datetime(2017, 3, 9, 15, 35, 28, tzinfo=dt.UTC),
        "request": {"faxto": {"document_id": 7, "document": "FAX.pdf"}},
    }
    stored = {"account_id": "a", "from_number": "", "retries": 1, "attempts": 1, "tiff_key": None, "pages": None,
              "revision": 1, "delivered_at": None}  # fmt: skip
    failed = msgspec.convert({**stored, **job}, FaxJob)
    completed = msgspec.convert({**stored, **job, "status": "completed"}, FaxJob)
    assert views.status_message(failed) == "Failed: busy"
    assert views.status_message(completed) == "Sent! Fax Has Been Answered."
    assert views.history_entry(failed) == {
        "id": 92334,
        "created": {"date": "2017-03-09 15:35:28.000000", "timezone_type": 3, "timezone": "UTC"},
        "document_id": 7,
        "document": "FAX.pdf",
        "recipient": "441224459292",
        "status": "failed",
    }


def test_file_sizes_read_as_fax_to_shows_them() -> None:
    assert views.human_size(None) is None
    assert views.human_size(512) == "512 B"
    assert views.human_size(123341) == "120.45 KB"
    assert views.human_size(5 * 1024 * 1024) == "5.00 MB"
