"""Kazoo users, the account API key, and the two ways to get a token: ``user_auth`` and ``api_auth``."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from fax_api.accounts.rows import AccountUser
from fax_api.accounts.rules import UserValidationError, auth_view, user_view, validate_user
from fax_api.accounts.schemas import ApiAuth, User, UserAuth
from fax_api.accounts.store import AccountStore, UsernameTaken
from fax_api.web.auth import authorized_account
from fax_api.web.injection import Injected
from fax_api.web.kazoo import KazooError, bad_identifier, envelope, parse_text_id, read_kazoo_data, revision_of
from fax_api.web.openapi import KAZOO, kazoo_body
from fax_api.web.paging import KeysetPage, keyset_listing, keyset_page
from fax_runtime.numbers import NotE164, e164


def _invalid_credentials() -> KazooError:
    return KazooError(401, "invalid_credentials", {"message": "invalid credentials"})


def _required(field: str) -> dict[str, Any]:
    return {field: {"required": {"message": "Field is required but missing"}}}


def _valid_user(doc: Any, *, password_required: bool) -> dict[str, Any]:
    try:
        return validate_user(doc, password_required=password_required)
    except UserValidationError as exc:
        raise KazooError(400, "invalid data", exc.errors) from None


def _username_taken(username: str) -> KazooError:
    return KazooError(
        400, "invalid data", {"username": {"unique": {"message": "Value is already in use", "cause": username}}}
    )


def _user_answer(request: Request, user: AccountUser, status_code: int = 200) -> Response:
    data = user_view(user)
    return envelope(request, data, revision=revision_of(user.revision, data), status_code=status_code)


class UsersController(Controller):
    path = "/v2/accounts/{account_id:str}/users"
    dependencies = {"caller": Provide(authorized_account), "page": Provide(keyset_page, sync_to_thread=False)}
    tags = ["users"]
    security = KAZOO.security

    @get("/", summary="List the account's users", operation_class=KAZOO.operation(400))
    async def list_users(
        self,
        request: Request,
        caller: NamedDependency[str],
        accounts: Injected[AccountStore],
        page: NamedDependency[KeysetPage],
    ) -> Response:
        rows = await accounts.user_page(caller, page.start_text_id(), page.limit)
        return keyset_listing(request, page, rows, user_view)

    @put("/", status_code=201, summary="Create a user", operation_class=KAZOO.operation(body=kazoo_body(User)))
    async def create_user(
        self, request: Request, caller: NamedDependency[str], accounts: Injected[AccountStore]
    ) -> Response:
        user = _valid_user(await read_kazoo_data(request), password_required=True)
        try:
            created = await accounts.create_user(caller, user)
        except UsernameTaken:
            raise _username_taken(user["username"]) from None
        return _user_answer(request, created, status_code=201)

    @get("/{user_id:str}", summary="A user", operation_class=KAZOO.operation(404))
    async def get_user(
        self,
        request: Request,
        caller: NamedDependency[str],
        user_id: FromPath[str],
        accounts: Injected[AccountStore],
    ) -> Response:
        user = await accounts.get_user(caller, parse_text_id(user_id))
        if user is None:
            raise bad_identifier(user_id)
        return _user_answer(request, user)

    @post(
        "/{user_id:str}",
        status_code=200,
        summary="Replace a user",
        operation_class=KAZOO.operation(404, body=kazoo_body(User)),
    )
    async def replace_user(
        self,
        request: Request,
        caller: NamedDependency[str],
        user_id: FromPath[str],
        accounts: Injected[AccountStore],
    ) -> Response:
        user = _valid_user(await read_kazoo_data(request), password_required=False)
        current = await accounts.get_user(caller, parse_text_id(user_id))
        if current is None:
            raise bad_identifier(user_id)
        # Kazoo's credentials hash covers the username: a new username needs the password to rehash it.
        if user["password"] is None and user["username"] != current.username:
            raise KazooError(400, "invalid data", _required("password"))
        try:
            updated = await accounts.update_user(caller, current.id, user)
        except UsernameTaken:
            raise _username_taken(user["username"]) from None
        if updated is None:
            raise bad_identifier(user_id)
        return _user_answer(request, updated)

    @delete(
        "/{user_id:str}",
        status_code=200,
        summary="Remove a user (and revoke their tokens)",
        operation_class=KAZOO.operation(404),
    )
    async def delete_user(
        self,
        request: Request,
        caller: NamedDependency[str],
        user_id: FromPath[str],
        accounts: Injected[AccountStore],
    ) -> Response:
        user = await accounts.delete_user(caller, parse_text_id(user_id))
        if user is None:
            raise bad_identifier(user_id)
        return _user_answer(request, user)


class ApiKeyController(Controller):
    path = "/v2/accounts/{account_id:str}/api_key"
    dependencies = {"caller": Provide(authorized_account)}
    tags = ["accounts"]
    security = KAZOO.security

    @get("/", summary="The account's API key (for api_auth)", operation_class=KAZOO.operation())
    async def get_api_key(
        self, request: Request, caller: NamedDependency[str], accounts: Injected[AccountStore]
    ) -> Response:
        api_key = await accounts.api_key(caller)
        if api_key is None:
            raise bad_identifier(caller)
        return envelope(request, {"api_key": api_key})

    @put(
        "/",
        status_code=201,
        summary="Replace the API key; the old key and its tokens stop working",
        operation_class=KAZOO.operation(),
    )
    async def rotate_api_key(
        self, request: Request, caller: NamedDependency[str], accounts: Injected[AccountStore]
    ) -> Response:
        api_key = await accounts.rotate_api_key(caller)
        if api_key is None:
            raise bad_identifier(caller)
        return envelope(request, {"api_key": api_key}, status_code=201)


def _provisioned_form(phone_number: Any) -> str:
    """A number as numbers are provisioned (E.164); "", which is no account's number, for anything else."""
    try:
        return e164(phone_number) if isinstance(phone_number, str) else ""
    except NotE164:
        return ""


class TokenController(Controller):
    path = "/v2"
    tags = ["auth"]

    @put(
        "/user_auth",
        status_code=201,
        summary="A token from user credentials",
        operation_class=KAZOO.operation(401, body=kazoo_body(UserAuth)),
    )
    async def user_auth(self, request: Request, accounts: Injected[AccountStore]) -> Response:
        doc = await read_kazoo_data(request)
        errors: dict[str, Any] = {}
        credentials, method = doc.get("credentials"), doc.get("method", "md5")
        account_name, phone_number = doc.get("account_name"), doc.get("phone_number")
        if not isinstance(credentials, str) or not credentials:
            errors.update(_required("credentials"))
        if method not in ("md5", "sha"):
            errors["method"] = {
                "enum": {"message": "Value not found in enumerated list of values", "target": ["md5", "sha"]}
            }
        if not isinstance(account_name, str) and not isinstance(phone_number, str):
            errors.update(_required("account_name"))
        if errors:
            raise KazooError(400, "invalid data", errors)
        issued = await accounts.token_for_credentials(
            credentials,  # type: ignore[arg-type]
            method,
            account_name if isinstance(account_name, str) else "",
            _provisioned_form(phone_number),
        )
        if issued is None:
            raise _invalid_credentials()
        return envelope(request, auth_view(issued.account_id, issued.user_id), status_code=201, auth_token=issued.token)

    @put(
        "/api_auth",
        status_code=201,
        summary="A token from the account's API key",
        operation_class=KAZOO.operation(401, body=kazoo_body(ApiAuth)),
    )
    async def api_auth(self, request: Request, accounts: Injected[AccountStore]) -> Response:
        api_key = (await read_kazoo_data(request)).get("api_key")
        if not isinstance(api_key, str) or not api_key:
            raise KazooError(400, "invalid data", _required("api_key"))
        issued = await accounts.token_for_api_key(api_key)
        if issued is None:
            raise _invalid_credentials()
        return envelope(request, auth_view(issued.account_id, None), status_code=201, auth_token=issued.token)
