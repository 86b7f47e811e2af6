"""Per-page prices by destination prefix, from the rate table shipped as ``data/rates.csv`` (longest prefix wins)."""

from __future__ import annotations

import csv
import functools
from decimal import Decimal
from importlib import resources


@functools.cache
def _rates() -> dict[str, Decimal]:
    text = resources.files("fax_api.faxto").joinpath("data/rates.csv").read_text(encoding="utf-8")
    return {row["prefix"]: Decimal(row["price_per_page"]) for row in csv.DictReader(text.splitlines())}


def digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def price_per_page(number: str) -> Decimal | None:
    """The price of one page to ``number`` (E.164, with or without +), None where no rate covers it."""
    wanted = digits(number)
    rates = _rates()
    for length in range(len(wanted), 0, -1):
        if wanted[:length] in rates:
            return rates[wanted[:length]]
    return None


def fax_cost(number: str, pages: int) -> Decimal | None:
    rate = price_per_page(number)
    return None if rate is None else rate * pages
