"""What faxsim writes for every fax it receives: ``<call-id>.tif`` and a ``<call-id>.json`` sidecar."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
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
