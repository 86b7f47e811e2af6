"""Object storage (S3 / MinIO) behind an async adapter: the minio SDK blocks, so every call runs in a thread."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Iterable
from pathlib import Path

import urllib3
from minio import Minio
from minio.error import S3Error

from fax_runtime.config import S3Settings

log = logging.getLogger(__name__)


def rendered_fax_key(job_id: object, request_revision: int, render_id: str) -> str:
    """Where one render of a job's request (``request_revision``) puts the fax: a directory of its own, so no render
    (of a replaced request, or a second delivery of the same one) ever writes over, or removes, another's objects."""
    return f"jobs/{job_id}/r{request_revision}/{render_id}/fax.tif"


def fax_original_key(tiff_key: str) -> str:
    """The fetched document a job's fax was rendered from, kept beside it."""
    return f"{tiff_key.rsplit('/', 1)[0]}/original"


def fax_pdf_key(tiff_key: str) -> str:
    """The PDF copy stored beside a fax TIFF (a job's render or a received fax)."""
    return f"{tiff_key.rsplit('/', 1)[0]}/fax.pdf"


def fax_preview_key(tiff_key: str, page: int) -> str:
    """The PNG preview of page ``page`` (from 1) stored beside a job's rendered fax TIFF."""
    return f"{tiff_key.rsplit('/', 1)[0]}/preview-{page}.png"


def fax_render_keys(tiff_key: str, pages: int | None) -> list[str]:
    """Every object of one render: the TIFF, its PDF copy, its page previews and (for a fetched document) the
    original."""
    previews = [fax_preview_key(tiff_key, page) for page in range(1, (pages or 0) + 1)]
    return [tiff_key, fax_pdf_key(tiff_key), *previews, fax_original_key(tiff_key)]


def document_preview_key(object_key: str, page: int) -> str:
    """Where the fetcher puts the PNG preview of page ``page`` of a stored document (a Fax.to file)."""
    return f"{object_key}.preview-{page}.png"


class BlobNotFound(KeyError):
    pass


class BlobStore:
    def __init__(self, settings: S3Settings) -> None:
        self._bucket = settings.bucket
        self._client = Minio(
            settings.endpoint,
            access_key=settings.access_key or None,
            secret_key=settings.secret_key or None,
            secure=settings.secure,
            # The SDK's default retries with backoff would stall a health probe for seconds when S3 is down.
            http_client=urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=3, read=60),
                retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
                maxsize=16,
            ),
        )

    async def ensure_bucket(self) -> None:
        def create() -> None:
            if self._client.bucket_exists(self._bucket):
                return
            try:
                self._client.make_bucket(self._bucket)
            except S3Error as exc:
                if exc.code in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    return  # another service created it first
                # Services starting together race to create it, and SeaweedFS may answer the loser NoSuchBucket
                # while the winner's bucket comes into being: give it a moment to appear.
                for _ in range(25):
                    time.sleep(0.2)
                    if self._client.bucket_exists(self._bucket):
                        return
                raise

        await asyncio.to_thread(create)

    async def ping(self) -> bool:
        try:
            return await asyncio.to_thread(self._client.bucket_exists, self._bucket)
        except Exception:
            return False

    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        await asyncio.to_thread(
            self._client.put_object, self._bucket, key, io.BytesIO(data), len(data), content_type=content_type
        )

    async def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        await asyncio.to_thread(self._client.fput_object, self._bucket, key, str(path), content_type=content_type)

    async def get_bytes(self, key: str) -> bytes:
        def read() -> bytes:
            try:
                response = self._client.get_object(self._bucket, key)
            except S3Error as exc:
                if exc.code == "NoSuchKey":
                    raise BlobNotFound(key) from exc
                raise
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(read)

    async def download(self, key: str, path: Path) -> None:
        try:
            await asyncio.to_thread(self._client.fget_object, self._bucket, key, str(path))
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                raise BlobNotFound(key) from exc
            raise

    async def size(self, key: str) -> int | None:
        """The object's size in bytes; None if there is no such object."""
        try:
            stat = await asyncio.to_thread(self._client.stat_object, self._bucket, key)
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject"}:
                return None
            raise
        return stat.size

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.remove_object, self._bucket, key)


async def read_if_present(blobs: BlobStore, key: str) -> bytes | None:
    """The object's bytes; None if there is no such object (a record may name an object removed since)."""
    try:
        return await blobs.get_bytes(key)
    except BlobNotFound:
        return None


async def delete_quietly(blobs: BlobStore, keys: Iterable[str]) -> None:
    """Delete objects no record names any more; one that cannot be deleted is logged for the operator, not raised:
    the record is what matters."""
    for key in keys:
        try:
            await blobs.delete(key)
        except Exception:
            log.warning("could not delete object %s", key, exc_info=True)
