"""What a Fax.to handler is given: the call's parameters, wherever the request carries them (``params``), with the
user its ``api_key`` names (``call``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import ClientException

from fax_api.faxto.rows import FaxtoUser
from fax_api.faxto.store import FaxtoStore
from fax_api.web.faxto import FaxtoError
from fax_api.web.injection import Injected
from fax_runtime.db import holds_nul


@dataclass(frozen=True)
class FaxtoParams:
    """Every parameter of a call: query string, then the body's (a form or JSON object; the body wins)."""

    values: dict[str, Any]
    files: dict[str, UploadFile] = field(default_factory=dict)  # multipart file parts, by name


async def faxto_params(request: Request) -> FaxtoParams:
    """The ``params`` dependency: Fax.to takes a call's parameters from the query string, a url-encoded or multipart
    form, or a JSON body, as its clients send them; any of them malformed (or holding a NUL) is a 400."""
    values: dict[str, Any] = dict(request.query_params)
    files: dict[str, UploadFile] = {}
    content_type = request.headers.get("content-type", "")
    if request.method == "POST":
        # Read first: a body over the app's limit is its 413 (web.errors), not a malformed form or JSON.
        await request.body()
        if content_type.startswith("application/json"):
            try:
                body = await request.json()
            except Exception:
                raise FaxtoError(400, "The request body is not valid JSON") from None
            if isinstance(body, dict):
                values.update(body)
        elif content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            try:
                form = await request.form()
            except ClientException:
                raise FaxtoError(400, "The request body is not a well-formed form of its Content-Type") from None
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[name] = value
                else:
                    values[name] = value
    # Names, values and file names are stored or looked up as text, which cannot hold a NUL.
    if holds_nul(values) or any(holds_nul(upload.filename or "") for upload in files.values()):
        raise FaxtoError(400, "Parameters cannot contain NUL characters")
    return FaxtoParams(values, files)


@dataclass(frozen=True)
class FaxtoCall:
    """A call made with a valid ``api_key``: its user and its parameters."""

    user: FaxtoUser
    values: dict[str, Any]
    files: dict[str, UploadFile]


async def faxto_call(params: NamedDependency[FaxtoParams], faxto: Injected[FaxtoStore]) -> FaxtoCall:
    """The ``call`` dependency: the call's parameters and the user of its ``api_key``; 401 without one."""
    api_key = params.values.get("api_key")
    user = await faxto.user_for_key(api_key) if isinstance(api_key, str) and api_key else None
    if user is None:
        raise FaxtoError(401, "Invalid or missing api_key")
    return FaxtoCall(user, params.values, params.files)
