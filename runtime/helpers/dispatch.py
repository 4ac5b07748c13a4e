"""Executing the commands a script's helpers recorded, in order, after the call into V8 returned.

A failing command prints `title:ERROR] <helper>: <reason>` and counts as a script error; the
script cannot catch it (it already returned). See docs/scripts.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from runtime.helpers import snapshots, vendor
from runtime.helpers.files import HelperError
from runtime.helpers.jobs import CronError

if TYPE_CHECKING:
    from runtime.v8.host import ScriptHost

Handler = Callable[["Commands", list[Any], Sequence[Any]], None]
_TABLE: dict[str, Handler] = {}
_LABEL = {
    "w": "wrapper.kflPcapS3",
    "s3.put": "vendor.s3.put",
    "slack": "vendor.slack",
}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _TABLE[name] = fn
        return fn

    return register


class Commands:
    """The Python side of one script's helpers."""

    def __init__(self, host: ScriptHost) -> None:
        self.host = host
        self.wrapper: Any = None
        self._context: Any = None
        self.executed = 0
        self.failed = 0

    @property
    def services(self) -> Any:
        return self.host.services

    def log(self, text: str) -> None:
        self.services.console.log(self.host.title, text)

    def error(self, text: str, kind: str = "helper") -> None:
        self.services.console.error(self.host.title, text, kind)

    def run(self, commands: Sequence[list[Any]], objs: Sequence[Any]) -> None:
        self.executed += len(commands)
        handle = None
        options = self.host.options
        for cmd in commands:
            name = cmd[0]
            try:
                if name == "w" and cmd[1] >= 0:
                    # the seed script's one command per item: the short way
                    if handle is None:
                        handle = self.kfl_wrapper().handle
                    handle(objs[cmd[1]], options[cmd[2]])
                    continue
                handler = _TABLE.get(name)
                if handler is None:
                    raise HelperError(f"unknown command {name!r}")
                handler(self, cmd, objs)
            except (HelperError, CronError, OSError, ValueError, TypeError, KeyError) as exc:
                self.failed += 1
                text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                where = f" {exc.filename}" if isinstance(exc, OSError) and exc.filename else ""
                self.error(f"{_LABEL.get(name, name)}: {text}{where}")

    def context(self) -> Any:
        """The wrappers' view of this script (docs/architecture.md, the script context)."""
        if self._context is None:
            from wrappers.context import ScriptContext

            s = self.services
            self._context = ScriptContext(
                title=self.host.title,
                source_sha256=self.host.source.sha256,
                env={k: v if isinstance(v, str) else str(v) for k, v in s.env.items()},
                node=s.node,
                data_dir=s.data.root,
                store=s.store,
                names=s.names,
                clock=s.clock.now_ns,
                console=self.log,
                error=self.error,
                outbox=s.outbox,
            )
        return self._context

    def kfl_wrapper(self) -> Any:
        if self.wrapper is None:
            from wrappers import KflPcapS3

            self.wrapper = KflPcapS3(self.context())
        return self.wrapper

    def tick(self, now_ns: int) -> None:
        if self.wrapper is not None:
            self.wrapper.tick(now_ns)

    def close(self, reason: str) -> None:
        if self.wrapper is not None:
            wrapper, self.wrapper = self.wrapper, None
            try:
                wrapper.close(reason)
            except Exception as exc:
                self.error(f"wrapper.kflPcapS3: flush on {reason} failed: {exc}")


# ---- console -----------------------------------------------------------------------------------


@command("log")
def _log(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.log(cmd[1])


@command("error")
def _error(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    text = cmd[1]
    c.error(
        text,
        "hook" if text.startswith("(hook=") else "timer" if text.startswith("(setTimeout)") else "console",
    )


@command("clear")
def _clear(_c: Commands, _cmd: list[Any], _objs: Sequence[Any]) -> None:
    """A terminal console keeps its history: clear is accepted and does nothing."""


# ---- wrapper -----------------------------------------------------------------------------------


@command("w")
def _wrapper(c: Commands, cmd: list[Any], objs: Sequence[Any]) -> None:
    index, opts_id = cmd[1], cmd[2]
    item = objs[index] if index >= 0 else cmd[3]
    c.kfl_wrapper().handle(item, c.host.options[opts_id])


# ---- files -------------------------------------------------------------------------------------


@command("file.write")
def _write(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.data.write(cmd[1], cmd[2])


@command("file.append")
def _append(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.data.append(cmd[1], cmd[2])


@command("file.copy")
def _copy(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    snapshots.materialize(c.services, cmd[1])
    c.services.data.copy(cmd[1], cmd[2])


@command("file.move")
def _move(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    snapshots.materialize(c.services, cmd[1])
    c.services.data.move(cmd[1], cmd[2])


@command("file.delete")
def _delete(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.data.delete(cmd[1])


@command("file.mkdir")
def _mkdir(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.data.mkdir(cmd[1])


@command("file.mkdirTemp")
def _mkdir_temp(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.data.mkdir_new(cmd[1])


@command("file.temp")
def _temp(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.data.create_empty(cmd[1])


@command("file.tar")
def _tar(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.data.tar(cmd[1], cmd[2])


# ---- pcap --------------------------------------------------------------------------------------


@command("pcap.snapshot")
def _snapshot(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    missing = snapshots.snapshot(c.services, cmd[1], cmd[2], cmd[3])
    if missing:
        c.error(
            f"pcap.snapshot: {len(missing)} selected streams were no longer in the store: "
            + ", ".join(missing[:10])
            + (" …" if len(missing) > 10 else "")
        )


# ---- vendor ------------------------------------------------------------------------------------


@command("s3.put")
def _s3_put(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    _, bucket, path, region, key_id, secret, url = cmd
    snapshots.materialize(c.services, path)
    done = vendor.s3_put(c.context(), bucket, path, region, key_id, secret)
    if done != url:
        raise HelperError(f"uploaded to {done}, but the script was told {url}")
    c.log(f"Uploaded {path} to {done}")


@command("slack")
def _slack(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    vendor.slack(cmd[1], cmd[2], cmd[3], cmd[4])


@command("prometheus.metric")
def _metric(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    vendor.prometheus_metric(cmd[1], cmd[2], cmd[3], cmd[4], cmd[5])


# ---- jobs --------------------------------------------------------------------------------------


@command("jobs.schedule")
def _schedule(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    _, tag, cron, limit = cmd
    s = c.services
    _job, old = s.scheduler.schedule(c.host, tag, cron, limit, s.clock.now_ns())
    if old is not None and old.owner is not c.host:
        old.owner.commands.log(f"Job {tag!r} was replaced by script {c.host.title!r}")
    c.log(f'Scheduled the job: "{tag}" for cron: "{cron}" (limit: {limit or "infinite"})')


@command("jobs.remove")
def _remove(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    if c.services.scheduler.remove(cmd[1]) is None:
        raise HelperError(f'no job with tag "{cmd[1]}"')
    c.log(f'Removed the job: "{cmd[1]}"')


@command("jobs.removeAll")
def _remove_all(c: Commands, _cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.scheduler.remove_all()
    c.log("All jobs are removed.")


@command("jobs.run")
def _run(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    if c.services.scheduler.get(cmd[1]) is None:
        raise HelperError(f'no job with tag "{cmd[1]}"')
    c.services.job_requests.append(cmd[1])
    c.log(f'Triggered the job: "{cmd[1]}"')


@command("jobs.runAll")
def _run_all(c: Commands, _cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.job_requests.extend(c.services.scheduler.tags())
    c.log("All jobs are triggered.")


@command("jobs.start")
def _start(c: Commands, _cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.scheduler.set_running(True)


@command("jobs.stop")
def _stop(c: Commands, _cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.scheduler.set_running(False)
