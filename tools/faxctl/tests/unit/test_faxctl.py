import email.parser
import email.policy
import json
from pathlib import Path

import pytest

from fax_faxctl.__main__ import progress_line
from fax_faxctl.client import FaxctlError, Settings, multipart_mixed


def test_progress_shows_pages_confirmed_so_far() -> None:
    line = progress_line({"status": "processing", "pages": 2, "attempts": 1, "retries": 3,
                          "tx_result": {"pages_sent": 1}})  # fmt: skip
    assert line.startswith("[" + "#" * 15 + "." * 15 + "]")
    assert "1/2 pages" in line and "processing (attempt 1 of 3)" in line
    assert "rendering" in progress_line({"status": "pending"})


def test_the_upload_is_kazoos_multipart_mixed_with_json_first(tmp_path: Path) -> None:
    document = tmp_path / "fax.pdf"
    document.write_bytes(b"%PDF-1.4 fake")
    body, content_type = multipart_mixed({"to_number": "+15551230000"}, document)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["application/json", "application/pdf"]
    assert json.loads(parts[0].get_content()) == {"data": {"to_number": "+15551230000"}}
    assert parts[1].get_content() == b"%PDF-1.4 fake"


def test_settings_come_from_the_environment_over_the_credentials_file(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.env"
    credentials.write_text("FAX_ACCOUNT_ID=acc\nFAX_AUTH_TOKEN='tok'\nFAX_API_URL=http://127.0.0.1:9000\n")
    settings = Settings.load({"FAX_AUTH_TOKEN": "from-env"}, credentials)
    assert (settings.account_id, settings.auth_token, settings.api_url) == ("acc", "from-env", "http://127.0.0.1:9000")
    with pytest.raises(FaxctlError, match="FAX_ACCOUNT_ID and FAX_AUTH_TOKEN not set"):
        Settings.load({}, tmp_path / "absent.env")
