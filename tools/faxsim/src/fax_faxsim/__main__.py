"""``python -m fax_faxsim serve`` runs the simulated telephone network; ``... send FILE --to NUMBER`` faxes in.

Every option has a ``FAX_FAXSIM_*`` variable, so the devstack (and Kubernetes) configure it like the services.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

import trustme

from fax_faxsim.sender import run_send
from fax_faxsim.simulator import TRUNK_FAILURES, FaxSimulator, SimulatorSettings
from fax_runtime.health import HealthServer


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {value!r}")
    return host, int(port)


def _port_range(value: str) -> tuple[int, int]:
    first, _, last = value.partition("-")
    if not (first.isdigit() and last.isdigit()) or int(first) > int(last):
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST, got {value!r}")
    return int(first), int(last)


def _loss(value: str) -> float:
    share = float(value)
    if not 0.0 <= share < 1.0:
        raise argparse.ArgumentTypeError("the loss is a share of packets: 0 <= loss < 1")
    return share


def _parser() -> argparse.ArgumentParser:
    env = os.environ
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--sip",
        type=_host_port,
        default=_host_port(env.get("FAX_FAXSIM_SIP", "127.0.0.1:5070")),
        help="where faxsim's SIP endpoint listens (FAX_FAXSIM_SIP)",
    )
    common.add_argument(
        "--media-ports",
        type=_port_range,
        default=_port_range(env.get("FAX_FAXSIM_MEDIA_PORTS", "46000-46999")),
        help="UDP ports for RTP and UDPTL (FAX_FAXSIM_MEDIA_PORTS)",
    )
    common.add_argument(
        "--loss",
        type=_loss,
        default=_loss(env.get("FAX_FAXSIM_LOSS", "0")),
        help="share of received media packets to drop, e.g. 0.05 (FAX_FAXSIM_LOSS)",
    )
    common.add_argument(
        "--force",
        choices=("g711", "t38"),
        default=env.get("FAX_FAXSIM_FORCE") or None,
        help="g711: refuse T.38; t38: ask for T.38 when the caller does not (FAX_FAXSIM_FORCE)",
    )
    common.add_argument(
        "--tls-ca",
        default=env.get("FAX_FAXSIM_TLS_CA") or None,
        help="authorities (PEM) trusted when calling a sips: target (FAX_FAXSIM_TLS_CA; default: the system's)",
    )

    parser = argparse.ArgumentParser(prog="faxsim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", parents=[common], help="answer calls by the dial plan")
    serve.add_argument(
        "--received-dir",
        type=Path,
        default=Path(env.get("FAX_FAXSIM_RECEIVED_DIR", ".devstack/faxsim/received")),
        help="where received faxes and their sidecars go (FAX_FAXSIM_RECEIVED_DIR)",
    )
    serve.add_argument(
        "--health", type=_host_port, default=None, help="serve GET /healthz on host:port (FAX_FAXSIM_HEALTH)"
    )
    serve.add_argument(
        "--tls-port",
        type=int,
        default=int(env["FAX_FAXSIM_TLS_PORT"]) if env.get("FAX_FAXSIM_TLS_PORT", "").strip() else None,
        help="also take SIP over TLS on this port of --sip's host (FAX_FAXSIM_TLS_PORT)",
    )
    serve.add_argument(
        "--tls-cert",
        default=env.get("FAX_FAXSIM_TLS_CERT") or None,
        help="certificate chain and key (PEM) for TLS (FAX_FAXSIM_TLS_CERT); without it faxsim makes a test CA and "
        "a certificate for --sip's host beside the received directory (tls/ca.pem, tls/faxsim.pem)",
    )
    serve.add_argument(
        "--trunk-failure",
        choices=TRUNK_FAILURES,
        default=env.get("FAX_FAXSIM_TRUNK_FAILURE") or None,
        help="play a trunk in trouble: 503 refuses every call, timeout answers nothing (FAX_FAXSIM_TRUNK_FAILURE)",
    )
    send = commands.add_parser("send", parents=[common], help="send a document as an inbound fax")
    send.add_argument("document", type=Path)
    send.add_argument("--to", required=True, help="the called number, e.g. the demo inbound number")
    send.add_argument("--from", dest="from_number", default="+15557770000", help="the calling number")
    send.add_argument(
        "--target",
        default=env.get("FAX_FAXSIM_TARGET", "127.0.0.1:5060"),
        help="the platform's SIP endpoint: host:port (UDP), sip:host:port;transport=tcp or sips:host:port "
        "(FAX_FAXSIM_TARGET)",
    )
    send.add_argument("--no-t38", action="store_true", help="stay on G.711 audio")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("FAX_LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    args = _parser().parse_args(argv)
    host, port = args.sip
    if args.command == "send":
        # The sending side needs a SIP port of its own: the next one up, so a running faxsim keeps its own.
        settings = SimulatorSettings(
            sip_host=host,
            sip_port=port + 1,
            media_ports=args.media_ports,
            loss=args.loss,
            force=args.force,
            tls_ca=args.tls_ca,
        )
        return run_send(args.document, args.to, args.from_number, args.target, not args.no_t38, FaxSimulator(settings))
    tls_cert = args.tls_cert
    if args.tls_port is not None and tls_cert is None:
        tls_cert = str(make_test_certificate(args.received_dir.parent / "tls", host))
    settings = SimulatorSettings(
        sip_host=host,
        sip_port=port,
        media_ports=args.media_ports,
        loss=args.loss,
        force=args.force,
        received_dir=args.received_dir,
        tls_port=args.tls_port,
        tls_cert=tls_cert,
        tls_ca=args.tls_ca,
        trunk_failure=args.trunk_failure,
    )
    health = args.health
    if health is None and os.environ.get("FAX_FAXSIM_HEALTH_PORT", "").strip():
        host = os.environ.get("FAX_FAXSIM_HEALTH_HOST", "").strip() or "127.0.0.1"
        health = (host, int(os.environ["FAX_FAXSIM_HEALTH_PORT"]))
    return asyncio.run(_serve(FaxSimulator(settings), health))


def make_test_certificate(folder: Path, host: str) -> Path:
    """A CA of faxsim's own (``ca.pem``, for the transmitter's FAX_SIP_TLS_CA) and a certificate it signed for
    ``host`` (``faxsim.pem``, with its key), made once and kept."""
    certificate = folder / "faxsim.pem"
    if not certificate.exists():
        folder.mkdir(parents=True, exist_ok=True)
        authority = trustme.CA(organization_name="faxsim test CA")
        authority.cert_pem.write_to_path(str(folder / "ca.pem"))
        authority.issue_cert(host, "localhost").private_key_and_cert_chain_pem.write_to_path(str(certificate))
    logging.getLogger(__name__).info("faxsim TLS: %s, signed by the test CA %s", certificate, folder / "ca.pem")
    return certificate


async def _serve(simulator: FaxSimulator, health: tuple[str, int] | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await simulator.start()
    health_server = None
    if health is not None:

        async def alive() -> bool:
            return simulator.dsp.running

        health_server = HealthServer(health[0], health[1], alive)
        await health_server.start()
    try:
        await stop.wait()
    finally:
        if health_server is not None:
            await health_server.stop()
        with contextlib.suppress(Exception):
            await simulator.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
