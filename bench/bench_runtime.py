"""Item dispatch into V8: items/s into one script (the seed script) and into three scripts at once.

    python -m bench.bench_runtime [--packets 200000] [--batch 250,500,1000,2000] [--repeat 3]

Items are real: a bench/trafficgen capture (HTTP/1.1 keep-alive with ~10 % status-500 connections,
10 % DNS) is read through capture and the dissectors first, outside the timing, and its stream store
kept, so `wrapper.kflPcapS3` really matches KFL and pins streams. Timed: batches of items → every
script's V8 process → hooks → commands → executed in Python (the wrapper's KFL matching included),
i.e. everything `Pipeline.flush(wait=False)` does. Targets (issue 5): ≥ 80 k items/s for one script, ≥ 40 k
items/s for three.

Two figures per run: wall-clock items/s, and items per CPU second (this process plus every script's
V8 process), which does not depend on what else the machine runs: on an idle machine the wall
figure is at least the CPU figure (the scripts' processes run in parallel with this one).
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

SEED = """var KFL_PCAP_S3_KFL_ARR = [
  "http and response.status == 500",
  "dns",
];
function onItemCaptured(data) {
  wrapper.kflPcapS3(data, { kflArr: KFL_PCAP_S3_KFL_ARR });
}
"""

COUNTER = """// Status Counter
var counts = {};
function onItemCaptured(data) {
  var key = data.protocol.name + " " + (data.response ? (data.response.status || data.response.code) : "-");
  counts[key] = (counts[key] || 0) + 1;
}
"""

RECORDER = """// KFL Recorder
var seen = {};
function onItemCaptured(data) {
  if (kfl.match(env.RECORDING_KFL, data)) seen[data.stream] = true;
}
"""


def real_items(packets: int) -> tuple[list[dict[str, Any]], Any]:
    """Dissect a generated capture: its items and the stream store holding their packets."""
    import capture
    from bench.trafficgen import generate

    buf = io.BytesIO()
    generate(buf, packets=packets, seed=3)
    with tempfile.NamedTemporaryFile(suffix=".pcap") as f:
        f.write(buf.getvalue())
        f.flush()
        items: list[dict[str, Any]] = []
        cap = capture.Capture(handler_factory=capture.make_handler_factory(items.append))
        cap.consume(capture.open_sources([f.name]))
        cap.finish()
    return items, cap.store


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(
    scripts: list[tuple[str, str]], items: list[dict[str, Any]], store: Any, batch_size: int, root: Path
) -> tuple[float, dict[str, float]]:
    from runtime.helpers.console import Console
    from runtime.helpers.files import DataDir
    from runtime.helpers.services import Clock, Services
    from runtime.v8.batch import Batch
    from runtime.v8.host import ScriptHost
    from runtime.v8.source import ScriptSource

    out = io.StringIO()
    services = Services(
        console=Console(out, out),
        data=DataDir(root),
        clock=Clock("capture"),
        env={"RECORDING_KFL": 'http and request.method == "POST"'},
        node={"name": "bench", "ip": "127.0.0.1"},
    )
    services.store = store
    services.clock.advance(items[0]["timestamp"] * 1_000_000)
    hosts = [
        ScriptHost(ScriptSource.parse(Path(name), text), services, i)
        for i, (name, text) in enumerate(scripts)
    ]
    try:
        for h in hosts:
            h.load()
        # warm up (V8 compiles the hooks; queries get learned)
        warm = Batch()
        for item in items[:batch_size]:
            warm.add_item(item)
        for h in hosts:
            if h.send_batch(warm):
                h.finish_batch()
        pids = [h._proc.pid for h in hosts if h._proc is not None]
        parent0, children0 = time.process_time(), [_cpu_s(p) for p in pids]
        started = time.perf_counter()
        sent: list[Any] = []
        for k in range(0, len(items), batch_size):
            batch = Batch()
            for item in items[k : k + batch_size]:
                batch.add_item(item)
            # as Pipeline.flush(wait=False): this batch's JSON is made while the scripts still work on
            # the previous one, whose commands run just before this one is sent
            for h in hosts:
                h.prepare_batch(batch)
            for h in sent:
                h.finish_batch()
            sent = [h for h in hosts if h.send_batch(batch)]
        for h in sent:
            h.finish_batch()
        seconds = time.perf_counter() - started
        parent = time.process_time() - parent0
        children = [_cpu_s(p) - c for p, c in zip(pids, children0, strict=True)]
        cpu = parent + sum(children)
        errors = sum(services.console.errors.values())
        split = {
            "parent_us": parent / len(items) * 1e6,
            "scripts_us": [c / len(items) * 1e6 for c in children],
        }
        return len(items) / seconds, {
            "errors": errors,
            "seconds": seconds,
            "per_cpu_s": len(items) / cpu,
            **split,
        }
    finally:
        for h in hosts:
            h.close("end")
        services.close_outbox(5.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--batch", default="250,500,1000,2000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    items, store = real_items(args.packets)
    protos: dict[str, int] = {}
    for item in items:
        protos[item["protocol"]["name"]] = protos.get(item["protocol"]["name"], 0) + 1
    print(f"items: {len(items)} {protos} (dissected in {time.perf_counter() - t0:.1f} s, not timed)")

    setups = {
        "one script (seed)": [("seed.js", SEED)],
        "three scripts (seed, counter, kfl recorder)": [
            ("seed.js", SEED),
            ("counter.js", COUNTER),
            ("recorder.js", RECORDER),
        ],
    }
    targets = {"one script (seed)": 80_000, "three scripts (seed, counter, kfl recorder)": 40_000}
    for label, scripts in setups.items():
        for size in (int(s) for s in args.batch.split(",")):
            rates, cpu_rates = [], []
            for _ in range(args.repeat):
                with tempfile.TemporaryDirectory() as root:
                    rate, info = run(scripts, items, store, size, Path(root))
                rates.append(rate)
                cpu_rates.append(info["per_cpu_s"])
            rates.sort()
            cpu_rates.sort()
            median = rates[len(rates) // 2]
            cpu_median = cpu_rates[len(cpu_rates) // 2]
            verdict = "meets" if max(median, cpu_median) >= targets[label] else "BELOW"
            print(
                f"{label:45s} batch {size:5d}: {median:8.0f} items/s wall (max {rates[-1]:.0f}), "
                f"{cpu_median:8.0f} items per CPU s; target {targets[label]} {verdict}; "
                f"errors {info['errors']}"
            )
            scripts_us = ", ".join(f"{u:.1f}" for u in info["scripts_us"])
            print(
                f"{'':45s} CPU per item (last run): this process {info['parent_us']:.1f} us, "
                f"script processes {scripts_us} us"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
