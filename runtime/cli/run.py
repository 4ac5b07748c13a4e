"""`kflpcap run`: run the scripts over captured or live traffic, with a progress bar, a summary
table, Prometheus metrics and meaningful exit codes (0 done, 1 a script or upload failed or an
internal error, 2 bad usage or unreadable input). SIGINT/SIGTERM stop reading, flush every
repository, wait a bounded time for the uploads and exit 0."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from runtime.cli import k8s
from runtime.cli.options import add_input_options, source_specs
from runtime.helpers.env import EnvError, build_env
from runtime.helpers.services import MIB, Limits

log = logging.getLogger("kflpcap.run")
BUNDLED_SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
DEFAULT_SCRIPTS = Path("scripts")
REFRESH_S = 0.25
MAX_PRESTART = 8  # script processes started ahead

EPILOG = """\
examples:
  kflpcap run --demo
      the bundled demo capture through the bundled scripts; repositories under ./kflpcap-data
  kflpcap run --pcap traffic.pcapng --scripts ./scripts
      one capture file (pcap, pcapng, gzipped too) through every *.js of a folder
  zcat day.pcap.gz | kflpcap run --pcap - --scripts seed.js --data-dir /var/lib/kflpcap
      a capture on stdin, one script, another data folder
  sudo kflpcap run --interface eth0 --bpf 'tcp port 80 or port 53' --metrics-port 9100 \\
      --env S3_BUCKET=forensics --env S3_ENDPOINT=http://127.0.0.1:8333
      live capture until SIGINT/SIGTERM; repositories uploaded create-only to S3; /metrics on :9100
  kflpcap run --pcap a.pcap --env-file prod.env --env MAX_MINUTES=5 --node node-7 --clock wall

exit codes: 0 done; 1 some scripts or uploads failed, or an internal error (listed at the end); 2 bad
usage or input that could not be read at all (a truncated capture whose readable part was processed
is a warning).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run scripts over capture files or a live interface",
        description="Read captures (or capture live), dissect their streams into items and run every\n"
        "script's hooks on them (Kubeshark-style JavaScript, one V8 isolate per script). File input\n"
        "ends with the input; live capture runs until SIGINT/SIGTERM. Either way every repository is\n"
        "flushed and the uploads get a bounded time (30 s) before the summary is printed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("input")
    add_input_options(src, "pcap", "interface", "ring_mib", "bpf", "names", "node")
    src.add_argument("--demo", action="store_true",
                     help="the bundled demo capture through the bundled scripts folder (unless --scripts); "
                     "e.g. kflpcap run --demo")
    scr = p.add_argument_group("scripts")
    scr.add_argument("--scripts", action="append", default=[], metavar="DIR|FILE",
                     help="folder of *.js scripts (watched: changes reload) or one .js file; repeatable "
                     "(default: ./scripts when it exists; e.g. --scripts ./scripts --scripts extra.js)")
    scr.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                     help="a script env entry, repeatable, wins over --env-file "
                     "(e.g. --env S3_BUCKET=forensics)")
    scr.add_argument("--env-file", action="append", default=[], metavar="FILE",
                     help="script env from a .env, JSON or YAML file; repeatable "
                     "(e.g. --env-file prod.env)")
    scr.add_argument("--data-dir", default="kflpcap-data", metavar="DIR",
                     help="folder for script files, the upload spool and local repositories "
                     "(default: ./%(default)s)")
    scr.add_argument("--clock", choices=("wall", "capture"), default=None,
                     help="time for jobs, timers and rotation "
                     "(default: capture time for files, wall time live; e.g. --clock wall)")
    scr.add_argument("--call-timeout", type=float, default=5.0, metavar="S",
                     help="time budget in seconds of one call into a script (default: %(default)s; "
                     "e.g. --call-timeout 10)")
    scr.add_argument("--heap-mib", type=int, default=256, metavar="MIB",
                     help="V8 heap limit per script (default: %(default)s; e.g. --heap-mib 512)")
    scr.add_argument("--batch", type=int, default=1000, metavar="N",
                     help="items per batch into each script (default: %(default)s; e.g. --batch 500)")
    src.add_argument("--workers", type=int, default=1, metavar="N",
                     help="processes that dissect capture files, each a share of the streams; the "
                     "same items and repositories whatever N (default: %(default)s, see bench/README.md; "
                     "live input, stdin and --k8s take 1; e.g. --workers 2)")
    out = p.add_argument_group("output")
    out.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                     help="serve Prometheus metrics on http://0.0.0.0:PORT/metrics during the run "
                     "(e.g. --metrics-port 9100)")
    out.add_argument("--log-level", default="warning",
                     choices=("debug", "info", "warning", "error"),
                     help="level of kflpcap's own log lines on stderr (default: %(default)s; "
                     "e.g. --log-level info)")
    out.add_argument("--no-progress", action="store_true",
                     help="no progress bar (it is off when stderr is not a TTY)")
    k8s.add_options(p)  # Kubernetes identity: its own block, apart from the shared input options
    p.set_defaults(func=run)


def _usage(text: str) -> int:
    print(f"kflpcap run: {text}", file=sys.stderr)
    return 2


def _sources(args: argparse.Namespace) -> list[str]:
    from runtime.demo import DEMO_PCAP

    specs = source_specs(args)
    if args.demo:
        specs.append(str(DEMO_PCAP))
    return specs


def _scripts(args: argparse.Namespace) -> list[str] | None:
    if args.scripts:
        return list(args.scripts)
    if args.demo:
        return [str(BUNDLED_SCRIPTS)] if BUNDLED_SCRIPTS.is_dir() else None
    return [str(DEFAULT_SCRIPTS)] if DEFAULT_SCRIPTS.is_dir() else []


class StopReading(Exception):
    """Raised by the signal handler into a read from a pipe that waits for data (the read would
    otherwise be retried, PEP 475, and the stop would wait for the writer)."""


def _blocked_in_a_read(frame: Any) -> bool:
    while frame is not None:
        path = frame.f_code.co_filename.replace("\\", "/")
        if path.endswith(("capture/readers.py", "capture/sources.py")):
            return True
        if path.endswith("runtime/engine/pipeline.py"):
            return False
        frame = frame.f_back
    return False


def _install_signals(pipeline: Any, pipe_input: bool) -> None:
    signalled: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        if signalled:
            raise KeyboardInterrupt  # a second signal: give up on the clean shutdown
        signalled.append(signum)
        print(f"kflpcap run: {signal.Signals(signum).name}: stopping, flushing repositories",
              file=sys.stderr)
        pipeline.stop()
        if pipe_input and _blocked_in_a_read(frame):
            raise StopReading

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)


def _script_files(paths: list[str]) -> int:
    """How many scripts `paths` (files and folders of .js files) hold now."""
    count = 0
    for path in map(Path, paths):
        with contextlib.suppress(OSError):
            count += sum(1 for p in path.iterdir() if p.suffix == ".js") if path.is_dir() else path.is_file()
    return count


def run(args: argparse.Namespace) -> int:
    from runtime.v8.process import prestart

    prestart(min(_script_files(_scripts(args) or []), MAX_PRESTART))  # while the rest is imported
    from rich.console import Console as RichConsole

    from runtime.cli import report
    from runtime.engine.pipeline import Pipeline, PipelineConfig
    from runtime.engine.scripts import ScriptsError

    logging.basicConfig(level=args.log_level.upper(), format="kflpcap %(levelname)s %(name)s: %(message)s")
    specs = _sources(args)
    if not specs:
        return _usage("nothing to read: give --pcap FILE (or -), --interface IFACE or --demo")
    scripts = _scripts(args)
    if scripts is None:
        return _usage(f"--demo: the bundled scripts folder {BUNDLED_SCRIPTS} is missing (install from the "
                      "repository with pip install -e .)")
    if not scripts:
        print("kflpcap run: no --scripts and no ./scripts folder: only counting traffic", file=sys.stderr)
    try:
        env = build_env(args.env_file, args.env)
    except EnvError as exc:
        return _usage(str(exc))
    for path in [*args.env_file, *([args.names] if args.names else [])]:
        if not Path(path).is_file():
            return _usage(f"{path}: no such file")
    config = PipelineConfig(
        sources=specs,
        scripts=scripts,
        data_dir=Path(args.data_dir),
        env=env,
        clock=args.clock,
        node=args.node,
        names_file=args.names,
        k8s=(args.kubeconfig, args.context, args.k8s_wait) if k8s.wanted(args) else None,
        bpf=args.bpf,
        ring_mib=args.ring_mib,
        limits=Limits(call_timeout_s=args.call_timeout, heap_bytes=args.heap_mib * MIB),
        batch_items=max(1, args.batch),
        watch=True,
        workers=max(1, args.workers),
    )
    try:
        pipeline = Pipeline(config)
    except (ScriptsError, OSError) as exc:
        return _usage(str(exc))
    err = RichConsole(stderr=True, width=None if sys.stderr.isatty() else 160)
    try:
        try:
            pipeline.start()
        except ValueError as exc:  # a BPF filter that does not compile, an unusable kubeconfig
            return _usage(str(exc))
        return _drive(pipeline, specs, args, err, report)
    finally:
        pipeline.close()


def _drive(pipeline: Any, specs: list[str], args: argparse.Namespace, err: Any, report: Any) -> int:
    from rich.markup import escape

    from runtime.cli.input_progress import InputProgress
    from runtime.cli.metrics import Metrics

    stats = pipeline.stats
    files = InputProgress(specs)
    stats.input.bytes_total = files.total
    started = time.monotonic()

    def refresh(final: bool = False) -> None:
        stats.elapsed_s = time.monotonic() - started
        source = pipeline.source
        stats.input.bytes_read = files.read(finished=final and not stats.live) + (
            source.stdin_bytes if source is not None else 0)
        if not stats.live:
            stats.bytes = stats.input.bytes_read

    metrics = Metrics(stats.snapshot, pipeline.services.prometheus)
    pipeline.on_batch.append(lambda _batch, seconds: metrics.observe_batch("all scripts", seconds))
    _install_signals(pipeline, "-" in specs)
    server = None
    if args.metrics_port is not None:
        try:
            server = metrics.serve(args.metrics_port)
        except OSError as exc:
            return _usage(f"--metrics-port {args.metrics_port}: {exc}")
    live = bool(getattr(pipeline.source, "live", False))
    show = not (args.no_progress or live or not err.is_terminal)
    done = threading.Event()

    def refresher(progress: Any) -> None:
        while not done.wait(REFRESH_S):
            refresh()
            if progress is not None:
                progress.update(stats.snapshot())

    crash: list[str] = []
    try:
        with report.RunProgress(err, disable=not show) as progress:
            thread = threading.Thread(target=refresher, args=(progress if show else None,),
                                      name="kflpcap-stats", daemon=True)
            thread.start()
            try:
                _run_to_the_end(pipeline, crash)
            finally:
                done.set()
                thread.join()
                _guarded(crash, "the final figures", refresh, True)
                if show:
                    progress.update(stats.snapshot())
    finally:
        if server is not None:
            server.close()
    final = stats.snapshot()
    _guarded(crash, "the summary", report.print_summary, final, err)
    failed = report.failures(final) + crash
    if failed:
        err.print("[bold red]failed:[/] " + escape("; ".join(failed)), markup=True, highlight=False)
    code = report.exit_code(final)
    return max(code, report.EXIT_FAILED) if crash else code


def _run_to_the_end(pipeline: Any, crash: list[str]) -> None:
    """Run the pipeline; whatever raises, flush what it holds (the last-resort guard: the
    repositories of what was read are written and the summary printed). Failures go to `crash`."""
    try:
        try:
            pipeline.run()
        except StopReading:
            pipeline.finish()
        return
    except Exception as exc:
        crash.append(_internal("", exc))
        print(f"kflpcap run: internal error ({type(exc).__name__}: {exc}): flushing what was read",
              file=sys.stderr)
    _guarded(crash, "flushing", pipeline.finish)


def _guarded(crash: list[str], what: str, call: Any, *args: Any) -> None:
    """`call(*args)`; what it raises is noted in `crash` (the trace goes to the debug log)."""
    try:
        call(*args)
    except Exception as exc:
        crash.append(_internal(f" in {what}", exc))


def _internal(where: str, exc: Exception) -> str:
    log.debug("internal error%s", where, exc_info=exc)
    return f"kflpcap: internal error{where}: {type(exc).__name__}: {exc} (--log-level debug: the trace)"
