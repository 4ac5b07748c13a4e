"""One loaded script: its V8 child process, the batch protocol, signals, and its helper commands.

Every call into the isolate returns the object `runtime/v8/protocol.py` names (`RESULT_*`): the
commands the script issued, which hooks it defines, and optionally a pending signal (an unknown KFL
query, resolved here, then the batch resumes at that item), a yield point (the call handed back
control after its time slice; resumed at once), the query ids it used, new wrapper option objects
and its next timer (ms on the runtime clock).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import orjson

from capture.dissect import BODY_FIELDS
from runtime.helpers.dispatch import Commands, ScriptIdentity
from runtime.helpers.env import global_names
from runtime.helpers.services import MIB, Services
from runtime.v8 import protocol as proto
from runtime.v8.batch import Batch
from runtime.v8.process import IsolateGone, IsolateProcess, MemoryExceeded
from runtime.v8.source import ScriptSource, js_string

# a query the script has not used for this many items stops being evaluated for it
DROP_AFTER_ITEMS = 4096
MAX_SIGNALS_PER_CALL = 1000
MAX_LOAD_ROUNDS = 50

_PRELUDE: str | None = None


def prelude() -> str:
    global _PRELUDE
    if _PRELUDE is None:
        _PRELUDE = resources.files("runtime.v8").joinpath("prelude.js").read_text(encoding="utf-8")
    return _PRELUDE


class LoadError(Exception):
    """The script could not be loaded; the message names file and line where known."""


class ScriptFault(Exception):
    """The script went over a limit or its V8 process died; it is stopped."""

    def __init__(self, text: str, memory: bool = False) -> None:
        super().__init__(text)
        self.memory = memory


def _gone(exc: IsolateGone) -> ScriptFault:
    return ScriptFault(str(exc), memory=isinstance(exc, MemoryExceeded))


def _first_line(text: str, path_name: str, lines: int) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    if first.startswith("<anonymous>:"):  # V8 names some early syntax errors before the sourceURL
        first = path_name + first[len("<anonymous>") :]
    # "<name>:<line>: message" — clamp a line past the end (the sourceURL comment) to the last line
    prefix = f"{path_name}:"
    if first.startswith(prefix):
        number, sep, rest = first[len(prefix) :].partition(":")
        if sep and number.isdigit() and int(number) > lines:
            first = f"{prefix}{lines}:{rest}"
    return first


class ScriptHost:
    """A script loaded in its own V8 isolate (own child process). Always `close()` it."""

    def __init__(self, source: ScriptSource, services: Services, sid: int) -> None:
        self.source = source
        self.services = services
        self.sid = sid
        self.title = source.title
        self.state = "new"  # new → loaded → stopped | closed
        self.stop_reason = ""
        self.hooks = ""
        self.queries: dict[str, int] = {}
        self.active: set[int] = set()
        self.last_used: dict[int, int] = {}
        self.invalid: dict[str, str] = {}
        self.options: dict[int, Any] = {}
        self.next_timer_ms: float | None = None
        self.items_seen = 0
        self.identity = ScriptIdentity(self.title, sid, source.sha256)
        self.commands = Commands(self.identity, services, self.options)
        self._proc: IsolateProcess | None = None
        self._inflight: tuple[Batch, list[Any]] | None = None
        # lean: batches carry no item text (see runtime.v8.source.item_only_forwarded)
        self.lean = source.lean
        # bodies: batches carry message bodies (see runtime.v8.source.may_read_bodies)
        self.bodies = source.bodies
        # fields: the top-level item fields sent, None = all (see runtime.v8.source.named_fields)
        self.fields = source.fields
        self.go_names = source.go_names
        self._jobs_version = -1
        self._running_sent: bool | None = None
        self._names_sent: Any = None
        self._drop: list[str] = []
        self._load_responses: list[list[Any]] = []

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self.state == "loaded"

    @property
    def wants_packets(self) -> bool:
        return self.loaded and proto.HOOK_PACKET in self.hooks

    @property
    def wants_items(self) -> bool:
        return self.loaded and (proto.HOOK_ITEM in self.hooks or proto.HOOK_PACKET in self.hooks)

    def _query_id(self, query: str) -> int:
        qid = self.queries.get(query)
        if qid is None:
            qid = len(self.queries) + len(self.invalid)
            self.queries[query] = qid
        return qid

    def _candidates(self) -> None:
        """KFL queries the script probably uses: its string literals and env values that compile."""
        texts = list(self.source.literals) + [v for v in self.services.env.values() if isinstance(v, str)]
        for text in dict.fromkeys(texts):
            if not text.strip() or len(text) > 2000:
                continue
            compiled, _ = self.services.kfl.compile(text)
            if compiled is not None:
                self.active.add(self._query_id(text))

    def _config(self) -> dict[str, Any]:
        s = self.services
        env = s.env
        return {
            "title": self.title,
            "sid": self.sid,
            "node": s.node,
            "env": env,
            "envGlobals": global_names(env),
            "known": self.queries,
            "bodies": BODY_FIELDS,
            "goNames": self.go_names,
            "invalid": self.invalid,
            "jobs": s.scheduler.tags(),
            "running": s.scheduler.running,
            "now": s.clock.now_ns() // 1_000_000,
            "names": self._names(),
            "s3": {
                "endpoint": str(env.get("S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL") or ""),
                "region": str(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""),
                "runId": s.run_id,
            },
            "sliceMs": s.limits.slice_ms,
            "responses": self._load_responses,
        }

    def _names(self) -> Any:
        try:
            return self.services.name_history()
        except Exception:
            return {}

    def load(self) -> None:
        """Start the isolate, run the prelude and the script's top-level code, run its commands.

        Raises LoadError (the isolate is closed again) when the top-level code fails.
        """
        self._candidates()
        src = self.source
        name = src.path.name
        code = src.text + "\n//# sourceURL=" + name
        lines = src.text.count("\n") + 1
        self._proc = IsolateProcess.take(self.services.limits.process_bytes)
        try:
            for _ in range(MAX_LOAD_ROUNDS):
                self._proc.new_isolate(self.services.limits.heap_bytes)
                config = json.dumps(self._config(), ensure_ascii=False)
                answer = self._proc.evaluate(prelude().replace("__KFLPCAP_CONFIG__", config), 30.0)
                if not answer.ok:
                    raise LoadError(f"prelude failed: {answer.text.strip()}")
                top = self._proc.evaluate(code, self.services.limits.call_timeout_s)
                if top.status == proto.TIMED_OUT:
                    raise LoadError(
                        f"{name}: top-level code exceeded the time budget of "
                        f"{self.services.limits.call_timeout_s:g} s"
                    )
                if top.status == proto.OUT_OF_MEMORY:
                    raise LoadError(
                        f"{name}: top-level code exceeded the heap limit of "
                        f"{self.services.limits.heap_bytes // MIB} MiB"
                    )
                done = self._proc.evaluate(proto.JS_LOADED, self.services.limits.call_timeout_s)
                result = orjson.loads(done.text) if done.ok and done.text else {}
                signal = result.get(proto.RESULT_SIGNAL)
                if signal is not None:
                    # top-level code used a query not known yet (or called a helper that answers
                    # at once): learn it, run again from scratch with every answer so far
                    update = self._resolve(signal, None, with_packets=False)
                    self._load_responses.extend(update.get("responses", ()))
                    continue
                if not top.ok:
                    raise LoadError(_first_line(top.text, name, lines))
                break
            else:
                raise LoadError(f"{name}: top-level code kept asking for new KFL queries")
        except MemoryExceeded as exc:
            self._close_proc()
            raise LoadError(f"{name}: script stopped: memory — {exc}") from exc
        except IsolateGone as exc:
            self._close_proc()
            raise LoadError(f"{name}: {exc}") from exc
        except LoadError:
            self._close_proc()
            raise
        self.state = "loaded"
        self._learn(result)
        self.commands.run(result.get(proto.RESULT_COMMANDS, ()), [])

    def _close_proc(self) -> None:
        if self._proc is not None:
            self._proc.close()
            self._proc = None

    def close(self, reason: str) -> None:
        """Unload: remove this script's jobs and metric series, flush its wrappers, close its isolate."""
        if self.state == "closed":
            return
        self.services.scheduler.remove_owner(self.identity)
        self.services.prometheus.forget(self.identity)
        self.commands.close(reason)
        self._close_proc()
        self.state = "closed"

    def tick(self, now_ns: int, seq: int | None = None) -> None:
        """Time passed on the runtime clock: the script's wrappers rotate their repositories (with
        `seq`: a tick deferred to after the items before it, seeing the store as of then)."""
        self.commands.tick(now_ns, seq)

    def fault(self, text: str, memory: bool = False) -> None:
        """Report a script over its limits (or whose V8 died) and stop it."""
        self.stop_reason = f"memory: {text}" if memory else text
        line = f"script stopped: memory — {text}" if memory else f"{text}; script stopped"
        self.services.console.error(self.title, line, "limit")
        self.close("stopped")
        self.state = "stopped"

    # ---- calls -------------------------------------------------------------------------------

    def _update(self) -> dict[str, Any]:
        s = self.services
        u: dict[str, Any] = {"now": s.clock.now_ns() // 1_000_000}
        if self._jobs_version != s.scheduler.version:
            self._jobs_version = s.scheduler.version
            u["jobs"] = s.scheduler.tags()
        if self._running_sent is not s.scheduler.running:
            self._running_sent = s.scheduler.running
            u["running"] = s.scheduler.running
        if self._drop:
            u["drop"] = self._drop
            self._drop = []
        return u

    def _update_with_names(self) -> dict[str, Any]:
        u = self._update()
        names = self._names()
        if names != self._names_sent:
            self._names_sent = names
            u["names"] = names
        return u

    def _send(self, code: bytes) -> None:
        assert self._proc is not None
        try:
            self._proc.send_eval(code, self.services.limits.call_timeout_s)
        except IsolateGone as exc:
            raise _gone(exc) from exc

    def _receive(self) -> dict[str, Any]:
        assert self._proc is not None
        limits = self.services.limits
        try:
            answer = self._proc.receive(limits.call_timeout_s + 5.0)
        except IsolateGone as exc:
            raise _gone(exc) from exc
        if answer.status == proto.TIMED_OUT:
            raise ScriptFault(f"a call exceeded the time budget of {limits.call_timeout_s:g} s (terminated)")
        if answer.status == proto.OUT_OF_MEMORY:
            raise ScriptFault(f"V8 heap limit of {limits.heap_bytes // MIB} MiB exceeded")
        if not answer.ok:
            raise ScriptFault(
                f"runtime error: {answer.text.strip().splitlines()[0] if answer.text.strip() else '?'}"
            )
        return orjson.loads(answer.data) if answer.data else {}

    def _call(self, code: bytes | str) -> dict[str, Any]:
        self._send(code.encode("utf-8") if isinstance(code, str) else code)
        return self._receive()

    def _learn(self, result: dict[str, Any]) -> None:
        hooks = result.get(proto.RESULT_HOOKS)
        if hooks is not None:
            self.hooks = hooks
        for key, opts in (result.get(proto.RESULT_OPTIONS) or {}).items():
            self.options[int(key)] = opts
        for qid in result.get(proto.RESULT_USED) or ():
            self.last_used[qid] = self.items_seen
        self.next_timer_ms = result.get(proto.RESULT_TIMER)

    def _resolve(self, signal: dict[str, Any], batch: Batch | None, with_packets: bool) -> dict[str, Any]:
        """Answer a signal: make a helper's call that answers at once, or compile the query and
        evaluate what the script asked; returns the update for the isolate."""
        kind = signal.get(proto.SIGNAL_KIND)
        if kind == proto.SIGNAL_CALL:
            return {"responses": [[signal["key"], self.commands.call_now(signal["helper"], signal["args"])]]}
        query = signal.get("q", "")
        compiled, error = self.services.kfl.compile(query)
        if compiled is None:
            self.invalid[query] = error or "invalid query"
            self.queries.pop(query, None)
            return {"invalid": {query: self.invalid[query]}}
        qid = self._query_id(query)
        self.active.add(qid)
        self.last_used[qid] = self.items_seen
        update: dict[str, Any] = {"known": {query: qid}}
        if kind == proto.SIGNAL_KFL_OBJECT:
            try:
                obj = orjson.loads(signal.get("j") or "null")
                answer = bool(compiled.match(obj)) if isinstance(obj, dict) else False
            except Exception:
                answer = False
            update["obj"] = [[query + "\0" + (signal.get("j") or ""), answer]]
        elif batch is not None:
            update["ans"] = {str(qid): batch.bits(with_packets, query, compiled.match)}
        return update

    def _drive(
        self,
        result: dict[str, Any],
        objs: list[Any],
        batch: Batch | None,
        with_packets: bool,
        rerun: str | None = None,
    ) -> dict[str, Any]:
        """Execute results, answer signals and yields until the call is complete."""
        for _ in range(MAX_SIGNALS_PER_CALL):
            self._learn(result)
            self.commands.run(result.get(proto.RESULT_COMMANDS, ()), objs,
                              batch.cuts_of(with_packets) if batch is not None else None)
            signal = result.get(proto.RESULT_SIGNAL)
            kind = None if signal is None else signal.get(proto.SIGNAL_KIND)
            if kind in proto.REFILL_SIGNALS and batch is not None:
                # the script read an item of a lean batch, a left-out body or a cut-away field:
                # send the batch's text again with what was missing, and from now on always
                self.lean = False
                if kind == proto.SIGNAL_BODIES:
                    self.bodies = True
                if kind == proto.SIGNAL_FIELDS:
                    self.fields = None
                assert self._proc is not None
                try:
                    self._proc.send_call(
                        proto.JS_REFILL,
                        [
                            batch.body(with_packets, self.bodies, self.fields),
                            b"1" if self.bodies else b"0",
                            b"*" if self.fields is None else b"",
                            str(int(signal[proto.SIGNAL_AT])).encode(),
                        ],
                        self.services.limits.call_timeout_s,
                    )
                except IsolateGone as exc:
                    raise _gone(exc) from exc
                result = self._receive()
                continue
            if signal is not None:
                update = self._resolve(signal, batch, with_packets)
                if rerun is not None:
                    result = self._call(rerun.replace("__UPDATE__", json.dumps(update)))
                else:
                    result = self._call(proto.js_resume(json.dumps(update), signal[proto.SIGNAL_AT]))
                continue
            if proto.RESULT_YIELD in result:
                result = self._call(proto.js_yield_resume(result[proto.RESULT_YIELD]))
                continue
            return result
        raise ScriptFault("a call kept raising signals")

    def prepare_batch(self, batch: Batch) -> None:
        """Make (and cache in `batch`) the text this script will be sent, ahead of `send_batch`."""
        with_packets = proto.HOOK_PACKET in self.hooks
        if self.wants_items and len(batch) and not (self.lean and not with_packets):
            batch.body(with_packets, self.bodies, self.fields)

    def send_batch(self, batch: Batch) -> bool:
        """Start delivering `batch`; `finish_batch()` completes it. False when the script takes none."""
        if not self.wants_items:
            return False
        with_packets = proto.HOOK_PACKET in self.hooks
        kinds, objs = batch.skeleton(with_packets)
        times, ticks = batch.clock_ms(with_packets, self)
        if not kinds and not ticks:
            return False
        lean = self.lean and not with_packets
        header: dict[str, Any] = {proto.BATCH_KINDS: kinds, proto.BATCH_UPDATE: self._update(),
                                  proto.BATCH_TIMES: times, proto.BATCH_TICKS: ticks}
        if lean:
            header[proto.BATCH_LEAN] = True
        if not self.bodies:
            header[proto.BATCH_NO_BODIES] = True
        if self.fields is not None:
            header[proto.BATCH_PROJECTION] = sorted(self.fields)
        compiled = self.services.kfl
        answers = {}
        for query, qid in self.queries.items():
            if qid in self.active:
                answers[str(qid)] = batch.bits(
                    with_packets, query, lambda item, q=query: compiled.match(q, item)
                )
        if answers:
            header[proto.BATCH_ANSWERS] = answers
        body = b"" if lean else batch.body(with_packets, self.bodies, self.fields)
        assert self._proc is not None
        try:
            self._proc.send_call(
                proto.JS_BATCH, [orjson.dumps(header), body], self.services.limits.call_timeout_s
            )
        except IsolateGone as exc:
            self.fault(str(exc), isinstance(exc, MemoryExceeded))
            return False
        self._inflight = (batch, objs)
        return True

    def answered(self) -> bool:
        """`finish_batch` would find the batch's first answer waiting (or no batch is in flight)."""
        return self._inflight is None or self._proc is None or self._proc.answered()

    def finish_batch(self) -> None:
        if self._inflight is None:
            return
        batch, objs = self._inflight
        self._inflight = None
        with_packets = proto.HOOK_PACKET in self.hooks
        self.commands.ticks.extend((k, *tick) for k, tick in enumerate(batch.ticks_of(with_packets)))
        try:
            self._drive(self._receive(), objs, batch, with_packets)
        except ScriptFault as exc:
            self.fault(str(exc), exc.memory)
            return
        finally:
            self.commands.run_ticks()
        self.items_seen += len(objs)
        self._drop_unused()

    def _drop_unused(self) -> None:
        for query, qid in self.queries.items():
            if qid in self.active and self.items_seen - self.last_used.get(qid, 0) > DROP_AFTER_ITEMS:
                self.active.discard(qid)
                self._drop.append(query)

    def _simple_call(self, template: str) -> dict[str, Any] | None:
        """A call outside batches (jobs, hooks, timers); signals re-run the whole call."""
        if not self.loaded:
            return None
        try:
            code = template.replace("__UPDATE__", json.dumps(self._update_with_names()))
            return self._drive(self._call(code), [], None, False, rerun=template)
        except ScriptFault as exc:
            self.fault(str(exc), exc.memory)
            return None

    def run_job(self, tag: str) -> tuple[bool, str | None]:
        """Run job `tag` of this script: (ran, error text or None)."""
        result = self._simple_call(f"__kflpcap.job({js_string(tag)}, __UPDATE__)")
        if result is None:
            return False, "script stopped"
        return True, result.get(proto.RESULT_JOB_ERROR)

    def call_hook(self, name: str, args: list[Any]) -> None:
        if not self.loaded:
            return
        letter = proto.HOOK_LETTER.get(name)
        if letter is not None and letter not in self.hooks:
            return
        self._simple_call(f"__kflpcap.hook({js_string(name)}, {json.dumps(args)}, __UPDATE__)")

    def run_timers(self, now_ms: int) -> None:
        if self.next_timer_ms is None or self.next_timer_ms > now_ms:
            return
        self._simple_call(f"__kflpcap.timers({int(now_ms)}, __UPDATE__)")

    def refresh(self) -> None:
        """Send fresh shared state (jobs list, clock) without running anything."""
        self._simple_call("__kflpcap.update(__UPDATE__)")
