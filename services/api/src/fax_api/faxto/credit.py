"""``python -m fax_api.faxto.credit EMAIL AMOUNT``: an operator tops up a Fax.to user's balance.

The Fax.to API has no call that adds money, so the operator credits the account here; every credit is recorded
in ``balance_credits``. A negative amount takes money back, never below zero. Reads FAX_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from decimal import Decimal, InvalidOperation

import asyncpg

from fax_runtime.sql import load_queries

Q = load_queries("fax_api.faxto", "queries.sql")


class CreditRefused(Exception):
    pass


async def credit(database_url: str, email: str, amount: Decimal, note: str = "") -> Decimal:
    """Add ``amount`` to the balance of ``email``'s account; the new balance."""
    conn = await asyncpg.connect(database_url)
    try:
        user = await conn.fetchrow(Q["faxto_user_by_email"], email.strip().lower())
        if user is None:
            raise CreditRefused(f"no Fax.to user {email}")
        balance = await conn.fetchval(Q["credit_balance"], user["account_id"], amount, note)
        if balance is None:
            raise CreditRefused(f"{amount} would take the balance of {email} below zero")
        return balance
    finally:
        await conn.close()


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None
    if not value.is_finite() or value == 0:
        raise argparse.ArgumentTypeError("the amount must be a non-zero number")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fax_api.faxto.credit", description=__doc__.split("\n")[0])
    parser.add_argument("email", help="the Fax.to user (any user of the account: sub-users share the balance)")
    parser.add_argument("amount", type=_amount, help="money to add; negative to take back")
    parser.add_argument("--note", default="", help="why, kept with the credit (an invoice number, say)")
    args = parser.parse_args(argv)
    database_url = os.environ.get("FAX_DATABASE_URL", "")
    if not database_url:
        parser.error("FAX_DATABASE_URL is not set")
    try:
        balance = asyncio.run(credit(database_url, args.email, args.amount, args.note))
    except CreditRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(f"{args.email}: balance {balance:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
