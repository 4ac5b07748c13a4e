"""Executing the commands a script's helpers recorded, in order, after the call into V8 returned.

A failing command prints `title:ERROR] <helper>: <reason>` and counts as a script error; the
script cannot catch it (it already returned). See docs/scripts.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from runtime.helpers import snapshots, vendor
from runtime.helpers.files import HelperError
from runtime.helpers.jobs import CronError
from runtime.helpers.services import Services
from wrappers.options import env_lookup

Handler = Callable[["Commands", list[Any], Sequence[Any]], None]
_TABLE: dict[str, Handler] = {}
_LABEL = {
    "w": "wrapper.kflPcapS3",
    "s3.put": "vendor.s3.put",
    "s3.clear": "vendor.s3.clear",
    "gcs.put": "vendor.gcs.put",
    "azure.put": "vendor.azure.put",
    "gcs.clear": "vendor.gcs.clear",
    "slack": "vendor.slack",
    "slackBot": "vendor.slackBot",
    "influxdb": "vendor.influxdb",
}


def _kfl_arr(c: Commands, cmd: list[Any]) -> str:
    options = c.options.get(cmd[2]) if len(cmd) > 2 else None
    queries = options.get("kflArr") if isinstance(options, dict) else None
    return f"wrapper.kflPcapS3(kflArr={queries!r})"


# commands that act outside the process: in a dry run (`scripts check`) they are described, not run
_OUTSIDE: dict[str, Callable[[Commands, list[Any]], str]] = {
    "w": _kfl_arr,
    "s3.put": lambda _c, cmd: f"vendor.s3.put(bucket={cmd[1]!r}, path={cmd[2]!r}, region={cmd[3]!r})",
    "s3.clear": lambda _c, cmd: f"vendor.s3.clear(bucket={cmd[1]!r}, region={cmd[2]!r})",
    "azure.put": lambda _c, cmd: f"vendor.azure.put(container={cmd[1]!r}, path={cmd[2]!r})",
    "gcs.put": lambda _c, cmd: f"vendor.gcs.put(bucket={cmd[1]!r}, path={cmd[2]!r})",
    "gcs.clear": lambda _c, cmd: f"vendor.gcs.clear(bucket={cmd[1]!r})",
    "slack": lambda _c, cmd: f"vendor.slack(webhook={cmd[1]!r}, pretext={cmd[2]!r}, text={cmd[3]!r})",
    "slackBot": lambda _c, cmd: (
        f"vendor.slackBot(channel={cmd[2]!r}, pretext={cmd[3]!r}, files={sorted(cmd[7])!r})"
    ),
    "influxdb": lambda _c, cmd: f"vendor.influxdb(url={cmd[1]!r}, bucket={cmd[4]!r}, measurement={cmd[5]!r})",
}


# helpers that answer the script at once (prelude `callNow`): name -> (call, dry-run description)
NowHandler = Callable[["Commands", list[Any]], Any]
_NOW: dict[str, tuple[NowHandler, Callable[[list[Any]], str]]] = {}


def now(name: str, describe: Callable[[list[Any]], str]) -> Callable[[NowHandler], NowHandler]:
    def register(fn: NowHandler) -> NowHandler:
        _NOW[name] = (fn, describe)
        return fn

    return register


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _TABLE[name] = fn
        return fn

    return register


@dataclass(frozen=True, eq=False)
class ScriptIdentity:
    """Who issued a helper command: what helpers may know of a loaded script (jobs are owned by it)."""

    title: str
    sid: int
    source_sha256: str


class Commands:
    """The Python side of one script's helpers. `options` is the script's wrapper option objects by
    id (filled by the host as the script creates them)."""

    def __init__(self, identity: ScriptIdentity, services: Services, options: dict[int, Any]) -> None:
        self.identity = identity
        self.services = services
        self.options = options
        self.wrapper: Any = None
        self._context: Any = None
        # the wrapper ticks of the batch whose commands run: (its number in the batch, first event
        # after it, clock, packets read)
        self.ticks: deque[tuple[int, int, int, int]] = deque()
        # the script's synchronous HTTP calls: timeouts and breakers (docs/security.md)
        self.webhooks = vendor.WebhookBudget(lambda text: self.error(text, "limit"))
        self.failed = 0

    def log(self, text: str) -> None:
        self.services.console.log(self.identity.title, text)

    def error(self, text: str, kind: str = "helper") -> None:
        self.services.console.error(self.identity.title, text, kind)

    def run(self, commands: Sequence[list[Any]], objs: Sequence[Any],
            cuts: Sequence[tuple[int | None, int | None]] | None = None) -> None:
        """Run a call's commands; `["@", i]` says the ones after it came from the hook of event `i`,
        whose cut (`cuts[i]`: capture clock, packets read) is what the store helpers and the wrappers
        see. Wrapper ticks of the batch (`ticks`) due before event `i` run first."""
        try:
            self._run(commands, objs, cuts)
        finally:
            self.services.cut_ns = self.services.cut_seq = None

    def _run(self, commands: Sequence[list[Any]], objs: Sequence[Any],
             cuts: Sequence[tuple[int | None, int | None]] | None) -> None:
        handle = None
        options = self.options
        dry_run = self.services.dry_run
        for cmd in commands:
            name = cmd[0]
            if name == "@":
                i = cmd[1]
                if self.ticks and self.ticks[0][1] <= i:
                    self.run_ticks(i)
                s = self.services
                s.cut_ns, s.cut_seq = cuts[i] if cuts is not None and 0 <= i < len(cuts) else (None, None)
                continue
            if name == "T":  # from timers due at the batch's tick k: after the wrapper ticks before it
                k = cmd[1]
                self.run_ticks(below=k)
                ticks = self.ticks
                s = self.services
                at = ticks[0] if ticks and ticks[0][0] == k else (k, 0, None, None)
                s.cut_ns, s.cut_seq = at[2], at[3]
                continue
            if dry_run is not None and name in _OUTSIDE:
                dry_run.append(_OUTSIDE[name](self, cmd))
                continue
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

    def call_now(self, helper: str, args: list[Any]) -> dict[str, Any]:
        """Make the call of a helper that answers at once: `{"value": …}` or `{"error": text}`.
        In a dry run the call is described, not made, and answers an empty string."""
        entry = _NOW.get(helper)
        if entry is None:
            return {"error": f"unknown helper {helper!r}"}
        call, describe = entry
        if self.services.dry_run is not None:
            self.services.dry_run.append(describe(args))
            return {"value": ""}
        try:
            return {"value": call(self, args)}
        except (HelperError, OSError, ValueError, TypeError) as exc:
            return {"error": str(exc)}

    def context(self) -> Any:
        """The wrappers' view of this script (docs/architecture.md, the script context)."""
        if self._context is None:
            from capture import StoreAt
            from wrappers.context import ScriptContext

            s = self.services
            self._context = ScriptContext(
                title=self.identity.title,
                source_sha256=self.identity.source_sha256,
                env={k: v if isinstance(v, str) else str(v) for k, v in s.env.items()},
                node=s.node,
                data_dir=s.data.root,
                store=StoreAt(s.store, lambda: s.cut_seq),
                names=s.names,
                clock=lambda: s.clock.now_ns() if s.cut_ns is None else s.cut_ns,
                console=self.log,
                error=self.error,
                outbox=s.outbox,
            )
            if s.wrapper_events is not None:
                self._context.events = s.wrapper_events(self.identity.title)
        return self._context

    def kfl_wrapper(self) -> Any:
        if self.wrapper is None:
            from wrappers import KflPcapS3

            self.wrapper = KflPcapS3(self.context())
        return self.wrapper

    def tick(self, now_ns: int, seq: int | None = None) -> None:
        """The wrappers' clock tick at `now_ns`; with `seq`, deferred: they see the store as it was
        when the capture had read `seq` packets."""
        if self.wrapper is None:
            return
        s = self.services
        saved = s.cut_ns, s.cut_seq
        if seq is not None:
            s.cut_ns, s.cut_seq = now_ns, seq
        try:
            self.wrapper.tick(now_ns)
        except Exception as exc:
            self.error(f"wrapper.kflPcapS3: {exc}")
        finally:
            s.cut_ns, s.cut_seq = saved

    def run_ticks(self, before: int | None = None, below: int | None = None) -> None:
        """Run the batch's pending wrapper ticks due before event `before` and numbered below tick
        `below` (None: no bound)."""
        ticks = self.ticks
        while ticks and (before is None or ticks[0][1] <= before) and (below is None or ticks[0][0] < below):
            _, _, now, seq = ticks.popleft()
            self.tick(now, seq)

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
    c.kfl_wrapper().handle(item, c.options[opts_id])


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


def _upload(c: Commands, path: str, url: str, put: Callable[..., str], *args: Any) -> None:
    """A file of the data folder to an object store (`put(ctx, data, *args)`): the URL the script
    was told at once must be where it goes."""
    snapshots.materialize(c.services, path)
    done = put(c.context(), c.services.data, *args)
    if done != url:
        raise HelperError(f"uploaded to {done}, but the script was told {url}")
    c.log(f"Uploaded {path} to {done}")


@command("s3.put")
def _s3_put(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    _, bucket, path, region, key_id, secret, url = cmd
    _upload(c, path, url, vendor.s3_put, bucket, path, region, key_id, secret)


@now("vendor.webhook", lambda a: f"vendor.webhook({a[0]!r}, {a[1]!r})")
def _webhook(c: Commands, args: list[Any]) -> str:
    return vendor.webhook(args[0], args[1], args[2], args[3], c.webhooks)


@now("vendor.webhookForm", lambda a: f"vendor.webhookForm({a[0]!r}, {a[1]!r}, fields={sorted(a[2])!r})")
def _webhook_form(c: Commands, args: list[Any]) -> str:
    return vendor.webhook_form(args[0], args[1], args[2], c.webhooks)


@now("vendor.elastic", lambda a: f"vendor.elastic(url={a[0] or a[5]!r}, index={a[1]!r})")
def _elastic(_c: Commands, args: list[Any]) -> str:
    return vendor.elastic(*args)


@command("s3.clear")
def _s3_clear(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    _, bucket, region, key_id, secret = cmd
    prefix = vendor.s3_clear(c.context(), bucket, region, key_id, secret)
    c.log(f"Deleted all files under {prefix} in AWS S3 bucket: {bucket}")


@now("vendor.kinesis.put", lambda a: f"vendor.kinesis.put(streamName={a[0]!r}, region={a[2]!r})")
def _kinesis_put(c: Commands, args: list[Any]) -> dict[str, Any]:
    return vendor.kinesis_put(c.context().env, *args)


@command("azure.put")
def _azure_put(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    _, container, path, name, key, connection, url = cmd
    _upload(c, path, url, vendor.azure_put, container, path, name, key, connection)


@command("gcs.put")
def _gcs_put(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    _, bucket, path, key_json, url = cmd
    _upload(c, path, url, vendor.gcs_put, bucket, path, key_json)


@command("gcs.clear")
def _gcs_clear(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    prefix = vendor.gcs_clear(c.context(), cmd[1], cmd[2])
    c.log(f"Deleted all files under {prefix} in GCS bucket: {cmd[1]}")


@command("slack")
def _slack(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    vendor.slack(cmd[1], cmd[2], cmd[3], cmd[4], on_error=lambda text: c.error(f"vendor.slack: {text}"))


@command("slackBot")
def _slack_bot(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    _, token, channel, pretext, text, color, fields, files = cmd
    contents = {}
    for name, path in files.items():
        snapshots.materialize(c.services, path)
        with c.services.data.open_read(path) as fh:
            contents[name] = fh.read()
    base = env_lookup(c.context().env)("SLACK_API_URL")
    vendor.slack_bot(base, token, channel, pretext, text, color, fields, contents, c.log)


@command("influxdb")
def _influxdb(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    _, url, token, org, bucket, measurement, fields, tags = cmd
    vendor.influxdb(url, token, org, bucket, measurement, fields, tags, c.services.clock.now_ns())


@command("prometheus.metric")
def _metric(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.prometheus.record(c.identity, cmd[1], cmd[2], cmd[3], cmd[4], cmd[5])


# ---- hub ---------------------------------------------------------------------------------------


@command("hub.action")
def _hub_action(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    c.services.hub_actions.append((cmd[1], cmd[2]))


# ---- jobs --------------------------------------------------------------------------------------


@command("jobs.schedule")
def _schedule(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    _, tag, cron, limit = cmd
    s = c.services
    # from the clock of the item whose hook scheduled it (its cut), not of the batch's return
    now = s.cut_ns if s.cut_ns is not None else s.clock.now_ns()
    _job, old = s.scheduler.schedule(c.identity, tag, cron, limit, now)
    if old is not None and old.owner is not c.identity:
        s.console.log(old.owner.title, f"Job {tag!r} was replaced by script {c.identity.title!r}")
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


@command("job.done")
def _job_done(c: Commands, cmd: list[Any], _objs: Sequence[Any]) -> None:
    """A job the script ran at a tick of its batch: `[_, tag, error text or None]`."""
    _, tag, error = cmd
    c.services.job_runs.append(error is not None)
    if error is not None:
        c.error(f"(job={tag}) {error}", "job")


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
