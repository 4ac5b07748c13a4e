"""`kflpcap scripts check DIR|FILE...`: load each script in a sandbox (a throw-away data folder, no
traffic) and report its syntax and top-level errors (file:line), the KFL literals it uses and whether
they are valid (with a caret under the problem), the hooks it defines and the jobs it schedules (each
run once). Nothing leaves the process: helpers that would (webhooks, Slack, S3, kflPcapS3) are
recorded and listed, not executed. Exit 0 when every script loads, every job runs and every KFL
literal is valid, 1 otherwise, 2 for bad usage."""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from runtime.helpers.env import EnvError, build_env

# a string that starts like a KFL expression: a field, then an operator or a combinator
LOOKS_LIKE_KFL = re.compile(
    r"^\s*!?\s*[a-z_][\w.]*(\[[^\]]*\])?\s*(==|!=|>=|<=|=~|=|<|>|\s(and|or)\s|&&|\|\|)"
)

EPILOG = """\
examples:
  kflpcap scripts check scripts/
  kflpcap scripts check scripts/kfl_pcap_s3.js my_script.js --env S3_BUCKET=forensics
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("scripts", help="check scripts without traffic",
                              description="Work with kflpcap scripts.")
    sub = p.add_subparsers(dest="scripts_command", metavar="SUBCOMMAND")
    check = sub.add_parser(
        "check",
        help="load scripts in a sandbox and report errors, KFL literals, hooks and jobs",
        description="Load each script in its own V8 isolate with a throw-away data folder and no "
        "traffic; print syntax and top-level errors (file:line), the KFL literals it uses and their "
        "validity, the hooks it defines and the jobs it schedules. Exit 0 when all is well, else 1.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("paths", nargs="+", metavar="DIR|FILE", help="script files or folders of *.js")
    check.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                       help="script env entry, as for kflpcap run; repeatable")
    check.add_argument("--env-file", action="append", default=[], metavar="FILE",
                       help="script env file (.env, JSON or YAML), as for kflpcap run; repeatable")
    check.set_defaults(func=check_scripts)
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])


def _files(paths: list[str]) -> list[Path] | None:
    out: list[Path] = []
    for spec in paths:
        path = Path(spec)
        if path.is_dir():
            out += sorted(f for f in path.glob("*.js") if f.is_file())
        elif path.is_file():
            out.append(path)
        else:
            print(f"kflpcap scripts check: {spec}: no such file or folder", file=sys.stderr)
            return None
    return out


def _line_of(text: str, literal: str) -> int:
    for quote in ('"', "'", "`"):
        at = text.find(quote + literal + quote)
        if at >= 0:
            return text.count("\n", 0, at) + 1
    return 0


def kfl_literals(text: str, literals: list[str]) -> list[dict[str, Any]]:
    """The literals that are KFL (they compile and are more than a plain word, or look like KFL but
    do not compile): {"query", "line", "error"}."""
    import kfl

    out = []
    for literal in dict.fromkeys(literals):
        if not literal.strip() or len(literal) > 2000:
            continue
        try:
            kfl.compile(literal)
            error = ""
        except kfl.KFLSyntaxError as exc:
            error = str(exc)
        except Exception:
            continue
        looks = bool(LOOKS_LIKE_KFL.match(literal)) or literal.strip() in kfl.MACROS
        if looks or (not error and not re.fullmatch(r"[\w$-]+", literal.strip())
                     and re.fullmatch(r"[\w.\s\[\]\"'!=<>()&|~-]+", literal) is not None):
            out.append({"query": literal, "line": _line_of(text, literal), "error": error})
    return out


def _would(calls: list[str], where: str) -> list[str]:
    """Report and forget the calls that would have left the process."""
    lines = [f"  would call ({where}, not sent in a check): {call}" for call in calls]
    calls.clear()
    return lines


def check_one(path: Path, env: dict[str, Any]) -> tuple[bool, list[str]]:
    """(ok, report lines) for one script file."""
    from runtime.helpers.console import Console
    from runtime.helpers.files import DataDir
    from runtime.helpers.services import Clock, Services
    from runtime.v8.host import LoadError, ScriptHost
    from runtime.v8.protocol import HOOKS
    from runtime.v8.source import ScriptSource

    lines: list[str] = []
    try:
        source = ScriptSource.read(path)
    except OSError as exc:
        return False, [f"{path}: cannot read: {exc.strerror or exc}"]
    ok = True
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory(prefix="kflpcap-check-") as sandbox:
        would: list[str] = []
        services = Services(console=Console(out, err), data=DataDir(Path(sandbox)), clock=Clock("wall"),
                            env=dict(env), dry_run=would)
        host = ScriptHost(source, services, 1)
        try:
            host.load()
            hooks = [name for letter, name in HOOKS.items() if letter in host.hooks]
            scheduler = services.scheduler
            jobs = [job for tag in scheduler.tags() if (job := scheduler.get(tag)) is not None]
            lines.append(f"{path}: loaded ({source.title})")
            lines.append(f"  hooks: {', '.join(hooks) or 'none'}")
            lines += _would(would, "top level")
            for job in jobs:
                ran, error = host.run_job(job.tag)
                result = f"error: {error}" if error else "ran once: ok" if ran else "did not run"
                ok = ok and ran and not error
                lines.append(f"  job: {job.tag} cron={job.cron!r} limit={job.limit} ({result})")
                lines += _would(would, f"job {job.tag}")
            if not jobs:
                lines.append("  jobs: none")
        except LoadError as exc:
            ok = False
            lines.append(f"{path}: ERROR: {exc}")
        finally:
            host.close("shutdown")
            services.close_outbox(2.0)
    if services.console.errors:
        ok = False
        lines += ["  top-level error: " + line for line in err.getvalue().splitlines()]
    for entry in kfl_literals(source.text, source.literals):
        where = f"{path}:{entry['line']}" if entry["line"] else str(path)
        if entry["error"]:
            ok = False
            lines.append(f"  KFL {where}: INVALID {entry['query']!r}")
            lines += ["    " + line for line in entry["error"].splitlines()]
        else:
            lines.append(f"  KFL {where}: ok {entry['query']!r}")
    return ok, lines


def check_scripts(args: argparse.Namespace) -> int:
    try:
        env = build_env(args.env_file, args.env)
    except EnvError as exc:
        print(f"kflpcap scripts check: {exc}", file=sys.stderr)
        return 2
    files = _files(args.paths)
    if files is None:
        return 2
    if not files:
        print("kflpcap scripts check: no *.js scripts found", file=sys.stderr)
        return 2
    failed = 0
    for path in files:
        ok, lines = check_one(path, env)
        failed += not ok
        print("\n".join(lines))
    print(f"{len(files)} script(s) checked, {failed} with problems")
    return 1 if failed else 0
