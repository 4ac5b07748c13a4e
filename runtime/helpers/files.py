"""The `file.*` helpers' Python side: every path is relative to the data folder and stays inside it."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path


class HelperError(Exception):
    """A helper command that failed; the message is what the script's console shows."""


class DataDir:
    """The data folder scripts write to. Paths are data-relative; `..` escapes are refused."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()

    def path(self, rel: str) -> Path:
        """The absolute path of `rel`, refusing anything (also via symlinks) outside the folder."""
        if not isinstance(rel, str):
            raise HelperError(f"path must be a string, got {type(rel).__name__}")
        candidate = (self.root / rel.lstrip("/")).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise HelperError(f"path {rel!r} escapes the data folder")
        return candidate

    def write(self, rel: str, content: str) -> None:
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")

    def append(self, rel: str, content: str) -> None:
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as f:
            f.write(content)

    def copy(self, src: str, dst: str) -> None:
        source = self.path(src)
        if not source.is_file():
            raise HelperError(f"cannot copy {src!r}: no such file")
        shutil.copyfile(source, self._destination(source, dst))

    def move(self, src: str, dst: str) -> None:
        source = self.path(src)
        if not source.exists():
            raise HelperError(f"cannot move {src!r}: no such file or folder")
        shutil.move(source, self._destination(source, dst))

    def _destination(self, source: Path, dst: str) -> Path:
        """`dst` in the data folder, or `source`'s name inside it when it is a folder; parents made."""
        target = self.path(dst)
        if target.is_dir():
            target = target / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def delete(self, rel: str) -> None:
        target = self.path(rel)
        if target == self.root:
            raise HelperError("refusing to delete the data folder itself")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()

    def mkdir(self, rel: str) -> None:
        self.path(rel).mkdir(parents=True, exist_ok=True)

    def mkdir_new(self, rel: str) -> None:
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.mkdir()
        except FileExistsError as exc:
            raise HelperError(f"{rel!r} exists already") from exc

    def create_empty(self, rel: str) -> None:
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with target.open("x"):
                pass
        except FileExistsError as exc:
            raise HelperError(f"{rel!r} exists already") from exc

    def tar(self, rel_dir: str, out_rel: str) -> None:
        """Every regular file below `rel_dir`, names relative to it, into the gzipped tar `out_rel`."""
        source, target = self.path(rel_dir), self.path(out_rel)
        if not source.is_dir():
            raise HelperError(f"cannot tar {rel_dir!r}: no such folder")
        tmp = target.with_name(target.name + ".part")
        with tarfile.open(tmp, "w:gz") as tar:
            for path in sorted(source.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    tar.add(path, arcname=str(path.relative_to(source)), recursive=False)
        os.replace(tmp, target)
