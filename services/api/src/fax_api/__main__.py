"""``python -m fax_api``: read settings once and serve."""

from __future__ import annotations

import uvicorn

from fax_api.app import create_app
from fax_api.config import ApiSettings
from fax_runtime.logs import configure_logging
from fax_runtime.telemetry import setup_tracing


def main() -> None:
    configure_logging("api")
    settings = ApiSettings.from_env()
    setup_tracing("fax-api")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
