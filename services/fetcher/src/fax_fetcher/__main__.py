"""``python -m fax_fetcher``."""

from fax_fetcher.app import create_worker
from fax_fetcher.config import FetcherSettings
from fax_runtime.worker import serve


def main() -> None:
    settings = FetcherSettings.from_env()
    serve(create_worker(settings), settings.runtime, settings.health_host, settings.health_port)


if __name__ == "__main__":
    main()
