"""``python -m fax_notifier``: connects to its infrastructure and reports healthy.

Email, SMS and callback delivery arrive with the notifications issue; until then it consumes nothing.
"""

from fax_notifier.config import Settings
from fax_runtime.worker import WorkerContext, WorkerSpec, serve


async def _wire(context: WorkerContext) -> None:
    """No subscribers yet."""


def main() -> None:
    settings = Settings.from_env()
    spec = WorkerSpec(name="notifier", consumes=[], wire=_wire, relay_outbox=False)
    serve(spec, settings.runtime, settings.health_host, settings.health_port)


if __name__ == "__main__":
    main()
