"""Kazoo ``/v2/accounts/{account_id}/faxes`` routes: decode, call the store, answer in Kazoo's envelope."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, Request, Response, get, put
from litestar.di import Provide
from litestar.params import Parameter

from fax_api.auth import authorized_account
from fax_api.faxes import (
    FINISHED_STATES,
    QUEUED_STATES,
    FaxValidationError,
    job_summary,
    job_view,
    validate_fax_request,
)
from fax_api.kazoo import KazooError, bad_identifier, envelope, revision_of
from fax_api.kazoo_request import OutgoingFax, kazoo_body
from fax_api.store import ApiStore


def _parse_job_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(hex=raw)
    except ValueError:
        raise bad_identifier(raw) from None


async def _read_kazoo_request(request: Request) -> dict:
    # Kazoo clients (its own curl examples) send JSON without a JSON content type, so the body is read as JSON
    # whatever the header says; multipart is the exception.
    if request.headers.get("content-type", "").lower().startswith("multipart/"):
        raise KazooError(415, "unsupported_media_type", {"message": "multipart fax uploads are not supported yet"})
    body = await request.body()
    try:
        envelope_in = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise KazooError(400, "invalid request body", {"message": "malformed JSON"}) from None
    if not isinstance(envelope_in, dict) or not isinstance(envelope_in.get("data"), dict):
        raise KazooError(
            400, "invalid request body", {"message": "the request must be a JSON object with a data object"}
        )
    return envelope_in["data"]


class FaxesController(Controller):
    path = "/v2/accounts/{account_id:str}/faxes"
    dependencies = {"caller": Provide(authorized_account)}
    tags = ["faxes"]

    @put(
        ["/", "/outgoing"],
        status_code=201,
        summary="Create an outgoing fax from a document URL",
        operation_class=kazoo_body(OutgoingFax),
    )
    async def create_fax(self, request: Request, caller: str, store: ApiStore) -> Response:
        try:
            fax_request = validate_fax_request(await _read_kazoo_request(request))
        except FaxValidationError as exc:
            raise KazooError(400, "invalid data", exc.errors) from None
        job = await store.submit_job(caller, fax_request)
        data = job_view(job)
        return envelope(request, data, revision=revision_of(job["revision"], data), status_code=201)

    @get("/outgoing", summary="List outgoing faxes (queued or being sent)")
    async def list_outgoing(
        self, request: Request, caller: str, store: ApiStore, page_size: int = Parameter(default=50, ge=1, le=500)
    ) -> Response:
        jobs = await store.list_jobs(caller, QUEUED_STATES, page_size)
        return envelope(request, [job_summary(j) for j in jobs], page_size=len(jobs))

    @get("/outgoing/{fax_id:str}", summary="A queued outgoing fax")
    async def get_outgoing(self, request: Request, caller: str, fax_id: str, store: ApiStore) -> Response:
        return await self._job(request, caller, fax_id, store, QUEUED_STATES)

    @get("/outbox", summary="List sent or failed faxes")
    async def list_outbox(
        self, request: Request, caller: str, store: ApiStore, page_size: int = Parameter(default=50, ge=1, le=500)
    ) -> Response:
        jobs = await store.list_jobs(caller, FINISHED_STATES, page_size)
        return envelope(request, [job_summary(j) for j in jobs], page_size=len(jobs))

    @get("/outbox/{fax_id:str}", summary="A sent or failed fax")
    async def get_outbox(self, request: Request, caller: str, fax_id: str, store: ApiStore) -> Response:
        return await self._job(request, caller, fax_id, store, FINISHED_STATES)

    @staticmethod
    async def _job(request: Request, caller: str, fax_id: str, store: ApiStore, states: tuple[str, ...]) -> Response:
        job = await store.get_job(caller, _parse_job_id(fax_id), states)
        if job is None:
            raise bad_identifier(fax_id)
        data = job_view(job)
        return envelope(request, data, revision=revision_of(job["revision"], data))
