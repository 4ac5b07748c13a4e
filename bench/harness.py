"""Side-by-side benchmark helpers: run commands alternately, medians of wall/CPU/peak RSS, tshark baselines.

The machine is small, shared and noisy, so figures are only meaningful as ratios against a baseline run in
the same invocation, alternating with it, taking medians. Typical use:

    from bench.harness import cached_capture, capture_packets, compare, print_table, tshark_streams_cmd

    pcap = cached_capture(packets=1_000_000, seed=1)          # bench/out/, generated once per parameters
    packets = capture_packets(pcap)
    results = compare({
        "tshark conv": tshark_streams_cmd(pcap),
        "kflpcap streams": ["kflpcap", "streams", "--pcap", str(pcap)],
    }, baseline="tshark conv", repeat=5)
    print_table(results, packets=packets, baseline="tshark conv")

API:
    run_once(argv, *, stdin=None, stdout=None, cwd=None, env=None, timeout=None) -> Sample
        One child via Popen + os.wait4: wall seconds, CPU seconds (user+sys of the child and the children
        it waited for), peak RSS in MB (ru_maxrss of that process tree's largest member), exit code.
        Raises CommandFailed on a non-zero exit. stdin/stdout are paths or None (/dev/null); for a
        pipeline use ["bash", "-c", "a | b"] (its RSS is then the largest process of the pipeline).
    run_steps(steps) -> Sample
        A benchmark made of several child runs (e.g. tshark's two passes): `steps` is a callable that
        receives `run_once` and returns the list of Samples it took; wall and CPU add up, RSS is the max.
    compare(benches: dict[str, Bench], *, baseline: str, repeat=5, warmup=1) -> dict[str, Stats]
        A Bench is an argv list, or a callable `run_index -> argv`, or a `Steps` (callable taking run_once
        and returning Samples). Runs them round-robin (the order rotates each round), `warmup` untimed
        rounds first, and returns the medians per name.
    tshark baselines (argv builders and Steps):
        tshark_streams_cmd(pcap)         tshark -n -q -z conv,tcp -z conv,udp -r F
        tshark_items_cmd(pcap)           tshark -n -r F -Y http -T ek
        tshark_two_pass(pcap, filter, out) -> Steps   bench/README.md whole-stream export of one filter
        tshark_export_seed(pcap, outdir) -> Steps      both seed queries (HTTP 500, dns), one file each
    report: row(...), print_table(...), json_line(...) (one JSON object per result, "bench" key first).
    captures: cached_capture(**generator kwargs) -> Path (bench/out/, keyed by parameters and the
        generator's source), cached_truth(path) -> dict, capture_packets(path) -> int.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO, Union

from bench import trafficgen

TSHARK = shutil.which("tshark") or "/usr/bin/tshark"
OUT_DIR = Path(__file__).resolve().parent / "out"
# bench/README.md: the seed script's two queries, as tshark display filters
SEED_FILTERS = {"http500": "http.response.code == 500", "dns": "dns"}


class CommandFailed(RuntimeError):
    """A benchmarked command exited non-zero (the benchmark would be meaningless)."""


@dataclass
class Sample:
    wall: float
    cpu: float
    rss_mb: float
    returncode: int = 0


@dataclass
class Stats:
    """Medians over `runs` timed runs (the raw samples are kept for the JSON line)."""

    name: str
    runs: int
    wall: float
    cpu: float
    rss_mb: float
    samples: list[Sample] = field(default_factory=list)

    def packets_per_s(self, packets: int) -> float:
        return packets / self.wall if self.wall > 0 else float("inf")


RunOnce = Callable[..., Sample]
Steps = Callable[[RunOnce], list[Sample]]
Bench = Union[Sequence[str], Callable[[int], Sequence[str]], "StepsBench"]


@dataclass
class StepsBench:
    """A benchmark of several child runs: `steps(run_once)` returns the Samples it took."""

    steps: Steps


# Linux counts a child's peak RSS from the memory of the process that forked it (the high-water mark
# survives fork and exec): a child forked by a large test session would report the session's size. A
# small launcher forks the command instead and reports what os.wait4 says of it on the descriptor
# given: [exit code, CPU seconds, peak RSS KiB].
_LAUNCHER = """
import json, os, sys
fd, argv = int(sys.argv[1]), sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.close(fd)
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
report = [os.waitstatus_to_exitcode(status), ru.ru_utime + ru.ru_stime, ru.ru_maxrss]
os.write(fd, json.dumps(report).encode())
"""


def run_once(argv: Sequence[str], *, stdin: str | Path | None = None, stdout: str | Path | None = None,
             cwd: str | Path | None = None, env: dict[str, str] | None = None,
             timeout: float | None = None, stderr: str | Path | None = None) -> Sample:
    """Run one child to completion and measure it with os.wait4, through a small launcher (its own
    peak RSS, not the session's).

    `stdin`/`stdout` are file paths (None: /dev/null); stderr is kept for the error message, and
    written to the file `stderr` when given.
    """
    read_fd, write_fd = os.pipe()
    with open(stdin or os.devnull, "rb") as in_f, open(stdout or os.devnull, "wb") as out_f:
        t0 = time.perf_counter()
        launch = [sys.executable, "-c", _LAUNCHER, str(write_fd), *map(str, argv)]
        proc = subprocess.Popen(launch, stdin=in_f, stdout=out_f, stderr=subprocess.PIPE, cwd=cwd, env=env,
                                start_new_session=True, pass_fds=(write_fd,))
        os.close(write_fd)
        killer = None
        if timeout is not None:
            killer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
            killer.start()
        err: list[bytes] = []
        reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
        reader.start()
        with os.fdopen(read_fd, "rb") as report:
            measured = report.read()
        _, status, _ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = rc = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        cpu, rss_kib = 0.0, 0
        if measured:
            rc, cpu, rss_kib = json.loads(measured)
        reader.join()
        proc.stderr.close()
        if stderr is not None:
            Path(stderr).write_bytes(b"".join(err))
        if killer is not None:
            killer.cancel()
    if rc != 0:
        tail = b"".join(err).decode(errors="replace").strip().splitlines()[-5:]
        raise CommandFailed(f"{' '.join(map(str, argv))} exited {rc}: {' | '.join(tail)}")
    return Sample(wall=wall, cpu=cpu, rss_mb=rss_kib / 1024, returncode=rc)


def run_steps(steps: Steps) -> Sample:
    """Measure a multi-child benchmark: wall and CPU add up, peak RSS is the largest child's."""
    samples = steps(run_once)
    return Sample(wall=sum(s.wall for s in samples), cpu=sum(s.cpu for s in samples),
                  rss_mb=max(s.rss_mb for s in samples))


def _run_bench(bench: Bench, i: int) -> Sample:
    if isinstance(bench, StepsBench):
        return run_steps(bench.steps)
    argv = bench(i) if callable(bench) else bench
    return run_once(argv)


def compare(benches: dict[str, Bench], *, baseline: str, repeat: int = 5,
            warmup: int = 1) -> dict[str, Stats]:
    """Run every bench `repeat` times round-robin (rotating the order), return medians per name."""
    if baseline not in benches:
        raise KeyError(f"baseline {baseline!r} is not one of {list(benches)}")
    names = list(benches)
    samples: dict[str, list[Sample]] = {n: [] for n in names}
    for r in range(warmup + repeat):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            s = _run_bench(benches[name], r)
            if r >= warmup:
                samples[name].append(s)
    return {n: Stats(name=n, runs=len(ss), wall=statistics.median(s.wall for s in ss),
                     cpu=statistics.median(s.cpu for s in ss), rss_mb=statistics.median(s.rss_mb for s in ss),
                     samples=ss) for n, ss in samples.items()}


# ------------------------------------------------------------------ tshark baselines
def tshark_streams_cmd(pcap: str | Path) -> list[str]:
    """Streams baseline: tshark's TCP and UDP conversation tables."""
    return [TSHARK, "-n", "-q", "-z", "conv,tcp", "-z", "conv,udp", "-r", str(pcap)]


def tshark_items_cmd(pcap: str | Path) -> list[str]:
    """Items baseline: every HTTP message as an Elasticsearch (ek) JSON document."""
    return [TSHARK, "-n", "-r", str(pcap), "-Y", "http", "-T", "ek"]


def stream_ids(fields_output: str) -> tuple[list[int], list[int]]:
    """Distinct tcp.stream and udp.stream numbers from `-T fields -e tcp.stream -e udp.stream` output."""
    tcp: set[int] = set()
    udp: set[int] = set()
    for line in fields_output.splitlines():
        t, _, u = line.partition("\t")
        tcp.update(int(x) for x in t.split(",") if x)
        udp.update(int(x) for x in u.split(",") if x)
    return sorted(tcp), sorted(udp)


def export_filter(tcp: Sequence[int], udp: Sequence[int]) -> str:
    """Pass-2 display filter for whole streams; matches nothing when there are none."""
    parts = []
    if tcp:
        parts.append(f"tcp.stream in {{{','.join(map(str, tcp))}}}")
    if udp:
        parts.append(f"udp.stream in {{{','.join(map(str, udp))}}}")
    return " or ".join(parts) or "frame.number == 0"


def tshark_two_pass(pcap: str | Path, display_filter: str, out: str | Path) -> StepsBench:
    """tshark's whole-stream export (bench/README.md): pass 1 finds the streams, pass 2 writes all
    their packets to `out`."""

    def steps(run: RunOnce) -> list[Sample]:
        with tempfile.NamedTemporaryFile(prefix="tshark-pass1-", suffix=".txt") as ids:
            s1 = run([TSHARK, "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields",
                      "-e", "tcp.stream", "-e", "udp.stream"], stdout=ids.name)
            tcp, udp = stream_ids(Path(ids.name).read_text())
        s2 = run([TSHARK, "-n", "-r", str(pcap), "-Y", export_filter(tcp, udp), "-w", str(out)])
        return [s1, s2]

    return StepsBench(steps)


def tshark_export_seed(pcap: str | Path, outdir: str | Path) -> StepsBench:
    """Both seed queries (HTTP 500 and DNS), each exported to `outdir/<name>.pcap` by two passes."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    parts = [tshark_two_pass(pcap, f, outdir / f"{name}.pcap") for name, f in SEED_FILTERS.items()]
    return StepsBench(lambda run: [s for p in parts for s in p.steps(run)])


# ------------------------------------------------------------------ report
def row(name: str, packets: int, stats: Stats, baseline: Stats | None = None) -> str:
    """One aligned table line: name, packets, seconds, packets/s, speed-up vs baseline, peak RSS MB."""
    ratio = f"{baseline.wall / stats.wall:7.2f}x" if baseline is not None and stats.wall > 0 else "      -"
    return (f"{name:<28} {packets:>10,} {stats.wall:9.3f} {stats.packets_per_s(packets):>12,.0f} "
            f"{ratio} {stats.rss_mb:9.1f}")


HEADER = f"{'name':<28} {'packets':>10} {'seconds':>9} {'packets/s':>12} {'vs base':>8} {'RSS MB':>9}"


def json_line(bench: str, name: str, packets: int, stats: Stats, baseline: Stats | None = None,
              **extra: object) -> str:
    """One JSON object for machine reading (medians, raw samples, speed-up vs the baseline)."""
    doc = {"bench": bench, "name": name, "packets": packets, "runs": stats.runs, "wall_s": stats.wall,
           "cpu_s": stats.cpu, "rss_mb": stats.rss_mb, "packets_per_s": stats.packets_per_s(packets),
           "speedup_vs_baseline": (baseline.wall / stats.wall) if baseline and stats.wall > 0 else None,
           "baseline": baseline.name if baseline else None,
           "samples": [asdict(s) for s in stats.samples], **extra}
    return json.dumps(doc, sort_keys=False)


def print_table(results: dict[str, Stats], *, packets: int, baseline: str, bench: str = "bench",
                file: TextIO | None = None, json_file: TextIO | None = None) -> None:
    """Print the table (to `file`, default stdout) and one JSON line per result (to `json_file` if given)."""
    file = file or sys.stdout
    base = results[baseline]
    print(HEADER, file=file)
    for name, st in results.items():
        print(row(name, packets, st, None if name == baseline else base), file=file)
    if json_file is not None:
        for name, st in results.items():
            print(json_line(bench, name, packets, st, base), file=json_file)


# ------------------------------------------------------------------ captures
def _generator_digest() -> str:
    return hashlib.sha256(Path(trafficgen.__file__).read_bytes()).hexdigest()[:12]


def cached_capture(*, packets: int, seed: int = 1, gzip: bool = False, **kw: object) -> Path:
    """A generated capture under bench/out/ (with its truth JSON beside it), built once per parameters
    and generator source. Keyword arguments are those of `bench.trafficgen.generate`."""
    params = {"packets": packets, "seed": seed, "gzip": gzip, **kw}
    key = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]
    name = f"gen-{packets}-s{seed}-{key}-{_generator_digest()}.pcap" + (".gz" if gzip else "")
    path = OUT_DIR / name
    if not path.exists():
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        truth_tmp = tmp.with_suffix(".json.tmp")
        try:
            trafficgen.write_capture(tmp, gzip=gzip, truth_path=truth_tmp, packets=packets, seed=seed, **kw)
            os.replace(truth_tmp, truth_path(path))
            os.replace(tmp, path)
        finally:
            for f in (tmp, truth_tmp):
                f.unlink(missing_ok=True)
    return path


def truth_path(capture: Path) -> Path:
    """Where cached_capture keeps the truth sidecar of `capture`."""
    return capture.with_name(capture.name + ".truth.json")


def cached_truth(capture: Path) -> dict:
    """The generator's ground truth for a capture made by cached_capture."""
    return json.loads(truth_path(capture).read_text())


def capture_packets(path: Path) -> int:
    """Number of packets in a classic pcap (from the truth sidecar when there is one, else by walking it)."""
    tp = truth_path(path)
    if tp.exists():
        return int(json.loads(tp.read_text())["packets"])
    n = 0
    with open(path, "rb") as f:
        head = f.read(24)
        endian = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        rec = struct.Struct(endian + "IIII")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return n
            f.seek(rec.unpack(h)[2], os.SEEK_CUR)
            n += 1
