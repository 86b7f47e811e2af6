"""Fax.to users: register, log in, sub-users; the account's API settings and balance."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.di import NamedDependency

from fax_api.faxto import views
from fax_api.faxto.controllers import DEPENDENCIES, TAGS
from fax_api.faxto.dependencies import FaxtoCall, FaxtoParams
from fax_api.faxto.rules import credentials
from fax_api.faxto.store import EmailTaken, FaxtoStore
from fax_api.web.callback_urls import check_faxto_callback_url
from fax_api.web.faxto import FaxtoError
from fax_api.web.injection import Injected
from fax_api.web.openapi import FAXTO, STRING, form_body
from fax_runtime.network_guard import NetworkGuard

_CREDENTIALS_BODY = form_body({"email": STRING, "password": STRING}, required=("email", "password"))
_SUBUSER_BODY = form_body({"email": STRING, "password": STRING}, required=("email", "password"))
_SETTINGS_BODY = form_body(
    {"callback_url": STRING},
    required=("callback_url",),
    description="callback_url: where delivery receipts and receive callbacks are posted; empty to stop them",
)


def _email_taken() -> FaxtoError:
    return FaxtoError(409, "A user with this email already exists")


class FaxtoUsersController(Controller):
    path = "/api/v2"
    tags = TAGS
    dependencies = DEPENDENCIES

    @post("/user", status_code=200, operation_class=FAXTO.operation(409, body=_CREDENTIALS_BODY))
    async def register(self, params: NamedDependency[FaxtoParams], faxto: Injected[FaxtoStore]) -> dict[str, Any]:
        """Register a user: a new account with its own balance; answers the user's api_key."""
        email, password = credentials(params.values)
        try:
            user = await faxto.register(email, password)
        except EmailTaken:
            raise _email_taken() from None
        return {"status": "success", "api_key": user.api_key}

    @post("/user/login", status_code=200, operation_class=FAXTO.operation(401, body=_CREDENTIALS_BODY))
    async def login(self, params: NamedDependency[FaxtoParams], faxto: Injected[FaxtoStore]) -> dict[str, Any]:
        email, password = credentials(params.values)
        user = await faxto.login(email, password)
        if user is None:
            raise FaxtoError(401, "Wrong email or password")
        return {"status": "success", "api_key": user.api_key}

    @post(
        "/subuser", status_code=200, security=FAXTO.security, operation_class=FAXTO.operation(409, body=_SUBUSER_BODY)
    )
    async def subuser(self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore]) -> dict[str, Any]:
        """A sub-user of the caller: the same account and balance, its own api_key."""
        email, password = credentials(call.values)
        try:
            subuser = await faxto.register(email, password, parent=call.user)
        except EmailTaken:
            raise _email_taken() from None
        return {"status": "success", "api_key": subuser.api_key}

    @get("/settings", security=FAXTO.security, operation_class=FAXTO.operation())
    async def settings(self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore]) -> dict[str, Any]:
        """The account's API settings: the callback URL of delivery receipts and receive callbacks."""
        return {"status": "success", "callback_url": await faxto.callback_url(call.user.account_id)}

    @post("/settings", status_code=200, security=FAXTO.security, operation_class=FAXTO.operation(body=_SETTINGS_BODY))
    async def change_settings(
        self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore], guard: Injected[NetworkGuard]
    ) -> dict[str, Any]:
        """Set the callback URL (Fax.to's API settings page): every later send posts its delivery receipt there,
        and every fax received on the account's numbers its receive callback."""
        if "callback_url" not in call.values:
            raise FaxtoError(400, "callback_url is required (empty to remove it)")
        url = await check_faxto_callback_url(guard, call.values)
        await faxto.set_callback_url(call.user.account_id, url)
        return {"status": "success", "callback_url": url}

    @get("/balance", security=FAXTO.security, operation_class=FAXTO.operation())
    async def balance(self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore]) -> dict[str, Any]:
        return {"status": "success", "balance": views.money(await faxto.balance(call.user.account_id))}
