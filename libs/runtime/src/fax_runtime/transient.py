"""Transient infrastructure errors: what they are, and retrying through them.

A database, broker or object store that is unreachable, restarting or failing over is not the fault of the message
or the job being handled, and it comes back. ``is_transient`` is the one place that tells such an error from one that
is wrong in itself; ``retry_transient`` runs an operation again, with a doubling delay, until it gets through (or a
time budget runs out); ``TransientRetryMiddleware`` does that for every event handler of every worker, so a message
never spends its delivery budget (and lands in the dead-letter queue) because Postgres, S3 or RabbitMQ was away.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiormq.exceptions
import asyncpg
import urllib3.exceptions
from faststream import BaseMiddleware
from minio.error import InvalidResponseError, S3Error, ServerError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Postgres: the server is starting, shutting down, crashed or out of connection slots; a failover left us on a
# standby; a transaction lost a serialization or deadlock race (any attempt may win the next one).
_POSTGRES = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)
# S3 answers that say "not now" rather than "no".
_S3_CODES = frozenset(
    {"ServiceUnavailable", "SlowDown", "InternalError", "RequestTimeout", "XMinioServerNotInitialized"}
)
# Socket errors of a peer that is down or unreachable. Other OSErrors (a missing file, a full disk, a refused
# address: ``BlockedAddressError``) are not waited out.
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ENOTCONN, errno.ETIMEDOUT,
        errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.EADDRNOTAVAIL,
    }
)  # fmt: skip


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or what it was raised from) is a dependency being unreachable or briefly unable to serve,
    which waiting fixes: a database, broker or storage connection refused, reset or closed, a timeout, a server
    starting or stopping."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_itself(current):
            return True
        current = current.__cause__
    return False


def _transient_itself(error: BaseException) -> bool:
    if isinstance(error, _POSTGRES):
        return True
    if isinstance(error, asyncpg.InternalClientError):
        # What asyncpg raises when the server drops a connection in the middle of an exchange (a shutdown): "cannot
        # switch to state 15; another operation (2) is in progress". Seen on every Postgres restart under load.
        return True
    if isinstance(error, asyncpg.InterfaceError):
        # Raised by a connection the server closed under us; other interface errors are our own misuse.
        return "connection is closed" in str(error) or "connection was closed" in str(error)
    if isinstance(error, S3Error):
        return error.code in _S3_CODES
    if isinstance(error, ServerError | InvalidResponseError | urllib3.exceptions.HTTPError):
        return True  # S3 answered 5xx, or a proxy in front of it answered something that is not S3's
    if isinstance(error, aiormq.exceptions.AMQPConnectionError | aiormq.exceptions.ChannelInvalidStateError):
        return True
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(error, OSError):
        # asyncio's create_connection, having tried every address of a name, raises a bare OSError saying so.
        return error.errno in _NETWORK_ERRNOS or (error.errno is None and str(error).startswith("Multiple exceptions"))
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Wait ``first_delay_s``, doubling up to ``longest_delay_s``, between attempts; give up (raise the last error)
    once ``give_up_after_s`` have passed, or never when it is None."""

    first_delay_s: float = 0.5
    longest_delay_s: float = 5.0
    give_up_after_s: float | None = 600.0

    def delays(self) -> Callable[[], float]:
        delay = self.first_delay_s / 2

        def next_delay() -> float:
            nonlocal delay
            delay = min(delay * 2, self.longest_delay_s)
            return delay

        return next_delay


# Outcomes already known (a call that ended, a notification that was sent) are recorded until they commit; a worker
# that starts while a dependency is away waits for it.
UNBOUNDED = RetryPolicy(give_up_after_s=None)


async def retry_transient(operation: Callable[[], Awaitable[T]], *, what: str, policy: RetryPolicy | None = None) -> T:
    """``await operation()``, again after each transient error (``is_transient``) until it succeeds or the policy
    gives up; any other error is raised at once. ``what`` names the operation in the log."""
    policy = policy or RetryPolicy()
    began = time.monotonic()
    next_delay = policy.delays()
    failures = 0
    while True:
        try:
            result = await operation()
        except Exception as error:
            if not is_transient(error):
                raise
            waited = time.monotonic() - began
            if policy.give_up_after_s is not None and waited >= policy.give_up_after_s:
                log.error("%s: still failing after %.0f s (%s); giving up for now", what, waited, _describe(error))
                raise
            failures += 1
            delay = next_delay()
            # The first failure and then every tenth: an outage of minutes must not flood the log.
            if failures == 1 or failures % 10 == 0:
                log.warning("%s: %s; retrying (attempt %d, next in %.1f s)", what, _describe(error), failures, delay)
            await asyncio.sleep(delay)
            continue
        if failures:
            log.info("%s: through after %d failed attempt(s), %.1f s", what, failures, time.monotonic() - began)
        return result


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".strip()


class TransientRetryMiddleware(BaseMiddleware):
    """Every event handler, retried through transient errors (``HANDLER_POLICY``) before its message is nacked.

    Handlers are idempotent, so running one again from the start is safe. Only when the dependency stays away past
    the policy's budget is the message given back to its queue, which spends one of its deliveries: a message
    reaches the dead-letter queue because it is wrong in itself, or after an outage of ``DELIVERY_LIMIT`` budgets.
    Each stage's reconciler re-drives the jobs it owns meanwhile, whatever happens to their messages.
    """

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
        key = getattr(getattr(msg, "raw_message", None), "routing_key", None) or "event"
        return await retry_transient(lambda: call_next(msg), what=f"handling {key}", policy=HANDLER_POLICY)


# Well inside RabbitMQ's consumer_timeout (30 min by default), past which the broker would close the channel.
HANDLER_POLICY = RetryPolicy(give_up_after_s=600.0)
