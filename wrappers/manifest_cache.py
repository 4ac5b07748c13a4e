"""A local cache of manifests, content-addressed by their SHA-256, so a second search is fast.

Layout under the cache folder (default `$KFLPCAP_CACHE`, else `$XDG_CACHE_HOME/kflpcap`, else
`~/.cache/kflpcap`): `manifests/<sha[:2]>/<sha>.json` holds the bytes of each manifest ever read,
and `index/<sha256 of the store's identity>.json` maps each key of a store to the tag it was listed
with (S3 ETag; inode, size and mtime of a file) and the SHA-256 of its bytes. A key listed with
another tag is fetched again; cached bytes are re-hashed when read, so a damaged cache entry is
fetched again instead of trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from wrappers.stores import ObjectInfo


def default_cache_dir() -> Path:
    if os.environ.get("KFLPCAP_CACHE"):
        return Path(os.environ["KFLPCAP_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kflpcap"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class StoreIndex:
    """key → (listing tag, SHA-256) for one store; `save()` writes it back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, list[str]] = {}
        self.changed = False
        try:
            self.entries = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    def lookup(self, info: ObjectInfo) -> str | None:
        entry = self.entries.get(info.key)
        return entry[1] if entry and entry[0] == info.tag else None

    def record(self, info: ObjectInfo, sha256: str) -> None:
        self.entries[info.key] = [info.tag, sha256]
        self.changed = True

    def save(self) -> None:
        if self.changed:
            _write_atomic(self.path, json.dumps(self.entries, separators=(",", ":")).encode())
            self.changed = False


class ManifestCache:
    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root else default_cache_dir()

    def _object(self, sha256: str) -> Path:
        return self.root / "manifests" / sha256[:2] / f"{sha256}.json"

    def index(self, identity: str) -> StoreIndex:
        name = hashlib.sha256(identity.encode()).hexdigest()[:32]
        return StoreIndex(self.root / "index" / f"{name}.json")

    def has(self, sha256: str) -> bool:
        return self._object(sha256).is_file()

    def get(self, sha256: str) -> bytes | None:
        """The cached bytes whose SHA-256 is `sha256`, or None (absent, or not those bytes any more)."""
        try:
            body = self._object(sha256).read_bytes()
        except OSError:
            return None
        return body if hashlib.sha256(body).hexdigest() == sha256 else None

    def put(self, body: bytes) -> str:
        sha = hashlib.sha256(body).hexdigest()
        path = self._object(sha)
        if not path.exists():
            _write_atomic(path, body)
        return sha
