"""Simultaneous real-time G.711 fax calls from one transmitter process to faxsim, over real SIP on loopback.

This process runs the transmitter's ``sip`` line (SIP user agent, media engine with its DSP worker processes) and
places N calls at once to a faxsim child process (``--force g711`` so every call stays on G.711 audio), each sending
a 2-page fax. Every call must succeed. Figures, as in ``fax_calls_bench.py`` and against the same anchors measured in
this run: CPU per call (this process and its DSP workers) over spandsp alone on the unpaced loopback line, and RTP
send-timing error p99 over a bare pacer thread; per-thread CPU and the machine's per-core load under the table.

    uv run python bench/sip_calls_bench.py --calls 10 50 100 [--stagger 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

from fax_calls_bench import EngineUsage, bare_pacer, cpu_seconds, merged, percentile, render

from fax_media.dsp_clock import percentile as histogram_percentile
from fax_media.loopback import send_over_loopback
from fax_media.t30 import FaxOptions
from fax_sip import SipSettings
from fax_transmitter.config import TrunkConfig
from fax_transmitter.lines import CallRequest
from fax_transmitter.sip_line import SipLine, SipLineSettings

HOST = "127.0.0.1"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


async def measured(calls: int, document: Path, folder: Path, stagger: float) -> dict[str, float]:
    faxsim_port = free_udp_port()
    faxsim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fax_faxsim", "serve", "--sip", f"{HOST}:{faxsim_port}", "--force", "g711",
        "--media-ports", "39000-39999", "--received-dir", str(folder / f"received-{calls}"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    line = SipLine(
        SipLineSettings(
            sip=SipSettings(bind_host=HOST, bind_port=free_udp_port()),
            trunks=(TrunkConfig.at(f"{HOST}:{faxsim_port}", t38="off", probe_interval_s=0),),
            media_ports=(38000, 38999),
            ring_timeout=30.0,
        )
    )
    try:
        await asyncio.sleep(2.0)  # faxsim's socket
        await line.start()

        async def call(index: int) -> object:
            await asyncio.sleep(index * stagger / calls)
            return await line.place_call(
                CallRequest(
                    job_id=uuid.uuid4(), attempt=1, to_number=f"+1555200{5000 + index}", from_number="+15550001000",
                    from_name="bench", tiff=document, options=FaxOptions(),
                )
            )  # fmt: skip

        load_before = os.getloadavg()[0]
        usage = EngineUsage(line.dsp)
        wall_before = time.monotonic()
        outcomes = await asyncio.gather(*(call(n) for n in range(calls)))
        wall = time.monotonic() - wall_before
        cpu, statistics, cpu_lines = usage.finish()
        load = f"{load_before:.1f}-{os.getloadavg()[0]:.1f}"
        lateness = merged([worker.send_lateness for worker in statistics])
    finally:
        await line.close()
        faxsim.terminate()
        await asyncio.wait_for(faxsim.wait(), 30)
    return {
        "ok": sum(o.success for o in outcomes),
        "t38": sum(o.t38_used for o in outcomes),
        "wall_s": wall,
        "cpu_s_per_call": cpu / calls,
        "cpu_share_per_call": cpu / max(sum(o.line_seconds for o in outcomes), 1e-9),
        "late_p99_ms": histogram_percentile(lateness, 0.99) * 1e3,
        "late_max_ms": histogram_percentile(lateness, 1.0) * 1e3,
        "load": load,
        "realtime": all(worker.realtime_threads == 2 for worker in statistics),
        "cpu_lines": cpu_lines,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[10])
    parser.add_argument("--stagger", type=float, default=0.0, help="spread the starts over this many seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sip-calls-bench-") as tmp:
        folder = Path(tmp)
        document = render(folder / "two-pages.tif")
        before = cpu_seconds()
        anchor = send_over_loopback(document, folder / "loopback.tif", FaxOptions())
        spandsp_cpu_per_side = (cpu_seconds() - before) / 2
        assert anchor.success, anchor
        print(f"anchor: spandsp alone, one side of this fax: {spandsp_cpu_per_side * 1000:.1f} CPU-ms")
        print("| calls | ok | wall s | CPU-s/call | x spandsp | core/call | p99 ms | max ms | bare pacer p99 ms | "
              "p99 / pacer | load |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        notes = []
        for calls in args.calls:
            result = asyncio.run(measured(calls, document, folder, args.stagger))
            pacer_p99 = percentile(bare_pacer(calls, realtime=bool(result["realtime"])), 0.99) * 1e3
            print(
                f"| {calls} | {result['ok']}/{calls} | {result['wall_s']:.1f} | {result['cpu_s_per_call']:.3f} | "
                f"{result['cpu_s_per_call'] / spandsp_cpu_per_side:.0f} | {result['cpu_share_per_call'] * 100:.2f}% | "
                f"{result['late_p99_ms']:.2f} | {result['late_max_ms']:.1f} | {pacer_p99:.2f} | "
                f"{result['late_p99_ms'] / pacer_p99:.2f} | {result['load']} |",
                flush=True,
            )
            notes += [f"{calls} calls: {line}" for line in result["cpu_lines"]]
        print("\n".join(notes))


if __name__ == "__main__":
    main()
