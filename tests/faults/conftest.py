"""Fixtures of the fault-injection suite: backing services of its own (a test stops and starts them), the platform
as ``make run`` runs it on them, a document to fax and a receiver for the callbacks.

``make test`` runs the scenarios not marked ``full_faults``; ``make test-faults`` runs them all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.faults.harness import CallbackReceiver, ControlledInfra
from tests.integration.documents import make_pdf, serve_documents

FAULTS_DIR = Path(__file__).resolve().parent

ONE_PAGE = b"""%!PS
/Helvetica findfont 36 scalefont setfont
72 700 moveto (Fault test) show
100 300 300 200 rectfill
showpage
"""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if FAULTS_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
async def fault_infra() -> AsyncIterator[ControlledInfra]:
    infra = ControlledInfra.for_session()
    try:
        await infra.start()
        yield infra
    finally:
        await infra.stop()


@pytest.fixture(scope="session")
def fax_document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pdf = make_pdf(tmp_path_factory.mktemp("fault-docs") / "fax.pdf", ONE_PAGE)
    with serve_documents({"/fax.pdf": pdf.read_bytes()}) as base_url:
        yield f"{base_url}/fax.pdf"


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as callbacks:
        yield callbacks
