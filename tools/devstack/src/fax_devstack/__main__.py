"""``python -m fax_devstack run [--state-dir .devstack]``: the whole platform on this machine (``make run``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from fax_devstack.processes import DevstackError
from fax_devstack.stack import run
from fax_runtime.config import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fax_devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="start everything and supervise it until Ctrl-C")
    run_parser.add_argument(
        "--state-dir", type=Path, default=Path(".devstack"), help="data, logs and credentials (default: .devstack)"
    )
    arguments = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s devstack %(levelname)s %(message)s")
    # httpx logs every readiness probe at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return asyncio.run(run(arguments.state_dir, os.environ))
    except (DevstackError, ConfigError) as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
