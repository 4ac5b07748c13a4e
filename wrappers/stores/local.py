"""The local store: a folder with the same key layout as S3; files written atomically, left read-only."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from wrappers.stores.base import (
    ConflictError,
    ObjectInfo,
    ObjectStatus,
    StoreError,
    clean_key,
    register,
    sha256_file,
)

_CHUNK = 1 << 20


@register
class LocalStore:
    """`{"kind": "local", "root": "/abs/folder"}`; create-only like every store."""

    kind = "local"
    scheme = ""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self.url = str(self.root)

    # ---- the registry's questions ---------------------------------------------------------------------

    @classmethod
    def config_for(cls, url_or_dir: str, **_opts: Any) -> dict[str, Any]:
        return {"kind": cls.kind, "root": str(Path(url_or_dir).absolute())}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LocalStore:
        return cls(config["root"])

    @classmethod
    def describe(cls, config: dict[str, Any]) -> str:
        return str(config["root"])

    @classmethod
    def ident(cls, config: dict[str, Any]) -> str:
        return f"file://{config.get('root')}"

    @classmethod
    def location(cls, config: dict[str, Any], key: str) -> str:
        return f"{config['root']}/{key}"

    # ---- the Store protocol -----------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / clean_key(key)

    def _no_links(self, target: Path) -> None:
        """Refuse a key whose folders (the store's root included) are symbolic links: a link planted
        in the data folder must not redirect repositories elsewhere (docs/security.md)."""
        folder = self.root
        for part in (None, *target.relative_to(self.root).parts[:-1]):
            if part is not None:
                folder = folder / part
            if folder.is_symlink():
                raise StoreError(f"{self.url}: {folder} is a symbolic link; the local store does not follow "
                                 "links", permanent=True)

    def put(self, key: str, path: Path, sha256: str) -> str:
        target = self._path(key)
        self._no_links(target)
        if target.exists():
            return self._already(target, key, sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".put-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o444)
            try:
                os.link(tmp, target)  # create-only: fails if the key appeared meanwhile
            except FileExistsError:
                return self._already(target, key, sha256)
        finally:
            os.unlink(tmp)
        _fsync_dir(target.parent)
        return str(target)

    def _already(self, target: Path, key: str, sha256: str) -> str:
        if sha256_file(target) != sha256:
            raise ConflictError(f"{self.url}: {key} already exists with different content; not overwritten")
        return str(target)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{self.url}: no object {key}") from None

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".put-"):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    @property
    def identity(self) -> str:
        return self.ident({"root": str(self.root)})

    def check_readable(self) -> None:
        if not self.root.is_dir():
            raise StoreError(f"{self.url}: no such folder (a store is s3://bucket/prefix or a folder)")

    def scan(self, prefix: str = "", on_listed: Callable[[int], None] | None = None) -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            return
        for dirpath, dirs, files in os.walk(self.root):
            dirs.sort()
            batch = []
            for name in sorted(files):
                if name.startswith(".put-"):
                    continue
                path = Path(dirpath, name)
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    st = path.stat()
                    batch.append(ObjectInfo(key, st.st_size, f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"))
            if on_listed and batch:
                on_listed(len(batch))
            yield from batch

    def status(self, key: str) -> ObjectStatus:
        try:
            size = self._path(key).stat().st_size
        except FileNotFoundError:
            raise StoreError(f"{self.url}: no object {key}") from None
        return ObjectStatus(key, size, versions=1)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
