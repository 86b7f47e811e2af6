"""The number inventory Fax.to numbers are provisioned from, shipped as ``data/numbers.json``."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

# The trunk every provisioned number arrives on: the platform's one SIP line (FAX_SIP_TRUNK), which routes calls by
# the called number, not by trunk.
TRUNK_ID = 1


@functools.cache
def _inventory() -> list[dict[str, Any]]:
    text = resources.files("fax_api.faxto").joinpath("data/numbers.json").read_text(encoding="utf-8")
    return json.loads(text)["countries"]


def countries() -> list[dict[str, Any]]:
    return [{k: c[k] for k in ("country", "slug", "a2_code", "dial_code")} for c in _inventory()]


def country(code: str) -> dict[str, Any] | None:
    return next((c for c in _inventory() if c["a2_code"] == code.upper()), None)


def states(code: str) -> list[dict[str, Any]] | None:
    found = country(code)
    return None if found is None else [dict(s) for s in found["states"]]


def area_codes(code: str, state_id: str) -> list[dict[str, Any]] | None:
    found = country(code)
    if found is None:
        return None
    codes = sorted({g["area_code"] for g in found["did_groups"] if str(g["state_id"]) == state_id})
    return [{"country_code": found["a2_code"], "state_id": int(state_id), "area_code": a} for a in codes]


def did_groups(
    code: str,
    group_ids: set[int] | None = None,
    state_id: str | None = None,
    city_pattern: str | None = None,
    area_code: str | None = None,
) -> list[dict[str, Any]] | None:
    """DID groups of a country, filtered as the API's query parameters ask (city pattern: SQL LIKE with %)."""
    found = country(code)
    if found is None:
        return None
    prefix = city_pattern.rstrip("%").upper() if city_pattern else None
    return [
        {"did_group_id": g["did_group_id"], "area_code": g["area_code"], "city_name": g["city_name"]}
        for g in found["did_groups"]
        if (group_ids is None or g["did_group_id"] in group_ids)
        and (state_id is None or str(g["state_id"]) == state_id)
        and (prefix is None or g["city_name"].startswith(prefix))
        and (area_code is None or g["area_code"] == area_code)
    ]


def group(did_group_id: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The DID group and its country."""
    for c in _inventory():
        for g in c["did_groups"]:
            if g["did_group_id"] == did_group_id:
                return g, c
    return None


def all_groups() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(g, c) for c in _inventory() for g in c["did_groups"]]
