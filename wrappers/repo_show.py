"""`kflpcap repo show`: one repository as a summary: its manifest, its place in the hash chain, and
what the store records about its objects (Object Lock mode and retention date, versions)."""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from typing import Any

import orjson

from wrappers.manifest_cache import ManifestCache
from wrappers.repo_find import Filters, RepoEntry, find
from wrappers.repo_verify import chain_problems
from wrappers.stores import ObjectStatus, Store, StoreError

_DATA_SUFFIXES = (".pcap.gz", ".tar.gz")


@dataclass
class Shown:
    key: str
    sha256: str
    manifest: dict[str, Any]
    data_key: str
    chain: list[RepoEntry]  # the folder's manifests by seq
    position: int  # index of this manifest in `chain`
    chain_problems: list[str] = field(default_factory=list)
    manifest_status: ObjectStatus | None = None
    data_status: ObjectStatus | None = None
    status_errors: list[str] = field(default_factory=list)


def manifest_key(key: str) -> str:
    """The manifest's key for a manifest or artifact key (`….pcap.gz` / `….tar.gz` → `….json`)."""
    for suffix in _DATA_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)] + ".json"
    return key


def show(store: Store, key: str, cache: ManifestCache) -> Shown:
    """Read one repository's manifest, its chain (the manifests of its folder) and its objects' status."""
    key = manifest_key(key)
    body = store.get(key)
    try:
        manifest = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise StoreError(f"{key}: not a manifest (not JSON: {exc})") from None
    if not isinstance(manifest, dict) or not manifest.get("kflpcap_manifest"):
        raise StoreError(f"{key}: not a kflpcap manifest")
    sha = hashlib.sha256(body).hexdigest()
    folder = posixpath.dirname(key)
    result = find([store], Filters(streams=False), cache, prefix=f"{folder}/" if folder else "")
    chain = sorted((r for r in result.chains.get((store.identity, folder), [])), key=lambda r: (r.seq, r.key))
    position = next((i for i, r in enumerate(chain) if r.key == key), -1)
    data_key = posixpath.join(folder, posixpath.basename(str(manifest.get("pcap", {}).get("key", ""))))
    shown = Shown(key, sha, manifest, data_key, chain, position)
    if position >= 0:
        shown.chain_problems = chain_problems(chain[position], chain)
    for name, k in (("manifest_status", key), ("data_status", data_key)):
        try:
            setattr(shown, name, store.status(k))
        except StoreError as exc:
            shown.status_errors.append(str(exc))
    return shown
