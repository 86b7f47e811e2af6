"""SIP transactions (RFC 3261 §17): retransmission and timeout timers, ACK for non-2xx finals.

The timers are the RFC's: A/B/D for an INVITE client, E/F/K for other requests, G/H/I for an INVITE server and J
for other servers. Over TCP and TLS nothing is retransmitted (timers A, E and G do not run; D, I, J and K are zero),
while B, F and H still bound the wait (§17.1.1.2, §17.1.2.2, §17.2.1). A 2xx to an INVITE ends the client
transaction at once (the user agent core ACKs it, and re-ACKs retransmitted 2xx, §13.2.2.4); the server core
repeats its own 2xx until the ACK arrives (§13.3.1.4). A message the transport cannot send fails the transaction
at once (§17.1.4).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from fax_sip.message import Hop, SipMessage
from fax_sip.transport import Flow, TransportError

Send = Callable[[SipMessage, Hop | Flow], None]


@dataclass(frozen=True)
class Timers:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


class TransactionTimeout(Exception):
    """No final response within 64*T1 (timer B or F): the far end is unreachable or silent."""


class ClientTransaction:
    def __init__(
        self,
        request: SipMessage,
        destination: Hop | Flow,
        send: Send,
        timers: Timers,
        on_provisional: Callable[[SipMessage], None] | None = None,
        on_done: Callable[[ClientTransaction], None] | None = None,
    ) -> None:
        self.request = request
        self.destination = destination
        self.key = (request.branch, request.method)
        self._send = send
        self._timers = timers
        self._on_provisional = on_provisional
        self._on_done = on_done
        self._is_invite = request.method == "INVITE"
        self._reliable = destination.reliable
        self._provisional = False
        self._ack: SipMessage | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.final: asyncio.Future[SipMessage] = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        self._send(self.request, self.destination)
        if not self._reliable:
            self._tasks.append(asyncio.create_task(self._retransmit()))
        self._tasks.append(asyncio.create_task(self._timeout()))

    async def _retransmit(self) -> None:
        interval = self._timers.t1
        while not self.final.done():
            await asyncio.sleep(interval)
            if self.final.done() or (self._is_invite and self._provisional):
                return  # timer A stops at the first provisional response
            self._send(self.request, self.destination)
            if self._is_invite:
                interval *= 2
            else:
                interval = self._timers.t2 if self._provisional else min(interval * 2, self._timers.t2)

    async def _timeout(self) -> None:
        await asyncio.sleep(64 * self._timers.t1)  # timer B / F
        if not self.final.done():
            self.final.set_exception(TransactionTimeout(f"no final response to {self.request.method}"))
            self._finish()

    @property
    def heard_from(self) -> bool:
        """Whether the far end answered anything yet (a provisional or a final response)."""
        return self._provisional or (self.final.done() and not self.final.cancelled() and not self.final.exception())

    def on_response(self, response: SipMessage) -> None:
        if response.status < 200:
            self._provisional = True
            if self._on_provisional is not None and not self.final.done():
                self._on_provisional(response)
            return
        if self._is_invite and response.status >= 300:
            # §17.1.1.3: the transaction ACKs a non-2xx final itself, and again for every retransmission (timer D).
            if self._ack is None:
                self._ack = _ack_for_failure(self.request, response)
            self._send(self._ack, self.destination)
        if self.final.done():
            return
        self.final.set_result(response)
        if self._reliable or (self._is_invite and response.status < 300):
            linger = 0.0
        else:
            linger = 32.0 if self._is_invite else self._timers.t4
        self._tasks.append(asyncio.create_task(self._linger(linger)))

    def on_transport_error(self, error: TransportError) -> None:
        if not self.final.done():
            self.final.set_exception(error)
            self._finish()

    async def _linger(self, seconds: float) -> None:
        # Timers D and K absorb retransmitted finals before the transaction is forgotten.
        await asyncio.sleep(seconds)
        self._finish()

    def _finish(self) -> None:
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        if self._on_done is not None:
            self._on_done(self)

    def cancel(self) -> None:
        if not self.final.done():
            self.final.cancel()
        self._finish()


def _ack_for_failure(invite: SipMessage, response: SipMessage) -> SipMessage:
    ack = SipMessage(method="ACK", uri=invite.uri)
    ack.add("via", invite.top_via)
    for route in invite.get_all("route"):
        ack.add("route", route)
    ack.add("max-forwards", "70")
    ack.add("from", invite.get("from"))
    ack.add("to", response.get("to"))
    ack.add("call-id", invite.call_id)
    ack.add("cseq", f"{invite.cseq[0]} ACK")
    return ack


class ServerTransaction:
    """Answers retransmitted requests with the last response; an INVITE's non-2xx final is repeated until ACKed
    (over UDP; over a stream it is sent once, and the ACK is still awaited for timer H)."""

    def __init__(
        self,
        request: SipMessage,
        flow: Flow,
        send: Send,
        timers: Timers,
        on_done: Callable[[ServerTransaction], None],
    ) -> None:
        self.request = request
        self.flow = flow
        self.key = (request.branch, request.method)
        self._send = send
        self._timers = timers
        self._on_done = on_done
        self.last_response: SipMessage | None = None
        self.acked = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def final_sent(self) -> bool:
        return self.last_response is not None and self.last_response.status >= 200

    def respond(self, response: SipMessage) -> None:
        if self.final_sent:
            return
        self.last_response = response
        self._send(response, self.flow)
        if response.status < 200:
            return
        if self.request.method == "INVITE" and response.status >= 300:
            self._tasks.append(asyncio.create_task(self._repeat_until_acked(response)))
        else:
            # Timer J (and the end of an INVITE transaction once the 2xx is sent: the core takes over).
            linger = 0.0 if self.flow.reliable else 64 * self._timers.t1
            self._tasks.append(asyncio.create_task(self._forget_after(linger)))

    async def _repeat_until_acked(self, response: SipMessage) -> None:
        interval = self._timers.t1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(64 * self._timers.t1):  # timer H
                while not self.acked.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.acked.wait(), interval)  # timer G
                    if not self.acked.is_set() and not self.flow.reliable:
                        self._send(response, self.flow)
                        interval = min(interval * 2, self._timers.t2)
        if not self.flow.reliable:
            await asyncio.sleep(self._timers.t4)  # timer I
        self._on_done(self)

    async def _forget_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._on_done(self)

    def on_retransmission(self) -> None:
        if self.last_response is not None:
            self._send(self.last_response, self.flow)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
