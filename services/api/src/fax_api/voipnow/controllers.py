"""VoipNow UAPI ``POST /uapi/faxes/{userId}/{extension}``: one job per recipient, all sharing the files.

The token (``Authorization: Bearer <token>`` as the example sends it, or ``token <token>`` as the request model
shows it) is an auth token of the account (the same tokens as Kazoo's X-Auth-Token), so the faxes are that
account's and show in its Kazoo outbox. The answer's ``id`` is the first fax's number (the job's integer id, as a
string like the example's ``"1"``), ``uid`` its Kazoo id. Recipients are dial strings (phone or extension numbers,
as the text allows), sent to the line as written. Errors answer UAPI's ``{"error": {"code": ..., "message": ...}}``
(``web.uapi``, and ``web.errors`` for unknown paths and methods). The limits on a request are settings
(``ApiSettings.voipnow``).
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ClientException
from litestar.params import FromPath

from fax_api.config import ApiSettings
from fax_api.faxes.rules import FaxValidationError, validate_fax_request
from fax_api.web.auth import uapi_account
from fax_api.web.injection import Injected
from fax_api.web.openapi import FILE, STRING, UAPI, form_body
from fax_api.web.uapi import UapiError, uapi_error_response
from fax_jobs import FaxJob, JobStore, shared_upload_keys
from fax_runtime.db import holds_nul

ALLOWED_EXTENSIONS = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "tif": "image/tiff", "tiff": "image/tiff",
                      "pdf": "application/pdf", "txt": "text/plain"}  # fmt: skip


def _unexpected(request: Request, exc: Exception) -> Response:
    request.logger.exception("voipnow fax failed", exc_info=exc)
    error = UapiError(400, "internal_server_error", "Failed to send the fax due to an internal error")
    return uapi_error_response(request, error)


def _recipients(raw: Any, limit: int) -> list[str]:
    try:
        request = json.loads(raw) if isinstance(raw, str | bytes) else None
    except ValueError:
        request = None
    recipients = request.get("recipients") if isinstance(request, dict) else None
    if (
        not isinstance(recipients, list)
        or not recipients
        or len(recipients) > limit
        or not all(isinstance(r, str) and r.strip() and r.replace("*", "").strip().isdigit() for r in recipients)
    ):
        raise UapiError(
            400,
            "fx_recipients_invalid",
            f"recipients must be a list of 1 to {limit} phone or extension numbers",
        )
    return [r.strip() for r in recipients]


async def _form(request: Request) -> FormMultiDict:
    try:
        return await request.form()
    except ClientException as exc:  # litestar's parser refused the body
        if exc.status_code == 413:
            raise UapiError(413, "request_too_large", "The request is larger than allowed") from None
        raise UapiError(
            400,
            "fx_file_invalid",
            "The files could not be read: the body is not well-formed multipart/form-data (each part must start "
            "with a line --<boundary>, the boundary of the Content-Type, and the body must end with --<boundary>--)",
        ) from None


async def _documents(files: list[UploadFile], limit: int) -> list[tuple[bytes, str]]:
    if len(files) > limit:
        raise UapiError(400, "fx_max_files_reached", f"At most {limit} files can be sent in one fax")
    documents = []
    for upload in files:
        name = (upload.filename or "").rsplit("/", 1)[-1]
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        body = await upload.read()
        if extension not in ALLOWED_EXTENSIONS or not body:
            raise UapiError(
                400, "fx_file_invalid", f"File {name!r} is invalid: allowed file types are jpg, tif, pdf and txt"
            )
        documents.append((body, ALLOWED_EXTENSIONS[extension]))
    return documents


async def _submit_shared(
    jobs: JobStore, account_id: str, requests: list[dict[str, Any]], documents: list[tuple[bytes, str]]
) -> list[FaxJob]:
    """One job per request, all naming the same uploads (stored once), committed together or not at all."""
    async with jobs.submitting(shared_upload_keys(account_id, len(documents)), documents) as submission:
        return [await submission.add(account_id, request) for request in requests]


_CREATE_FAXES_BODY = form_body(
    {"files": FILE, "request": STRING},
    required=("files", "request"),
    description='multipart: one or more "files" parts (jpg, tif, pdf, txt) and a "request" part, '
    'a JSON object with "recipients"',
    media_types=("multipart/form-data",),
)


class VoipNowFaxesController(Controller):
    path = "/uapi/faxes"
    tags = ["VoipNow UAPI"]
    security = UAPI.security
    dependencies = {"caller": Provide(uapi_account)}

    @post(
        "/{user_id:str}/{extension:str}", status_code=200, operation_class=UAPI.operation(204, body=_CREATE_FAXES_BODY)
    )
    async def create_faxes(
        self,
        request: Request,
        caller: NamedDependency[str],
        extension: FromPath[str],
        jobs: Injected[JobStore],
        settings: Injected[ApiSettings],
    ) -> Response:
        """Send the ``files`` parts to every number of the ``request`` part's ``recipients``."""
        if not extension or extension == "@self" or holds_nul(extension):
            raise UapiError(400, "fx_extension_invalid", "extension must be an extension number")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise UapiError(400, "fx_file_invalid", "The request must be multipart/form-data with 'files' parts")
        try:
            form = await _form(request)
            files = [f for f in form.getall("files") if isinstance(f, UploadFile)] if "files" in form else []
            raw_request = form.get("request")
            if isinstance(raw_request, UploadFile):
                raw_request = await raw_request.read()
            recipients = _recipients(raw_request, settings.voipnow.max_recipients)
            documents = await _documents(files, settings.voipnow.max_files)
            if not documents:
                return Response(content=b"", status_code=204)
            requests = [
                validate_fax_request(
                    {"to_number": number, "from_number": extension, "retries": 1, "document": {}},
                    require_document_url=False,
                )
                for number in recipients
            ]
            submitted = await _submit_shared(jobs, caller, requests, documents)
        except UapiError:
            raise
        except FaxValidationError:
            raise UapiError(400, "fx_recipients_invalid", "recipients must be phone or extension numbers") from None
        except Exception as exc:
            return _unexpected(request, exc)
        first = submitted[0]
        return Response({"id": str(first.int_id), "uid": first.id.hex}, status_code=200)
