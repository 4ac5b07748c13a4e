"""Reading repositories back from a store: list them, and verify checksums and hash chains."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wrappers.pcapfile import count_packets
from wrappers.stores import Store, StoreError


@dataclass
class Repository:
    key: str  # the manifest's key in the store
    manifest: dict[str, Any]
    sha256: str  # of the manifest's bytes

    @property
    def folder(self) -> str:
        return posixpath.dirname(self.key)

    @property
    def data_key(self) -> str:
        return posixpath.join(self.folder, posixpath.basename(self.manifest["pcap"]["key"]))


@dataclass
class Report:
    repositories: list[Repository] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    chains: int = 0


def load_repositories(store: Store, report: Report | None = None) -> list[Repository]:
    """Every manifest under the store, by folder and sequence number; unreadable ones are reported."""
    repos = []
    for key in store.list():
        if not key.endswith(".json"):
            continue
        body = store.get(key)
        try:
            doc = json.loads(body)
        except ValueError:
            if report is not None and "/kfl_" in key:
                report.problems.append(f"{key}: manifest is not valid JSON")
            continue
        if isinstance(doc, dict) and doc.get("kflpcap_manifest"):
            repos.append(Repository(key, doc, hashlib.sha256(body).hexdigest()))
    repos.sort(key=lambda r: (r.folder, r.manifest.get("seq", 0), r.key))
    return repos


def capture_bytes(blob: bytes, fmt: str) -> bytes:
    """The capture inside a repository artifact (`pcap.gz`, or the `.pcap` member of a `tar.gz`)."""
    if fmt == "tar.gz":
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.name.endswith(".pcap"):
                    f = tar.extractfile(member)
                    if f is not None:
                        return f.read()
        raise ValueError("no .pcap inside the tar.gz")
    return gzip.decompress(blob)


def verify(store: Store, progress: Callable[[str], None] | None = None) -> Report:
    """Re-hash every artifact, recount its packets, and walk each folder's manifest hash chain."""
    report = Report()
    repos = load_repositories(store, report)
    report.repositories = repos
    by_folder: dict[str, list[Repository]] = {}
    for repo in repos:
        by_folder.setdefault(repo.folder, []).append(repo)
    report.chains = len(by_folder)
    for folder, chain in by_folder.items():
        previous: Repository | None = None
        for repo in chain:
            try:
                problems = _check_one(store, repo)
            except (KeyError, TypeError, AttributeError) as exc:
                problems = [f"manifest lacks or mangles a field ({type(exc).__name__}: {exc})"]
            prev_sha = repo.manifest.get("previous_manifest_sha256")
            seq = repo.manifest.get("seq")
            if previous is None:
                if prev_sha:
                    problems.append(
                        f"hash chain: previous manifest {prev_sha[:16]}… of {folder} is not in the store"
                    )
            else:
                if seq != previous.manifest.get("seq", -2) + 1:
                    problems.append(f"hash chain: seq {seq} follows {previous.manifest.get('seq')} (a gap)")
                if prev_sha != previous.sha256:
                    problems.append(
                        f"hash chain: previous_manifest_sha256 {str(prev_sha)[:16]}… is not the SHA-256 "
                        f"of {previous.key} ({previous.sha256[:16]}…)"
                    )
            report.problems.extend(f"{repo.key}: {p}" for p in problems)
            if progress:
                progress(f"{'FAIL' if problems else 'ok  '} {repo.key}")
            previous = repo
    return report


def _check_one(store: Store, repo: Repository) -> list[str]:
    m = repo.manifest
    pcap = m.get("pcap", {})
    problems = []
    if not repo.key.endswith(m.get("key", "\0")) and not m.get("key", "").endswith(repo.key):
        problems.append(f"manifest names itself {m.get('key')!r}")
    try:
        blob = store.get(repo.data_key)
    except StoreError as exc:
        return [*problems, f"artifact missing: {exc}"]
    sha = hashlib.sha256(blob).hexdigest()
    if sha != pcap.get("sha256"):
        problems.append(f"SHA-256 of {repo.data_key} is {sha}, the manifest says {pcap.get('sha256')}")
    if len(blob) != pcap.get("size"):
        problems.append(f"size of {repo.data_key} is {len(blob)}, the manifest says {pcap.get('size')}")
    try:
        packets = count_packets(capture_bytes(blob, pcap.get("format", "pcap.gz")))
    except (OSError, ValueError, EOFError, zlib.error, tarfile.TarError) as exc:
        return [*problems, f"{repo.data_key} is not a readable capture: {exc}"]
    streams_sum = sum(s.get("packets", 0) for s in m.get("streams", []))
    if not packets == pcap.get("packets") == streams_sum:
        problems.append(
            f"packet counts differ: capture {packets}, manifest {pcap.get('packets')}, streams {streams_sum}"
        )
    return problems
