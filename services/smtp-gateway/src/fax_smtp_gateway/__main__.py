"""``python -m fax_smtp_gateway``: connects to its infrastructure and reports healthy.

Email-to-fax intake arrives with the SMTP gateway issue; until then it only reports healthy.
"""

from fax_runtime.worker import WorkerContext, WorkerSpec, serve
from fax_smtp_gateway.config import Settings


async def _wire(context: WorkerContext) -> None:
    """No subscribers yet."""


def main() -> None:
    settings = Settings.from_env()
    spec = WorkerSpec(name="smtp-gateway", consumes=[], wire=_wire, relay_outbox=False)
    serve(spec, settings.runtime, settings.health_host, settings.health_port)


if __name__ == "__main__":
    main()
