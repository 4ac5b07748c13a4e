"""Read + decode + streams: `kflpcap streams` against `tshark -q -z conv,tcp -z conv,udp` on the same
generated HTTP-heavy capture, in the same run (alternating, medians).

    python -m bench.bench_streams [--packets 300000] [--runs 5] [--pcap FILE] [--json FILE]
    python -m bench.bench_streams --memory [--packets 2500000] [--duration S] [--budget-mb MB]

Rows: the two commands as whole processes (start-up and output included), and the in-process core
(`Capture.consume` of the file, no output) as packets per wall second and per CPU second — the
machine is shared, so the CPU-second rate is the steadier one. Targets (issue 2): ≥ 250 k packets/s
and ≥ 3x tshark on the 2-core machine.

`--memory` streams a generated capture (2.5 M packets ≈ 1.05 GB by default) through stdin into
`kflpcap streams --json --pcap -` and prints its peak RSS, the time and the store counters.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import cached_capture, capture_packets, compare, print_table, tshark_streams_cmd
from capture import Capture, open_sources

TARGET_PPS = 250_000
TARGET_RATIO = 3.0


def core_rates(pcap: Path, runs: int) -> tuple[float, float, int]:
    """Median (packets per wall second, packets per CPU second, streams) of `Capture.consume`."""
    walls, cpus = [], []
    streams = packets = 0
    for _ in range(runs):
        cap = Capture()
        cap.warn = lambda _text: None
        w0, c0 = time.perf_counter(), time.process_time()
        cap.consume(open_sources([str(pcap)]))
        cap.finish()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        packets, streams = cap.counters["packets_read"], cap.counters["streams"]
    return packets / statistics.median(walls), packets / statistics.median(cpus), streams


def memory_run(packets: int, duration: float | None, budget_mb: float | None) -> int:
    """generator | kflpcap streams through stdin: peak RSS and what the store kept, released, evicted."""
    gen_cmd = [sys.executable, "-m", "bench.trafficgen", "--packets", str(packets), "--out", "-"]
    if duration is not None:
        gen_cmd += ["--duration", str(duration)]
    cmd = [sys.executable, "-m", "runtime", "streams", "--json", "--pcap", "-"]
    if budget_mb is not None:
        cmd += ["--budget-mb", str(budget_mb)]
    t0 = time.perf_counter()
    gen = subprocess.Popen(gen_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc = subprocess.Popen(cmd, stdin=gen.stdout, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert gen.stdout is not None and proc.stdout is not None
    gen.stdout.close()
    last = b""
    for line in proc.stdout:
        last = line
    proc.wait()
    gen_err = gen.communicate()[1].decode().strip()
    wall = time.perf_counter() - t0
    summary = json.loads(last)["summary"]
    print(gen_err)
    print(f"kflpcap streams --pcap - : {wall:.1f} s wall, peak RSS {summary['peak_rss_mb']:.0f} MB, "
          f"{summary['packets_read']:,} packets, {summary['streams']:,} streams")
    keys = ("budget_bytes", "bytes_held", "streams_held", "streams_released", "streams_evicted",
            "packets_evicted", "streams_truncated", "packets_truncated")
    print("store: " + ", ".join(f"{k}={summary[k]:,}" for k in keys))
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=300_000, help="size of the generated capture")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each command (medians)")
    ap.add_argument("--pcap", type=Path, help="use this capture instead of a generated one")
    ap.add_argument("--json", type=Path, help="also write one JSON line per result here")
    ap.add_argument("--memory", action="store_true", help="peak RSS of a generator streamed through stdin")
    ap.add_argument("--duration", type=float, help="--memory: capture time span of the generated traffic (s)")
    ap.add_argument("--budget-mb", type=float, help="--memory: store budget (default: kflpcap's)")
    args = ap.parse_args(argv)
    if args.memory:
        packets = args.packets if args.packets != ap.get_default("packets") else 2_500_000
        return memory_run(packets, args.duration, args.budget_mb)

    pcap = args.pcap or cached_capture(packets=args.packets, seed=1)
    packets = capture_packets(pcap)
    print(f"capture: {pcap} ({packets:,} packets, {pcap.stat().st_size / 1e6:.0f} MB); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    results = compare({
        "tshark conv,tcp+conv,udp": tshark_streams_cmd(pcap),
        "kflpcap streams": [sys.executable, "-m", "runtime", "streams", "--pcap", str(pcap)],
    }, baseline="tshark conv,tcp+conv,udp", repeat=args.runs)
    json_file = open(args.json, "w") if args.json else None  # noqa: SIM115
    try:
        print_table(results, packets=packets, baseline="tshark conv,tcp+conv,udp", bench="streams",
                    json_file=json_file)
    finally:
        if json_file is not None:
            json_file.close()
    wall_pps, cpu_pps, streams = core_rates(pcap, args.runs)
    ours, theirs = results["kflpcap streams"], results["tshark conv,tcp+conv,udp"]
    print(f"CPU seconds (user+sys, medians): tshark {theirs.cpu:.2f}, kflpcap streams {ours.cpu:.2f} "
          f"-> {packets / ours.cpu:,.0f} packets per CPU second, {theirs.cpu / ours.cpu:.1f}x tshark")
    print(f"core (Capture.consume, {streams:,} streams): {wall_pps:,.0f} packets/s wall, "
          f"{cpu_pps:,.0f} packets/s CPU")
    print(f"kflpcap streams: {ours.packets_per_s(packets):,.0f} packets/s wall, "
          f"{theirs.wall / ours.wall:.1f}x tshark (targets: {TARGET_PPS:,} packets/s, {TARGET_RATIO:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
