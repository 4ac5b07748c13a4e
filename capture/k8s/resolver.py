"""The resolver: list + watch of pods, services, endpointslices and nodes into a `Cluster`.

One thread per kind runs an informer loop: list (in pages) to get the objects and a
resourceVersion, then watch from that resourceVersion (with bookmarks), applying every event. A
watch that ends or breaks is resumed from the last resourceVersion seen; `410 Gone` (the version is
too old) starts over with a fresh list, which also deletes what vanished meanwhile. While the API
server cannot be reached the resolver is *stale*: lookups answer with what was last known, one
console line says so (and one when it is back), and `counters` count the failures.

Client: lightkube's configuration (in-cluster service account, kubeconfig files and contexts, exec
and token-file auth, TLS) and its httpx client; the informer loop is ours, see docs/kubernetes.md.
Nothing here runs on the packet path: capture only reads the `History` the threads write.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from capture.k8s.cluster import KINDS, Cluster
from capture.k8s.history import History

PATHS = {
    "pods": "/api/v1/pods",
    "services": "/api/v1/services",
    "endpointslices": "/apis/discovery.k8s.io/v1/endpointslices",
    "nodes": "/api/v1/nodes",
}
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
PAGE = 500
WATCH_S = 300  # the server ends each watch after this (timeoutSeconds); we resume it
RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)
KEEP_NS = 24 * 3600 * 1_000_000_000  # intervals that ended longer ago are forgotten
PRUNE_EVERY_NS = 600 * 1_000_000_000


class ConfigError(ValueError):
    """No usable Kubernetes configuration (message says why)."""


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and Path(SERVICE_ACCOUNT, "token").is_file()


def load_config(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """lightkube `SingleConfig`: `kubeconfig` (else in-cluster inside a pod, else $KUBECONFIG's first
    file, else ~/.kube/config) and its `context` (default: the current context)."""
    from lightkube import ConfigError as LightkubeConfigError
    from lightkube import KubeConfig

    try:
        if kubeconfig is None and context is None and in_cluster():
            return KubeConfig.from_service_account().get()
        if kubeconfig is None:
            paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
            kubeconfig = next((p for p in paths if Path(p).is_file()), None) or str(
                Path("~/.kube/config").expanduser())
        if not Path(kubeconfig).is_file():
            raise ConfigError(f"{kubeconfig}: no such kubeconfig file")
        return KubeConfig.from_file(kubeconfig).get(context)
    except (LightkubeConfigError, KeyError, OSError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc


class _Gone(Exception):
    """410 Gone: the resourceVersion is too old; list again."""


class Resolver:
    """Keeps `history` (and `cluster`) up to date from the API server described by `config`."""

    def __init__(self, config: Any, history: History | None = None,
                 log: Callable[[str], None] = lambda _text: None, kinds: tuple[str, ...] = KINDS) -> None:
        self.config = config
        self.cluster = Cluster(history)
        self.history = self.cluster.history
        self.log = log
        self.kinds = kinds
        self.counters = {"stale": 1, "events": 0, "lists": 0, "relists_gone": 0, "watch_resumes": 0,
                         "errors": 0}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._synced: set[str] = set()
        self._failing: set[str] = set()
        self._reported = False  # the unreachable line was printed, the next recovery says so
        self.versions: dict[str, str | None] = {}  # kind -> the resourceVersion to watch from
        self._synced_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._http: Any = None
        self._streams: set[Any] = set()  # the watches being read
        self._pruned = time.time_ns()
        self.stale = True  # until every kind has been listed
        self.on_change: list[Callable[[], None]] = []

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Resolver:
        import httpx2
        from lightkube.config.client_adapter import Client, ConnectionParams

        params = ConnectionParams(timeout=httpx2.Timeout(10.0, read=WATCH_S + 30.0), trust_env=False)
        self._http = Client(self.config, params)
        for kind in self.kinds:
            t = threading.Thread(target=self._informer, args=(kind,), name=f"kflpcap-k8s-{kind}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def wait_synced(self, timeout: float) -> bool:
        """True once every kind has been listed (within `timeout` seconds)."""
        return self._synced_event.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            streams = list(self._streams)
        for resp in streams:  # a watch waiting for the next event: wake its read up
            _shutdown(resp)
        if self._http is not None:
            self._http.close()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()

    # ---- the informer loop -------------------------------------------------------------------

    def _informer(self, kind: str) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if self.versions.get(kind) is None:
                    self.versions[kind] = self._list(kind)
                self._watch(kind)
                failures = 0
                self.counters["watch_resumes"] += 1
            except _Gone:
                self.counters["relists_gone"] += 1
                self.versions[kind] = None
            except Exception as exc:  # any failure talking to the API server: retry, stale meanwhile
                if self._stop.is_set():
                    return
                self.counters["errors"] += 1
                self._set_failing(kind, exc)
                self._stop.wait(RETRY_S[min(failures, len(RETRY_S) - 1)])
                failures += 1

    def _list(self, kind: str) -> str:
        objects: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": PAGE}
        while True:
            resp = self._http.get(PATHS[kind], params=params)
            _check(resp)
            body = resp.json()
            objects.extend(body.get("items") or [])
            meta = body.get("metadata") or {}
            if not meta.get("continue"):
                break
            params = {"limit": PAGE, "continue": meta["continue"]}
        version = meta.get("resourceVersion") or ""
        with self._lock:
            self.cluster.replace(kind, objects, time.time_ns())
        self.counters["lists"] += 1
        self._set_ok(kind, listed=True)
        self._changed()
        return version

    def _watch(self, kind: str) -> None:
        """Watch from the last resourceVersion, which every event and bookmark moves on (so that a
        watch that breaks resumes after the last event it delivered)."""
        params = {"watch": "1", "resourceVersion": self.versions[kind], "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(WATCH_S)}
        with self._http.stream("GET", PATHS[kind], params=params) as resp, self._open(resp):
            if resp.status_code == 410:
                raise _Gone
            _check(resp)
            self._set_ok(kind)
            for line in resp.iter_lines():
                if self._stop.is_set():
                    break
                if not line.strip():
                    continue
                event = json.loads(line)
                kind_of_event = event.get("type")
                obj = event.get("object") or {}
                if kind_of_event == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone
                    raise RuntimeError(f"watch error: {obj.get('message') or obj}")
                version = (obj.get("metadata") or {}).get("resourceVersion")
                if kind_of_event != "BOOKMARK":
                    with self._lock:
                        self.cluster.apply(kind, kind_of_event, obj, time.time_ns())
                    self.counters["events"] += 1
                    self._changed()
                if version:
                    self.versions[kind] = version

    @contextlib.contextmanager
    def _open(self, resp: Any) -> Iterator[None]:
        with self._lock:
            self._streams.add(resp)
        try:
            if self._stop.is_set():
                _shutdown(resp)
            yield
        finally:
            with self._lock:
                self._streams.discard(resp)

    # ---- state -------------------------------------------------------------------------------

    def _changed(self) -> None:
        now = time.time_ns()
        if now - self._pruned > PRUNE_EVERY_NS:
            self._pruned = now
            self.history.prune(now - KEEP_NS)
        for fn in self.on_change:
            fn()

    def _set_ok(self, kind: str, listed: bool = False) -> None:
        with self._lock:
            if listed:
                self._synced.add(kind)
            was_stale = self.stale
            self._failing.discard(kind)
            self.stale = bool(self._failing) or len(self._synced) < len(self.kinds)
            self.counters["stale"] = int(self.stale)
            back = was_stale and not self.stale and self._reported
            if back:
                self._reported = False
            if len(self._synced) == len(self.kinds):
                self.cluster.syncing = False
                self._synced_event.set()
        if back:
            self.log(f"Kubernetes API server {self.config.cluster.server} reachable: names are current")

    def _set_failing(self, kind: str, exc: Exception) -> None:
        with self._lock:
            first = not self._reported
            self._reported = True
            self._failing.add(kind)
            self.stale = True
            self.counters["stale"] = 1
        if first:
            self.log(f"Kubernetes API server {self.config.cluster.server} unreachable ({_reason(exc)}): "
                     "names are as last known (stale) until it is back")


def _check(resp: Any) -> None:
    if resp.status_code == 410:
        raise _Gone
    if resp.status_code >= 400:
        resp.read()
        raise RuntimeError(f"HTTP {resp.status_code} {resp.reason_phrase}: {resp.text[:200]}")


def _shutdown(resp: Any) -> None:
    stream = resp.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:160]
