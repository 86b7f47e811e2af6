"""The notifier's access to Postgres: the only module here that speaks SQL."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import asyncpg
import msgspec

from fax_notifier.domain import Channel, Kind, PlannedDelivery
from fax_runtime.sql import load_queries

Q = load_queries("fax_notifier")


class JobView(msgspec.Struct, frozen=True, kw_only=True):
    """What notifications need to know about an outbound job."""

    id: uuid.UUID
    int_id: int
    account_id: str
    status: str
    request: dict[str, Any]
    to_number: str
    from_number: str
    attempts: int
    pages: int | None
    tiff_key: str | None
    error_message: str
    faxbox_settings: dict[str, Any] | None


class ClaimedDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery this process now owns until its lease runs out. ``delivery_key`` names it to its recipient
    (``X-Fax-Delivery-Id``), the same on every attempt."""

    id: int
    delivery_key: uuid.UUID
    event_id: uuid.UUID
    channel: Channel
    recipient: str
    kind: Kind
    account_id: str
    job_id: uuid.UUID | None
    payload: dict[str, Any]
    attempts: int
    expired: bool


def _json(value: Any) -> Any:
    """The pool decodes jsonb (fax_runtime.db); a bare connection without that codec hands back text."""
    return json.loads(value) if isinstance(value, str) else value


def _claimed(row: asyncpg.Record) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=row["id"],
        delivery_key=row["delivery_key"],
        event_id=row["event_id"],
        channel=Channel(row["channel"]),
        recipient=row["recipient"],
        kind=Kind(row["kind"]),
        account_id=row["account_id"],
        job_id=row["job_id"],
        payload=_json(row["payload"]),
        attempts=row["attempts"],
        expired=row["expired"],
    )


class UnnotifiedJob(msgspec.Struct, frozen=True, kw_only=True):
    """A finished job nothing was planned for."""

    id: uuid.UUID
    account_id: str
    status: str
    attempts: int
    pages: int | None
    error_message: str
    result_code: int


class UnnotifiedReception(msgspec.Struct, frozen=True, kw_only=True):
    """A received (or failed) inbound fax nothing was planned for."""

    id: uuid.UUID
    account_id: str
    faxbox_id: str | None
    status: str
    from_number: str
    to_number: str
    pages: int
    tiff_key: str | None
    error_message: str
    completed_at: dt.datetime


class NotifierStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def reception(self, fax_id: uuid.UUID) -> dict[str, Any]:
        """A received fax's spandsp statistics (its ``rx_result``); empty if the row is gone."""
        row = await self._pool.fetchrow(Q["inbound_for_notification"], fax_id)
        return (_json(row["rx_result"]) or {}) if row else {}

    async def account_callback_url(self, account_id: str) -> str | None:
        return await self._pool.fetchval(Q["account_callback_url"], account_id)

    async def job(self, job_id: uuid.UUID) -> JobView | None:
        row = await self._pool.fetchrow(Q["job_for_notification"], job_id)
        if row is None:
            return None
        values = dict(row)
        values["request"] = _json(values["request"]) or {}
        values["faxbox_settings"] = _json(values["faxbox_settings"])
        values.pop("tx_result", None)
        return msgspec.convert(values, JobView)

    async def faxbox_settings(self, faxbox_id: str, account_id: str) -> dict[str, Any] | None:
        value = await self._pool.fetchval(Q["faxbox_settings"], faxbox_id, account_id)
        return _json(value) if value is not None else None

    async def plan(
        self,
        subject: str,
        event_id: uuid.UUID,
        account_id: str,
        job_id: uuid.UUID | None,
        deliveries: list[PlannedDelivery],
        retry_for: dict[Channel, float],
    ) -> list[int]:
        """Record the deliveries an outcome causes; the ids of those that are new and still to be sent.

        ``subject`` names the outcome (``job:<id>``, ``inbound:<id>``, ``event:<id>``): the unique (subject,
        channel, recipient) key makes a redelivered event, or one the reconciler planned first, a no-op. An invalid
        recipient is recorded as failed straight away, with an attempt row saying why: reported, never retried.
        """
        new: list[int] = []
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["plan_subject"], subject)
            for delivery in deliveries:
                status = "failed" if delivery.invalid else "pending"
                delivery_id = await conn.fetchval(
                    Q["plan_delivery"],
                    subject,
                    event_id,
                    delivery.channel.value,
                    delivery.recipient,
                    delivery.kind.value,
                    account_id,
                    job_id,
                    delivery.payload,
                    retry_for[delivery.channel],
                    status,
                    delivery.invalid,
                )
                if delivery_id is None:
                    continue
                if delivery.invalid:
                    await conn.execute(Q["record_attempt"], delivery_id, 0, "failed", delivery.invalid)
                else:
                    new.append(delivery_id)
        return new

    async def claim(self, delivery_id: int, lease: float) -> ClaimedDelivery | None:
        """Take a due delivery; None if it is done or someone else holds it."""
        row = await self._pool.fetchrow(Q["claim_delivery"], delivery_id, lease)
        return _claimed(row) if row else None

    async def claim_due(self, limit: int, lease: float) -> list[ClaimedDelivery]:
        """Take up to ``limit`` deliveries whose retry time has come (SKIP LOCKED: sweepers never collide)."""
        rows = await self._pool.fetch(Q["claim_due"], limit, lease)
        return [_claimed(row) for row in rows]

    async def finish(self, delivery: ClaimedDelivery, status: str, detail: str) -> None:
        """Close a delivery as ``sent`` or ``failed`` and log the attempt, atomically."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["record_attempt"], delivery.id, delivery.attempts, status, detail)
            await conn.execute(Q["finish_delivery"], delivery.id, "sent" if status == "sent" else "failed", detail)

    async def retry_later(self, delivery: ClaimedDelivery, detail: str, interval: float) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["record_attempt"], delivery.id, delivery.attempts, "retry", detail)
            await conn.execute(Q["reschedule_delivery"], delivery.id, detail, interval)

    async def callback_secret(self, account_id: str) -> str | None:
        return await self._pool.fetchval(Q["callback_secret"], account_id)

    async def unnotified_jobs(self, since: dt.datetime, until: dt.datetime) -> list[UnnotifiedJob]:
        rows = await self._pool.fetch(Q["unnotified_jobs"], since, until)
        return [msgspec.convert(dict(row), UnnotifiedJob) for row in rows]

    async def unnotified_receptions(self, since: dt.datetime, until: dt.datetime) -> list[UnnotifiedReception]:
        rows = await self._pool.fetch(Q["unnotified_receptions"], since, until)
        return [msgspec.convert(dict(row), UnnotifiedReception) for row in rows]
