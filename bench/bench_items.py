"""Items speed: `kflpcap items` beside tshark `-Y http -T ek` on the same generated capture, same run.

    python3 -m bench.bench_items [--packets 200000] [--repeat 3] [--json FILE]

`kflpcap items` is measured with one process (`--jobs 1`) and with its default workers. The capture
is HTTP-heavy (keep-alive, chunked, gzip) with ~10 % DNS (bench.trafficgen). Printed:
the side-by-side table (medians of alternating runs; wall time, packets/s, speed-up vs tshark),
items/s of `kflpcap items`, and an in-process split of where its CPU goes (reading + flows +
reassembly with a do-nothing handler, then the dissectors and the JSON encoding on top).
Targets (issue 3): >= 3x tshark and >= 150 k packets/s for `kflpcap items`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson

from bench.harness import cached_capture, capture_packets, compare, print_table, tshark_items_cmd
from capture import Capture, CaptureConfig, NameTable, NodeInfo, make_handler_factory, open_sources
from runtime.cli.items_jsonl import default_jobs

TARGET_RATIO = 3.0
TARGET_PPS = 150_000


class _Null:
    def on_data(self, direction: int, data: bytes, ts_ns: int) -> None:
        pass

    def on_gap(self, direction: int, length: int, ts_ns: int) -> None:
        pass

    def on_close(self, ts_ns: int, reason: str) -> None:
        pass


def _cpu(packets: list, factory: object) -> float:
    cap = Capture(CaptureConfig(), factory)  # type: ignore[arg-type]
    cap.warn = lambda _t: None
    start = time.process_time()
    cap.consume(packets)
    cap.finish()
    return time.process_time() - start


def split(pcap: Path) -> dict[str, float]:
    """CPU seconds in this process (best of 3): capture with do-nothing handlers, + dissectors
    (items counted, then dropped, as `kflpcap items` does), + orjson encoding of every item."""
    packets = list(open_sources([str(pcap)]))
    count = [0]

    def counted(_item: dict) -> None:
        count[0] += 1

    def encoded(item: dict) -> None:
        orjson.dumps(item)

    node, names = NodeInfo("bench", "10.0.0.1"), NameTable()
    base = min(_cpu(packets, lambda _m: _Null()) for _ in range(3))
    dissect = min(_cpu(packets, make_handler_factory(counted, node, names)) for _ in range(3))
    items = count[0] // 3
    full = min(_cpu(packets, make_handler_factory(encoded, node, names)) for _ in range(3))
    return {"packets": len(packets), "items": items, "capture_cpu_s": base, "dissect_cpu_s": dissect - base,
            "json_cpu_s": full - dissect, "dissect_us_per_item": (dissect - base) / max(items, 1) * 1e6,
            "packets_per_cpu_s": len(packets) / full}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="FILE", help="also write one JSON line per result here")
    args = ap.parse_args()
    pcap = cached_capture(packets=args.packets, seed=1)
    packets = capture_packets(pcap)
    exe = shutil.which("kflpcap")
    ours = [*([exe] if exe else [sys.executable, "-m", "runtime"]), "items", "--pcap", str(pcap)]
    n_items = subprocess.run(ours, capture_output=True, check=True).stdout.count(b"\n")
    jobs = default_jobs()
    results = compare({"tshark -Y http -T ek": tshark_items_cmd(pcap),
                       "kflpcap items --jobs 1": [*ours, "--jobs", "1"],
                       f"kflpcap items (--jobs {jobs})": ours},
                      baseline="tshark -Y http -T ek", repeat=args.repeat)
    json_file = open(args.json, "w") if args.json else None  # noqa: SIM115
    try:
        print(f"capture: {pcap.name} ({packets:,} packets, {n_items:,} items)")
        print_table(results, packets=packets, baseline="tshark -Y http -T ek", bench="items",
                    json_file=json_file)
        mine, theirs = results[f"kflpcap items (--jobs {jobs})"], results["tshark -Y http -T ek"]
        ratio = theirs.wall / mine.wall
        pps = packets / mine.wall
        print(f"kflpcap items (--jobs {jobs}): {n_items / mine.wall:,.0f} items/s, {pps:,.0f} packets/s wall "
              f"({packets / mine.cpu:,.0f} per CPU second), {ratio:.2f}x tshark "
              f"(targets: >= {TARGET_RATIO:.0f}x, >= {TARGET_PPS:,} packets/s)")
        parts = split(pcap)
        print("in-process CPU split: capture {capture_cpu_s:.2f} s, dissectors {dissect_cpu_s:.2f} s "
              "({dissect_us_per_item:.1f} us/item), orjson {json_cpu_s:.2f} s; "
              "{packets_per_cpu_s:,.0f} packets per CPU second".format(**parts))
        if json_file is not None:
            print(json.dumps({"bench": "items", "name": "split", **parts}), file=json_file)
    finally:
        if json_file is not None:
            json_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
