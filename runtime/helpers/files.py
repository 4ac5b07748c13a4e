"""The `file.*` helpers' Python side: every path is relative to the data folder and stays inside it.

Containment holds against anything planted in the folder, with no window between a check and its
use: a path is walked one component at a time from a descriptor of the data folder, each folder
opened with `O_NOFOLLOW` relative to its parent (openat-style), so a symbolic link is never followed
(it is refused) whatever is renamed meanwhile; files are opened the same way. A file is written to a
new temporary name in its folder (`O_CREAT | O_EXCL | O_NOFOLLOW`) and renamed over the target, so a
planted link or hard link at the target or at the temporary name is replaced, never written
through; a file that is appended to or read must be a regular file with no other hard link.
docs/security.md has the threat model.
"""

from __future__ import annotations

import errno
import os
import posixpath
import secrets
import shutil
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class HelperError(Exception):
    """A helper command that failed; the message is what the script's console shows."""


class DataDir:
    """The data folder scripts write to. Paths are data-relative; nothing outside is read or written."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()

    # -- paths ----------------------------------------------------------------------------------

    def parts(self, rel: str) -> list[str]:
        """The components of `rel` below the data folder (`..` resolved lexically, never above it)."""
        if not isinstance(rel, str):
            raise HelperError(f"path must be a string, got {type(rel).__name__}")
        if "\0" in rel:
            raise HelperError(f"path {rel!r} holds a NUL character")
        norm = posixpath.normpath(rel.lstrip("/")) if rel.strip("/") else "."
        if norm == ".." or norm.startswith("../"):
            raise HelperError(f"path {rel!r} escapes the data folder")
        return [] if norm == "." else norm.split("/")

    @contextmanager
    def folder(self, parts: list[str], rel: str, create: bool = False) -> Iterator[int]:
        """A descriptor of the folder `parts` (made when `create`), reached without following links."""
        fd = os.open(self.root, _DIR)
        try:
            for name in parts:
                try:
                    sub = os.open(name, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with suppress(FileExistsError):
                        os.mkdir(name, 0o755, dir_fd=fd)
                    sub = self._open_dir(name, fd, rel)
                except OSError as exc:
                    raise self._refusal(fd, name, rel, exc) from None
                os.close(fd)
                fd = sub
            yield fd
        finally:
            os.close(fd)

    def _open_dir(self, name: str, parent: int, rel: str) -> int:
        try:
            return os.open(name, _DIR, dir_fd=parent)
        except OSError as exc:
            raise self._refusal(parent, name, rel, exc) from None

    def _refusal(self, parent: int, name: str, rel: str, exc: OSError) -> Exception:
        """Why `name` in `parent` cannot be used: a symbolic link, not a folder, or the OS error."""
        try:
            st = os.lstat(name, dir_fd=parent)
        except OSError:
            return exc
        if stat.S_ISLNK(st.st_mode):
            return HelperError(f"path {rel!r} escapes the data folder (through the symbolic link {name!r}, "
                               "which is not followed)")
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            return HelperError(f"path {rel!r}: {name!r} is not a folder")
        return exc

    @contextmanager
    def parent(self, rel: str, create: bool = False) -> Iterator[tuple[int, str]]:
        """(descriptor of the folder holding `rel`, its last component); refuses the data folder itself."""
        parts = self.parts(rel)
        if not parts:
            raise HelperError(f"path {rel!r} is the data folder itself")
        with self.folder(parts[:-1], rel, create) as fd:
            yield fd, parts[-1]

    # -- files ----------------------------------------------------------------------------------

    @contextmanager
    def open_read(self, rel: str) -> Iterator[BinaryIO]:
        """`rel` opened for reading: a regular file, not a link, with no other hard link."""
        with self.parent(rel) as (fd, name):
            try:
                f = os.open(name, _READ, dir_fd=fd)
            except OSError as exc:
                raise self._refusal(fd, name, rel, exc) from None
        with os.fdopen(f, "rb") as file:
            st = os.fstat(f)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a folder", rel)
            if not stat.S_ISREG(st.st_mode):
                raise HelperError(f"path {rel!r} is not a regular file")
            if st.st_nlink > 1:
                raise HelperError(f"path {rel!r} has other hard links (refused)")
            os.set_blocking(f, True)
            yield file

    @contextmanager
    def replace(self, rel: str) -> Iterator[BinaryIO]:
        """A new file written under a private temporary name in `rel`'s folder and renamed over `rel`
        when the block ends without an error (removed otherwise)."""
        with self.parent(rel, create=True) as (fd, name):
            if _is_dir(fd, name):
                raise HelperError(f"path {rel!r} is a folder")
            tmp, f = _new_temp(fd, name)
            try:
                with os.fdopen(f, "wb") as file:
                    yield file
                os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                _unlink_quietly(tmp, fd)
                raise

    def write(self, rel: str, content: str) -> None:
        with self.replace(rel) as f:
            f.write(content.encode("utf-8"))

    def append(self, rel: str, content: str) -> None:
        with self.parent(rel, create=True) as (fd, name):
            try:
                f = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                            | os.O_NONBLOCK, 0o644, dir_fd=fd)
            except OSError as exc:
                raise self._refusal(fd, name, rel, exc) from None
        with os.fdopen(f, "ab") as file:
            st = os.fstat(f)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
                raise HelperError(f"path {rel!r} is not a regular file of its own (refused)")
            os.set_blocking(f, True)
            file.write(content.encode("utf-8"))

    def copy(self, src: str, dst: str) -> None:
        try:
            with self.open_read(src) as source:
                target = self._destination(src, dst)
                with self.replace(target) as out:
                    shutil.copyfileobj(source, out, 1 << 20)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise HelperError(f"cannot copy {src!r}: no such file") from exc

    def move(self, src: str, dst: str) -> None:
        with self.parent(src) as (sfd, sname):
            try:
                st = os.lstat(sname, dir_fd=sfd)
            except FileNotFoundError as exc:
                raise HelperError(f"cannot move {src!r}: no such file or folder") from exc
            if stat.S_ISLNK(st.st_mode):
                raise HelperError(f"path {src!r} is a symbolic link (not followed)")
            target = self._destination(src, dst)
            with self.parent(target, create=True) as (dfd, dname):
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)

    def _destination(self, src: str, dst: str) -> str:
        """`dst`, or `src`'s name inside it when `dst` is a folder."""
        dparts = self.parts(dst)
        if self._kind(dst) == "folder":
            return "/".join([*dparts, self.parts(src)[-1]])
        return dst

    def _kind(self, rel: str) -> str:
        """"folder", "file" (anything else that is not a link), "missing"; links are refused."""
        parts = self.parts(rel)
        if not parts:
            return "folder"
        try:
            with self.parent(rel) as (fd, name):
                st = os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            return "missing"
        if stat.S_ISLNK(st.st_mode):
            raise HelperError(f"path {rel!r} escapes the data folder (through the symbolic link "
                              f"{parts[-1]!r}, which is not followed)")
        return "folder" if stat.S_ISDIR(st.st_mode) else "file"

    def delete(self, rel: str) -> None:
        if not self.parts(rel):
            raise HelperError("refusing to delete the data folder itself")
        try:
            with self.parent(rel) as (fd, name):
                st = os.lstat(name, dir_fd=fd)
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(name, dir_fd=fd)  # never follows links (rmtree.avoids_symlink_attacks)
                else:
                    os.unlink(name, dir_fd=fd)  # a link itself, not what it points to
        except FileNotFoundError:
            return

    def mkdir(self, rel: str) -> None:
        with self.folder(self.parts(rel), rel, create=True):
            pass

    def mkdir_new(self, rel: str) -> None:
        with self.parent(rel, create=True) as (fd, name):
            try:
                os.mkdir(name, 0o755, dir_fd=fd)
            except FileExistsError as exc:
                raise HelperError(f"{rel!r} exists already") from exc

    def create_empty(self, rel: str) -> None:
        with self.parent(rel, create=True) as (fd, name):
            try:
                os.close(os.open(name, _NEW, 0o644, dir_fd=fd))
            except FileExistsError as exc:
                raise HelperError(f"{rel!r} exists already") from exc

    def tar(self, rel_dir: str, out_rel: str) -> None:
        """Every regular file below `rel_dir` (links and hard-linked files left out), names relative
        to it, into the gzipped tar `out_rel`."""
        try:
            with self.folder(self.parts(rel_dir), rel_dir) as src, self.replace(out_rel) as out, \
                    tarfile.open(fileobj=out, mode="w:gz") as tar:
                for top, dirs, files, dfd in os.fwalk(".", dir_fd=src):
                    dirs.sort()
                    for name in sorted(files):
                        _add_file(tar, posixpath.normpath(posixpath.join(top, name)), name, dfd)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise HelperError(f"cannot tar {rel_dir!r}: no such folder") from exc

    def entries(self, rel: str) -> list[str]:
        """Names of the regular files (not links) directly in folder `rel`, sorted."""
        with self.folder(self.parts(rel), rel) as fd, os.scandir(fd) as it:
            return sorted(e.name for e in it if e.is_file(follow_symlinks=False))


def _is_dir(parent: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(name, dir_fd=parent).st_mode)
    except FileNotFoundError:
        return False


def _new_temp(parent: int, name: str) -> tuple[str, int]:
    """A file made for this write only: a random name, created exclusively, never through a link."""
    for _ in range(16):
        tmp = f".{name[:200]}.{secrets.token_hex(6)}.part"
        try:
            return tmp, os.open(tmp, _NEW, 0o644, dir_fd=parent)
        except FileExistsError:
            continue
    raise HelperError(f"cannot make a temporary file for {name!r}")


def _unlink_quietly(name: str, parent: int) -> None:
    with suppress(OSError):
        os.unlink(name, dir_fd=parent)


def _add_file(tar: tarfile.TarFile, arcname: str, name: str, parent: int) -> None:
    """Add `name` of folder `parent` when it is a regular file of its own (opened without following)."""
    if name.startswith(".") and name.endswith(".part"):  # a write in progress (the tar itself)
        return
    try:
        f = os.open(name, _READ, dir_fd=parent)
    except OSError:
        return
    with os.fdopen(f, "rb") as file:
        st = os.fstat(f)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            return
        os.set_blocking(f, True)
        info = tarfile.TarInfo(arcname)
        info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), st.st_mode & 0o777
        tar.addfile(info, file)
