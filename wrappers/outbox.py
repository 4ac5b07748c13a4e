"""The durable outbox: every artifact is spooled (fsync'd) in the data folder, then uploaded.

Layout: `<data_dir>/spool/<id>/` holds a bundle — the artifact files plus `bundle.json` (where each
file goes: store config, key, SHA-256, size). A bundle is staged in `spool/.tmp-<id>/` and committed
by renaming that folder (atomic), so after a crash a bundle is either complete or absent; it is
deleted by renaming it to `.del-<id>` first. Staging and deletion leftovers are removed at the next
start. A background thread uploads committed bundles oldest first, files in order (a manifest after
its PCAP), and deletes a bundle only after the store confirmed every file. Transient failures
(network, throttling) retry with exponential backoff (0.5 s doubling to 60 s) for as long as the
process lives; a permanent `StoreError` — the store's configuration (no bucket, credentials refused,
no Object Lock, an invalid key or prefix) or a key that already holds different bytes — cannot be
cured by retrying: the bundle moves to `spool/failed/<id>/` with the reason in `error.txt`, and counts
as failed. A new `Outbox` on the same folder drains what an earlier process left.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from wrappers.stores import Store, StoreError, sha256_file, store_from_config

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 60.0
_ids = itertools.count()


class SpoolError(Exception):
    """The spool could not take an artifact (full disk, unwritable folder); nothing was half-written."""


class SpoolFullError(SpoolError):
    pass


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def spool_error(exc: OSError, what: str) -> SpoolError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SpoolFullError(f"spool disk full while {what}: {exc.strerror}; the data stays in memory")
    return SpoolError(f"spool: {what}: {exc}")


def has_spooled(data_dir: Path | str) -> bool:
    """Whether an earlier process left committed bundles in the spool of `data_dir` (to upload)."""
    spool = Path(data_dir) / "spool"
    try:
        children = list(spool.iterdir())
    except OSError:
        return False
    leftovers = (".tmp-", ".del-")
    return any(c.is_dir() and c.name != "failed" and not c.name.startswith(leftovers) for c in children)


class Bundle:
    """Files being staged for one atomic commit. Write each with `path(name)`, then `add(key, name)`."""

    def __init__(self, bundle_id: str, directory: Path) -> None:
        self.id = bundle_id
        self.dir = directory
        self.files: list[dict[str, Any]] = []

    def path(self, name: str) -> Path:
        return self.dir / name

    def add(self, key: str, name: str, sha256: str | None = None) -> None:
        self.files.append({"key": key, "name": name, "sha256": sha256})


@dataclass
class _Entry:
    id: str
    dir: Path
    meta: dict[str, Any]
    attempts: int = 0
    due: float = 0.0
    last_error: str = ""
    on_done: Callable[[list[str]], None] | None = None


class Outbox:
    """Process-wide spool + background uploader (docs/architecture.md)."""

    def __init__(self, data_dir: Path | str, log: Callable[[str], None] | None = None,
                 on_change: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.dir = Path(data_dir) / "spool"
        self.failed_dir = self.dir / "failed"
        self.log = log or (lambda text: print(f"spool] {text}", file=sys.stderr, flush=True))
        self.on_change = on_change  # called with `stats()` whenever the figures change
        self.failed_dir.mkdir(parents=True, exist_ok=True)
        self._lockfile = (self.dir / ".lock").open("w")
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lockfile.close()
            raise SpoolError(f"spool {self.dir} is in use by another kflpcap process") from None
        self._cond = threading.Condition()
        self._entries: dict[str, _Entry] = {}
        self._stores: dict[str, Store] = {}
        self._stopping = False
        self.uploaded = 0
        self.retries = 0
        self.failed: list[dict[str, str]] = []  # files of bundles set aside (permanent store errors)
        self.recovered: list[dict[str, Any]] = []  # bundle.json of what an earlier process left
        self._recover()
        self._thread = threading.Thread(target=self._run, name="kflpcap-outbox", daemon=True)
        self._thread.start()
        self._changed()

    # ---- staging and committing -------------------------------------------------------------------

    def _recover(self) -> None:
        for child in sorted(self.dir.iterdir()):
            if child.name.startswith((".tmp-", ".del-")):
                shutil.rmtree(child, ignore_errors=True)
            elif child.is_dir() and child != self.failed_dir:
                try:
                    meta = json.loads((child / "bundle.json").read_text())
                except (OSError, ValueError) as exc:
                    self.log(f"unreadable bundle {child} ({exc}); moved to {self.failed_dir}")
                    child.rename(self.failed_dir / child.name)
                    continue
                self._entries[child.name] = _Entry(child.name, child, meta)
                self.recovered.append(meta)
        if self._entries:
            self.log(f"{len(self._entries)} spooled bundle(s) from an earlier run: uploading them")

    @contextlib.contextmanager
    def stage(self) -> Iterator[Bundle]:
        """A staging folder; commit inside the block. On any error it is removed (nothing half-kept)."""
        bundle_id = f"{time.time_ns():020d}-{os.getpid()}-{next(_ids):06d}"
        tmp = self.dir / f".tmp-{bundle_id}"
        try:
            tmp.mkdir()
        except OSError as exc:
            raise spool_error(exc, "creating a bundle") from exc
        bundle = Bundle(bundle_id, tmp)
        try:
            yield bundle
        except OSError as exc:
            raise spool_error(exc, "writing an artifact") from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def commit(
        self,
        bundle: Bundle,
        store_config: dict[str, Any],
        meta: dict[str, Any] | None = None,
        before_upload: Callable[[], None] | None = None,
        on_done: Callable[[list[str]], None] | None = None,
    ) -> str:
        """fsync the bundle's files, commit it atomically, run `before_upload`, queue it for upload.

        `meta` is kept in `bundle.json` (see `spooled()`); `on_done(urls)` runs on the upload thread
        once the store confirmed every file (not after a restart).
        """
        bundle_id = bundle.id
        final = self.dir / bundle_id
        try:
            for f in bundle.files:
                path = bundle.path(f["name"])
                _fsync_path(path)
                f["size"] = path.stat().st_size
                if not f["sha256"]:
                    f["sha256"] = sha256_file(path)
            doc = {"id": bundle_id, "store": store_config, "files": bundle.files, "meta": meta or {}}
            with (bundle.dir / "bundle.json").open("w") as out:
                json.dump(doc, out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(bundle.dir / "bundle.json", 0o600)
            _fsync_path(bundle.dir, directory=True)
            bundle.dir.rename(final)
            _fsync_path(self.dir, directory=True)
        except OSError as exc:
            raise spool_error(exc, "committing an artifact") from exc
        if before_upload:
            before_upload()
        with self._cond:
            self._entries[bundle_id] = _Entry(bundle_id, final, doc, on_done=on_done)
            self._cond.notify_all()
        self._changed()
        return bundle_id

    def submit(self, store_config: dict[str, Any], key: str, source: Path | str | BinaryIO) -> str:
        """Copy one file (a path, or a file open for reading) into the spool and queue it for `key`
        in the store (vendor.s3.put and the like)."""
        if isinstance(source, str | Path):
            with open(source, "rb") as fh:
                return self._submit(store_config, key, fh, Path(source).name)
        return self._submit(store_config, key, source, Path(key).name)

    def _submit(self, store_config: dict[str, Any], key: str, source: BinaryIO, name: str) -> str:
        with self.stage() as bundle:
            name = name or "artifact"
            with open(bundle.path(name), "wb") as out:
                shutil.copyfileobj(source, out)
            bundle.add(key, name)
            return self.commit(bundle, store_config)

    # ---- state --------------------------------------------------------------------------------------

    def pending(self) -> int:
        """Bundles committed and not yet confirmed by their store."""
        with self._cond:
            return len(self._entries)

    def spooled(self) -> list[dict[str, Any]]:
        """`bundle.json` of every bundle still waiting, oldest first (meta included)."""
        with self._cond:
            return [self._entries[k].meta for k in sorted(self._entries)]

    def stats(self) -> dict[str, Any]:
        """The run summary's `uploads` shape: pending, spool_bytes, done, retries, failed.

        `failed` lists what could not be delivered: bundles set aside on a permanent error and, for
        bundles still waiting after a failed attempt, their last error."""
        with self._cond:
            entries = list(self._entries.values())
            failed = list(self.failed)
        size = 0
        for e in entries:
            size += sum(int(f.get("size", 0)) for f in e.meta["files"])
            if e.last_error:
                failed += [{"key": f["key"], "error": e.last_error} for f in e.meta["files"]]
        return {"pending": len(entries), "spool_bytes": size, "done": self.uploaded,
                "retries": self.retries, "failed": failed}

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is pending; True when that happened within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._entries:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
        return True

    def close(self, timeout_s: float = 30.0) -> int:
        """Wait up to `timeout_s` for uploads, stop the uploader; returns the bundles left spooled."""
        self.wait_idle(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        left = self.pending()
        if left:
            self.log(f"{left} artifact bundle(s) not uploaded yet, left in {self.dir}; "
                     "they are uploaded at the next start")
        with contextlib.suppress(OSError):
            fcntl.flock(self._lockfile, fcntl.LOCK_UN)
        self._lockfile.close()
        return left

    # ---- upload thread ------------------------------------------------------------------------------

    def _next(self) -> _Entry | None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                due = [e for e in self._entries.values() if e.due <= now]
                if due:
                    return min(due, key=lambda e: e.id)
                wait = min((e.due for e in self._entries.values()), default=now + 3600) - now
                self._cond.wait(max(0.01, wait))
            return None

    def _store(self, config: dict[str, Any]) -> Store:
        ident = json.dumps(config, sort_keys=True)
        if ident not in self._stores:
            self._stores[ident] = store_from_config(config)
        return self._stores[ident]

    def _run(self) -> None:
        while (entry := self._next()) is not None:
            try:
                urls = self._upload(entry)
            except Exception as exc:
                if isinstance(exc, StoreError) and exc.permanent:
                    self._set_aside(entry, exc)
                else:
                    self._retry_later(entry, exc)
            else:
                if entry.last_error:
                    self.log(f"upload of bundle {entry.id} succeeded after {entry.attempts} retries")
                gone = self.dir / f".del-{entry.id}"
                entry.dir.rename(gone)  # atomic: a crash never leaves half a bundle behind
                _fsync_path(self.dir, directory=True)
                shutil.rmtree(gone)
                self._forget(entry, ok=True)
                if entry.on_done:
                    try:
                        entry.on_done(urls)
                    except Exception as exc:
                        self.log(f"after upload: {type(exc).__name__}: {exc}")

    def _set_aside(self, entry: _Entry, exc: StoreError) -> None:
        """A permanent error: retrying cannot help, a person must act; keep the files and the reason."""
        text = str(exc)
        target = self.failed_dir / entry.id
        try:
            (entry.dir / "error.txt").write_text(f"{type(exc).__name__}: {text}\n")
            entry.dir.rename(target)
        except OSError as err:
            self.log(f"ERROR {text}; could not move bundle {entry.id} to {self.failed_dir}: {err}")
        else:
            self.log(f"ERROR {text}; not retried, bundle moved to {target}")
        with self._cond:
            self.failed += [{"key": f["key"], "error": text} for f in entry.meta["files"]]
        self._forget(entry, ok=False)

    def _retry_later(self, entry: _Entry, exc: Exception) -> None:
        entry.attempts += 1
        self.retries += 1
        delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (entry.attempts - 1))
        entry.due = time.monotonic() + delay
        text = str(exc)
        if text != entry.last_error:
            self.log(f"upload failed, retrying with backoff (kept in the spool): {text}")
            entry.last_error = text
        self._changed()

    def _forget(self, entry: _Entry, ok: bool) -> None:
        with self._cond:
            self._entries.pop(entry.id, None)
            self.uploaded += ok
            self._cond.notify_all()
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.stats())

    def _upload(self, entry: _Entry) -> list[str]:
        store = self._store(entry.meta["store"])
        urls = []
        for f in entry.meta["files"]:
            path = entry.dir / f["name"]
            url = store.put(f["key"], path, f["sha256"])
            urls.append(url)
        return urls

