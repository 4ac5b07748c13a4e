"""The loaded scripts and hot reload: folders (non-recursive `*.js`) and single files, watched.

Create or modify → the file is loaded into a fresh isolate; when that fails the error names file and
line and the previous version keeps running. Delete or rename away → unloaded (jobs removed,
repositories flushed). Bursts of editor events are debounced. A script's identity is its title: a
file whose title equals a loaded script's title (from another file) replaces that script.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from runtime.helpers.jobs import Job
from runtime.helpers.services import Services
from runtime.v8.host import LoadError, ScriptHost
from runtime.v8.source import ScriptSource

DEBOUNCE_S = 0.15


class ScriptsError(ValueError):
    """A --scripts argument that is neither a folder nor a .js file."""


class Scripts:
    """Every loaded script, by file. Call `poll()` often: it applies file changes."""

    def __init__(self, services: Services, specs: Iterable[str | Path], watch: bool = True) -> None:
        self.services = services
        self.dirs: list[Path] = []
        self.files: list[Path] = []
        for spec in specs:
            path = Path(spec).resolve()
            if path.is_dir():
                self.dirs.append(path)
            elif path.suffix == ".js" and (path.is_file() or path.parent.is_dir()):
                self.files.append(path)
            else:
                raise ScriptsError(f"--scripts {spec}: not a folder or a .js file")
        self.hosts: dict[Path, ScriptHost] = {}
        # title -> {"file", "status": loaded|failed|unloaded|stopped, "error"} (for stats and reports)
        self.status: dict[str, dict[str, str]] = {}
        self.on_change: list[Callable[[], None]] = []
        self._sid = 0
        self._events: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._dirty: dict[Path, float] = {}
        self._observer = None
        self._watch = watch

    # ---- what is watched ---------------------------------------------------------------------

    def _wanted(self, path: Path) -> bool:
        if path in self.files:
            return True
        return path.suffix == ".js" and path.parent in self.dirs

    def _present(self) -> list[Path]:
        found = [f for f in self.files if f.is_file()]
        for d in self.dirs:
            found.extend(sorted(p for p in d.iterdir() if p.suffix == ".js" and p.is_file()))
        return list(dict.fromkeys(found))

    def start(self) -> None:
        """Load every script present, then watch for changes."""
        for path in self._present():
            self._load(path)
        if self._watch:
            self._start_watching()

    def _start_watching(self) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        events = self._events

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                for attr in ("src_path", "dest_path"):
                    p = getattr(event, attr, "")
                    if p:
                        events.put(Path(p if isinstance(p, str) else p.decode()))

        observer = Observer()
        for folder in dict.fromkeys(self.dirs + [f.parent for f in self.files]):
            observer.schedule(Handler(), str(folder), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    # ---- changes -----------------------------------------------------------------------------

    def poll(self, now: float | None = None) -> bool:
        """Apply file changes that have been quiet for the debounce time; True when any applied."""
        now = time.monotonic() if now is None else now
        while True:
            try:
                path = self._events.get_nowait()
            except queue.Empty:
                break
            path = Path(path).resolve()
            if self._wanted(path) or path in self.hosts:
                self._dirty[path] = now
        ready = [p for p, t in self._dirty.items() if now - t >= DEBOUNCE_S]
        for path in ready:
            del self._dirty[path]
            self._apply(path)
        if ready:
            for fn in self.on_change:
                fn()
        return bool(ready)

    def pending(self) -> bool:
        return bool(self._dirty) or not self._events.empty()

    def _apply(self, path: Path) -> None:
        host = self.hosts.get(path)
        if not path.is_file() or not self._wanted(path):
            if host is not None:
                self._unload(path, "unload")
            return
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        if host is not None and host.source.text == text and host.loaded:
            return
        self._load(path, text)

    def _load(self, path: Path, text: str | None = None) -> ScriptHost | None:
        console = self.services.console
        try:
            source = ScriptSource.read(path) if text is None else ScriptSource.parse(path, text)
        except OSError as exc:
            console.error(path.name, f"cannot read {path}: {exc.strerror}", "load")
            return None
        self._sid += 1
        host = ScriptHost(source, self.services, self._sid)
        previous = self.hosts.get(path)
        try:
            host.load()
        except LoadError as exc:
            keeps = (
                "the previous version keeps running"
                if previous is not None and previous.loaded
                else "not loaded"
            )
            console.error(source.title, f"{exc}; {keeps}", "load")
            if previous is None or not previous.loaded:
                self.status[source.title] = {"file": str(path), "status": "failed", "error": str(exc)}
            return None
        same_title = [p for p, h in self.hosts.items() if p != path and h.title == host.title]
        for other in same_title:
            console.log(host.title, f"replaces the script of the same title from {other.name}")
            self._unload(other, "reload")
        if previous is not None:
            previous.close("reload")
        self.hosts[path] = host
        self.status[host.title] = {"file": str(path), "status": "loaded", "error": ""}
        console.log(host.title, f"loaded {path.name}" + (" (reloaded)" if previous is not None else ""))
        return host

    def _unload(self, path: Path, reason: str) -> None:
        host = self.hosts.pop(path, None)
        if host is not None:
            host.close(reason)
            self.status[host.title] = {"file": str(path), "status": "unloaded", "error": ""}
            self.services.console.log(
                host.title, f"unloaded ({path.name} {'removed' if reason == 'unload' else 'replaced'})"
            )

    # ---- access ------------------------------------------------------------------------------

    def statuses(self) -> dict[str, dict[str, str]]:
        """Per title: file, status (a stopped script counts as failed) and the last error."""
        for host in self.hosts.values():
            if host.state == "stopped":
                self.status[host.title] = {
                    "file": str(host.source.path),
                    "status": "failed",
                    "error": host.stop_reason,
                }
        return self.status

    def loaded(self) -> list[ScriptHost]:
        return [h for h in self.hosts.values() if h.loaded]

    def owner_of(self, job: Job) -> ScriptHost | None:
        """The loaded script that scheduled `job`."""
        return next((h for h in self.hosts.values() if h.identity is job.owner), None)

    def by_title(self, title: str) -> ScriptHost | None:
        return next((h for h in self.hosts.values() if h.title == title), None)

    def close(self, reason: str = "shutdown") -> None:
        """Stop watching and unload every script (flushing its repositories)."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2.0)
            self._observer = None
        for path in list(self.hosts):
            host = self.hosts.pop(path)
            host.close(reason)
