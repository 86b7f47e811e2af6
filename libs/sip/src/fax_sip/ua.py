"""The user agent core (RFC 3261 §8, §12-15): calls out and in, dialogs, re-INVITE, CANCEL, BYE, OPTIONS, REGISTER.

One ``SipUserAgent`` owns one set of transports (``fax_sip.transport``: UDP and TCP on one port, TLS on another).
A request goes to the next hop its URI names (the ``transport`` parameter, TLS for ``sips:``) through a client
transaction; a request we receive gets a server transaction, which answers retransmissions, and its responses go
back the way it came (RFC 3581 ``rport`` over UDP, the same connection over TCP and TLS). Out-of-dialog requests
from an address that ``admit`` refuses are answered 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fax_sip.digest import DigestError, digest_response, parse_challenge
from fax_sip.message import (
    TCP,
    TLS,
    UDP,
    Hop,
    NameAddr,
    SipMessage,
    SipParseError,
    SipUri,
    local_response,
    new_branch,
    new_tag,
    response_to,
    stamp_top_via,
)
from fax_sip.sdp import SdpError, SessionDescription
from fax_sip.transactions import ClientTransaction, ServerTransaction, Timers, TransactionTimeout
from fax_sip.transport import Address, Flow, SipTransports, TlsSettings, TransportError

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
USER_AGENT = "fax-platform"
# A BYE sent for a dialog kept by a dead user agent cannot know how many requests that agent made after the dialog
# was saved (a re-INVITE to T.38, an authenticated retry); CSeq numbers need only grow (§12.2.1.1), so it leaps.
SUCCESSOR_CSEQ_LEAP = 100


class CallFailed(Exception):
    """A call or re-INVITE ended with a final non-2xx answer (or 408 for no answer in time, 487 when cancelled).

    ``local`` says the status was decided here, not answered by the far end (no answer within the ring timeout, or
    none at all); ``unreachable`` that the next hop never answered anything: it timed out, or could not be reached.
    """

    def __init__(self, status: int, reason: str, *, local: bool = False, unreachable: bool = False) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.local = local or unreachable
        self.unreachable = unreachable


@dataclass(frozen=True)
class Credentials:
    """Digest credentials (401/407, RFC 3261 §22) for requests to one peer."""

    username: str
    password: str


@dataclass(frozen=True)
class SipSettings:
    bind_host: str = "127.0.0.1"
    bind_port: int = 5060  # UDP and TCP (0: a free port)
    transports: tuple[str, ...] = ("udp", "tcp")  # what listens on bind_port
    tls_port: int | None = None  # a TLS listener (0: a free port); needs tls.cert_file
    tls: TlsSettings = field(default_factory=TlsSettings)
    contact_host: str | None = None  # the address others reach us at, when it is not bind_host
    user: str = "fax"
    auth_username: str | None = None  # credentials for any peer that challenges, unless a request brings its own
    auth_password: str | None = None
    t1: float = 0.5
    idle_connection_s: float = 300.0


@dataclass(frozen=True)
class DialogIdentity:
    """What a user agent needs to send a request in a confirmed dialog (§12.2.1.1), as plain data: saved when a call
    is answered, it lets a successor end a call its dead predecessor left up. ``contact`` is the Contact of the user
    agent that holds the dialog: the address (and so the process) it belongs to."""

    call_id: str
    local: str  # our From header field, with our tag
    remote: str  # their To header field, with their tag
    remote_target: str
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 1
    contact: str = ""
    signalling_address: tuple[str, int] | None = None
    transport: str = UDP  # how signalling_address was reached


IncomingHandler = Callable[["IncomingCall"], Awaitable[None]]
ReinviteHandler = Callable[[SessionDescription], Awaitable[SessionDescription | None]]


class Registration:
    """One registration kept fresh (§10): refreshed before it lapses, retried after a refusal, until ``stop()``."""

    def __init__(self) -> None:
        self.registered = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


class SipUserAgent:
    def __init__(self, settings: SipSettings, on_incoming: IncomingHandler | None = None) -> None:
        self.settings = settings
        self.on_incoming = on_incoming
        # Whether an out-of-dialog request from this address may be served (None: from anyone); others get 403.
        self.admit: Callable[[str], bool] | None = None
        self.on_refused: Callable[[SipMessage, Flow], None] | None = None
        self._timers = Timers(t1=settings.t1)
        self._transports = SipTransports(
            on_message=self._on_message,
            on_send_error=self._on_send_error,
            tls=settings.tls,
            idle_s=settings.idle_connection_s,
        )
        self._default_credentials = (
            Credentials(settings.auth_username, settings.auth_password or "") if settings.auth_username else None
        )
        self._client: dict[tuple[str, str], ClientTransaction] = {}
        self._server: dict[tuple[str, str], ServerTransaction] = {}
        self._dialogs: dict[tuple[str, str], Call] = {}
        self._incoming: dict[str, IncomingCall] = {}  # by the INVITE's branch, until answered or refused
        # Our INVITEs still waiting for their dialog, by Call-ID: how many repeated 2xx arrived before it existed.
        self._repeated_2xx: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        settings = self.settings
        await self._transports.start(settings.bind_host, settings.bind_port, settings.transports, settings.tls_port)

    async def close(self) -> None:
        for call in list(self._dialogs.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(call.hangup(), 2)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for transaction in list(self._client.values()):
            transaction.cancel()
        for server in list(self._server.values()):
            server.close()
        await self._transports.close()

    @property
    def port(self) -> int:
        """The UDP (and TCP) port."""
        ports = self._transports.ports
        return ports.get(UDP) or ports.get(TCP) or self.settings.bind_port

    @property
    def tls_port(self) -> int | None:
        return self._transports.ports.get(TLS)

    @property
    def transports(self) -> SipTransports:
        return self._transports

    @property
    def contact_host(self) -> str:
        return self.settings.contact_host or self.settings.bind_host

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- transport -------------------------------------------------------------------------------------------------

    def send(self, message: SipMessage, destination: Hop | Flow) -> None:
        self._transports.send(message, destination)

    def _on_message(self, message: SipMessage, flow: Flow) -> None:
        if message.is_request:
            stamp_top_via(message, *flow.remote)
            self._on_request(message, flow)
        else:
            self._on_response(message)

    def _on_send_error(self, message: SipMessage, error: TransportError) -> None:
        if message.is_request and message.method != "ACK":
            with contextlib.suppress(SipParseError):
                transaction = self._client.get((message.branch, message.method))
                if transaction is not None:
                    transaction.on_transport_error(error)

    # --- requests we send ------------------------------------------------------------------------------------------

    def listen_port(self, transport: str) -> int:
        """The port we take ``transport`` on (TLS without a listener: its default, 5061)."""
        if transport == TLS:
            return self.tls_port or 5061
        return self.port

    def _via(self, branch: str, transport: str = UDP) -> str:
        # Over TLS, "alias" lets the peer send its requests back over our connection (RFC 5923).
        alias = ";alias" if transport == TLS else ""
        port = self.listen_port(transport)
        return f"SIP/2.0/{transport.upper()} {self.contact_host}:{port};branch={branch};rport{alias}"

    def contact(self, transport: str = UDP, *, secure: bool = False) -> str:
        """Our Contact for a dialog over ``transport`` (``secure``: the dialog is ``sips:``). The UDP one, the
        default, also names this user agent (``DialogIdentity.contact``)."""
        port = self.listen_port(transport)
        if secure:
            return f"<sips:{self.settings.user}@{self.contact_host}:{port}>"
        suffix = "" if transport == UDP else f";transport={transport}"
        return f"<sip:{self.settings.user}@{self.contact_host}:{port}{suffix}>"

    def _destination(self, uri: str, route: list[str] | None = None) -> Hop:
        return SipUri.parse(NameAddr.parse(route[0]).uri if route else uri).hop

    async def end_dialog(self, dialog: DialogIdentity) -> int:
        """Send BYE in a dialog another user agent set up (a dead predecessor, on this address or another); the
        final status: 200 when the far end ended the call, 481 when it no longer knew it, 408 when it never said."""
        address = dialog.signalling_address
        call = Call(
            self,
            call_id=dialog.call_id,
            local=NameAddr.parse(dialog.local),
            remote=NameAddr.parse(dialog.remote),
            remote_target=dialog.remote_target,
            route_set=list(dialog.route_set),
            local_cseq=dialog.local_cseq + SUCCESSOR_CSEQ_LEAP,
            local_sdp=SessionDescription(origin_host=""),
            remote_sdp=None,
            remote_hop=Hop(dialog.transport, address[0], address[1]) if address else None,
        )
        response = await self.request(call._request("BYE"), call._destination())
        return response.status

    def start_transaction(
        self,
        request: SipMessage,
        destination: Hop | Flow,
        on_provisional: Callable[[SipMessage], None] | None = None,
    ) -> ClientTransaction:
        transaction = ClientTransaction(
            request, destination, self.send, self._timers, on_provisional, lambda t: self._client.pop(t.key, None)
        )
        self._client[transaction.key] = transaction
        transaction.start()
        return transaction

    async def request(
        self,
        request: SipMessage,
        destination: Hop | Flow,
        on_provisional: Callable[[SipMessage], None] | None = None,
        sent: list[SipMessage] | None = None,
        credentials: Credentials | None = None,
    ) -> SipMessage:
        """Send ``request``, answering one digest challenge per realm; the final response (made up, ``local``, when
        none came: 408 after timer B/F, 503 when the transport failed). Each authenticated retry is appended to
        ``sent`` when given (a CANCEL and the dialog must use the request last sent)."""
        credentials = credentials or self._default_credentials
        tried: set[str] = set()
        while True:
            transaction = self.start_transaction(request, destination, on_provisional)
            try:
                response = await transaction.final
            except TransactionTimeout:
                return local_response(request, 408, "Request Timeout")
            except TransportError as error:
                return local_response(request, 503, f"Service Unavailable ({error})")
            if response.status not in (401, 407) or credentials is None:
                return response
            header = response.get("www-authenticate" if response.status == 401 else "proxy-authenticate")
            try:
                challenge = parse_challenge(header)
            except DigestError:
                return response
            realm_key = f"{challenge.get('realm')}:{challenge.get('nonce')}"
            if realm_key in tried:
                return response
            tried.add(realm_key)
            try:
                authorization = digest_response(
                    challenge,
                    method=request.method,
                    uri=request.uri,
                    username=credentials.username,
                    password=credentials.password,
                )
            except DigestError:
                return response
            request = _next_attempt(request, self._via(new_branch(), destination.transport))
            request.set("authorization" if response.status == 401 else "proxy-authorization", authorization)
            if sent is not None:
                sent.append(request)

    # --- calls out -------------------------------------------------------------------------------------------------

    async def invite(
        self,
        target: str,
        *,
        from_number: str,
        from_name: str = "",
        offer: SessionDescription,
        on_progress: Callable[[int], None] | None = None,
        ring_timeout: float = 60.0,
        response_timeout: float | None = None,
        credentials: Credentials | None = None,
    ) -> Call:
        """Call ``target`` (``sip:number@host:port``, with ``;transport=`` or as ``sips:``); the answered call, or
        ``CallFailed``.

        A next hop that answers nothing within ``response_timeout`` (not even 100 Trying) is given up on at once, as
        unreachable; the INVITE is cancelled should it start ringing later. Cancelling the awaiting task while it
        rings sends CANCEL (§9.1) and waits for the 487.
        """
        try:
            uri = SipUri.parse(target)
        except SipParseError as error:
            raise CallFailed(416, f"Unsupported URI Scheme ({error})", local=True) from None
        hop = uri.hop
        local = NameAddr(f"sip:{from_number}@{self.contact_host}", from_name, new_tag())
        remote = NameAddr(target)
        call_id = f"{secrets.token_hex(12)}@{self.contact_host}"
        request = SipMessage(method="INVITE", uri=target)
        request.add("via", self._via(new_branch(), hop.transport))
        request.add("max-forwards", "70")
        request.add("from", str(local))
        request.add("to", str(remote))
        request.add("call-id", call_id)
        request.add("cseq", "1 INVITE")
        request.add("contact", self.contact(hop.transport, secure=uri.secure))
        request.add("p-asserted-identity", str(NameAddr(local.uri, from_name)))
        request.add("allow", ALLOW)
        request.add("user-agent", USER_AGENT)
        request.add("content-type", "application/sdp")
        request.body = offer.encode()
        sent: list[SipMessage] = [request]
        heard = asyncio.Event()

        def provisional(response: SipMessage) -> None:
            heard.set()
            if on_progress is not None:
                on_progress(response.status)

        attempt = asyncio.ensure_future(self.request(request, hop, provisional, sent, credentials))
        self._repeated_2xx[call_id] = 0
        try:
            try:
                async with asyncio.timeout(ring_timeout):
                    if response_timeout is not None and not await _heard_within(heard, attempt, response_timeout):
                        self._spawn(self._abandon(sent, hop, attempt, heard, offer))
                        raise CallFailed(408, "no response", unreachable=True)
                    response = await asyncio.shield(attempt)
            except (TimeoutError, asyncio.CancelledError) as stop:
                final = await self._cancel(sent[-1], hop, attempt)
                if final is not None and 200 <= final.status < 300:
                    # The answer crossed our CANCEL: the call exists, so end it properly.
                    await self._new_outgoing_dialog(sent[-1], final, offer, hop).hangup()
                if isinstance(stop, asyncio.CancelledError):
                    raise
                raise CallFailed(408, "no answer", local=True, unreachable=not heard.is_set()) from None
            if not 200 <= response.status < 300:
                raise CallFailed(response.status, response.reason, unreachable=response.local)
            call = self._new_outgoing_dialog(sent[-1], response, offer, hop)
            with contextlib.suppress(TransportError):
                # Media behind NAT is latched on the address signalling comes from: the hop's, resolved.
                call._remote_address = (await self._transports.resolve(hop.host), hop.port)
            return call
        finally:
            self._repeated_2xx.pop(call_id, None)

    async def _cancel(self, invite: SipMessage, hop: Hop, attempt: asyncio.Future[SipMessage]) -> SipMessage | None:
        transaction = self._client.get((invite.branch, "INVITE"))
        if transaction is not None and not transaction.final.done():
            cancel = SipMessage(method="CANCEL", uri=invite.uri)
            cancel.add("via", invite.top_via)
            for route in invite.get_all("route"):
                cancel.add("route", route)
            cancel.add("max-forwards", "70")
            cancel.add("from", invite.get("from"))
            cancel.add("to", invite.get("to"))
            cancel.add("call-id", invite.call_id)
            cancel.add("cseq", f"{invite.cseq[0]} CANCEL")
            self.start_transaction(cancel, hop)
        with contextlib.suppress(Exception):
            return await asyncio.wait_for(asyncio.shield(attempt), 64 * self._timers.t1)
        attempt.cancel()
        return None

    async def _abandon(
        self,
        sent: list[SipMessage],
        hop: Hop,
        attempt: asyncio.Future[SipMessage],
        heard: asyncio.Event,
        offer: SessionDescription,
    ) -> None:
        """An INVITE given up before anything answered: CANCEL it if it starts ringing (§9.1 allows no CANCEL
        before a provisional response), and end a call that is answered anyway."""
        await _heard_within(heard, attempt, 64 * self._timers.t1)
        final: SipMessage | None = None
        if not attempt.done() and heard.is_set():
            final = await self._cancel(sent[-1], hop, attempt)
        elif attempt.done() and not attempt.cancelled() and attempt.exception() is None:
            final = attempt.result()
        else:
            attempt.cancel()
        if final is not None and 200 <= final.status < 300:
            await self._new_outgoing_dialog(sent[-1], final, offer, hop).hangup()

    def _new_outgoing_dialog(
        self, invite: SipMessage, response: SipMessage, offer: SessionDescription, hop: Hop
    ) -> Call:
        remote = NameAddr.parse(response.get("to"))
        contact = response.get_all("contact")
        call = Call(
            self,
            call_id=invite.call_id,
            local=NameAddr.parse(invite.get("from")),
            remote=remote,
            remote_target=NameAddr.parse(contact[0]).uri if contact else invite.uri,
            route_set=list(reversed(response.get_all("record-route"))),
            local_cseq=invite.cseq[0],
            local_sdp=offer,
            remote_sdp=_sdp_of(response),
            remote_hop=hop,
        )
        call.send_ack(invite.cseq[0], auth=invite)
        for _ in range(self._repeated_2xx.get(invite.call_id, 0)):
            call.resend_ack(invite.cseq[0])
        self._repeated_2xx[invite.call_id] = 0
        self._dialogs[call.key] = call
        return call

    # --- out of dialog: OPTIONS and REGISTER ----------------------------------------------------------------------

    async def options(self, target: str, credentials: Credentials | None = None) -> SipMessage:
        """Ask ``target`` (a SIP URI) what it supports: its final response, or a ``local`` 408 (it said nothing) or
        503 (it could not be reached). Any answer from it at all means it is up (§11)."""
        uri = SipUri.parse(target)
        request = self._out_of_dialog("OPTIONS", str(SipUri("", uri.host, uri.port, uri.transport, uri.secure)), uri)
        request.add("accept", "application/sdp")
        return await self.request(request, uri.hop, credentials=credentials)

    def register(self, registrar: str, *, credentials: Credentials | None = None, expires: int = 300) -> Registration:
        """Register our contact with ``registrar`` (a SIP URI: the trunk) and keep it registered until stopped."""
        registration = Registration()
        registration.task = asyncio.ensure_future(
            self._keep_registered(SipUri.parse(registrar), registration, credentials, expires)
        )
        self._tasks.add(registration.task)
        registration.task.add_done_callback(self._tasks.discard)
        return registration

    def _out_of_dialog(self, method: str, request_uri: str, to: SipUri) -> SipMessage:
        request = SipMessage(method=method, uri=request_uri)
        request.add("via", self._via(new_branch(), to.transport))
        request.add("max-forwards", "70")
        request.add("from", f"<sip:{self.settings.user}@{self.contact_host}>;tag={new_tag()}")
        request.add("to", f"<{request_uri}>")
        request.add("call-id", f"{secrets.token_hex(12)}@{self.contact_host}")
        request.add("cseq", f"1 {method}")
        request.add("user-agent", USER_AGENT)
        return request

    async def _keep_registered(
        self, registrar: SipUri, registration: Registration, credentials: Credentials | None, expires: int
    ) -> None:
        credentials = credentials or self._default_credentials
        call_id = f"{secrets.token_hex(12)}@{self.contact_host}"
        tag = new_tag()
        cseq = 0
        scheme = "sips" if registrar.secure else "sip"
        aor = f"{scheme}:{credentials.username if credentials else self.settings.user}@{registrar.host}"
        transport = "" if registrar.transport == UDP or registrar.secure else f";transport={registrar.transport}"
        request_uri = f"{scheme}:{registrar.host}:{registrar.port}{transport}"
        while True:
            cseq += 1
            request = SipMessage(method="REGISTER", uri=request_uri)
            request.add("via", self._via(new_branch(), registrar.transport))
            request.add("max-forwards", "70")
            request.add("from", f"<{aor}>;tag={tag}")
            request.add("to", f"<{aor}>")
            request.add("call-id", call_id)
            request.add("cseq", f"{cseq} REGISTER")
            request.add("contact", self.contact(registrar.transport, secure=registrar.secure))
            request.add("expires", str(expires))
            request.add("user-agent", USER_AGENT)
            response = await self.request(request, registrar.hop, credentials=credentials)
            cseq = max(cseq, _cseq_number(response))
            if 200 <= response.status < 300:
                registration.registered.set()
                granted = _granted_expiry(response, expires)
                await asyncio.sleep(max(granted * 0.8, 5))  # refresh well before it lapses
            else:
                registration.registered.clear()
                log.warning(
                    "REGISTER at %s refused: %d %s; retrying in 30 s", registrar.host, response.status, response.reason
                )
                await asyncio.sleep(30)

    # --- requests we receive ---------------------------------------------------------------------------------------

    def _on_request(self, request: SipMessage, flow: Flow) -> None:
        method = request.method
        if method == "ACK":
            self._on_ack(request)
            return
        key = (request.branch, method)
        existing = self._server.get(key)
        if existing is not None:
            existing.on_retransmission()
            return
        server = ServerTransaction(request, flow, self.send, self._timers, lambda s: self._server.pop(s.key, None))
        self._server[key] = server
        in_dialog = bool(NameAddr.parse(request.get("to")).tag)
        if not in_dialog and method != "CANCEL" and self.admit is not None and not self.admit(flow.remote[0]):
            server.respond(response_to(request, 403, "Forbidden", to_tag=new_tag()))
            if self.on_refused is not None:
                self.on_refused(request, flow)
            return
        if method == "CANCEL":
            self._on_cancel(request, server)
        elif method == "INVITE" and not in_dialog:
            self._on_new_invite(request, server)
        elif method in ("INVITE", "BYE"):
            call = self._dialogs.get((request.call_id, NameAddr.parse(request.get("to")).tag))
            if call is None:
                server.respond(response_to(request, 481, "Call/Transaction Does Not Exist"))
            elif method == "BYE":
                server.respond(response_to(request, 200, "OK"))
                call.terminate("remote-bye")
            else:
                self._spawn(call.on_reinvite_request(request, server))
        elif method == "OPTIONS":
            response = response_to(request, 200, "OK", to_tag=new_tag())
            response.add("allow", ALLOW)
            response.add("accept", "application/sdp")
            response.add("user-agent", USER_AGENT)
            server.respond(response)
        else:
            response = response_to(
                request,
                405 if method in ("REGISTER", "SUBSCRIBE", "PUBLISH") else 501,
                "Method Not Allowed" if method in ("REGISTER", "SUBSCRIBE", "PUBLISH") else "Not Implemented",
            )
            response.add("allow", ALLOW)
            server.respond(response)

    def _on_ack(self, ack: SipMessage) -> None:
        server = self._server.get((ack.branch, "INVITE"))
        if server is not None and server.final_sent and server.last_response.status >= 300:
            server.acked.set()  # the ACK of a refusal belongs to its transaction
            return
        call = self._dialogs.get((ack.call_id, NameAddr.parse(ack.get("to")).tag))
        if call is not None:
            call.on_ack(ack.cseq[0])

    def _on_new_invite(self, request: SipMessage, server: ServerTransaction) -> None:
        server.respond(response_to(request, 100, "Trying"))
        try:
            offer = _sdp_of(request)
        except SdpError as exc:
            server.respond(response_to(request, 400, f"Bad SDP: {exc}"[:60], to_tag=new_tag()))
            return
        if offer is None:
            # We answer only offers: a fax endpoint without an SDP offer cannot pick a codec (no late offer).
            server.respond(response_to(request, 488, "Not Acceptable Here", to_tag=new_tag()))
            return
        incoming = IncomingCall(self, request, server, offer)
        if self.on_incoming is None:
            incoming.reject_now(480, "Temporarily Unavailable")
            return
        self._incoming[request.branch] = incoming
        self._spawn(self._run_incoming(incoming))

    async def _run_incoming(self, incoming: IncomingCall) -> None:
        try:
            assert self.on_incoming is not None
            await self.on_incoming(incoming)
        except Exception:
            log.exception("incoming call %s: handler failed", incoming.call_id)
        finally:
            if not incoming.server.final_sent:
                incoming.reject_now(500, "Server Internal Error")
            self._incoming.pop(incoming.request.branch, None)

    def _on_cancel(self, cancel: SipMessage, server: ServerTransaction) -> None:
        incoming = self._incoming.get(cancel.branch)
        if incoming is None:
            server.respond(response_to(cancel, 481, "Call/Transaction Does Not Exist"))
            return
        server.respond(response_to(cancel, 200, "OK", to_tag=incoming.local_tag))
        incoming.reject_now(487, "Request Terminated")
        incoming.cancelled.set()

    def _on_response(self, response: SipMessage) -> None:
        try:
            _, method = response.cseq
            branch = response.branch
        except SipParseError:
            return
        transaction = self._client.get((branch, method))
        repeated_2xx = method == "INVITE" and 200 <= response.status < 300
        if transaction is not None and not (repeated_2xx and transaction.final.done()):
            transaction.on_response(response)
            return
        if repeated_2xx:
            # A retransmitted 2xx: our ACK was lost, and every 2xx gets its ACK (§13.2.2.4). One that comes before
            # the dialog exists is counted, and ACKed as soon as it does.
            call = self._dialogs.get((response.call_id, NameAddr.parse(response.get("from")).tag))
            if call is not None:
                call.resend_ack(response.cseq[0])
            elif response.call_id in self._repeated_2xx:
                self._repeated_2xx[response.call_id] += 1

    def forget(self, call: Call) -> None:
        self._dialogs.pop(call.key, None)


class IncomingCall:
    """An INVITE waiting for us to decide: ``ringing()``, then ``answer(sdp)`` or ``reject(status, reason)``."""

    def __init__(self, ua: SipUserAgent, request: SipMessage, server: ServerTransaction, offer: SessionDescription):
        self._ua = ua
        self.request = request
        self.server = server
        self.offer = offer
        self.local_tag = new_tag()
        self.cancelled = asyncio.Event()
        caller = NameAddr.parse(request.get("from"))
        self.call_id = request.call_id
        self.from_name = caller.display
        self.from_number = _user_of(caller.uri)
        # Trunks put the dialled number (the DID) in the Request-URI; To usually agrees.
        self.to_number = _user_of(request.uri) or _user_of(NameAddr.parse(request.get("to")).uri)

    @property
    def source(self) -> Address:
        """The address the INVITE came from."""
        return self.server.flow.remote

    def _response(self, status: int, reason: str) -> SipMessage:
        return response_to(self.request, status, reason, to_tag=self.local_tag)

    async def ringing(self) -> None:
        if not self.server.final_sent:
            self.server.respond(self._response(180, "Ringing"))

    def reject_now(self, status: int, reason: str) -> None:
        if not self.server.final_sent:
            self.server.respond(self._response(status, reason))

    async def reject(self, status: int, reason: str) -> None:
        self.reject_now(status, reason)

    async def answer(self, sdp: SessionDescription) -> Call:
        if self.server.final_sent:
            raise CallFailed(487, "Request Terminated")
        flow = self.server.flow
        response = self._response(200, "OK")
        response.add("contact", self._ua.contact(flow.transport, secure=_is_sips(self.request.uri)))
        response.add("allow", ALLOW)
        response.add("content-type", "application/sdp")
        response.body = sdp.encode()
        contact = self.request.get_all("contact")
        call = Call(
            self._ua,
            call_id=self.call_id,
            local=NameAddr.parse(self.request.get("to")).with_tag(self.local_tag),
            remote=NameAddr.parse(self.request.get("from")),
            remote_target=NameAddr.parse(contact[0]).uri if contact else "",
            route_set=self.request.get_all("record-route"),
            local_cseq=0,
            local_sdp=sdp,
            remote_sdp=self.offer,
            flow=flow,
        )
        self._ua._dialogs[call.key] = call
        self.server.respond(response)
        call.retransmit_until_acked(response, flow, self.request.cseq[0])
        return call


class Call:
    """A confirmed dialog (§12): in-dialog requests, re-INVITEs both ways, BYE.

    In-dialog requests go to the remote target (or the first route), over the transport it names; a dialog that
    came in over a TCP or TLS connection keeps using that connection while it is open, as the far end may not take
    new connections (behind NAT, or a TLS client without a listener: RFC 5626's flows).
    """

    def __init__(
        self,
        ua: SipUserAgent,
        *,
        call_id: str,
        local: NameAddr,
        remote: NameAddr,
        remote_target: str,
        route_set: list[str],
        local_cseq: int,
        local_sdp: SessionDescription,
        remote_sdp: SessionDescription | None,
        remote_hop: Hop | None = None,
        flow: Flow | None = None,
    ) -> None:
        self._ua = ua
        self.call_id = call_id
        self.local = local
        self.remote = remote
        self.remote_target = remote_target or remote.uri
        self.route_set = route_set
        self._cseq = local_cseq
        self.local_sdp = local_sdp
        self.remote_sdp = remote_sdp or SessionDescription(origin_host="")
        self._remote_hop = remote_hop
        self._flow = flow
        if flow is not None:
            self._remote_address: Address | None = flow.remote
        else:
            self._remote_address = (remote_hop.host, remote_hop.port) if remote_hop else None
        self.on_reinvite: ReinviteHandler | None = None
        self._acks: dict[int, SipMessage] = {}
        self._acked: dict[int, asyncio.Event] = {}
        self._terminated = asyncio.Event()
        self.termination_reason = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.call_id, self.local.tag

    @property
    def terminated(self) -> bool:
        return self._terminated.is_set()

    @property
    def signalling_address(self) -> Address | None:
        """Where the far end's SIP comes from: the source of its INVITE, or where ours went (trunk or proxy)."""
        return self._remote_address

    @property
    def transport(self) -> str:
        """The transport the dialog was set up over."""
        if self._flow is not None:
            return self._flow.transport
        return self._remote_hop.transport if self._remote_hop else UDP

    def identity(self) -> DialogIdentity:
        """The dialog as data, for a successor to end it (``SipUserAgent.end_dialog``) should this process die."""
        return DialogIdentity(
            call_id=self.call_id,
            local=str(self.local),
            remote=str(self.remote),
            remote_target=self.remote_target,
            route_set=list(self.route_set),
            local_cseq=self._cseq,
            contact=self._ua.contact(),
            signalling_address=self._remote_address,
            transport=self.transport,
        )

    def _destination(self) -> Hop | Flow:
        flow = self._flow
        if flow is not None and flow.connection is not None and flow.connection.open:
            return flow
        try:
            return self._ua._destination(self.remote_target, self.route_set)
        except SipParseError:
            if self._remote_hop is None:
                raise
            return self._remote_hop

    def _contact(self) -> str:
        return self._ua.contact(self._destination().transport, secure=_is_sips(self.remote_target))

    def _request(self, method: str, cseq: int | None = None) -> SipMessage:
        if cseq is None:
            self._cseq += 1
            cseq = self._cseq
        request = SipMessage(method=method, uri=self.remote_target)
        request.add("via", self._ua._via(new_branch(), self._destination().transport))
        for route in self.route_set:
            request.add("route", route)
        request.add("max-forwards", "70")
        request.add("from", str(self.local))
        request.add("to", str(self.remote))
        request.add("call-id", self.call_id)
        request.add("cseq", f"{cseq} {method}")
        return request

    # ACKs for our INVITEs' 2xx (kept to answer retransmitted 2xx).
    def send_ack(self, cseq: int, auth: SipMessage | None = None) -> None:
        ack = self._request("ACK", cseq)
        if auth is not None:
            for header in ("authorization", "proxy-authorization"):
                if auth.get(header):
                    ack.set(header, auth.get(header))
        self._acks[cseq] = ack
        self._ua.send(ack, self._destination())

    def resend_ack(self, cseq: int) -> None:
        ack = self._acks.get(cseq)
        if ack is not None:
            self._ua.send(ack, self._destination())

    def retransmit_until_acked(self, response: SipMessage, destination: Flow, cseq: int) -> None:
        """Our 2xx to an INVITE waits for its ACK (§13.3.1.4), and is repeated meanwhile over UDP only: over a
        stream the transport delivers it (as pjsip, Asterisk's stack, does; the RFC also repeats it there, for UDP
        hops beyond a proxy). A 2xx never ACKed ends the call."""
        event = self._acked.setdefault(cseq, asyncio.Event())
        timers = self._ua._timers

        async def repeat() -> None:
            interval = timers.t1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(64 * timers.t1):
                    while not event.is_set():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(event.wait(), interval)
                        if not event.is_set() and not destination.reliable:
                            self._ua.send(response, destination)
                            interval = min(interval * 2, timers.t2)
            if not event.is_set() and not self.terminated:
                log.warning("call %s: no ACK for our 2xx; ending the call", self.call_id)
                await self.hangup()

        self._ua._spawn(repeat())

    def on_ack(self, cseq: int) -> None:
        self._acked.setdefault(cseq, asyncio.Event()).set()

    async def reinvite(self, offer: SessionDescription) -> SessionDescription:
        """Offer new media in the dialog; the far end's answer, or ``CallFailed`` (488 when refused)."""
        if self.terminated:
            raise CallFailed(481, "Call/Transaction Does Not Exist")
        request = self._request("INVITE")
        request.add("contact", self._contact())
        request.add("content-type", "application/sdp")
        request.body = offer.encode(version=self._cseq + 1)
        response = await self._ua.request(request, self._destination())
        # An authenticated retry went out with a higher CSeq: later requests must count on from it.
        self._cseq = max(self._cseq, _cseq_number(response))
        if not 200 <= response.status < 300:
            raise CallFailed(response.status, response.reason, unreachable=response.local)
        self.send_ack(_cseq_number(response) or request.cseq[0])
        answer = _sdp_of(response) or SessionDescription(origin_host="")
        self.local_sdp, self.remote_sdp = offer, answer
        return answer

    async def on_reinvite_request(self, request: SipMessage, server: ServerTransaction) -> None:
        server.respond(response_to(request, 100, "Trying"))
        try:
            offer = _sdp_of(request)
        except SdpError:
            offer = None
        answer = None
        if offer is not None and self.on_reinvite is not None:
            try:
                answer = await self.on_reinvite(offer)
            except Exception:
                log.exception("call %s: re-INVITE handler failed", self.call_id)
        if answer is None:
            server.respond(response_to(request, 488, "Not Acceptable Here"))
            return
        response = response_to(request, 200, "OK")
        response.add("contact", self._ua.contact(server.flow.transport, secure=_is_sips(self.remote_target)))
        response.add("content-type", "application/sdp")
        response.body = answer.encode(version=2)
        self.local_sdp, self.remote_sdp = answer, offer
        server.respond(response)
        self.retransmit_until_acked(response, server.flow, request.cseq[0])

    async def hangup(self) -> None:
        if self.terminated:
            return
        self.terminate("local-bye")
        with contextlib.suppress(Exception):
            await self._ua.request(self._request("BYE"), self._destination())

    def terminate(self, reason: str) -> None:
        if not self._terminated.is_set():
            self.termination_reason = reason
            self._terminated.set()
            # Keep the dialog a little so retransmitted BYEs and 2xx still find it.
            asyncio.get_running_loop().call_later(32 * self._ua._timers.t1, self._ua.forget, self)

    async def wait_terminated(self) -> str:
        await self._terminated.wait()
        return self.termination_reason


async def _heard_within(heard: asyncio.Event, attempt: asyncio.Future[SipMessage], seconds: float) -> bool:
    """Whether the next hop answered (a provisional, or the request ended) within ``seconds``."""
    waiter = asyncio.ensure_future(heard.wait())
    try:
        await asyncio.wait({waiter, attempt}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    return heard.is_set() or attempt.done()


def _next_attempt(request: SipMessage, via: str) -> SipMessage:
    retry = SipMessage(method=request.method, uri=request.uri, headers=list(request.headers), body=request.body)
    retry.set("via", via)
    number, method = request.cseq
    retry.set("cseq", f"{number + 1} {method}")
    return retry


def _sdp_of(message: SipMessage) -> SessionDescription | None:
    if not message.body or "application/sdp" not in message.get("content-type").lower():
        return None
    return SessionDescription.parse(message.body)


def _is_sips(uri: str) -> bool:
    return uri.strip().lower().startswith("sips:")


def _user_of(uri: str) -> str:
    try:
        return SipUri.parse(uri).user
    except SipParseError:
        return ""


def _cseq_number(message: SipMessage) -> int:
    try:
        return message.cseq[0]
    except SipParseError:
        return 0


def _granted_expiry(response: SipMessage, asked: int) -> int:
    for contact in response.get_all("contact"):
        expires = contact.partition("expires=")[2].split(";")[0]
        if expires.isdigit():
            return int(expires)
    value = response.get("expires")
    return int(value) if value.isdigit() else asked
