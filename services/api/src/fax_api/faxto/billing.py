"""Jobs sent through a dialect that bills: the cost is reserved in the transaction that creates the job.

The job itself is submitted as every job is (``fax_jobs.JobStore.submitting``: same row, same ``fax.job.submitted``
event, same S3 layout), in the transaction that reserves its cost. Settling is not done here: migration 0006's
trigger on ``fax_jobs`` settles the reservation when the job completes and gives it back when it fails or is deleted
(``fax_jobs.lifecycle`` says which transitions those are).
"""

from __future__ import annotations

import re
import struct
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from fax_jobs import FaxJob, JobStore, upload_keys
from fax_runtime.sql import load_queries

Q = load_queries("fax_api.faxto", "queries.sql")
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![s\w])")


class InsufficientBalance(Exception):
    def __init__(self, cost: Decimal, balance: Decimal) -> None:
        super().__init__(f"insufficient balance: the fax costs {cost}, the balance is {balance}")
        self.cost = cost
        self.balance = balance


def count_pages(body: bytes) -> int:
    """Pages of a PDF (page objects) or TIFF (IFD chain) without rendering it; 1 for anything else.

    An estimate for pricing before sending; the fetcher's render is what is transmitted.
    """
    if body.startswith(b"%PDF"):
        return max(1, len(_PDF_PAGE.findall(body)))
    if body[:4] in (b"II*\x00", b"MM\x00*"):
        endian = "<" if body[:2] == b"II" else ">"
        pages, offset, seen = 0, struct.unpack(endian + "I", body[4:8])[0], set()
        while 8 <= offset < len(body) - 2 and offset not in seen and pages < 10_000:
            seen.add(offset)
            pages += 1
            entries = struct.unpack(endian + "H", body[offset : offset + 2])[0]
            end = offset + 2 + entries * 12
            if end + 4 > len(body):
                break
            offset = struct.unpack(endian + "I", body[end : end + 4])[0]
        return max(1, pages)
    return 1


async def open_balance(conn: asyncpg.Connection | asyncpg.Pool, account_id: str, initial: Decimal) -> None:
    await conn.execute(Q["open_balance"], account_id, initial)


async def balance(pool: asyncpg.Pool, account_id: str) -> Decimal:
    return await pool.fetchval(Q["balance"], account_id) or Decimal(0)


async def submit_billed_job(
    jobs: JobStore,
    account_id: str,
    request: dict[str, Any],
    documents: Sequence[tuple[bytes, str]],
    cost: Decimal,
) -> tuple[FaxJob, Decimal]:
    """Reserve ``cost`` and create the job atomically; InsufficientBalance (nothing created, nothing kept in S3) when
    it cannot pay.

    Returns the job and the balance left after the reservation.
    """
    job_id = uuid.uuid4()
    # Documents go to S3 before the balance row is locked, so concurrent sends do not queue behind uploads.
    async with jobs.submitting(upload_keys(job_id, len(documents)), documents) as submission:
        conn = submission.connection
        left = await conn.fetchval(Q["reserve_balance"], account_id, cost)
        if left is None:
            raise InsufficientBalance(cost, await conn.fetchval(Q["balance"], account_id) or Decimal(0))
        await conn.execute(Q["insert_charge"], job_id, account_id, cost)
        job = await submission.add(account_id, request, job_id=job_id)
    return job, left
