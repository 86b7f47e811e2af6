import json

import pytest

from fax_api.web.multipart import MultipartError, parse_fax_upload

PDF = b"%PDF-1.4\nbinary \x00\xff\r\n--not-a-boundary\r\n%%EOF"


def body(parts: list[tuple[str, bytes]], boundary: str = "XyZ", disposition: bool = False) -> bytes:
    out = b""
    for index, (content_type, payload) in enumerate(parts):
        head = f"--{boundary}\r\n"
        if disposition:
            head += f'Content-Disposition: form-data; name="content"; filename="f{index}"\r\n'
        out += (head + f"Content-Type: {content_type}\r\n\r\n").encode() + payload + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize("kind", ["multipart/mixed", "multipart/form-data", "multipart/related"])
def test_json_and_documents_in_order_bytes_intact(kind: str) -> None:
    raw = body(
        [("application/json", b'{"data":{"to_number":"1555"}}'), ("application/pdf", PDF), ("image/tiff", b"II*\x00")],
        disposition=True,
    )
    upload = parse_fax_upload(f"{kind}; boundary=XyZ", raw)
    assert upload.data == {"to_number": "1555"}
    assert [(d.content_type, d.body) for d in upload.documents] == [
        ("application/pdf", PDF),
        ("image/tiff", b"II*\x00"),
    ]
    assert upload.documents[0].filename == "f1"


def test_bare_document_without_envelope_is_accepted() -> None:
    upload = parse_fax_upload(
        "multipart/mixed; boundary=XyZ",
        body([("application/json", json.dumps({"to_number": "1"}).encode()), ("application/pdf", PDF)]),
    )
    assert upload.data == {"to_number": "1"}


@pytest.mark.parametrize(
    ("content_type", "parts", "status"),
    [
        ("multipart/mixed; boundary=XyZ", [("application/json", b"{}"), ("text/html", b"<p>")], 415),
        ("multipart/alternative; boundary=XyZ", [("application/json", b"{}")], 415),
        ("multipart/mixed", [("application/json", b"{}")], 400),
        ("multipart/mixed; boundary=XyZ", [("application/pdf", PDF)], 400),
        ("multipart/mixed; boundary=XyZ", [("application/json", b"{}")], 400),
        ("multipart/mixed; boundary=XyZ", [("application/json", b"[1]"), ("application/pdf", PDF)], 400),
        ("multipart/mixed; boundary=XyZ", [("application/json", b"{bad"), ("application/pdf", PDF)], 400),
        ("multipart/mixed; boundary=XyZ", [("application/json", b"{}"), ("application/pdf", b"")], 400),
    ],
)
def test_refusals(content_type: str, parts: list, status: int) -> None:
    with pytest.raises(MultipartError) as caught:
        parse_fax_upload(content_type, body(parts))
    assert caught.value.status == status and str(caught.value)
