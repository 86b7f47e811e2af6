"""Email-to-fax intake: accepted messages per second, each mail carrying a 1 MB PDF attachment.

The gateway's SMTP server (aiosmtpd with the FaxIntake handler: faxbox lookup, permission check, MIME parsing, the
attachment stored in S3, the job and its event committed in Postgres) runs in this process on the devstack's
Postgres and S3 (started under ``--state-dir`` on ``--port-base``). Client threads send the same pre-built mail
over N concurrent SMTP sessions. Anchor, same run, same mails and concurrency: a bare aiosmtpd server whose handler
accepts and discards each message (the SMTP and MIME transfer floor, no storage).

    uv run python bench/smtp_bench.py --messages 200 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import smtplib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiosmtpd.smtp import SMTP
from minio import Minio

from fax_devstack.infra import InfraPorts, LocalInfra, ProvidedServices
from fax_jobs import JobStore
from fax_runtime.blobs import BlobStore
from fax_runtime.config import S3Settings
from fax_runtime.db import create_pool
from fax_smtp_gateway.config import Settings
from fax_smtp_gateway.gateway import FaxIntake, GatewayStore, SessionLimit, smtp_factory


class Discard:
    async def handle_DATA(self, server, session, envelope) -> str:
        return "250 OK"


def one_mail(to: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "bench@example.com", to, "bench"
    message.set_content("bench")
    attachment = b"%PDF-1.4\n" + os.urandom(1024 * 1024)
    message.add_attachment(attachment, maintype="application", subtype="pdf", filename="bench.pdf")
    return message.as_bytes(policy=policy.SMTP)


def send_all(port: int, to: str, mail: bytes, messages: int, concurrency: int) -> float:
    """Seconds to have ``messages`` mails accepted over ``concurrency`` sessions."""

    def session(count: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            for _ in range(count):
                client.sendmail("bench@example.com", [to], mail)

    shares = [messages // concurrency + (1 if i < messages % concurrency else 0) for i in range(concurrency)]
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(session, shares))
    return time.perf_counter() - began


async def measure(args: argparse.Namespace, endpoints, database_url: str) -> None:
    from fax_api.demo import ensure_demo_tenant

    tenant = await ensure_demo_tenant(database_url)
    to = f"15551230000@{tenant.faxbox_email}"
    mail = one_mail(to)
    pool = await create_pool(database_url)
    blobs = BlobStore(
        S3Settings(endpoint=endpoints.s3_endpoint, access_key=endpoints.s3_access_key,
                   secret_key=endpoints.s3_secret_key, bucket=endpoints.s3_bucket, secure=endpoints.s3_secure)
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    # The handler only reads the limits; the runtime settings are the pool and store built above.
    gateway_settings = Settings(runtime=None, max_message_bytes=4 * 1024 * 1024, max_sessions=64)  # type: ignore[arg-type]
    intake = FaxIntake(GatewayStore(pool), JobStore(pool, blobs), gateway_settings)
    gateway = await loop.create_server(smtp_factory(intake, gateway_settings, SessionLimit(64)), "127.0.0.1", 0)
    bare = await loop.create_server(lambda: SMTP(Discard(), data_size_limit=4 * 1024 * 1024), "127.0.0.1", 0)
    try:
        print("| messages | sessions | gateway msg/s | bare aiosmtpd msg/s | gateway / bare |")
        print("|---|---|---|---|---|")
        for concurrency in args.concurrency:
            bare_s = await asyncio.to_thread(send_all, bare.sockets[0].getsockname()[1], to, mail, args.messages,
                                             concurrency)  # fmt: skip
            gateway_s = await asyncio.to_thread(send_all, gateway.sockets[0].getsockname()[1], to, mail,
                                                args.messages, concurrency)  # fmt: skip
            jobs = await pool.fetchval("SELECT count(*) FROM fax_jobs")
            print(
                f"| {args.messages} | {concurrency} | {args.messages / gateway_s:.1f} | {args.messages / bare_s:.1f} | "
                f"{bare_s / gateway_s:.2f} |  (jobs stored so far: {jobs})",
                flush=True,
            )
    finally:
        gateway.close()
        bare.close()
        await pool.close()


async def main_async(args: argparse.Namespace) -> None:
    from fax_runtime.migrations import apply

    provided = ProvidedServices.from_env(os.environ, prefix="FAX_TEST_")
    infra = LocalInfra(Path(args.state_dir), provided=provided, ports=InfraPorts.from_base(args.port_base))
    endpoints = await infra.start()
    try:
        s3 = Minio(endpoints.s3_endpoint, endpoints.s3_access_key, endpoints.s3_secret_key, secure=endpoints.s3_secure)
        if not s3.bucket_exists(endpoints.s3_bucket):
            s3.make_bucket(endpoints.s3_bucket)
        database = f"smtp_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(endpoints.database_url)
        await admin.execute(f'CREATE DATABASE "{database}"')
        database_url = urlunsplit(urlsplit(endpoints.database_url)._replace(path=f"/{database}"))
        try:
            await apply(database_url)
            await measure(args, endpoints, database_url)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
    finally:
        await infra.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--state-dir", default=".devstack/bench-smtp")
    parser.add_argument("--port-base", type=int, default=25500)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
