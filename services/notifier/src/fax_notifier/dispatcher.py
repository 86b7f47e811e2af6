"""Sends claimed deliveries over their channel and records the outcome; the sweeper sends the ones that are due.

Once per (outcome, channel, recipient): the row is created once, claimed under a lease, and closed as sent in the
same transaction that logs the attempt; that close is retried until it commits, so Postgres away as a delivery ends
delays it, never reopens it. The one window left is a crash between the recipient accepting a message and that
commit: it ends in one resend after the claim lease (``FAX_NOTIFY_CLAIM_LEASE``), never a lost notification, and
the resend carries the same ``X-Fax-Delivery-Id`` (a callback) or Message-ID (an email) for the recipient to drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from fax_notifier.attachments import FaxAttachments
from fax_notifier.domain import Channel, Kind, encode_callback_body, sign
from fax_notifier.http import GuardedHttp
from fax_notifier.mail import Mailer, build_message
from fax_notifier.sms import SmsProvider
from fax_notifier.store import ClaimedDelivery, NotifierStore
from fax_notifier.templates import render_email, render_sms
from fax_notifier.transport import Outcome, SendResult
from fax_runtime.metrics import default_metrics
from fax_runtime.transient import UNBOUNDED, RetryPolicy, retry_transient

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Fax-Signature"
DELIVERY_ID_HEADER = "X-Fax-Delivery-Id"
DELIVERY_ID_FIELD = "delivery_id"  # the same id in the body, where the signature covers it
# What a delivery reads before sending (the account's secret, an attachment): an outage is waited out this long,
# after which the attempt is rescheduled like any transient failure.
BEFORE_SENDING = RetryPolicy(give_up_after_s=30.0)


class Dispatcher:
    def __init__(
        self,
        store: NotifierStore,
        mailer: Mailer,
        http: GuardedHttp,
        sms: SmsProvider | None,
        attachments: FaxAttachments,
        *,
        sender: str,
        callback_retry_interval: float,
        message_retry_interval: float,
        lease: float,
    ) -> None:
        self._store = store
        self._mailer = mailer
        self._http = http
        self._sms = sms
        self._attachments = attachments
        self._sender = sender
        self._intervals = {
            Channel.CALLBACK: callback_retry_interval,
            Channel.EMAIL: message_retry_interval,
            Channel.SMS: message_retry_interval,
        }
        self._lease = lease

    async def send_new(self, delivery_ids: list[int]) -> None:
        """Send deliveries a handler just planned, concurrently (one slow recipient holds up no other)."""
        claimed = [d for d in await asyncio.gather(*(self._store.claim(i, self._lease) for i in delivery_ids)) if d]
        await asyncio.gather(*(self.deliver(d) for d in claimed))

    async def sweep(self, limit: int = 100) -> int:
        """Send every delivery whose retry is due; how many were attempted."""
        due = await self._store.claim_due(limit, self._lease)
        await asyncio.gather(*(self.deliver(d) for d in due))
        return len(due)

    async def deliver(self, delivery: ClaimedDelivery) -> SendResult:
        """One attempt, its outcome recorded: sent, failed for good, or rescheduled."""
        try:
            result = await self._attempt(delivery)
        except Exception as exc:  # a bug or an unreadable attachment must not leave the row claimed silently
            log.exception("delivery %d (%s to %s) raised", delivery.id, delivery.channel, delivery.recipient)
            result = SendResult(Outcome.RETRY, f"{type(exc).__name__}: {exc}")
        if result.outcome is Outcome.RETRY and delivery.expired:
            result = SendResult(Outcome.FAILED, f"gave up after {delivery.attempts} attempts: {result.detail}")
        # Until it commits: a sent delivery left open would be sent again once its lease runs out.
        if result.outcome is Outcome.RETRY:
            await retry_transient(
                lambda: self._store.retry_later(delivery, result.detail, self._intervals[delivery.channel]),
                what=f"delivery {delivery.id}: rescheduling it",
                policy=UNBOUNDED,
            )
        else:
            await retry_transient(
                lambda: self._store.finish(delivery, result.outcome.value, result.detail),
                what=f"delivery {delivery.id}: closing it as {result.outcome.value}",
                policy=UNBOUNDED,
            )
        outcome = {Outcome.SENT: "delivered", Outcome.RETRY: "retrying", Outcome.FAILED: "failed"}[result.outcome]
        default_metrics().notifications.labels(delivery.channel.value, outcome).inc()
        log.info(
            "%s %s to %s (attempt %d): %s %s",
            delivery.kind, delivery.channel, delivery.recipient, delivery.attempts, result.outcome, result.detail,
        )  # fmt: skip
        return result

    async def _attempt(self, delivery: ClaimedDelivery) -> SendResult:
        if delivery.channel is Channel.EMAIL:
            return await self._email(delivery)
        if delivery.channel is Channel.CALLBACK:
            return await self._callback(delivery)
        return await self._text_message(delivery)

    async def _email(self, delivery: ClaimedDelivery) -> SendResult:
        payload = delivery.payload
        rendered = render_email(Kind(delivery.kind), payload["context"])
        attachment = None
        if payload.get("attach_fax_of"):
            attachment = await retry_transient(
                lambda: self._attachments.for_job(payload["attach_fax_of"], payload.get("tiff_key")),
                what=f"delivery {delivery.id}: reading its attachment",
                policy=BEFORE_SENDING,
            )
        # A stable Message-ID per delivery lets a mail client fold the rare resend after a crash into one message.
        domain = self._sender.rpartition("@")[2] or "localhost"
        message = build_message(
            self._sender, delivery.recipient, rendered, attachment, f"<{delivery.delivery_key}@{domain}>"
        )
        return await self._mailer.send(message, delivery.recipient)

    async def _callback(self, delivery: ClaimedDelivery) -> SendResult:
        payload = delivery.payload
        delivery_id = str(delivery.delivery_key)
        body, content_type = encode_callback_body(
            {**payload["fields"], DELIVERY_ID_FIELD: delivery_id}, payload["body_type"]
        )
        headers = {"Content-Type": content_type, "User-Agent": "fax-notifier", DELIVERY_ID_HEADER: delivery_id}
        secret = await retry_transient(
            lambda: self._store.callback_secret(delivery.account_id),
            what=f"delivery {delivery.id}: reading the account's callback secret",
            policy=BEFORE_SENDING,
        )
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, int(time.time()), body)
        return await self._http.request(payload["method"], delivery.recipient, data=body, headers=headers)

    async def _text_message(self, delivery: ClaimedDelivery) -> SendResult:
        if self._sms is None:
            return SendResult(Outcome.FAILED, "no SMS provider configured (FAX_SMS_PROVIDER)")
        return await self._sms.send(delivery.recipient, render_sms(Kind(delivery.kind), delivery.payload["context"]))


class Sweeper:
    """Every ``interval`` seconds, plan what the reconciler finds unnotified, then send what is due; runs as a task
    for the life of the worker."""

    def __init__(
        self, dispatcher: Dispatcher, interval: float, reconcile: Callable[[], Awaitable[int]] | None = None
    ) -> None:
        self._dispatcher = dispatcher
        self._interval = interval
        self._reconcile = reconcile
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notification-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                if self._reconcile is not None:
                    await self._reconcile()
                # A full batch means more may be waiting: go again without sleeping.
                while await self._dispatcher.sweep() >= 100:
                    pass
            except Exception:
                log.warning("notification sweep failed; trying again in %.0f s", self._interval, exc_info=True)
            await asyncio.sleep(self._interval)
