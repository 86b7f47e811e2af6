"""Transient dependency errors told from the rest, retried through, and never charged to a message."""

from __future__ import annotations

import datetime as dt
import errno
import socket
import uuid

import aiormq.exceptions
import asyncpg
import pytest
import urllib3.exceptions
from faststream.rabbit import RabbitBroker, TestRabbitBroker
from minio.error import S3Error, ServerError

from fax_contracts import JobSubmitted
from fax_runtime import transient
from fax_runtime.broker import create_broker, event_queue, events_exchange
from fax_runtime.network_guard import BlockedAddressError
from fax_runtime.transient import RetryPolicy, is_transient, retry_transient

FAST = RetryPolicy(first_delay_s=0.001, longest_delay_s=0.002, give_up_after_s=0.2)


def _s3(code: str) -> S3Error:
    return S3Error(None, code, "message", "resource", "request", "host")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
        ConnectionResetError(),
        TimeoutError(),
        socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
        OSError(errno.EHOSTUNREACH, "No route to host"),
        OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432), [Errno 111] ..."),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
        asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed"),
        asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
        ConnectionError("unexpected connection_lost() call"),
        urllib3.exceptions.MaxRetryError(None, "/fax/key", reason=ConnectionRefusedError()),  # type: ignore[arg-type]
        urllib3.exceptions.ProtocolError("Connection aborted."),
        _s3("ServiceUnavailable"),
        _s3("SlowDown"),
        ServerError("server failed with HTTP status code 503", 503),
        aiormq.exceptions.AMQPConnectionError("connection lost"),
        aiormq.exceptions.ChannelInvalidStateError("channel closed"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_unreachable_or_restarting_dependency_is_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad input"),
        KeyError("missing"),
        FileNotFoundError(errno.ENOENT, "No such file"),
        PermissionError(errno.EACCES, "Permission denied"),
        OSError(errno.ENOSPC, "No space left on device"),
        BlockedAddressError("169.254.169.254", "link-local"),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.UndefinedColumnError("column does not exist"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        _s3("NoSuchKey"),
        _s3("AccessDenied"),
    ],
    ids=lambda error: f"{type(error).__name__}:{error}"[:40],
)
def test_an_error_of_the_work_itself_is_not(error: Exception) -> None:
    assert not is_transient(error)


def test_what_an_error_was_raised_from_counts() -> None:
    try:
        try:
            raise ConnectionResetError()
        except ConnectionResetError as cause:
            raise RuntimeError("could not store the render") from cause
    except RuntimeError as error:
        assert is_transient(error)


async def test_a_transient_error_is_retried_until_the_operation_gets_through() -> None:
    failures = iter([ConnectionRefusedError(), asyncpg.CannotConnectNowError("starting up")])

    async def operation() -> str:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return "done"

    assert await retry_transient(operation, what="test", policy=FAST) == "done"


async def test_any_other_error_is_raised_at_once() -> None:
    calls = 0

    async def operation() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("wrong in itself")

    with pytest.raises(ValueError):
        await retry_transient(operation, what="test", policy=FAST)
    assert calls == 1


async def test_a_dependency_away_past_the_budget_raises_its_last_error() -> None:
    async def operation() -> None:
        raise ConnectionRefusedError()

    with pytest.raises(ConnectionRefusedError):
        await retry_transient(operation, what="test", policy=FAST)


def test_the_delay_doubles_up_to_its_ceiling() -> None:
    next_delay = RetryPolicy(first_delay_s=0.5, longest_delay_s=3.0).delays()
    assert [next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_a_handler_whose_database_is_away_is_retried_inside_one_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the fix a handler's error went straight back to the queue as a nack: five nacks within a second put
    the message in the dead-letter queue while Postgres restarted. Now one delivery outlasts the outage."""
    monkeypatch.setattr(transient, "HANDLER_POLICY", RetryPolicy(first_delay_s=0.01, give_up_after_s=10))
    broker: RabbitBroker = create_broker("amqp://guest:guest@127.0.0.1:5672/")
    outage = iter([ConnectionRefusedError(), asyncpg.CannotConnectNowError("starting up"), ConnectionResetError()])
    handled: list[uuid.UUID] = []

    @broker.subscriber(event_queue("test", JobSubmitted), events_exchange)
    async def handle(event: JobSubmitted) -> None:
        failure = next(outage, None)
        if failure is not None:
            raise failure
        handled.append(event.job_id)

    event = JobSubmitted(
        event_id=uuid.uuid4(), occurred_at=dt.datetime.now(dt.UTC), job_id=uuid.uuid4(), account_id="acc"
    )
    async with TestRabbitBroker(broker) as test_broker:
        # The test broker hands a handler's error back to the publisher, as a nack would go back to RabbitMQ.
        await test_broker.publish(event, exchange=events_exchange, routing_key="fax.job.submitted.v1")
    assert handled == [event.job_id]


async def test_a_message_wrong_in_itself_is_nacked_at_once() -> None:
    broker: RabbitBroker = create_broker("amqp://guest:guest@127.0.0.1:5672/")
    calls = 0

    @broker.subscriber(event_queue("test", JobSubmitted), events_exchange)
    async def handle(event: JobSubmitted) -> None:
        nonlocal calls
        calls += 1
        raise ValueError(f"job {event.job_id} names no document")

    now = dt.datetime.now(dt.UTC)
    event = JobSubmitted(event_id=uuid.uuid4(), occurred_at=now, job_id=uuid.uuid4(), account_id="acc")
    async with TestRabbitBroker(broker) as test_broker:
        with pytest.raises(ValueError):
            await test_broker.publish(event, exchange=events_exchange, routing_key="fax.job.submitted.v1")
    assert calls == 1
