"""The lines a transmitter can place calls on, behind one interface: ``await line.place_call(call)``.

``loopback`` is here; ``sip`` (real calls to a trunk, a PBX or faxsim) is ``fax_transmitter.sip_line.SipLine``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fax_transmitter.loopback import FaxOptions, TransmissionOutcome, send_over_loopback


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


class Line(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def place_call(self, call: CallRequest) -> TransmissionOutcome: ...


class LoopbackLine:
    """An in-process far end (spandsp answering, unpaced): fast, for tests and for trying the platform out."""

    def __init__(self, received_dir: Path) -> None:
        self._received_dir = received_dir

    async def start(self) -> None:
        await asyncio.to_thread(self._received_dir.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        pass

    async def place_call(self, call: CallRequest) -> TransmissionOutcome:
        received = self._received_dir / f"{call.job_id}-{call.attempt}.tif"
        # spandsp blocks at page boundaries (TIFF I/O): the DSP runs in a worker thread, never on the loop.
        return await asyncio.to_thread(send_over_loopback, call.tiff, received, call.options)
