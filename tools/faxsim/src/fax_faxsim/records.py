"""What faxsim writes for every fax it receives: ``<call-id>.tif`` and a ``<call-id>.json`` sidecar."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ReceivedFax:
    call_id: str
    from_number: str
    to_number: str
    pages: int
    remote_station_id: str
    bit_rate: int
    ecm: bool
    t38_used: bool
    completion_code: int
    completion_text: str
    behaviour: str
    # Who ended the call: "caller" (its BYE came first) or "faxsim" (T.30 ended here, or a watchdog did).
    ended_by: str = ""
    # Unix times of the answer and of the end of the fax (before the closing BYE's transaction).
    answered_at: float = 0.0
    ended_at: float = 0.0
    # Every host:port faxsim sent media to during the call: the caller's audio, then its T.38 address if it moved.
    caller_media: list[str] = field(default_factory=list)


def tiff_path(received_dir: Path, call_id: str) -> Path:
    # Call-IDs may carry '@host' and other characters a file name should not.
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in call_id)
    return received_dir / f"{safe}.tif"


def write_sidecar(tiff: Path, record: ReceivedFax) -> Path:
    """Write the sidecar atomically, so a reader that sees it also sees the finished TIFF beside it."""
    sidecar = tiff.with_suffix(".json")
    partial = sidecar.with_suffix(".json.partial")
    partial.write_text(json.dumps(asdict(record), indent=2) + "\n")
    os.replace(partial, sidecar)
    return sidecar


def read_sidecar(path: Path) -> ReceivedFax:
    return ReceivedFax(**json.loads(path.read_text()))
