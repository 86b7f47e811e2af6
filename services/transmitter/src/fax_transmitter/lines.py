"""The lines a transmitter can place calls on, behind one interface: ``await line.place_call(call)``.

``loopback`` is here; ``sip`` (real calls to a trunk, a PBX or faxsim) is ``fax_transmitter.sip_line.SipLine``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msgspec

from fax_media.loopback import send_over_loopback
from fax_media.t30 import FaxOptions, TransmissionOutcome
from fax_sip import DialogIdentity
from fax_transmitter.media_policy import OFF, AttemptRecord, plan_media


class AnsweredCall(msgspec.Struct, frozen=True, kw_only=True):
    """An answered call as data: its SIP dialog and the media ports it holds. Saved with its attempt (or reception),
    so that whoever learns the process holding it died can hang it up and rest its ports."""

    dialog: DialogIdentity
    media_host: str
    media_ports: tuple[int, ...]


class TrunkTry(msgspec.Struct, frozen=True, kw_only=True):
    """A trunk an attempt tried and left for the next one: it timed out, answered 408 or 5xx, or was unreachable."""

    trunk: str
    transport: str
    sip_status: int
    reason: str


class CallRoute(msgspec.Struct, frozen=True, kw_only=True):
    """How a line carried (or last tried to carry) an attempt: the trunk and its transport, the trunks it failed
    over from, and the media it chose (``fax_transmitter.media_policy``)."""

    trunk: str
    transport: str
    failed_over: tuple[TrunkTry, ...] = ()
    t38_policy: str = ""
    t38: bool = False  # T.38 asked for (or accepted from the network) on this attempt
    ecm: bool = True
    max_bit_rate: int = 14400
    media_reason: str = ""  # why the media differ from a first attempt's


@dataclass(frozen=True)
class CallRequest:
    job_id: uuid.UUID
    attempt: int
    to_number: str
    from_number: str
    from_name: str
    tiff: Path
    options: FaxOptions
    on_page: Callable[[int], None] | None = None
    on_answered: Callable[[AnsweredCall], None] | None = None
    # The job's earlier attempts, and its faxbox's media.fax_option: what this attempt's media may learn from.
    history: tuple[AttemptRecord, ...] = ()
    fax_option: Any = None
    on_route: Callable[[CallRoute], None] | None = None


class Line(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def place_call(self, call: CallRequest) -> TransmissionOutcome: ...

    @property
    def owner(self) -> str | None:
        """What marks the calls this line holds as its own (its SIP Contact): a line that starts with the owner of
        calls still marked up knows the process that held them is gone. None when no call outlives its process."""
        ...

    def hang_up_abandoned(self, calls: Iterable[AnsweredCall]) -> None:
        """End, toward the far end, calls a dead process left up (in the background)."""
        ...


class LoopbackLine:
    """An in-process far end (spandsp answering, unpaced): fast, for tests and for trying the platform out."""

    def __init__(self, received_dir: Path) -> None:
        self._received_dir = received_dir

    async def start(self) -> None:
        await asyncio.to_thread(self._received_dir.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        pass

    @property
    def owner(self) -> None:
        return None

    def hang_up_abandoned(self, calls: Iterable[AnsweredCall]) -> None:
        pass  # an in-process far end dies with us

    async def place_call(self, call: CallRequest) -> TransmissionOutcome:
        received = self._received_dir / f"{call.job_id}-{call.attempt}.tif"
        plan = plan_media(OFF, call.history, call.options)
        if call.on_route is not None:
            call.on_route(
                CallRoute(
                    trunk="loopback",
                    transport="",
                    t38_policy=OFF,
                    ecm=plan.options.ecm,
                    max_bit_rate=plan.options.max_bit_rate,
                    media_reason=plan.reason,
                )
            )
        # spandsp blocks at page boundaries (TIFF I/O): the DSP runs in a worker thread, never on the loop.
        return await asyncio.to_thread(send_over_loopback, call.tiff, received, plan.options)
