"""Fax.to REST v2 under /api/v2 (and the v1 send path of its example), authenticated by ``api_key``.

Parameters come from the query string, a url-encoded or multipart form, or a JSON body, as Fax.to accepts them;
the calls the text makes "with a POST or GET call" (send, provision) take either. Errors answer
``{"status": "failed", "message": ...}`` with an HTTP status that says what went wrong (fax_api.web.errors,
also for unknown paths and methods). Jobs and received faxes go by the integer ids the text shows (their int_id);
fax numbers are read as E.164 (fax_runtime.numbers).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import uuid
from decimal import Decimal
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State, UploadFile
from litestar.exceptions import ClientException
from litestar.params import FromPath

from fax_api.accounts.rules import PASSWORD_MIN_LENGTH
from fax_api.faxes.rules import FaxValidationError, validate_fax_request
from fax_api.faxto import inventory, views
from fax_api.faxto.billing import InsufficientBalance, submit_billed_job
from fax_api.faxto.rates import fax_cost
from fax_api.faxto.store import EmailTaken, FaxtoStore
from fax_api.web.callback_urls import refused_callback_urls
from fax_api.web.errors import faxto_failure
from fax_api.web.openapi import FILE, STRING, form_body
from fax_runtime import signing
from fax_runtime.blobs import document_preview_key
from fax_runtime.download import DocumentRequest, FetchError, fetch_document
from fax_runtime.network_guard import BlockedAddressError, NetworkGuard
from fax_runtime.numbers import NotE164, e164

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
PREVIEW_POLL_SECONDS = 0.2


def preview_wait_seconds() -> float:
    """How long file-generate-preview waits for the fetcher to draw a new file's previews."""
    return float(os.environ.get("FAX_FAXTO_PREVIEW_WAIT", "15"))


class FaxtoError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _faxto_error(_: Request, exc: FaxtoError) -> Response:
    return faxto_failure(exc.status_code, exc.message)


async def _params(request: Request) -> tuple[dict[str, Any], dict[str, UploadFile]]:
    """Every parameter of the request (query, form or JSON; body wins) and its uploaded files."""
    params: dict[str, Any] = dict(request.query_params)
    files: dict[str, UploadFile] = {}
    content_type = request.headers.get("content-type", "")
    if request.method in ("POST", "PUT", "DELETE"):
        if content_type.startswith("application/json"):
            try:
                body = await request.json()
            except Exception:
                raise FaxtoError(400, "The request body is not valid JSON") from None
            if isinstance(body, dict):
                params.update(body)
        elif content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            try:
                form = await request.form()
            except ClientException:
                raise FaxtoError(400, "The request body is not a well-formed form of its Content-Type") from None
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[name] = value
                else:
                    params[name] = value
    return params, files


def _store(state: State) -> FaxtoStore:
    return state.faxto


async def _user(state: State, params: dict[str, Any]) -> dict[str, Any]:
    api_key = params.get("api_key")
    user = await _store(state).user_for_key(api_key) if isinstance(api_key, str) and api_key else None
    if user is None:
        raise FaxtoError(401, "Invalid or missing api_key")
    return user


def _credentials(params: dict[str, Any]) -> tuple[str, str]:
    email, password = params.get("email"), params.get("password")
    if not isinstance(email, str) or "@" not in email.strip() or len(email) > 254:
        raise FaxtoError(400, "email is required and must be an email address")
    if not isinstance(password, str) or len(password) < PASSWORD_MIN_LENGTH:
        raise FaxtoError(400, f"password is required and must be at least {PASSWORD_MIN_LENGTH} characters")
    return email.strip().lower(), password


def _fax_number(params: dict[str, Any]) -> str:
    number = params.get("fax_number")
    if not isinstance(number, str):
        raise FaxtoError(400, "fax_number is required: a fax number in international format, e.g. +441224459292")
    try:
        return e164(number)
    except NotE164 as exc:
        raise FaxtoError(400, f"fax_number: {exc}, e.g. +441224459292") from None


def _fax_job_id(raw: str) -> int | uuid.UUID | None:
    """What send answered (an integer), or the job's Kazoo id (32 hex digits); None: neither."""
    if raw.isdigit() and raw.isascii() and len(raw) <= 18:  # a bigint; 32 hex digits can be all decimal digits
        return int(raw)
    try:
        return uuid.UUID(hex=raw)
    except ValueError:
        return None


async def _callback_url(state: State, params: dict[str, Any]) -> str:
    """The request's ``callback_url`` ("" to have none), refused when no callback to it could ever be delivered."""
    url = params.get("callback_url")
    if url == "":
        return ""
    if not isinstance(url, str):
        raise FaxtoError(400, "callback_url must be an http:// or https:// URL")
    refused = await refused_callback_urls(state.guard, {"callback_url": url})
    if refused:
        raise FaxtoError(400, f"callback_url is refused: {refused['callback_url']}")
    return url


def _document_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FaxtoError(400, "document_id is required and must be a number") from None


def _cost(number: str, pages: int) -> Decimal:
    cost = fax_cost(number, pages)
    if cost is None:
        raise FaxtoError(400, f"No rate for destination {number}: faxes there cannot be sent")
    return cost


async def _upload(store: FaxtoStore, user: dict[str, Any], upload: UploadFile) -> dict[str, Any]:
    body = await upload.read()
    if not body:
        raise FaxtoError(400, "The uploaded file is empty")
    if len(body) > MAX_UPLOAD_BYTES:
        raise FaxtoError(413, f"The uploaded file is larger than {MAX_UPLOAD_BYTES} bytes")
    return await store.add_document(user, upload.filename or "document", upload.content_type or "", body)


async def _remote_upload(store: FaxtoStore, guard: NetworkGuard, user: dict[str, Any], url: str) -> dict[str, Any]:
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


_CREDENTIALS_BODY = form_body({"email": STRING, "password": STRING}, required=("email", "password"))
_SUBUSER_BODY = form_body({"api_key": STRING, "email": STRING, "password": STRING}, required=("api_key", "email"))
_SEND_BODY = form_body(
    {"api_key": STRING, "fax_number": STRING, "document_id": STRING, "file": FILE, "tsi_number": STRING,
     "delete_file": STRING, "callback_url": STRING},
    required=("api_key", "fax_number"),
    description="document_id of an uploaded file, or the document itself as a multipart 'file' part",
)  # fmt: skip
_FILES_BODY = form_body(
    {"api_key": STRING, "file": FILE, "AddRemoteFile": STRING},
    required=("api_key",),
    description="a multipart 'file' part, or AddRemoteFile: a URL the platform fetches",
)
_SETTINGS_BODY = form_body(
    {"api_key": STRING, "callback_url": STRING},
    required=("api_key", "callback_url"),
    description="callback_url: where delivery receipts and receive callbacks are posted; empty to stop them",
)
_PROVISION_BODY = form_body({"api_key": STRING, "did_group_id": STRING}, required=("api_key",))
_API_KEY_BODY = form_body({"api_key": STRING}, description="api_key, here or in the query string")


class FaxtoController(Controller):
    path = "/api"
    tags = ["Fax.to REST v2"]
    exception_handlers = {FaxtoError: _faxto_error}

    @post("/v2/user", status_code=200, operation_class=_CREDENTIALS_BODY)
    async def register(self, request: Request, state: State) -> dict[str, Any]:
        """Register a user: a new account with its own balance; answers the user's api_key."""
        email, password = _credentials((await _params(request))[0])
        try:
            user = await _store(state).register(email, password)
        except EmailTaken:
            raise FaxtoError(409, "A user with this email already exists") from None
        return {"status": "success", "api_key": user["api_key"]}

    @post("/v2/user/login", status_code=200, operation_class=_CREDENTIALS_BODY)
    async def login(self, request: Request, state: State) -> dict[str, Any]:
        email, password = _credentials((await _params(request))[0])
        user = await _store(state).login(email, password)
        if user is None:
            raise FaxtoError(401, "Wrong email or password")
        return {"status": "success", "api_key": user["api_key"]}

    @post("/v2/subuser", status_code=200, operation_class=_SUBUSER_BODY)
    async def subuser(self, request: Request, state: State) -> dict[str, Any]:
        """A sub-user of the caller: the same account and balance, its own api_key."""
        params, _ = await _params(request)
        parent = await _user(state, params)
        email, password = _credentials(params)
        try:
            user = await _store(state).register(email, password, parent=parent)
        except EmailTaken:
            raise FaxtoError(409, "A user with this email already exists") from None
        return {"status": "success", "api_key": user["api_key"]}

    @get("/v2/settings")
    async def settings(self, request: Request, state: State) -> dict[str, Any]:
        """The account's API settings: the callback URL of delivery receipts and receive callbacks."""
        user = await _user(state, dict(request.query_params))
        return {"status": "success", "callback_url": await _store(state).callback_url(user["account_id"])}

    @post("/v2/settings", status_code=200, operation_class=_SETTINGS_BODY)
    async def change_settings(self, request: Request, state: State) -> dict[str, Any]:
        """Set the callback URL (Fax.to's API settings page): every later send posts its delivery receipt there,
        and every fax received on the account's numbers its receive callback."""
        params, _ = await _params(request)
        user = await _user(state, params)
        if "callback_url" not in params:
            raise FaxtoError(400, "callback_url is required (empty to remove it)")
        url = await _callback_url(state, params)
        await _store(state).set_callback_url(user["account_id"], url)
        return {"status": "success", "callback_url": url}

    @get("/v2/balance")
    async def balance(self, request: Request, state: State) -> dict[str, Any]:
        user = await _user(state, dict(request.query_params))
        return {"status": "success", "balance": views.money(await _store(state).balance(user["account_id"]))}

    @post(["/v2/fax", "/v1/fax"], status_code=200, operation_class=_SEND_BODY)
    async def send(self, request: Request, state: State) -> dict[str, Any]:
        """Send ``document_id`` (or an uploaded ``file``) to ``fax_number``; the cost is reserved now, charged
        when the fax completes and given back if it fails. Answers the job's ``fax_job_id`` (an integer)."""
        return await self._send(request, state)

    @get(["/v2/fax", "/v1/fax"])
    async def send_by_get(self, request: Request, state: State) -> dict[str, Any]:
        """The same send, its parameters in the query string ("a POST or GET call", the text's Encoding)."""
        return await self._send(request, state)

    async def _send(self, request: Request, state: State) -> dict[str, Any]:
        """Both send handlers: the parameters from wherever the request carries them."""
        store = _store(state)
        params, files = await _params(request)
        user = await _user(state, params)
        number = _fax_number(params)
        if "file" in files:
            document = await _upload(store, user, files["file"])
        else:
            document = await store.document(user["account_id"], _document_id(params.get("document_id")))
            if document is None:
                raise FaxtoError(404, "Document not found")
        if document["preview_status"] == "failed":  # the fetcher could not render it: it would fail after charging
            raise FaxtoError(422, f"The document cannot be faxed: {document['preview_error']}")
        body = await store.document_bytes(document)
        if body is None:
            raise FaxtoError(404, "The document's file is gone")
        tsi = params.get("tsi_number")
        if tsi is not None and (not isinstance(tsi, str) or len(tsi) > 20):
            raise FaxtoError(400, "tsi_number must be a string of at most 20 characters")
        cost = _cost(number, document["total_pages"])
        kazoo_request = {
            "to_number": number,
            "retries": 1,
            "document": {},
            "faxto": {"document_id": document["id"], "document": document["filename_uploaded"], "user_id": user["id"]},
        }
        if tsi:
            kazoo_request.update(from_number=tsi, fax_identity=tsi)
        # The send's own callback_url, else the one in the account's API settings.
        callback_url = (
            await _callback_url(state, params)
            if "callback_url" in params
            else await store.callback_url(user["account_id"])
        )
        if callback_url:
            # The notifier posts Fax.to's delivery receipt (fax_job_id, status, msg_code) to the job's callback.
            kazoo_request["callback"] = {"url": callback_url, "method": "post", "type": "www-url-form-encoded"}
        try:
            kazoo_request = validate_fax_request(kazoo_request, require_document_url=False)
        except FaxValidationError as exc:
            raise FaxtoError(400, f"Invalid fax: {sorted(exc.errors)}") from None
        try:
            job, left = await submit_billed_job(
                state.jobs, user["account_id"], kazoo_request, [(body, document["content_type"])], cost
            )
        except InsufficientBalance as exc:
            raise FaxtoError(
                402,
                f"Insufficient balance: this fax costs {views.money(exc.cost)}, "
                f"the balance is {views.money(exc.balance)}",
            ) from None
        if str(params.get("delete_file", "")).lower() in ("1", "true", "yes"):
            # The job holds its own copy (jobs/<id>/upload-0), so the document can go at once.
            await store.delete_document(user["account_id"], document["id"])
        return {
            "status": "executed",
            "fax_job_id": job.int_id,
            "user_cash_balance": views.money(left),
            "cost": views.money(cost),
        }

    @get("/v2/fax/{document_id:int}/costs")
    async def cost(self, request: Request, state: State, document_id: FromPath[int]) -> dict[str, Any]:
        params = dict(request.query_params)
        user = await _user(state, params)
        number = _fax_number(params)
        document = await _store(state).document(user["account_id"], document_id)
        if document is None:
            raise FaxtoError(404, "Document not found")
        return {"status": "success", "cost": views.money(_cost(number, document["total_pages"]))}

    @get("/v2/fax/{fax_job_id:str}/status")
    async def status(self, request: Request, state: State, fax_job_id: FromPath[str]) -> dict[str, Any]:
        user = await _user(state, dict(request.query_params))
        job_id = _fax_job_id(fax_job_id)
        job = await _store(state).job(user["account_id"], job_id) if job_id is not None else None
        if job is None:
            raise FaxtoError(404, "Fax job not found")
        return {
            "status": "success",
            "message": views.status_message(job),
            "user_cash_balance": views.money(await _store(state).balance(user["account_id"])),
        }

    @get("/v2/fax-history")
    async def history(self, request: Request, state: State) -> dict[str, Any]:
        user = await _user(state, dict(request.query_params))
        jobs = await _store(state).history(user["account_id"])
        return {"status": "success", "history": [views.history_entry(job) for job in jobs]}

    @post("/v2/files", status_code=200, operation_class=_FILES_BODY)
    async def upload(self, request: Request, state: State) -> dict[str, Any]:
        params, files = await _params(request)
        user = await _user(state, params)
        if "file" in files:
            document = await _upload(_store(state), user, files["file"])
        elif isinstance(params.get("AddRemoteFile"), str) and params["AddRemoteFile"].strip():
            document = await _remote_upload(_store(state), state.guard, user, params["AddRemoteFile"].strip())
        else:
            raise FaxtoError(400, "A multipart 'file' part or an AddRemoteFile URL is required")
        return {"status": "success", "document_id": document["id"], "document": views.document_view(document)}

    @get("/v2/files")
    async def files(self, request: Request, state: State) -> list[dict[str, Any]]:
        user = await _user(state, dict(request.query_params))
        return [views.file_entry(d) for d in await _store(state).documents(user["account_id"])]

    @delete("/v2/files/{document_id:int}", status_code=200)
    async def delete_file(self, request: Request, state: State, document_id: FromPath[int]) -> dict[str, Any]:
        user = await _user(state, dict(request.query_params))
        if not await _store(state).delete_document(user["account_id"], document_id):
            raise FaxtoError(404, "Document not found")
        return {"status": "success"}

    @get(["/v2/incoming-faxes", "/v2/incoming-faxes/{recipient:str}"])
    async def incoming(self, request: Request, state: State, recipient: FromPath[str | None] = None) -> dict[str, Any]:
        """Received faxes (all, or those to ``recipient``), paged; preview_file and file_url are signed links."""
        params = dict(request.query_params)
        user = await _user(state, params)
        page, per_page = _positive(params, "page", 1, 1_000_000), _positive(params, "per_page", 20, 100)
        try:
            number = e164(recipient) if recipient is not None else None
        except NotE164 as exc:
            raise FaxtoError(400, f"recipient: {exc}") from None
        total, faxes = await _store(state).received(user["account_id"], number, per_page, page)
        key = _signing_key(state)
        base = str(request.base_url).rstrip("/")
        inbox = [views.incoming_entry(fax, base, key) for fax in faxes]
        pagination = _pagination(request, total, len(inbox), per_page, page)
        return {"status": "success", "inbox": inbox, "meta": {"pagination": pagination}}

    @get("/v2/file-clean")
    async def clean(self, request: Request, state: State) -> dict[str, Any]:
        """The document as it will be faxed: its stored record with page count and fax file names (the example
        response of the spec's Clean File API). The document was checked and counted when it was uploaded."""
        params = dict(request.query_params)
        user = await _user(state, params)
        document = await _store(state).document(user["account_id"], _document_id(params.get("document_id")))
        if document is None:
            raise FaxtoError(404, "Document not found")
        return {"status": "success", **views.document_view(document), "server_document_id": None, "team_user_id": None}

    @get("/v2/file-generate-preview")
    async def preview(self, request: Request, state: State) -> dict[str, Any]:
        """A signed, expiring URL of a PNG of the document's page ``page`` (default 1) as it will be faxed.

        The fetcher draws the previews when the file is uploaded; this waits up to FAX_FAXTO_PREVIEW_WAIT seconds
        for them, then answers 503 (try again). A file that cannot be faxed answers 422 with the reason.
        """
        params = dict(request.query_params)
        user = await _user(state, params)
        store = _store(state)
        document_id = _document_id(params.get("document_id"))
        document = await store.document(user["account_id"], document_id)
        if document is None:
            raise FaxtoError(404, "Document not found")
        if document["preview_status"] == "none":
            await store.request_preview(user["account_id"], document_id)
        deadline = time.monotonic() + preview_wait_seconds()
        while document["preview_status"] in ("none", "pending") and time.monotonic() < deadline:
            await asyncio.sleep(PREVIEW_POLL_SECONDS)
            document = await store.document(user["account_id"], document_id)
            if document is None:
                raise FaxtoError(404, "Document not found")
        if document["preview_status"] == "failed":
            raise FaxtoError(422, f"The document cannot be faxed: {document['preview_error']}")
        if document["preview_status"] != "ready":
            raise FaxtoError(503, "The preview is still being generated; try again in a few seconds")
        page = _positive(params, "page", 1, document["total_pages"])
        path = f"/api/v2/signed/document/{document['id']}/preview-{page}.png"
        base = str(request.base_url).rstrip("/")
        return {"status": "success", "url": f"{base}{path}?{signing.signed_query(_signing_key(state), path)}"}

    @get("/v2/signed/document/{document_id:int}/{name:str}", include_in_schema=False)
    async def signed_preview(
        self, request: Request, state: State, document_id: FromPath[int], name: FromPath[str]
    ) -> Response:
        """A page preview (``preview-<page>.png``) for a valid, unexpired signed link."""
        params = request.query_params
        if not signing.valid(
            _signing_key(state), request.url.path, params.get("expires", ""), params.get("signature", "")
        ):
            raise FaxtoError(403, "The link is invalid or has expired")
        page = name.removeprefix("preview-").removesuffix(".png")
        document = await _store(state).document_by_id(document_id)
        body = None
        if document is not None and document["preview_status"] == "ready" and page.isdigit():
            body = await state.store.read_object(document_preview_key(document["object_key"], int(page)))
        if body is None:
            raise FaxtoError(404, "Preview not found")
        return Response(body, media_type="image/png", headers={"Content-Disposition": f'inline; filename="{name}"'})

    @get("/v2/signed/inbound/{fax_id:str}/{kind:str}", include_in_schema=False)
    async def signed_inbound(
        self, request: Request, state: State, fax_id: FromPath[str], kind: FromPath[str]
    ) -> Response:
        """A received fax's PDF (``file``: attachment; ``preview``: inline) for a valid, unexpired signed link."""
        params = request.query_params
        if kind not in ("file", "preview") or not signing.valid(
            _signing_key(state), request.url.path, params.get("expires", ""), params.get("signature", "")
        ):
            raise FaxtoError(403, "The link is invalid or has expired")
        try:
            fax = await _store(state).received_fax(uuid.UUID(fax_id))
        except ValueError:
            fax = None
        key = fax and (fax["pdf_key"] or fax["tiff_key"])
        body = await state.store.read_object(key) if key else None
        if body is None:
            raise FaxtoError(404, "Fax not found")
        is_pdf = key == fax["pdf_key"]
        disposition = "inline" if kind == "preview" else "attachment"
        filename = f"{fax['id'].hex}.{'pdf' if is_pdf else 'tiff'}"
        return Response(
            body,
            media_type="application/pdf" if is_pdf else "image/tiff",
            headers={"Content-Disposition": f'{disposition}; filename="{filename}"'},
        )


def _positive(params: dict[str, Any], name: str, default: int, maximum: int) -> int:
    raw = params.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise FaxtoError(400, f"{name} must be a positive number") from None
    if not 1 <= value <= maximum:
        raise FaxtoError(400, f"{name} must be between 1 and {maximum}")
    return value


def _signing_key(state: State) -> bytes:
    return signing.signing_key(state.settings.runtime.s3.secret_key)


def _pagination(request: Request, total: int, count: int, per_page: int, page: int) -> dict[str, Any]:
    listing = f"{str(request.base_url).rstrip('/')}{request.url.path}"
    total_pages = max(1, math.ceil(total / per_page))
    links = {}
    if page > 1:
        links["previous"] = f"{listing}?page={page - 1}"
    if page < total_pages:
        links["next"] = f"{listing}?page={page + 1}"
    return {
        "total": total,
        "count": count,
        "per_page": per_page,
        "current_page": page,
        "total_pages": total_pages,
        "links": links,
    }


class FaxtoNumbersController(Controller):
    """Fax.to's number inventory, provisioning and the account's numbers."""

    path = "/api/v2"
    tags = ["Fax.to REST v2"]
    exception_handlers = {FaxtoError: _faxto_error}

    @get("/countries")
    async def countries(self, request: Request, state: State) -> dict[str, Any]:
        await _user(state, dict(request.query_params))
        return {"status": "success", "data": inventory.countries()}

    @get("/states/{country_code:str}")
    async def states(self, request: Request, state: State, country_code: FromPath[str]) -> dict[str, Any]:
        await _user(state, dict(request.query_params))
        found = inventory.states(country_code)
        if found is None:
            raise FaxtoError(404, f"Unknown country code {country_code}")
        return {"status": "success", "states": found}

    @get("/areacodes/{country_code:str}/{state_id:str}")
    async def area_codes(
        self, request: Request, state: State, country_code: FromPath[str], state_id: FromPath[str]
    ) -> dict[str, Any]:
        await _user(state, dict(request.query_params))
        found = inventory.area_codes(country_code, state_id)
        if found is None:
            raise FaxtoError(404, f"Unknown country code {country_code}")
        return {"status": "success", "areacodes": found}

    @get("/countries/{country_code:str}/didgroups")
    async def did_groups(self, request: Request, state: State, country_code: FromPath[str]) -> dict[str, Any]:
        params = dict(request.query_params)
        await _user(state, params)
        try:
            ids = {int(i) for i in params["didGroupIds"].split(",") if i.strip()} if params.get("didGroupIds") else None
        except ValueError:
            raise FaxtoError(400, "didGroupIds must be a comma-separated list of numbers") from None
        found = inventory.did_groups(
            country_code, ids, params.get("stateId"), params.get("cityNamePattern"), params.get("areaCode")
        )
        if found is None:
            raise FaxtoError(404, f"Unknown country code {country_code}")
        return {"status": "success", "data": found}

    @post("/provision-numbers", status_code=200, operation_class=_PROVISION_BODY)
    async def provision(self, request: Request, state: State) -> dict[str, Any]:
        """A free number (of ``did_group_id`` when given) becomes the caller's: its faxes arrive in its inbox."""
        return await self._provision(request, state)

    @get("/provision-numbers")
    async def provision_by_get(self, request: Request, state: State) -> dict[str, Any]:
        """The same provisioning, its parameters in the query string."""
        return await self._provision(request, state)

    @post("/countries/didgroups/{did_group_id:int}/provision", status_code=200, operation_class=_API_KEY_BODY)
    async def provision_in_group(self, request: Request, state: State, did_group_id: FromPath[int]) -> dict[str, Any]:
        """A free number of the DID group becomes the caller's: the path of the text's PHP example (a POST)."""
        return await self._provision(request, state, did_group_id)

    @get("/countries/didgroups/{did_group_id:int}/provision")
    async def provision_in_group_by_get(
        self, request: Request, state: State, did_group_id: FromPath[int]
    ) -> dict[str, Any]:
        """The same, as the text's Python and Ruby examples call it (a GET)."""
        return await self._provision(request, state, did_group_id)

    async def _provision(self, request: Request, state: State, did_group_id: int | None = None) -> dict[str, Any]:
        params, _ = await _params(request)
        user = await _user(state, params)
        wanted = did_group_id if did_group_id is not None else params.get("did_group_id")
        if wanted is not None:
            try:
                found = inventory.group(int(wanted))
            except (TypeError, ValueError):
                found = None
            if found is None:
                raise FaxtoError(404, "Unknown did_group_id")
            groups = [found]
        else:
            groups = inventory.all_groups()
        candidates = [(n, g["did_group_id"]) for g, _ in groups for n in g["numbers"]]
        number = await _store(state).provision(user["account_id"], candidates)
        if number is None:
            raise FaxtoError(409, "No number is free in this DID group")
        group, country = inventory.group(number["did_group_id"])
        return {
            "status": "success",
            "message": "Number has been provisioned.",
            "data": {
                "id": number["id"],
                "didid": number["id"],
                "did_group_id": group["did_group_id"],
                "country_code": country["a2_code"],
                "city_name": group["city_name"],
                "area_code": group["area_code"],
                "number": number["e164"],
                "type": group["type"],
                "trunk_id": inventory.TRUNK_ID,
            },
        }

    @get("/numbers")
    async def numbers(self, request: Request, state: State) -> dict[str, Any]:
        params = dict(request.query_params)
        user = await _user(state, params)
        page, per_page = _positive(params, "page", 1, 1_000_000), _positive(params, "per_page", 20, 100)
        total, rows = await _store(state).numbers(user["account_id"], per_page, page)
        data = []
        for row in rows:
            group, country = inventory.group(row["did_group_id"])
            data.append(
                {
                    "id": row["id"],
                    "order_reference": None,
                    "country_code": country["a2_code"],
                    "country": country["country"],
                    "city_name": group["city_name"],
                    "area_code": group["area_code"],
                    "did_group_id": group["did_group_id"],
                    "did_number": row["e164"],
                    "expiration_date": row["expiration_date"].isoformat(),
                    "status": "Active",
                }
            )
        pagination = _pagination(request, total, len(data), per_page, page)
        return {"status": "success", "numbers": data, "meta": {"pagination": pagination}}
