"""``python -m fax_transmitter``."""

from fax_runtime.worker import serve
from fax_transmitter.app import create_worker
from fax_transmitter.config import TransmitterSettings


def main() -> None:
    settings = TransmitterSettings.from_env()
    serve(create_worker(settings), settings.runtime, settings.health_host, settings.health_port)


if __name__ == "__main__":
    main()
