"""``python -m fax_transmitter``."""

from fax_runtime.config import ConfigError
from fax_runtime.worker import serve
from fax_transmitter.app import create_worker
from fax_transmitter.config import TransmitterSettings


def main() -> None:
    try:
        settings = TransmitterSettings.from_env()
    except ConfigError as error:
        # A half-configured line is worse than none: stop, naming what is wrong.
        raise SystemExit(f"fax_transmitter: not started: {error}") from None
    serve(create_worker(settings), settings.runtime, settings.health_host, settings.health_port)


if __name__ == "__main__":
    main()
