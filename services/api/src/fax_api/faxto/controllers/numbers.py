"""Fax.to's number inventory, provisioning and the account's numbers."""

from __future__ import annotations

from typing import Any, TypeVar

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from fax_api.faxto import inventory, views
from fax_api.faxto.controllers import DEPENDENCIES, TAGS
from fax_api.faxto.dependencies import FaxtoCall
from fax_api.faxto.store import FaxtoStore
from fax_api.web.faxto import FaxtoError
from fax_api.web.injection import Injected
from fax_api.web.openapi import FAXTO, INTEGER, STRING, form_body, query_parameter
from fax_api.web.paging import NUMBERED_PAGE_QUERY, NumberedPage

T = TypeVar("T")
_PROVISION_BODY = form_body({"did_group_id": STRING}, description="did_group_id: the DID group (any, without it)")
_DID_GROUP_QUERY = (
    query_parameter("didGroupIds", description="comma-separated DID group ids"),
    query_parameter("stateId"),
    query_parameter("cityNamePattern"),
    query_parameter("areaCode"),
)
_PROVISION_QUERY = (query_parameter("did_group_id", INTEGER, description="the DID group (any, without it)"),)
_API_KEY_BODY = form_body({"api_key": STRING}, description="no field but the api_key, here or in the query string")


def _known(found: T | None, country_code: str) -> T:
    """What the inventory has of a country; 404 for a country it does not have."""
    if found is None:
        raise FaxtoError(404, f"Unknown country code {country_code}")
    return found


class FaxtoNumbersController(Controller):
    """Fax.to's number inventory, provisioning and the account's numbers.

    The inventory calls take ``call`` only to be authenticated: a call without a valid api_key answers 401.
    """

    path = "/api/v2"
    tags = TAGS
    security = FAXTO.security
    dependencies = DEPENDENCIES

    @get("/countries", operation_class=FAXTO.operation())
    async def countries(self, call: NamedDependency[FaxtoCall]) -> dict[str, Any]:
        return {"status": "success", "data": inventory.countries()}

    @get("/states/{country_code:str}", operation_class=FAXTO.operation(404))
    async def states(self, call: NamedDependency[FaxtoCall], country_code: FromPath[str]) -> dict[str, Any]:
        return {"status": "success", "states": _known(inventory.states(country_code), country_code)}

    @get("/areacodes/{country_code:str}/{state_id:str}", operation_class=FAXTO.operation(404))
    async def area_codes(
        self, call: NamedDependency[FaxtoCall], country_code: FromPath[str], state_id: FromPath[str]
    ) -> dict[str, Any]:
        return {"status": "success", "areacodes": _known(inventory.area_codes(country_code, state_id), country_code)}

    @get("/countries/{country_code:str}/didgroups", operation_class=FAXTO.operation(400, 404, query=_DID_GROUP_QUERY))
    async def did_groups(self, call: NamedDependency[FaxtoCall], country_code: FromPath[str]) -> dict[str, Any]:
        query = call.values
        try:
            ids = {int(i) for i in query["didGroupIds"].split(",") if i.strip()} if query.get("didGroupIds") else None
        except ValueError:
            raise FaxtoError(400, "didGroupIds must be a comma-separated list of numbers") from None
        found = inventory.did_groups(
            country_code, ids, query.get("stateId"), query.get("cityNamePattern"), query.get("areaCode")
        )
        return {"status": "success", "data": _known(found, country_code)}

    @post("/provision-numbers", status_code=200, operation_class=FAXTO.operation(404, 409, body=_PROVISION_BODY))
    async def provision(self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore]) -> dict[str, Any]:
        """A free number (of ``did_group_id`` when given) becomes the caller's: its faxes arrive in its inbox."""
        return await self._provision(call, faxto, call.values.get("did_group_id"))

    @get("/provision-numbers", operation_class=FAXTO.operation(404, 409, query=_PROVISION_QUERY))
    async def provision_by_get(self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore]) -> dict[str, Any]:
        """The same provisioning, its parameters in the query string."""
        return await self._provision(call, faxto, call.values.get("did_group_id"))

    @post(
        "/countries/didgroups/{did_group_id:int}/provision",
        status_code=200,
        operation_class=FAXTO.operation(404, 409, body=_API_KEY_BODY),
    )
    async def provision_in_group(
        self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore], did_group_id: FromPath[int]
    ) -> dict[str, Any]:
        """A free number of the DID group becomes the caller's: the path of the text's PHP example (a POST)."""
        return await self._provision(call, faxto, did_group_id)

    @get("/countries/didgroups/{did_group_id:int}/provision", operation_class=FAXTO.operation(404, 409))
    async def provision_in_group_by_get(
        self, call: NamedDependency[FaxtoCall], faxto: Injected[FaxtoStore], did_group_id: FromPath[int]
    ) -> dict[str, Any]:
        """The same, as the text's Python and Ruby examples call it (a GET)."""
        return await self._provision(call, faxto, did_group_id)

    @staticmethod
    async def _provision(call: FaxtoCall, faxto: FaxtoStore, wanted: Any) -> dict[str, Any]:
        """A free number of the DID group ``wanted`` (any group when None) becomes the caller's account's."""
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
        number = await faxto.provision(call.user.account_id, candidates)
        if number is None:
            raise FaxtoError(409, "No number is free in this DID group")
        return {
            "status": "success",
            "message": "Number has been provisioned.",
            "data": views.provisioned_number(number),
        }

    @get("/numbers", operation_class=FAXTO.operation(400, query=NUMBERED_PAGE_QUERY))
    async def numbers(
        self,
        request: Request,
        call: NamedDependency[FaxtoCall],
        faxto: Injected[FaxtoStore],
    ) -> dict[str, Any]:
        page = NumberedPage.asked(call.values)
        total, rows = await faxto.numbers(call.user.account_id, page.per_page, page.offset)
        data = [views.number_entry(row) for row in rows]
        return {"status": "success", "numbers": data, "meta": {"pagination": page.meta(request, total, len(data))}}
