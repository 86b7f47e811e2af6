"""Fetcher settings (``FAX_*``, ``FAX_FETCH_*``, ``FAX_FETCHER_*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

from fax_runtime.config import RuntimeSettings, env_int, env_str


class FetcherSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the fetcher is configured with, read once in ``__main__``."""

    runtime: RuntimeSettings
    allow_networks: str = ""  # comma-separated CIDRs the network guard lets through
    max_document_bytes: int = 50 * 1024 * 1024
    conversion_timeout_s: int = 180
    max_pages: int = 500
    max_image_pixels: int = 100_000_000  # decoded pixels per image page: decompression bombs stop here
    render_memory_bytes: int = 1024 * 1024 * 1024  # address space of one converter run
    render_max_file_bytes: int = 256 * 1024 * 1024  # largest file one converter run may write
    # A queued job with no document this long after it was submitted, changed or last re-driven is prepared again.
    redrive_after_s: int = 600
    health_host: str = "127.0.0.1"
    health_port: int = 8001

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FetcherSettings:
        env = os.environ if env is None else env
        return cls(
            runtime=RuntimeSettings.from_env(env),
            allow_networks=env.get("FAX_FETCH_ALLOW_NETWORKS", ""),
            max_document_bytes=env_int(env, "FAX_FETCH_MAX_BYTES", 50 * 1024 * 1024),
            conversion_timeout_s=env_int(env, "FAX_CONVERSION_TIMEOUT", 180),
            max_pages=env_int(env, "FAX_MAX_PAGES", 500),
            max_image_pixels=env_int(env, "FAX_MAX_IMAGE_PIXELS", 100_000_000),
            render_memory_bytes=env_int(env, "FAX_RENDER_MEMORY_MB", 1024) * 1024 * 1024,
            render_max_file_bytes=env_int(env, "FAX_RENDER_MAX_FILE_MB", 256) * 1024 * 1024,
            redrive_after_s=env_int(env, "FAX_FETCH_REDRIVE_AFTER", 600),
            health_host=env_str(env, "FAX_FETCHER_HEALTH_HOST", "127.0.0.1"),
            health_port=env_int(env, "FAX_FETCHER_HEALTH_PORT", 8001),
        )
