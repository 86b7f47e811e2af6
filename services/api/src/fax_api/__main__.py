"""``python -m fax_api``: read settings once and serve, in ``FAX_API_WORKERS`` processes.

Each worker is a process of its own (uvicorn starts it afresh and calls ``worker_app``), with its own pool, token
cache and outbox relay; the relays share the outbox safely (rows are claimed with ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import uvicorn
from litestar import Litestar

from fax_api.app import create_app
from fax_api.config import ApiSettings
from fax_runtime.logs import configure_logging
from fax_runtime.telemetry import setup_tracing


def worker_app() -> Litestar:
    """The app of one worker process: its logging, tracing and settings are set up in the process that serves."""
    configure_logging("api")
    settings = ApiSettings.from_env()
    setup_tracing("fax-api", settings.runtime.trace_sample_ratio)
    return create_app(settings)


def main() -> None:
    configure_logging("api")
    settings = ApiSettings.from_env()  # a bad setting stops here, before any worker starts
    uvicorn.run(
        "fax_api.__main__:worker_app",
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
