"""kflPcapS3 end to end vs the two-pass tshark export of the same two queries (bench/README.md), one run.

    python -m bench.bench_wrapper [--packets 250000] [--repeat 3] [--shapes current,plain-dense,plain-sparse]

Measured round-robin with bench.harness (medians of wall time, CPU and peak RSS), on generated
captures (bench.trafficgen, cached under bench/out/) of three shapes (`SHAPES`): the generator's
default (gzip/chunked bodies, on which tshark is unusually slow), and plain browser-like HTTP/1.1 +
DNS dense (within 2 minutes) and sparse (over 2 hours). Per shape:
  * `kflpcap run` with the seed script alone in a scripts folder and the local store (a fresh data
    folder per run) — the product path: capture → dissectors → V8 batches → kflPcapS3 → spool → store;
  * the same with `--workers 2` (a forked worker dissects half of the streams);
  * the same without JavaScript: capture → dissectors → `KflPcapS3.handle` in one Python process
    (`--inner`), which shows what the wrapper itself costs;
  * tshark: pass 1 finds the streams of each query, pass 2 writes their packets (the baseline).
With `--gzip-levels` the exported packets are recompressed at gzip levels 1, 3, 6 and 9 (MB/s and
size), which is how wrappers.artifacts.GZIP_LEVEL was chosen. Both exports are counted to show they
hold the same packets.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import TextIO

from bench.harness import cached_capture, capture_packets, compare, print_table, tshark_export_seed
from wrappers.artifacts import GZIP_LEVEL
from wrappers.pcapfile import count_packets

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "scripts" / "kfl_pcap_s3.js"
SEED_QUERIES = ["http and response.status == 500", "dns"]


def inner(pcap: Path, data_dir: Path) -> int:
    """Capture → dissectors → KflPcapS3 → outbox → local store, in this process (no V8)."""
    import hashlib

    from capture import Capture, make_handler_factory, open_sources
    from wrappers import KflPcapS3, Outbox, ScriptContext

    outbox = Outbox(data_dir)
    holder: list[KflPcapS3] = []
    options = {"kflArr": SEED_QUERIES}
    cap = Capture(handler_factory=make_handler_factory(lambda item: holder[0].handle(item, options)))
    ctx = ScriptContext(
        title="KFL PCAP S3", source_sha256=hashlib.sha256(SEED.read_bytes()).hexdigest(), env={},
        node={"name": "bench", "ip": "127.0.0.1"}, data_dir=data_dir, store=cap.store, names=dict,
        clock=lambda: cap.now_ns, console=lambda _t: None, error=lambda t: print(t, file=sys.stderr),
        outbox=outbox,
    )
    holder.append(KflPcapS3(ctx))
    wrapper = holder[0]
    source = open_sources([str(pcap)])
    cap.use_snaplens(source)
    next_tick = 0
    feed = cap.feed_packet
    for pkt in source:
        feed(pkt)
        if pkt[0] >= next_tick:
            wrapper.tick(pkt[0])
            next_tick = pkt[0] + 1_000_000_000
    cap.finish()
    wrapper.close("end")
    return 1 if outbox.close(60) else 0


def exported_packets(store_root: Path) -> tuple[int, bytes]:
    """Packets in every repository of a local store, and one decompressed capture to measure gzip on."""
    total, sample = 0, b""
    for path in sorted(store_root.rglob("*.pcap.gz")):
        data = gzip.decompress(path.read_bytes())
        total += count_packets(data)
        sample = max(sample, data, key=len)
    return total, sample


def gzip_levels(data: bytes) -> list[tuple[int, float, float]]:
    """(level, MB/s, compressed/original) on `data` (median of 3)."""
    out = []
    for level in (1, 3, 6, 9):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            size = len(zlib.compress(data, level))
            times.append(time.perf_counter() - t0)
        out.append((level, len(data) / sorted(times)[1] / 1e6, size / len(data)))
    return out


# traffic shapes (bench/README.md): name -> bench.trafficgen.generate keywords
SHAPES: dict[str, dict[str, object]] = {
    "current": {},  # the generator's default: 20 k packets/s, gzip and chunked bodies
    "plain-dense": {"plain": True, "duration": 120.0},  # a busy node: the packets within 2 minutes
    "plain-sparse": {"plain": True, "duration": 7200.0},  # a quiet node: the same spread over 2 hours
}


def bench_shape(shape: str, args: argparse.Namespace, json_file: TextIO | None) -> None:
    """kflpcap (with and without JS) beside tshark's two-pass export on one generated capture."""
    pcap = cached_capture(packets=args.packets, seed=1, **SHAPES[shape])
    packets = capture_packets(pcap)
    work = Path(tempfile.mkdtemp(prefix="bench-wrapper-"))
    scripts = work / "scripts"
    scripts.mkdir()
    shutil.copy(SEED, scripts)
    runs: dict[str, Path] = {}

    def fresh(name: str, i: int) -> Path:
        d = work / f"{name}-{i}"
        runs[name] = d
        return d

    benches: dict = {"tshark 2-pass export": tshark_export_seed(pcap, work / "tshark")}
    benches["kflpcap run (seed script)"] = lambda i: [
        sys.executable, "-m", "runtime", "run", "--pcap", str(pcap), "--scripts", str(scripts),
        "--data-dir", str(fresh("run", i)), "--node", "bench",
    ]
    benches["kflpcap run --workers 2"] = lambda i: [
        sys.executable, "-m", "runtime", "run", "--pcap", str(pcap), "--scripts", str(scripts),
        "--data-dir", str(fresh("workers", i)), "--node", "bench", "--workers", "2",
    ]
    benches["kflPcapS3 without JS"] = lambda i: [
        sys.executable, "-m", "bench.bench_wrapper", "--inner", str(pcap), str(fresh("inner", i)),
    ]
    print(f"\nshape {shape}: {pcap.name}, {packets:,} packets, {pcap.stat().st_size / 1e6:.1f} MB; "
          f"{args.repeat} rounds after a warm-up, medians; load average {os.getloadavg()[0]:.2f}", flush=True)
    results = compare(benches, baseline="tshark 2-pass export", repeat=args.repeat)
    print_table(results, packets=packets, baseline="tshark 2-pass export", bench=f"wrapper:{shape}",
                json_file=json_file)
    exports = [work / "tshark" / f for f in ("http500.pcap", "dns.pcap")]
    print(f"packets exported: tshark {sum(count_packets(f.read_bytes()) for f in exports):,}", end="")
    sample = b""
    for name, data_dir in runs.items():
        n, s = exported_packets(data_dir / "repositories")
        sample = max(sample, s, key=len)
        print(f", {name} {n:,}", end="")
    print(f"; load average after {os.getloadavg()[0]:.2f}")
    if sample and args.gzip_levels:
        print(f"\ngzip on the largest exported capture ({len(sample) / 1e6:.1f} MB):")
        for level, mbs, ratio in gzip_levels(sample):
            chosen = "  <- GZIP_LEVEL" if level == GZIP_LEVEL else ""
            print(f"  level {level}: {mbs:6.1f} MB/s, {ratio * 100:5.1f} % of the size{chosen}")
        print("  level 1: the fastest; higher levels save a few % of size for much more CPU on the")
        print("  pipeline's cores (packet payloads are mostly compressed or random already).")
    shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_wrapper", description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shapes", default=",".join(SHAPES),
                    help=f"comma-separated traffic shapes, of {', '.join(SHAPES)} (default: all)")
    ap.add_argument("--gzip-levels", action="store_true", help="also time gzip levels on the exports")
    ap.add_argument("--inner", nargs=2, metavar=("PCAP", "DATA_DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None, help="also write one JSON line per result here")
    args = ap.parse_args(argv)
    if args.inner:
        return inner(Path(args.inner[0]), Path(args.inner[1]))
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        ap.error(f"unknown shape {unknown[0]!r}; choose from {', '.join(SHAPES)}")
    json_file = open(args.json, "a") if args.json else None  # noqa: SIM115 - closed below
    try:
        for shape in shapes:
            bench_shape(shape, args, json_file)
    finally:
        if json_file:
            json_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
