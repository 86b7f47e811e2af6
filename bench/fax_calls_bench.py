"""Simultaneous G.711 (or T.38) fax calls in one process: CPU per call, its spread over the cores, RTP send timing.

N calling ``FaxCall``s in this process send a 2-page fax each to N answering calls in a child process (so the
measured process carries exactly N channels, like a transmitter pod). The measured process runs the media engine as
deployed: a ``DspLoop`` with its worker processes (one per core unless ``--workers``). All calls start together, in
lockstep, unless ``--stagger``. Figures:

- CPU per call: the CPU of this process and its DSP workers over the run, divided by N, and as a share of one core
  while a call lasts (CPU over the sum of the calls' line time); against the anchor spandsp itself, the CPU the same
  fax costs one side on the unpaced ``loopback`` line (measured in this run). Per-thread CPU of every process, and
  how busy each core of the machine was (everything on it, other work included), are printed under the table.
- send-timing error: how late each RTP packet left against its 20 ms slot (p50/p99/max, from the workers' 10 µs
  histograms); against the anchor a bare pacer thread that only ``sendto``s N packets every 20 ms (no DSP), for 10 s,
  in this run, right after the calls.

    uv run python bench/fax_calls_bench.py --calls 10 50 --mode pcmu [--stagger 20] [--workers 1] [--dense]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from fax_media.call import FaxCall, PortRange
from fax_media.dsp_clock import PACER_PRIORITY
from fax_media.dsp_clock import percentile as histogram_percentile
from fax_media.dsp_loop import DspLoop
from fax_media.dsp_worker import WorkerStatistics, thread_cpu_seconds
from fax_media.loopback import send_over_loopback
from fax_media.t30 import FaxOptions

HOST = "127.0.0.1"
POSTSCRIPT = b"""%!PS
/Helvetica findfont 28 scalefont setfont
72 720 moveto (Benchmark page one) show 4 setlinewidth 72 200 moveto 540 600 lineto stroke showpage
/Times-Roman findfont 40 scalefont setfont
72 720 moveto (Benchmark page two) show 306 396 150 0 360 arc stroke showpage
"""
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process, all its threads (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def core_busy_ticks() -> list[tuple[int, int]]:
    """(busy, total) clock ticks of each core since boot, from ``/proc/stat`` (the whole machine)."""
    cores = []
    with open("/proc/stat") as stat:
        for line in stat:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks = [int(value) for value in values]
                idle = ticks[3] + ticks[4]  # idle + iowait
                cores.append((sum(ticks) - idle, sum(ticks)))
    return cores


def core_busy_shares(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> list[float]:
    return [(b1 - b0) / max(t1 - t0, 1) for (b0, t0), (b1, t1) in zip(before, after, strict=True)]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def merged(histograms: list[dict[int, int]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            total[bucket] = total.get(bucket, 0) + count
    return total


class EngineUsage:
    """CPU of this process and of a ``DspLoop``'s workers between ``__init__`` and ``finish``."""

    def __init__(self, dsp: DspLoop) -> None:
        self._dsp = dsp
        self._pids = dsp.worker_pids()
        self._threads = thread_cpu_seconds()
        self._workers = {pid: process_cpu_seconds(pid) for pid in self._pids}
        self._own = cpu_seconds()
        self._cores = core_busy_ticks()

    def finish(self) -> tuple[float, list[WorkerStatistics], list[str]]:
        """Total CPU-s, the workers' statistics, and lines describing where the CPU went."""
        own = cpu_seconds() - self._own
        cores = core_busy_shares(self._cores, core_busy_ticks())
        workers = {pid: process_cpu_seconds(pid) - before for pid, before in self._workers.items()}
        threads = {name: cpu - self._threads.get(name, 0.0) for name, cpu in thread_cpu_seconds().items()}
        statistics = self._dsp.statistics()
        lines = [
            f"owner process: {own:.2f} CPU-s ("
            + ", ".join(f"{name} {cpu:.2f}" for name, cpu in sorted(threads.items()))
            + ")",
            *(
                f"worker {worker.pid}: {workers.get(worker.pid, 0.0):.2f} CPU-s ("
                + ", ".join(f"{name} {cpu:.2f}" for name, cpu in sorted(worker.thread_cpu_seconds.items()))
                + ")"
                for worker in statistics
            ),
            "machine cores busy (all work on the machine): " + ", ".join(f"{share:.0%}" for share in cores),
        ]
        return own + sum(workers.values()), statistics, lines


def dense_postscript() -> bytes:
    """Two pages of 7-point text, edge to edge: the most a page boundary costs (spandsp reads and encodes a page
    when it starts sending it, and writes one when it has received it)."""
    line = b"The quick brown fox jumps over the lazy dog 0123456789 " * 3
    page = b"".join(b"20 %d moveto (%s) show\n" % (y, line) for y in range(20, 780, 8))
    return b"%!PS\n/Courier findfont 7 scalefont setfont\n" + (page + b"showpage\n") * 2


def render(path: Path, *, dense: bool = False) -> Path:
    """The benchmark's 2-page fax: sparse at standard resolution, or ``dense`` text at fine resolution."""
    resolution, size = ("-r204x196", "-g1728x2292") if dense else ("-r204x98", "-g1728x1145")
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=tiffg4", resolution, size,
         "-dFIXEDMEDIA", f"-sOutputFile={path}", "-"],
        input=dense_postscript() if dense else POSTSCRIPT, check=True, capture_output=True,
    )  # fmt: skip
    return path


def start(call: FaxCall, mode: str, remote: dict[str, int]) -> None:
    if mode == "t38":
        call.start_t38(HOST, remote["udptl"])
    else:
        call.start_audio(HOST, remote["rtp"], 0 if mode == "pcmu" else 8)


async def start_all(calls: list[FaxCall], mode: str, remotes: list[dict[str, int]], stagger: float) -> None:
    """Start call i at i * stagger / N seconds: 0 is lockstep (the worst case), a fax's duration is realistic."""
    began = time.monotonic()
    for index, (call, remote) in enumerate(zip(calls, remotes, strict=True)):
        await asyncio.sleep(max(0.0, began + index * stagger / len(calls) - time.monotonic()))
        start(call, mode, remote)


async def far_end(calls: int, mode: str, folder: Path, stagger: float, realtime: bool) -> None:
    """The child: N answering calls; ports out on stdout, the senders' ports in on stdin, outcomes out."""
    dsp = DspLoop(name="far-end-dsp", realtime=realtime)
    dsp.start()
    ports = PortRange(HOST, 39000, 39999)
    answering = [
        await FaxCall.open(dsp, ports, calling=False, receive_file=folder / f"rx-{n}.tif", max_duration=300)
        for n in range(calls)
    ]
    print(json.dumps([{"rtp": c.rtp_port, "udptl": c.udptl_port} for c in answering]), flush=True)
    senders = json.loads(await asyncio.to_thread(sys.stdin.readline))
    await start_all(answering, mode, senders, stagger)
    outcomes = await asyncio.gather(*(call.finished for call in answering))
    for call in answering:
        await call.close()
    dsp.stop()
    print(json.dumps([o.success for o in outcomes]), flush=True)


async def measured(
    calls: int, mode: str, document: Path, stagger: float, lookahead: int, workers: int | None, realtime: bool
) -> dict[str, object]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--far-end", str(calls), "--mode", mode, "--stagger", str(stagger),
        *([] if realtime else ["--no-realtime"]), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    receivers = json.loads(await child.stdout.readline())
    dsp = DspLoop(lookahead_ticks=lookahead, workers=workers, realtime=realtime)
    dsp.start()
    ports = PortRange(HOST, 38000, 38999)
    sending = [
        await FaxCall.open(dsp, ports, calling=True, send_file=document, options=FaxOptions(), max_duration=300)
        for _ in range(calls)
    ]
    child.stdin.write((json.dumps([{"rtp": c.rtp_port, "udptl": c.udptl_port} for c in sending]) + "\n").encode())
    await child.stdin.drain()
    load_before = os.getloadavg()[0]
    usage = EngineUsage(dsp)
    wall_before = time.monotonic()
    await start_all(sending, mode, receivers, stagger)
    outcomes = await asyncio.gather(*(call.finished for call in sending))
    wall = time.monotonic() - wall_before
    cpu, statistics, cpu_lines = usage.finish()
    load_after = os.getloadavg()[0]
    for call in sending:
        await call.close()
    dsp.stop()
    far_successes = json.loads(await child.stdout.readline())
    await child.wait()
    lateness = merged([worker.send_lateness for worker in statistics])
    return {
        "calls": calls,
        "workers": len(statistics),
        "realtime": all(worker.realtime_threads == 2 for worker in statistics),
        "ok": sum(o.success for o in outcomes),
        "far_ok": sum(far_successes),
        "wall_s": wall,
        # CPU over the calls' own line time: the share of a core one call holds while it runs.
        "cpu_share_per_call": cpu / sum(o.line_seconds for o in outcomes),
        "cpu_s_per_call": cpu / calls,
        "late_p50_ms": histogram_percentile(lateness, 0.50) * 1e3,
        "late_p99_ms": histogram_percentile(lateness, 0.99) * 1e3,
        "late_max_ms": histogram_percentile(lateness, 1.0) * 1e3,
        "tick_work_p99_ms": histogram_percentile(merged([w.tick_work for w in statistics]), 0.99) * 1e3,
        "stalls": sum(worker.stalls for worker in statistics),
        "load": f"{load_before:.1f}-{load_after:.1f}",
        "cpu_lines": cpu_lines,
    }


def bare_pacer(calls: int, seconds: float = 10.0, *, realtime: bool = False) -> list[float]:
    """The anchor for timing: one thread sending N 172-byte packets every 20 ms, nothing else; under SCHED_FIFO at
    the engine's pacer priority when ``realtime`` (as the engine's pacers ran)."""
    lateness: list[float] = []
    pacer = threading.Thread(target=_pace_bare, args=(calls, seconds, realtime, lateness), name="bare-pacer")
    pacer.start()
    pacer.join()
    return lateness


def _pace_bare(calls: int, seconds: float, realtime: bool, lateness: list[float]) -> None:
    if realtime:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(PACER_PRIORITY))
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((HOST, 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setblocking(False)
    destination = sink.getsockname()
    drain_stop = threading.Event()

    def drain() -> None:
        sink.settimeout(0.1)
        while not drain_stop.is_set():
            with contextlib.suppress(OSError):
                sink.recv(2048)

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    packet = bytes(172)
    scheduled = time.monotonic()
    end = scheduled + seconds
    while scheduled < end:
        delay = scheduled - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for _ in range(calls):
            with contextlib.suppress(BlockingIOError):
                sender.sendto(packet, destination)
            lateness.append(time.monotonic() - scheduled)
        scheduled += 0.020
    drain_stop.set()
    drainer.join()
    sink.close()
    sender.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[10])
    parser.add_argument("--mode", choices=["pcmu", "pcma", "t38"], default="pcmu")
    parser.add_argument("--stagger", type=float, default=0.0, help="spread the starts over this many seconds")
    parser.add_argument("--lookahead", type=int, default=3, help="DspLoop lookahead_ticks")
    parser.add_argument("--workers", type=int, help="DSP worker processes (default: one per core)")
    parser.add_argument(
        "--no-realtime", dest="realtime", action="store_false", help="DSP threads at normal priority (both ends)"
    )
    parser.add_argument("--dense", action="store_true", help="two dense fine pages instead of two sparse standard")
    parser.add_argument("--far-end", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fax-calls-bench-") as folder:
        if args.far_end:
            asyncio.run(far_end(args.far_end, args.mode, Path(folder), args.stagger, args.realtime))
            return
        document = render(Path(folder) / "two-pages.tif", dense=args.dense)
        before = cpu_seconds()
        anchor = send_over_loopback(document, Path(folder) / "loopback.tif", FaxOptions())
        spandsp_cpu_per_side = (cpu_seconds() - before) / 2
        assert anchor.success, anchor
        print(f"anchor: spandsp alone, one side of this fax: {spandsp_cpu_per_side * 1000:.1f} CPU-ms "
              f"({anchor.line_seconds:.1f} s line time)")  # fmt: skip
        print("| calls | workers | real-time | ok | wall s | CPU-s/call | x spandsp | core/call | p50 ms | p99 ms | "
              "max ms | bare pacer p99 ms | p99 / pacer | tick work p99 ms | stalls | load |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        notes = []
        for calls in args.calls:
            result = asyncio.run(
                measured(calls, args.mode, document, args.stagger, args.lookahead, args.workers, args.realtime)
            )
            pacer_p99 = percentile(bare_pacer(calls, realtime=bool(result["realtime"])), 0.99) * 1e3
            print(
                f"| {calls} | {result['workers']} | {'yes' if result['realtime'] else 'no'} | "
                f"{result['ok']}/{result['far_ok']} | {result['wall_s']:.1f} | "
                f"{result['cpu_s_per_call']:.3f} | {result['cpu_s_per_call'] / spandsp_cpu_per_side:.0f} | "
                f"{result['cpu_share_per_call'] * 100:.2f}% | {result['late_p50_ms']:.2f} | "
                f"{result['late_p99_ms']:.2f} | {result['late_max_ms']:.1f} | {pacer_p99:.2f} | "
                f"{result['late_p99_ms'] / pacer_p99:.2f} | {result['tick_work_p99_ms']:.1f} | "
                f"{result['stalls']} | {result['load']} |",
                flush=True,
            )
            notes += [f"{calls} calls: {line}" for line in result["cpu_lines"]]
        print("\n".join(notes))


if __name__ == "__main__":
    main()
