"""Files a Fax.to user sends: uploaded in the call, or fetched from a URL behind the network guard."""

from __future__ import annotations

from litestar.datastructures import UploadFile

from fax_api.faxto.rows import FaxtoDocument, FaxtoUser
from fax_api.faxto.store import FaxtoStore
from fax_api.web.faxto import FaxtoError
from fax_runtime.download import DocumentRequest, FetchError, fetch_document
from fax_runtime.network_guard import BlockedAddressError, NetworkGuard

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


async def keep_upload(store: FaxtoStore, user: FaxtoUser, upload: UploadFile) -> FaxtoDocument:
    body = await upload.read()
    if not body:
        raise FaxtoError(400, "The uploaded file is empty")
    if len(body) > MAX_UPLOAD_BYTES:
        raise FaxtoError(413, f"The uploaded file is larger than {MAX_UPLOAD_BYTES} bytes")
    return await store.add_document(user, upload.filename or "document", upload.content_type or "", body)


async def keep_remote_file(store: FaxtoStore, guard: NetworkGuard, user: FaxtoUser, url: str) -> FaxtoDocument:
    """Download ``url`` with the fetcher's own code and network guard (FAX_FETCH_ALLOW_NETWORKS), then keep it."""
    try:
        fetched = await fetch_document(
            DocumentRequest(url=url), guard=guard, max_bytes=MAX_UPLOAD_BYTES, total_timeout=30, retries=1
        )
    except (FetchError, BlockedAddressError) as exc:
        raise FaxtoError(400, f"AddRemoteFile: {exc}") from None
    if not fetched.body:
        raise FaxtoError(400, "AddRemoteFile: the remote file is empty")
    name = fetched.final_url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "document"
    return await store.add_document(user, name, fetched.content_type or "", fetched.body)
