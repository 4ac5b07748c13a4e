"""Floods through `kflpcap run` with the seed script: time linear in the packets, RSS bounded.

    python -m bench.bench_flood [--sizes 250000,500000,1000000] [--kinds syn,udp] [--duration S]

For each kind (SYN-only packets, one-packet UDP flows, each from its own 5-tuple) and size, a flood
capture (bench/floodgen.py, cached under bench/out/) goes through `kflpcap run --pcap F` with the
seed script and the default 200 MiB store budget. Printed per run: wall and CPU seconds, CPU
microseconds per packet (flat across sizes when the time is linear), peak RSS (`ru_maxrss` of the
process) and what the run said about the store (its flood warning, its summary row). Before issue
14 the store scanned every record on every packet once over the budget: 225 k SYNs took 175 s and
500 k did not finish.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench.floodgen import syn_flood, udp_flood, write_pcap
from bench.harness import OUT_DIR, Sample, run_once

ROOT = Path(__file__).resolve().parents[1]
START_NS = 1_700_000_000 * 10**9
FLOODS = {"syn": syn_flood, "udp": udp_flood}


def flood_capture(kind: str, packets: int, duration_s: float) -> Path:
    path = OUT_DIR / f"flood-{kind}-{packets}-{duration_s:g}s.pcap"
    if not path.exists():
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            write_pcap(out, FLOODS[kind](packets, START_NS, int(duration_s * 1e9)))
        tmp.replace(path)
    return path


def one_run(pcap: Path, work: Path) -> tuple[Sample, list[str]]:
    """The run's measures and what it said about the store (its warnings and summary row)."""
    scripts = work / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "scripts" / "kfl_pcap_s3.js", scripts)
    err = work / "stderr.txt"
    sample = run_once([sys.executable, "-m", "runtime", "run", "--pcap", str(pcap), "--scripts", str(scripts),
                       "--data-dir", str(work / "data"), "--no-progress", "--log-level", "warning"],
                      cwd=ROOT, timeout=1800, stderr=err)
    said = [" ".join(line.split()) for line in err.read_text(errors="replace").splitlines()
            if "stream store" in line or "SYN or UDP flood" in line or "records alone" in line]
    return sample, said


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_flood", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="250000,500000,1000000")
    p.add_argument("--kinds", default="syn,udp")
    p.add_argument("--duration", type=float, default=10.0, help="capture seconds the flood spans")
    args = p.parse_args(argv)
    print(f"{'kind':4} {'packets':>9} {'wall s':>7} {'cpu s':>7} {'cpu µs/pkt':>10} {'RSS MB':>7}  "
          "what the run said about the store")
    for kind in args.kinds.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            pcap = flood_capture(kind, size, args.duration)
            with tempfile.TemporaryDirectory(prefix="bench_flood.") as tmp:
                r, said = one_run(pcap, Path(tmp))
            per_packet = r.cpu / size * 1e6
            print(f"{kind:4} {size:>9,} {r.wall:7.1f} {r.cpu:7.1f} {per_packet:10.2f} {r.rss_mb:7.0f}  "
                  + " | ".join(said), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
