"""Our SIP stack against independent peers: SIPp (sip-tester) plays the far end, tshark checks the wire.

Every scenario runs one SIPp call (``-m 1``) against an in-process ``SipUserAgent`` on loopback, with tshark capturing
the SIP ports; a scenario passes when SIPp exits 0 (every message it expected arrived, in order, with the checks in its
actions) and Wireshark's dissectors find SIP in the capture and nothing malformed. Over TCP SIPp runs with ``-t t1``
and Wireshark reassembles the stream; Debian's SIPp has no TLS, so stunnel carries its TCP over TLS (checking our
certificate against a CA made in the test, or presenting one), and the capture of the TLS leg must show a handshake,
records, and no SIP in clear. The last test captures two real fax calls from the transmitter's sip line to faxsim,
one over T.38 and one over G.711, and has Wireshark parse their T.38 and RTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from fax_faxsim.simulator import FaxSimulator, SimulatorSettings
from fax_media.t30 import FaxOptions, TransmissionOutcome
from fax_sip import Call, CallFailed, IncomingCall, SessionDescription, SipSettings, SipUserAgent, TlsSettings
from fax_sip.digest import parse_challenge
from fax_transmitter.config import TrunkConfig
from fax_transmitter.lines import CallRequest
from fax_transmitter.sip_line import SipLine, SipLineSettings
from tests.integration.test_media_calls import make_tiff

HOST = "127.0.0.1"
SCENARIOS = Path(__file__).with_name("sipp")
# Listening ports below the kernel's ephemeral range (32768-60999 here), which stacks' ports (26000-32000) also keep
# out of: there, any test's outgoing connection may hold the port a listener is about to bind.
SIPP_PORTS = range(32100, 32150)
UA_PORTS = range(32150, 32200)
STUNNEL_PORTS = range(32200, 32250)
SIPP_MEDIA_PORTS = range(32300, 32500, 4)  # SIPp binds its RTP echo port (+2 for video) even when unused
SIPP_CONTROL_PORTS = range(32500, 32600)
PROBE_PORTS = range(32600, 32700)
FAX_MEDIA_PORTS = (48600, 48799)  # the transmitter's and faxsim's RTP and UDPTL ports in the fax capture
USER, PASSWORD = "fax-user", "fax-secret"

pytestmark = pytest.mark.skipif(
    shutil.which("sipp") is None or shutil.which("tshark") is None, reason="needs sipp (sip-tester) and tshark"
)


def _free_udp_port(candidates: range) -> int:
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free UDP port in {candidates}")


def _free_tcp_port(candidates: range) -> int:
    """A port free for both TCP and UDP (a user agent takes both)."""
    for port in candidates:
        if port not in _ports_in_use("tcp") | _ports_in_use("udp"):
            return port
    raise RuntimeError(f"no free port in {candidates}")


def _ports_in_use(table: str) -> set[int]:
    """Local ports in the kernel's ``/proc/net/udp`` or ``/proc/net/tcp`` (any state: a TIME_WAIT connection still
    blocks a listener's bind). Read, never probed by binding: a probe socket held for a moment while a peer starts
    is what makes that peer's own bind fail."""
    ports = set()
    for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
        ports.add(int(line.split()[1].rsplit(":", 1)[1], 16))
    return ports


async def _wait_listening(port: int, table: str, process: asyncio.subprocess.Process, what: str) -> None:
    async with asyncio.timeout(10):
        while port not in _ports_in_use(table):
            if process.returncode is not None:
                raise AssertionError(f"{what} exited {process.returncode} before it listened on {port}")
            await asyncio.sleep(0.02)


class Capture:
    """tshark on lo, started before the scenario and stopped after it; ``read`` runs display filters on the file."""

    def __init__(self, path: Path, capture_filter: str) -> None:
        self.path = path
        self.capture_filter = capture_filter
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Capture:
        # tshark says "Capturing on" a little before packets really land in the file: a probe datagram to a port
        # of our own, echoed on tshark's stdout (-P), proves the capture is live before the scenario starts.
        probe_port = _free_udp_port(PROBE_PORTS)
        summary = self.path.with_suffix(".txt")
        with summary.open("wb") as stdout:
            self._process = await asyncio.create_subprocess_exec(
                "tshark", "-i", "lo", "-f", f"({self.capture_filter}) or udp port {probe_port}", "-w", str(self.path),
                "-P", "-l", stdout=stdout, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            async with asyncio.timeout(15):
                while not summary.stat().st_size:
                    if self._process.returncode is not None:
                        pytest.skip(f"tshark cannot capture on lo here (exit {self._process.returncode})")
                    probe.sendto(b"capture probe", (HOST, probe_port))
                    await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._process is not None
        await asyncio.sleep(0.3)  # let the last datagrams reach the capture buffer
        self._process.send_signal(signal.SIGINT)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self._process.wait()
                return
        self._process.kill()
        await self._process.wait()

    def read(self, display_filter: str, *options: str, fields: tuple[str, ...] = ()) -> list[str]:
        command = ["tshark", "-r", str(self.path), *options, "-Y", display_filter]
        if fields:
            command += ["-T", "fields", "-E", "separator=|", *(arg for field in fields for arg in ("-e", field))]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        return [line for line in result.stdout.splitlines() if line.strip()]

    def assert_clean_sip(self, *options: str) -> list[str]:
        """Nothing malformed or in error; the SIP messages as ``method|status|cseq`` lines, in capture order."""
        problems = self.read("_ws.malformed || _ws.expert.severity == error", *options)
        assert problems == [], f"Wireshark finds faults in {self.path}:\n" + "\n".join(problems)
        messages = self.read("sip", *options, fields=("sip.Method", "sip.Status-Code", "sip.CSeq"))
        assert messages, f"no SIP parsed in {self.path}"
        return messages


class Sipp:
    """One SIPp run in the foreground (``-m 1``); ``finish`` waits for it and returns its exit code. ``transport`` is
    SIPp's ``-t``: ``u1`` (UDP) or ``t1`` (one TCP connection)."""

    def __init__(self, workdir: Path, scenario: str, transport: str = "u1") -> None:
        self.workdir = workdir
        self.scenario = SCENARIOS / scenario
        self.transport = transport
        self.port = _free_udp_port(SIPP_PORTS) if transport == "u1" else _free_tcp_port(SIPP_PORTS)
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, *extra: str) -> None:
        self.process = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(self.scenario), "-i", HOST, "-p", str(self.port), "-m", "1", "-timeout", "30s",
            "-t", self.transport, "-trace_err", "-error_file", str(self.workdir / "sipp-errors.log"), "-trace_msg",
            "-message_file", str(self.workdir / "sipp-messages.log"), "-nostdin",
            "-mp", str(_free_udp_port(SIPP_MEDIA_PORTS)), "-cp", str(_free_udp_port(SIPP_CONTROL_PORTS)), *extra,
            cwd=self.workdir, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        if self.transport == "t1" and self.scenario.name.startswith("uac"):
            return  # a TCP client listens nowhere: it connects
        try:
            await _wait_listening(self.port, "udp" if self.transport == "u1" else "tcp", self.process, "SIPp")
        except AssertionError as exited:
            await self.finish()
            raise AssertionError(f"{exited}:\n{self.errors()[-3000:]}") from None

    async def finish(self, limit: float = 40) -> int:
        assert self.process is not None
        async with asyncio.timeout(limit):
            _, stderr = await self.process.communicate()
        self.stderr = stderr.decode(errors="replace")
        return self.process.returncode

    async def stop(self) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.terminate()
        await self.finish()

    def errors(self) -> str:
        """SIPp's errors, the tail of what it sent and received, and its stderr."""
        logs = [self.workdir / "sipp-errors.log", self.workdir / "sipp-messages.log"]
        return "".join(log.read_text(errors="replace")[-2000:] for log in logs if log.exists()) + self.stderr


async def assert_sipp_passed(sipp: Sipp) -> None:
    code = await sipp.finish()
    assert code == 0, f"SIPp {sipp.scenario.name} exited {code}:\n{sipp.errors()[-3000:]}"


@contextlib.asynccontextmanager
async def user_agent(**settings: object) -> AsyncIterator[SipUserAgent]:
    ua = SipUserAgent(SipSettings(bind_host=HOST, bind_port=_free_udp_port(UA_PORTS), user="fax", **settings))
    await ua.start()
    try:
        yield ua
    finally:
        await ua.close()


AUDIO_OFFER = SessionDescription.audio_only(HOST, 48590, [0, 8])


def _target(sipp: Sipp, number: str = "+15551230000") -> str:
    return f"sip:{number}@{HOST}:{sipp.port}"


# --- 1. digest authentication ---------------------------------------------------------------------------------------


def _check_digest(capture: Capture, header: str, algorithm: str, password: str = PASSWORD) -> None:
    """Recompute the digest we sent from what went over the wire: challenge and credentials, as Wireshark read them."""
    challenge_field = "sip.WWW-Authenticate" if header == "authorization" else "sip.Proxy-Authenticate"
    challenge_line = capture.read("sip.Status-Code == 401 || sip.Status-Code == 407", fields=(challenge_field,))
    credentials = capture.read(f"sip.Method == INVITE && sip.{header.title()}", fields=(f"sip.{header.title()}",))
    assert challenge_line and credentials, "no challenge or no credentials on the wire"
    challenge = parse_challenge(challenge_line[0])
    sent = parse_challenge(credentials[0])
    assert sent["algorithm"] == algorithm and sent["qop"] == "auth" and sent["nonce"] == challenge["nonce"]
    assert sent["opaque"] == challenge["opaque"] and sent["username"] == USER

    def h(text: str) -> str:
        return hashlib.new(algorithm.replace("-", "").lower(), text.encode()).hexdigest()

    ha1 = h(f"{USER}:{challenge['realm']}:{password}")
    ha2 = h(f"INVITE:{sent['uri']}")
    expected = h(f"{ha1}:{sent['nonce']}:{sent['nc']}:{sent['cnonce']}:auth:{ha2}")
    assert sent["response"] == expected


@pytest.mark.parametrize(
    ("scenario", "header", "algorithm"),
    [
        ("uas_auth_401_md5.xml", "authorization", "MD5"),
        ("uas_auth_407_md5.xml", "proxy-authorization", "MD5"),
        ("uas_auth_401_sha256.xml", "authorization", "SHA-256"),
    ],
)
async def test_a_challenged_call_is_retried_with_credentials_the_peer_accepts(
    tmp_path: Path, scenario: str, header: str, algorithm: str
) -> None:
    sipp = Sipp(tmp_path, scenario)
    async with (
        user_agent(auth_username=USER, auth_password=PASSWORD, t1=0.2) as ua,
        Capture(tmp_path / "call.pcap", f"udp port {sipp.port} or udp port {ua.port}") as capture,
    ):
        await sipp.start()
        call = await asyncio.wait_for(ua.invite(_target(sipp), from_number="+15550001000", offer=AUDIO_OFFER), 10)
        await call.hangup()
        await assert_sipp_passed(sipp)
    messages = capture.assert_clean_sip()
    assert [m.split("|")[:2] for m in messages] == [
        ["INVITE", ""], ["", str(401 if header == "authorization" else 407)], ["ACK", ""],
        ["INVITE", ""], ["", "200"], ["ACK", ""], ["BYE", ""], ["", "200"],
    ]  # fmt: skip
    _check_digest(capture, header, algorithm)


async def test_a_wrong_password_fails_the_peers_verification(tmp_path: Path) -> None:
    # The same scenario is a real check: with a wrong password SIPp's verifyauth refuses and the run fails.
    sipp = Sipp(tmp_path, "uas_auth_401_md5.xml")
    async with user_agent(auth_username=USER, auth_password="not-the-password", t1=0.2) as ua:
        await sipp.start()
        with pytest.raises(CallFailed) as refused:
            await asyncio.wait_for(ua.invite(_target(sipp), from_number="+15550001000", offer=AUDIO_OFFER), 10)
        assert refused.value.status == 403
        assert await sipp.finish() != 0


# --- 2. retransmission over a lossy path --------------------------------------------------------------------------


async def test_an_unanswered_invite_is_retransmitted_and_a_repeated_2xx_is_acked_again(tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, "uas_retransmissions.xml")
    async with (
        user_agent(t1=0.2) as ua,
        Capture(tmp_path / "call.pcap", f"udp port {sipp.port} or udp port {ua.port}") as capture,
    ):
        await sipp.start()
        call = await asyncio.wait_for(ua.invite(_target(sipp), from_number="+15550001000", offer=AUDIO_OFFER), 10)
        await asyncio.sleep(0.5)  # the OPTIONS, then the repeated 200 and our second ACK
        await call.hangup()
        await assert_sipp_passed(sipp)
    capture.assert_clean_sip()
    invites = capture.read("sip.Method == INVITE", fields=("frame.time_relative", "sip.Via.branch"))
    times = [float(line.split("|")[0]) for line in invites]
    branches = {line.split("|")[1] for line in invites}
    # Timer A with T1=0.2 s during SIPp's one second of silence: sent at 0, 0.2, 0.6 (interval doubling).
    assert len(times) >= 3 and len(branches) == 1, invites
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert 0.15 < gaps[0] < 0.35 and 0.3 < gaps[1] < 0.6, gaps
    oks = capture.read("sip.Status-Code == 200 && sip.CSeq.method == INVITE")
    acks = capture.read("sip.Method == ACK", fields=("sip.CSeq",))
    assert len(oks) == 2 and acks == ["1 ACK", "1 ACK"], (oks, acks)


# --- 3. CANCEL while ringing ----------------------------------------------------------------------------------------


async def test_cancelling_a_ringing_call_sends_cancel_and_acks_the_487(tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, "uas_cancel.xml")
    progress: list[int] = []
    ringing = asyncio.Event()

    def on_progress(status: int) -> None:
        progress.append(status)
        if status == 180:
            ringing.set()

    async with (
        user_agent(t1=0.2) as ua,
        Capture(tmp_path / "call.pcap", f"udp port {sipp.port} or udp port {ua.port}") as capture,
    ):
        await sipp.start()
        attempt = asyncio.create_task(
            ua.invite(_target(sipp), from_number="+15550001000", offer=AUDIO_OFFER, on_progress=on_progress)
        )
        try:
            await asyncio.wait_for(ringing.wait(), 5)
        except TimeoutError:
            attempt.cancel()
            await sipp.stop()
            raise AssertionError(f"no 180 within 5 s (responses {progress}):\n{sipp.errors()[-4000:]}") from None
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt
        await assert_sipp_passed(sipp)
    messages = [m.split("|")[:2] for m in capture.assert_clean_sip()]
    assert messages == [
        ["INVITE", ""], ["", "100"], ["", "180"], ["CANCEL", ""], ["", "200"], ["", "487"], ["ACK", ""],
    ]  # fmt: skip


async def test_a_call_that_rings_past_its_timeout_fails_with_408_after_cancel(tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, "uas_cancel.xml")
    async with user_agent(t1=0.2) as ua:
        await sipp.start()
        with pytest.raises(CallFailed) as failed:
            await ua.invite(_target(sipp), from_number="+15550001000", offer=AUDIO_OFFER, ring_timeout=1.0)
        assert failed.value.status == 408
        await assert_sipp_passed(sipp)


# --- 4. re-INVITEs: ours refused, the network's accepted -----------------------------------------------------------


async def test_a_refused_t38_reinvite_raises_488_and_the_call_stays_up(tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, "uas_reinvite_488.xml")
    async with (
        user_agent(t1=0.2) as ua,
        Capture(tmp_path / "call.pcap", f"udp port {sipp.port} or udp port {ua.port}") as capture,
    ):
        await sipp.start()
        call = await asyncio.wait_for(ua.invite(_target(sipp), from_number="+15550001000", offer=AUDIO_OFFER), 10)
        with pytest.raises(CallFailed) as refused:
            await call.reinvite(SessionDescription.t38_only(HOST, 48592))
        assert refused.value.status == 488
        assert not call.terminated and call.local_sdp.audio is not None
        await call.hangup()
        assert await call.wait_terminated() == "local-bye"
        await assert_sipp_passed(sipp)
    messages = [m.split("|")[:2] for m in capture.assert_clean_sip()]
    assert messages == [
        ["INVITE", ""], ["", "200"], ["ACK", ""], ["INVITE", ""], ["", "488"], ["ACK", ""], ["BYE", ""], ["", "200"],
    ]  # fmt: skip


async def test_a_t38_reinvite_from_the_network_is_accepted_by_on_reinvite(tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, "uas_t38_reinvite.xml")
    offers: list[SessionDescription] = []

    async def accept_t38(offer: SessionDescription) -> SessionDescription | None:
        offers.append(offer)
        return SessionDescription.t38_only(HOST, 48594) if offer.t38 is not None else None

    async with (
        user_agent(t1=0.2) as ua,
        Capture(tmp_path / "call.pcap", f"udp port {sipp.port} or udp port {ua.port}") as capture,
    ):
        await sipp.start()
        call = await asyncio.wait_for(ua.invite(_target(sipp), from_number="+15550001000", offer=AUDIO_OFFER), 10)
        call.on_reinvite = accept_t38
        assert await asyncio.wait_for(call.wait_terminated(), 10) == "remote-bye"
        await assert_sipp_passed(sipp)
    assert len(offers) == 1 and offers[0].t38 is not None
    assert offers[0].t38.rate_management == "transferredTCF" and offers[0].t38.max_datagram == 176
    assert call.remote_sdp.t38 is not None and call.local_sdp.t38 is not None
    messages = [m.split("|")[:2] for m in capture.assert_clean_sip()]
    assert (
        ["INVITE", ""] in messages[3:] and ["", "200"] in messages[3:] and messages[-2:] == [["BYE", ""], ["", "200"]]
    )
    answers = capture.read('sip.Status-Code == 200 && sdp.media.format contains "t38"')
    assert len(answers) >= 1


# --- 5b. a gateway calls us, then moves the call to T.38 ----------------------------------------------------------


async def test_a_gateway_call_moved_to_t38_by_the_network_is_accepted(tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, "uac_t38_reinvite.xml")
    offers: list[SessionDescription] = []
    calls: list[Call] = []

    async def answer(incoming: IncomingCall) -> None:
        await incoming.ringing()
        call = await incoming.answer(SessionDescription.audio_only(HOST, 48594, [0]))

        async def on_reinvite(offer: SessionDescription) -> SessionDescription | None:
            offers.append(offer)
            return SessionDescription.t38_only(HOST, 48596) if offer.t38 is not None else None

        call.on_reinvite = on_reinvite
        calls.append(call)

    async with user_agent(t1=0.2) as ua:
        ua.on_incoming = answer
        async with Capture(tmp_path / "call.pcap", f"udp port {sipp.port} or udp port {ua.port}") as capture:
            await sipp.start("-s", "+15551230000", f"{HOST}:{ua.port}")
            await assert_sipp_passed(sipp)
            assert len(calls) == 1
            assert await asyncio.wait_for(calls[0].wait_terminated(), 5) == "remote-bye"
    assert len(offers) == 1 and offers[0].t38 is not None
    assert offers[0].t38.max_datagram == 320 and offers[0].t38.max_buffer == 1800
    assert calls[0].local_sdp.t38 is not None and calls[0].local_sdp.t38.port == 48596
    messages = [row.split("|")[:2] for row in capture.assert_clean_sip()]
    assert ["INVITE", ""] in messages and messages.count(["", "200"]) == 3 and messages[-1] == ["", "200"]
    answers = capture.read("sip.CSeq.seq == 2 && sip.Status-Code == 200", fields=("sdp.media",))
    assert answers == ["image 48596 udptl t38"]


# --- 5c. over TCP, and over TLS (SIPp has no TLS in Debian: stunnel carries its TCP over TLS) ------------------


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA made here, and a certificate it signed for 127.0.0.1 (our listener's, and stunnel's)."""
    folder = tmp_path_factory.mktemp("ca")
    authority = trustme.CA()
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem"}
    authority.cert_pem.write_to_path(str(paths["ca"]))
    authority.issue_cert(HOST).private_key_and_cert_chain_pem.write_to_path(str(paths["cert"]))
    return paths


@contextlib.asynccontextmanager
async def stunnel(workdir: Path, *, connect: int, client: bool, test_ca: dict[str, Path]) -> AsyncIterator[int]:
    """A TLS leg for SIPp's TCP: as a client (TCP in, TLS out, the server's certificate checked against the test
    CA and 127.0.0.1) or as a server (TLS in, with the test CA's certificate, TCP out). Yields its accept port."""
    if shutil.which("stunnel") is None:
        pytest.skip("needs stunnel (apt-get install stunnel4)")
    accept = _free_tcp_port(STUNNEL_PORTS)
    config = workdir / f"stunnel-{accept}.conf"
    tls = [f"CAfile = {test_ca['ca']}", "verifyChain = yes", f"checkIP = {HOST}"] if client else []
    config.write_text(
        "\n".join(
            [
                "foreground = yes", "pid =", f"output = {workdir / 'stunnel.log'}", "[sip]",
                f"client = {'yes' if client else 'no'}", f"accept = {HOST}:{accept}", f"connect = {HOST}:{connect}",
                *([f"cert = {test_ca['cert']}"] if not client else []), *tls,
            ]
        ) + "\n"
    )  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        "stunnel", str(config), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        try:
            await _wait_listening(accept, "tcp", process, "stunnel")
        except AssertionError as exited:
            raise AssertionError(f"{exited}:\n{(workdir / 'stunnel.log').read_text(errors='replace')}") from None
        yield accept
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


def _assert_tls_only(capture: Capture, port: int) -> None:
    """The TLS leg: a handshake and records, nothing malformed, and no SIP anyone on the path could read."""
    options = ("-d", f"tcp.port=={port},tls")
    assert capture.read("_ws.malformed || _ws.expert.severity == error", *options) == []
    assert capture.read("tls.handshake.type == 1", *options), "no ClientHello"
    assert len(capture.read("tls.app_data", *options)) >= 6
    assert capture.read("sip", *options, "-o", "sip.tcp.port:0") == []


STREAM_CALL = [
    ["INVITE", ""], ["", "401"], ["ACK", ""], ["INVITE", ""], ["", "200"], ["ACK", ""],
    ["INVITE", ""], ["", "100"], ["", "200"], ["ACK", ""], ["BYE", ""], ["", "200"],
]  # fmt: skip


async def _stream_call(ua: SipUserAgent, target: str) -> Call:
    """Call SIPp's uas_stream_auth_t38 at ``target``: through its challenge, its T.38 re-INVITE, then hang up."""
    offers: list[SessionDescription] = []
    moved = asyncio.Event()

    async def accept_t38(offer: SessionDescription) -> SessionDescription | None:
        offers.append(offer)
        moved.set()  # the 200 goes out as this returns, before the waiting test runs on
        return SessionDescription.t38_only(HOST, 48594) if offer.t38 is not None else None

    call = await asyncio.wait_for(ua.invite(target, from_number="+15550001000", offer=AUDIO_OFFER), 10)
    call.on_reinvite = accept_t38
    acked = asyncio.Event()
    note_ack = call.on_ack
    call.on_ack = lambda cseq: (note_ack(cseq), acked.set())  # type: ignore[method-assign]
    await asyncio.wait_for(moved.wait(), 10)
    assert ua.transports.open_connections() == 1  # the peer's re-INVITE came over the connection we opened
    # SIPp takes one message per scenario step: a BYE that overtook its ACK would be "unexpected".
    await asyncio.wait_for(acked.wait(), 10)
    await call.hangup()
    assert len(offers) == 1 and offers[0].t38 is not None and offers[0].t38.max_datagram == 176
    assert call.local_sdp.t38 is not None
    return call


async def test_over_tcp_a_challenged_call_the_peer_moves_to_t38_keeps_one_connection(tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, "uas_stream_auth_t38.xml", transport="t1")
    contact = f"sip:sipp@{HOST}:{sipp.port};transport=tcp"
    async with (
        user_agent(auth_username=USER, auth_password=PASSWORD, t1=0.2) as ua,
        Capture(tmp_path / "call.pcap", f"tcp port {sipp.port}") as capture,
    ):
        await sipp.start("-key", "contact", contact)
        await _stream_call(ua, f"sip:+15551230000@{HOST}:{sipp.port};transport=tcp")
        await assert_sipp_passed(sipp)
    messages = capture.assert_clean_sip("-d", f"tcp.port=={sipp.port},sip")
    assert [m.split("|")[:2] for m in messages] == STREAM_CALL
    assert len(capture.read("tcp.flags.syn == 1 && tcp.flags.ack == 0")) == 1  # one connection, both ways
    _check_digest(capture, "authorization", "MD5")


async def test_over_tls_a_challenged_call_the_peer_moves_to_t38(tmp_path: Path, test_ca: dict[str, Path]) -> None:
    sipp = Sipp(tmp_path, "uas_stream_auth_t38.xml", transport="t1")
    tls = TlsSettings(ca_file=str(test_ca["ca"]))
    async with (
        stunnel(tmp_path, connect=sipp.port, client=False, test_ca=test_ca) as tls_port,
        user_agent(auth_username=USER, auth_password=PASSWORD, t1=0.2, tls=tls) as ua,
        Capture(tmp_path / "call.pcap", f"tcp port {tls_port}") as capture,
    ):
        await sipp.start("-key", "contact", f"sips:sipp@{HOST}:{tls_port}")
        await _stream_call(ua, f"sips:+15551230000@{HOST}:{tls_port}")
        await assert_sipp_passed(sipp)
    _assert_tls_only(capture, tls_port)
    assert len(capture.read("tcp.flags.syn == 1 && tcp.flags.ack == 0")) == 1  # one connection, both ways


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_a_gateway_calling_over_a_stream_moves_the_call_to_t38(
    tmp_path: Path, test_ca: dict[str, Path], transport: str
) -> None:
    sipp = Sipp(tmp_path, "uac_t38_reinvite.xml", transport="t1")
    calls: list[Call] = []

    async def answer(incoming: IncomingCall) -> None:
        call = await incoming.answer(SessionDescription.audio_only(HOST, 48594, [0]))
        call.on_reinvite = lambda offer: _t38_answer(offer)
        calls.append(call)

    async def _t38_answer(offer: SessionDescription) -> SessionDescription | None:
        return SessionDescription.t38_only(HOST, 48596) if offer.t38 is not None else None

    tls = TlsSettings(cert_file=str(test_ca["cert"]))
    async with user_agent(t1=0.2, tls_port=0, tls=tls) as ua:
        ua.on_incoming = answer
        listener = ua.port if transport == "tcp" else ua.tls_port
        async with contextlib.AsyncExitStack() as stack:
            target = listener
            if transport == "tls":
                target = await stack.enter_async_context(
                    stunnel(tmp_path, connect=listener, client=True, test_ca=test_ca)
                )
            capture = await stack.enter_async_context(Capture(tmp_path / "call.pcap", f"tcp port {listener}"))
            await sipp.start("-s", "+15551230000", f"{HOST}:{target}")
            await assert_sipp_passed(sipp)
            assert len(calls) == 1
            assert await asyncio.wait_for(calls[0].wait_terminated(), 5) == "remote-bye"
    assert calls[0].transport == transport and calls[0].local_sdp.t38 is not None
    if transport == "tls":
        _assert_tls_only(capture, listener)
        return
    messages = [row.split("|")[:2] for row in capture.assert_clean_sip("-d", f"tcp.port=={listener},sip")]
    assert messages == [
        ["INVITE", ""], ["", "100"], ["", "200"], ["ACK", ""], ["INVITE", ""], ["", "100"], ["", "200"], ["ACK", ""],
        ["BYE", ""], ["", "200"],
    ]  # fmt: skip


# --- 6b. real fax calls (T.38 and G.711), as Wireshark reads them -------------------------------------------------


def _one_page_tiff(folder: Path) -> Path:
    two_pages = make_tiff(folder / "two-pages.tif")
    one_page = folder / "one-page.tif"
    subprocess.run(["tiffcp", f"{two_pages},0", str(one_page)], check=True, capture_output=True)
    return one_page


def _repeats(capture: Capture, frames: list[str], *options: str) -> list[str]:
    """Those of ``frames`` that are byte-for-byte repeats of an earlier datagram on the same path.

    T.38 sends end-of-data and indicator packets several times under one sequence number (redundancy by repetition,
    as spandsp and other gateways do). Wireshark's T.38 reassembly takes each repeat of a t4-non-ecm-sig-end for an
    end "without any fragment data" and flags it malformed: a dissector limitation, not a wire fault.
    """
    seen: set[tuple[str, str, str]] = set()
    repeats = []
    for row in capture.read("udp", *options, fields=("frame.number", "udp.srcport", "udp.dstport", "udp.payload")):
        number, *path_and_bytes = row.split("|")
        key = tuple(path_and_bytes)
        if key in seen and number in frames:
            repeats.append(number)
        seen.add(key)
    return repeats


FAX_CALLS = {"+15551230000": True, "+15551230038": False}  # faxsim's dial plan: T.38, and a machine refusing T.38


@pytest.mark.slow
async def test_real_fax_calls_over_t38_and_g711_parse_cleanly_in_wireshark(tmp_path: Path) -> None:
    document = _one_page_tiff(tmp_path)
    low, high = FAX_MEDIA_PORTS
    middle = (low + high) // 2
    simulator = FaxSimulator(
        SimulatorSettings(
            sip_host=HOST, sip_port=_free_tcp_port(SIPP_PORTS), media_ports=(low, middle),  # faxsim takes TCP too
            received_dir=tmp_path / "received",
        )
    )  # fmt: skip
    line = SipLine(
        SipLineSettings(
            sip=SipSettings(bind_host=HOST, bind_port=_free_udp_port(UA_PORTS)),
            trunks=(TrunkConfig.at(f"{HOST}:{simulator.settings.sip_port}", probe_interval_s=0),),
            media_ports=(middle + 1, high), ring_timeout=5.0,
        )
    )  # fmt: skip
    sip_ports = (simulator.settings.sip_port, line.settings.sip.bind_port)
    capture_filter = f"udp port {sip_ports[0]} or udp port {sip_ports[1]} or udp portrange {low}-{high}"

    async def fax(number: str) -> TransmissionOutcome:
        request = CallRequest(
            job_id=uuid.uuid4(), attempt=1, to_number=number, from_number="+15550001000", from_name="Peers",
            tiff=document, options=FaxOptions(local_ident="+1 555 0001000"),
        )  # fmt: skip
        return await line.place_call(request)

    await simulator.start()
    await line.start()
    try:
        async with Capture(tmp_path / "fax.pcap", capture_filter) as capture:
            outcomes = await asyncio.wait_for(asyncio.gather(*(fax(number) for number in FAX_CALLS)), 150)
    finally:
        await line.close()
        await simulator.close()
    for outcome, t38 in zip(outcomes, FAX_CALLS.values(), strict=True):
        assert outcome.success and outcome.t38_used is t38 and outcome.pages_sent == 1, outcome

    assert len(capture.read("sip")) >= 16  # two calls: INVITE, 100, 180, 200, ACK, re-INVITE, 200|488, ACK, BYE, 200
    # The UDPTL ports come from the SDP on the wire; RTP (the G.711 call) is found by Wireshark's RTP heuristic.
    media = [row.split() for row in capture.read("sdp", fields=("sdp.media",)) if row.startswith("image ")]
    t38_ports = sorted({int(fields[1]) for fields in media})
    assert len(t38_ports) == 3, media  # our offer in each call, faxsim's answer in the one that moved to T.38
    options = (*(arg for port in t38_ports for arg in ("-d", f"udp.port=={port},t38")), "-o", "rtp.heuristic_rtp:TRUE")
    faults = capture.read("_ws.malformed || _ws.expert.severity == error", *options, fields=("frame.number",))
    assert faults == _repeats(capture, faults, *options), f"Wireshark finds faults in frames {', '.join(faults)}"
    t38 = capture.read("t38", *options, fields=("t38.seq_number", "t38.t30_indicator", "t38.field_type"))
    rtp = capture.read("rtp", *options, fields=("rtp.p_type",))
    assert len(t38) > 50 and len(rtp) > 250, (len(t38), len(rtp))  # a page over G.711 is many seconds of 20 ms frames
    assert set(rtp) <= {"0", "8"}
    indicators = {value for row in t38 for value in row.split("|")[1].split(",") if value}
    assert {"1", "2"} <= indicators  # CNG and CED went over T.38 as indicators (T.38 Table 7 values 1, 2)
    assert any(row.split("|")[2] for row in t38)  # and HDLC / image data fields
