"""Kazoo ``/v2/accounts/{account_id}/faxboxes``: list, create, fetch, replace, patch, remove."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from fax_api.faxboxes.rows import FaxboxRecord
from fax_api.faxboxes.rules import (
    FaxboxValidationError,
    faxbox_document,
    faxbox_summary,
    faxbox_view,
    validate_faxbox,
)
from fax_api.faxboxes.schemas import Faxbox, FaxboxPatch
from fax_api.faxboxes.store import AddressTaken, FaxboxFields, FaxboxStore
from fax_api.web.auth import authorized_account
from fax_api.web.callback_urls import check_kazoo_callback_urls
from fax_api.web.injection import Injected
from fax_api.web.kazoo import (
    KazooError,
    bad_identifier,
    envelope,
    merge_patch,
    parse_text_id,
    read_kazoo_data,
    revision_of,
)
from fax_api.web.openapi import KAZOO, kazoo_body
from fax_api.web.paging import KeysetPage, keyset_listing, keyset_page
from fax_runtime.network_guard import NetworkGuard


def _validated(doc: Any) -> FaxboxFields:
    try:
        return validate_faxbox(doc)
    except FaxboxValidationError as exc:
        raise KazooError(400, "invalid data", exc.errors) from None


def _address_taken(address: str | None) -> KazooError:
    # The same answer whoever owns the address: nothing about the other faxbox or account is told.
    return KazooError(
        400,
        "invalid data",
        {
            "custom_smtp_email_address": {
                "unique": {"message": "Value is already in use", "cause": address or ""},
            }
        },
    )


def _answer(request: Request, faxbox: FaxboxRecord, status_code: int = 200) -> Response:
    data = faxbox_view(faxbox)
    return envelope(request, data, revision=revision_of(faxbox.revision, data), status_code=status_code)


class FaxboxesController(Controller):
    path = "/v2/accounts/{account_id:str}/faxboxes"
    dependencies = {"caller": Provide(authorized_account), "page": Provide(keyset_page, sync_to_thread=False)}
    tags = ["faxboxes"]
    security = KAZOO.security

    @get("/", summary="List the account's faxboxes", operation_class=KAZOO.operation(400))
    async def list_faxboxes(
        self,
        request: Request,
        caller: NamedDependency[str],
        faxboxes: Injected[FaxboxStore],
        page: NamedDependency[KeysetPage],
    ) -> Response:
        rows = await faxboxes.page(caller, page.start_text_id(), page.limit)
        return keyset_listing(request, page, rows, faxbox_summary)

    @put("/", status_code=201, summary="Create a faxbox", operation_class=KAZOO.operation(body=kazoo_body(Faxbox)))
    async def create_faxbox(
        self,
        request: Request,
        caller: NamedDependency[str],
        faxboxes: Injected[FaxboxStore],
        guard: Injected[NetworkGuard],
    ) -> Response:
        name, custom, settings = _validated(await read_kazoo_data(request))
        await check_kazoo_callback_urls(guard, settings)
        try:
            faxbox = await faxboxes.create(caller, name, custom, settings)
        except AddressTaken as exc:
            raise _address_taken(exc.address) from None
        return _answer(request, faxbox, status_code=201)

    @get("/{faxbox_id:str}", summary="A faxbox", operation_class=KAZOO.operation(404))
    async def get_faxbox(
        self,
        request: Request,
        caller: NamedDependency[str],
        faxbox_id: FromPath[str],
        faxboxes: Injected[FaxboxStore],
    ) -> Response:
        faxbox = await faxboxes.get(caller, parse_text_id(faxbox_id))
        if faxbox is None:
            raise bad_identifier(faxbox_id)
        return _answer(request, faxbox)

    @post(
        "/{faxbox_id:str}",
        status_code=200,
        summary="Replace a faxbox",
        operation_class=KAZOO.operation(404, body=kazoo_body(Faxbox)),
    )
    async def replace_faxbox(
        self,
        request: Request,
        caller: NamedDependency[str],
        faxbox_id: FromPath[str],
        faxboxes: Injected[FaxboxStore],
        guard: Injected[NetworkGuard],
    ) -> Response:
        fields = _validated(await read_kazoo_data(request))
        await check_kazoo_callback_urls(guard, fields[2])
        return await self._update(request, caller, faxbox_id, faxboxes, lambda _current: fields)

    @patch(
        "/{faxbox_id:str}",
        summary="Change some fields of a faxbox",
        operation_class=KAZOO.operation(404, body=kazoo_body(FaxboxPatch)),
    )
    async def patch_faxbox(
        self,
        request: Request,
        caller: NamedDependency[str],
        faxbox_id: FromPath[str],
        faxboxes: Injected[FaxboxStore],
        guard: Injected[NetworkGuard],
    ) -> Response:
        changes = await read_kazoo_data(request)
        await check_kazoo_callback_urls(guard, changes)
        return await self._update(
            request,
            caller,
            faxbox_id,
            faxboxes,
            lambda current: _validated(merge_patch(faxbox_document(current), changes)),
        )

    @delete(
        "/{faxbox_id:str}",
        status_code=200,
        summary="Remove a faxbox (its numbers are unassigned)",
        operation_class=KAZOO.operation(404),
    )
    async def delete_faxbox(
        self,
        request: Request,
        caller: NamedDependency[str],
        faxbox_id: FromPath[str],
        faxboxes: Injected[FaxboxStore],
    ) -> Response:
        faxbox = await faxboxes.delete(caller, parse_text_id(faxbox_id))
        if faxbox is None:
            raise bad_identifier(faxbox_id)
        return _answer(request, faxbox)

    @staticmethod
    async def _update(
        request: Request,
        caller: str,
        faxbox_id: str,
        faxboxes: FaxboxStore,
        build: Callable[[FaxboxRecord], FaxboxFields],
    ) -> Response:
        try:
            faxbox = await faxboxes.update(caller, parse_text_id(faxbox_id), build)
        except AddressTaken as exc:
            raise _address_taken(exc.address) from None
        if faxbox is None:
            raise bad_identifier(faxbox_id)
        return _answer(request, faxbox)
