"""The one Store protocol, the errors every store raises, and the registry that picks a store by kind.

A store is described by a plain, JSON-serialisable config dict whose `kind` names the registered
store class (`{"kind": "local", "root": ...}`, `{"kind": "s3", "bucket": ..., "prefix": ...}`), so
the spool can record where each artifact goes and resume after a restart. Callers never branch on
the kind: `store_config(url_or_dir)` picks it from the URL scheme (none: a folder), and
`open_store`, `describe`, `store_ident` and `store_location` ask the registered class.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import urlparse

_CHUNK = 1 << 20
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class StoreError(Exception):
    """The store refused or could not take an artifact.

    `permanent` errors need a person to act (configuration, a conflicting key): retrying cannot
    help, so the outbox sets the bundle aside. Others (network, throttling) are retried."""

    permanent = False

    def __init__(self, message: str, *, permanent: bool | None = None) -> None:
        super().__init__(message)
        if permanent is not None:
            self.permanent = permanent


class ConflictError(StoreError):
    """The key already holds different bytes: the store is never overwritten."""

    permanent = True


class ConfigError(StoreError):
    """The store is not usable as configured (no bucket, no Object Lock, bad credentials, …)."""

    permanent = True


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object: its key, size and a tag that changes when its bytes may have (S3: the ETag;
    a folder: inode, size and modification time)."""

    key: str
    size: int
    tag: str


@dataclass(slots=True)
class ObjectStatus:
    """What the store itself records about an object (`kflpcap repo show`, export verification)."""

    key: str
    size: int
    recorded_sha256: str | None = None  # the SHA-256 given at upload (S3 checksum / metadata)
    versions: int | None = None  # versions of the key (a create-only store holds exactly one)
    lock_mode: str = ""  # Object Lock: COMPLIANCE / GOVERNANCE, "" when none
    retain_until: str = ""  # RFC 3339 UTC
    legal_hold: bool = False


class Store(Protocol):
    """What the spool, the wrapper and `kflpcap repo` need from a store. Keys use `/`.

    Every store is create-only: a put of a key that already holds the same bytes (same SHA-256)
    counts as done, a put of a key that holds other bytes raises `ConflictError`."""

    kind: ClassVar[str]
    url: str

    def put(self, key: str, path: Path, sha256: str) -> str:
        """Store the file under `key` (create-only); returns the object's URL."""

    def get(self, key: str) -> bytes: ...

    def list(self, prefix: str = "") -> list[str]: ...

    def exists(self, key: str) -> bool: ...

    @property
    def identity(self) -> str:
        """A stable identity of the store (its kind's `ident`), e.g. to key a local cache."""

    def check_readable(self) -> None:
        """Raise StoreError when the store cannot be read at all (no such folder, no such bucket)."""

    def scan(self, prefix: str = "", on_listed: Callable[[int], None] | None = None) -> Iterator[ObjectInfo]:
        """Every object under `prefix` with its size and tag (S3: paginated, sub-folders in parallel);
        `on_listed(n)` is called as each batch of `n` objects is listed."""

    def status(self, key: str) -> ObjectStatus: ...


class BucketKeys:
    """Keys under a prefix in a bucket, shared by the bucket stores (S3, GCS, Azure): the object of
    `key` is `<prefix>/<key>`, shown as `<location_scheme>://<bucket>/<prefix>/<key>`."""

    kind: ClassVar[str]
    location_scheme: ClassVar[str]
    bucket_field: ClassVar[str] = "bucket"
    prefix: str

    @classmethod
    def config_for(cls, url_or_dir: str, **opts: Any) -> dict[str, Any]:
        """`<scheme>://<bucket>/<prefix>` and the kind's options (the empty ones left out)."""
        parsed = urlparse(url_or_dir)
        config = {"kind": cls.kind, cls.bucket_field: parsed.netloc, "prefix": parsed.path.strip("/")}
        config.update({k: v for k, v in opts.items() if v not in (None, "", {})})
        return config

    @classmethod
    def location(cls, config: dict[str, Any], key: str) -> str:
        prefix = config.get("prefix", "")
        return f"{cls.location_scheme}://{config[cls.bucket_field]}/{prefix + '/' if prefix else ''}{key}"

    def _key(self, key: str) -> str:
        key = clean_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key


class StoreKind(Protocol):
    """A registered store class, asked about configs of its kind (class methods)."""

    kind: str
    # the URL scheme it serves ("s3" for s3://…), "" for a plain folder, None when no URL names it
    # (a store only the vendor helpers use)
    scheme: str | None

    def config_for(self, url_or_dir: str, **opts: Any) -> dict[str, Any]:
        """The config dict for a URL (or folder) of this kind, with kind-specific options."""

    def from_config(self, config: dict[str, Any]) -> Store: ...

    def describe(self, config: dict[str, Any]) -> str:
        """Where artifacts go, for people (console lines)."""

    def ident(self, config: dict[str, Any]) -> str:
        """A stable identity of the destination (hash-chain ids)."""

    def location(self, config: dict[str, Any], key: str) -> str:
        """Where `key` lands, as reports show it."""


K = TypeVar("K", bound=StoreKind)
_KINDS: dict[str, StoreKind] = {}
_SCHEMES: dict[str, StoreKind] = {}


def register(cls: K) -> K:
    """Class decorator: make a store kind known to `store_config` and `store_from_config`."""
    _KINDS[cls.kind] = cls
    if cls.scheme is not None:
        _SCHEMES[cls.scheme] = cls
    return cls


def kind_of(config: dict[str, Any]) -> StoreKind:
    kind = config.get("kind")
    found = _KINDS.get(kind) if isinstance(kind, str) else None
    if found is None:
        raise ConfigError(f"unknown store kind {kind!r} (known: {', '.join(sorted(_KINDS))})")
    return found


def store_from_config(config: dict[str, Any]) -> Store:
    """Build a store from the JSON-serialisable config the spool records."""
    return kind_of(config).from_config(config)


def store_config(url_or_dir: str | Path, **opts: Any) -> dict[str, Any]:
    """Config dict for `s3://bucket/prefix` (with `endpoint=`, `region=`, keys, lock) or a folder."""
    text = str(url_or_dir)
    match = _SCHEME.match(text)
    scheme = match.group(1).lower() if match else ""
    kind = _SCHEMES.get(scheme)
    if kind is None:
        known = ", ".join(f"{s}://…" for s in sorted(_SCHEMES) if s)
        raise ConfigError(f"{text}: no store for {scheme}:// URLs (a store is {known} or a folder)")
    return kind.config_for(text, **opts)


def open_store(url_or_dir: str | Path, **opts: Any) -> Store:
    """`open_store("s3://bucket/prefix", endpoint=..., region=...)` or `open_store("/some/folder")`."""
    return store_from_config(store_config(url_or_dir, **opts))


def describe(config: dict[str, Any]) -> str:
    return kind_of(config).describe(config)


def store_ident(config: dict[str, Any]) -> str:
    return kind_of(config).ident(config)


def store_location(config: dict[str, Any], key: str) -> str:
    return kind_of(config).location(config, key)


def clean_key(key: str) -> str:
    """`key` without empty and `.` parts; a key that is empty or climbs (`..`) is a permanent error."""
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise StoreError(f"invalid object key {key!r}", permanent=True)
    return "/".join(parts)


def is_vendor_upload(key: str, node_prefix: str) -> bool:
    """Whether `key` is one of a node's `vendor.*.put` uploads: `<node_prefix>_<run id>/<file>`.

    Two levels exactly, which no kflPcapS3 repository key has (`[prefix/]<node>/kfl_<i>/…`), and
    never a key of another node whose name or IP merely starts alike (`vendor.*.clear`)."""
    return re.fullmatch(re.escape(node_prefix) + r"_\d+/[^/]+", key) is not None


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
