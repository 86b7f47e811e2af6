"""``python -m fax_notifier``: email, SMS and HTTP callbacks for finished faxes."""

from fax_notifier.app import create_worker
from fax_notifier.config import Settings
from fax_runtime.worker import serve


def main() -> None:
    settings = Settings.from_env()
    serve(create_worker(settings), settings.runtime, settings.health_host, settings.health_port)


if __name__ == "__main__":
    main()
