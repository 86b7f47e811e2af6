"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.documents import make_pdf, serve_documents


@pytest.fixture(scope="session")
def document_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pdf = make_pdf(tmp_path_factory.mktemp("docs") / "fax.pdf")
    files = {
        "/fax.pdf": pdf.read_bytes(),
        "/page.html": b"<html><body><h1>Not a fax document</h1></body></html>",
    }
    with serve_documents(files) as base_url:
        yield base_url
