"""Verifying the repositories an export pulls: the artifact against its manifest, the manifest against
its hash chain and against what the store recorded at upload, and each stream's packets against its
record. Every problem names the object."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from capture.decode import Decoder
from capture.model import CaptureConfig, Packet
from capture.readers import NotACapture, read_capture
from wrappers.repo_find import Hit, RepoEntry
from wrappers.repos import capture_bytes
from wrappers.stores import StoreError

_L4 = {6: "tcp", 17: "udp"}


@dataclass
class RepoCheck:
    """One repository pulled for an export: what was checked and found."""

    repo: RepoEntry
    data_sha256: str = ""
    data_size: int = 0
    manifest_status: dict[str, Any] = field(default_factory=dict)
    data_status: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    snaplens: dict[int, int] = field(default_factory=dict)
    packets: dict[int, list[Packet]] = field(default_factory=dict)  # per hit (index in the export's list)

    @property
    def verified(self) -> bool:
        return not self.problems

    def problems_of(self, key: str) -> list[str]:
        """The problems found with one of its two objects."""
        prefix = f"{self.repo.where(key)}: "
        return [p for p in self.problems if p.startswith(prefix)]


def chain_problems(repo: RepoEntry, chain: list[RepoEntry]) -> list[str]:
    """The manifest against its neighbours in the folder's hash chain (`chain` sorted by seq)."""
    problems = []
    by_seq: dict[int, list[RepoEntry]] = {}
    for r in chain:
        by_seq.setdefault(r.seq, []).append(r)
    if len(by_seq.get(repo.seq, [])) > 1:
        others = ", ".join(r.key for r in by_seq[repo.seq] if r is not repo)
        problems.append(f"hash chain: seq {repo.seq} is also claimed by {others}")
    earlier = [r for r in chain if r.seq < repo.seq]
    prev = by_seq.get(repo.seq - 1, [])
    if not earlier:
        if repo.previous:
            problems.append(f"hash chain: previous manifest {repo.previous[:16]}… is not in the store")
    elif not prev:
        problems.append(f"hash chain: the manifest before seq {repo.seq} is missing (a gap)")
    elif prev[0].sha256 != repo.previous:
        problems.append(
            f"hash chain: previous_manifest_sha256 {str(repo.previous)[:16]}… is not the SHA-256 of "
            f"{prev[0].key} ({prev[0].sha256[:16]}…)"
        )
    for nxt in by_seq.get(repo.seq + 1, []):
        if nxt.previous != repo.sha256:
            problems.append(
                f"hash chain: the next manifest {nxt.key} links to {str(nxt.previous)[:16]}…, not to this "
                f"manifest's SHA-256 {repo.sha256[:16]}… (changed after it was chained)"
            )
    return problems


def _status(repo: RepoEntry, key: str, sha256: str, problems: list[str]) -> dict[str, Any]:
    try:
        st = repo.store.status(key)
    except StoreError as exc:
        problems.append(f"{repo.where(key)}: no status from the store: {exc}")
        return {}
    if st.recorded_sha256 and st.recorded_sha256 != sha256:
        problems.append(f"{repo.where(key)}: the store recorded SHA-256 {st.recorded_sha256} at upload, "
                        f"the object is now {sha256}")
    if st.versions and st.versions > 1:
        problems.append(f"{repo.where(key)}: {st.versions} versions of a create-only object "
                        "(overwritten after upload)")
    return {"recorded_sha256": st.recorded_sha256, "versions": st.versions, "lock_mode": st.lock_mode,
            "retain_until": st.retain_until, "legal_hold": st.legal_hold}


def _gzip_body(blob: bytes) -> int:
    """Offset of the deflate data after a gzip member's header (RFC 1952)."""
    if blob[:2] != b"\x1f\x8b" or len(blob) < 10:
        raise ValueError("not gzip")
    flags, pos = blob[3], 10
    if flags & 4:
        pos += 2 + int.from_bytes(blob[pos : pos + 2], "little")
    for bit in (8, 16):
        if flags & bit:
            pos = blob.index(b"\0", pos) + 1
    return pos + (2 if flags & 2 else 0)


def _readable(blob: bytes, fmt: str) -> tuple[bytes, str]:
    """The capture bytes of an artifact, and "" or why it is (partly) unreadable; a damaged
    `pcap.gz` gives what inflates of it, its checksum ignored."""
    try:
        return capture_bytes(blob, fmt), ""
    except (OSError, EOFError, ValueError, zlib.error, tarfile.TarError) as exc:
        why = f"not a readable capture: {type(exc).__name__}: {exc}"
        if fmt == "tar.gz":
            return b"", why
        out = bytearray()
        try:
            d = zlib.decompressobj(-zlib.MAX_WBITS)
            body = blob[_gzip_body(blob) :]
            for i in range(0, len(body), 4096):
                out += d.decompress(body[i : i + 4096])
        except (ValueError, zlib.error):
            pass
        return bytes(out), why


def _endpoint(ip: str, port: Any) -> tuple[str, int]:
    return str(ipaddress.ip_address(ip)), int(port)


def pull(repo: RepoEntry, chain: list[RepoEntry], hits: list[tuple[int, Hit]]) -> RepoCheck:
    """Fetch and verify one repository and cut the packets of `hits` (index, hit) out of it."""
    check = RepoCheck(repo)
    problems = check.problems
    m, d = repo.where(repo.key), repo.where(repo.data_key)
    try:
        body = repo.store.get(repo.key)
    except StoreError as exc:
        problems.append(f"{m}: manifest missing: {exc}")
        return check
    sha = hashlib.sha256(body).hexdigest()
    if sha != repo.sha256:
        problems.append(f"{m}: manifest changed while exporting (SHA-256 {sha}, listed {repo.sha256})")
    problems.extend(f"{m}: {p}" for p in chain_problems(repo, chain))
    check.manifest_status = _status(repo, repo.key, sha, problems)
    pcap = repo.pcap
    try:
        blob = repo.store.get(repo.data_key)
    except StoreError as exc:
        problems.append(f"{d}: artifact missing: {exc}")
        return check
    check.data_sha256 = hashlib.sha256(blob).hexdigest()
    check.data_size = len(blob)
    if check.data_sha256 != pcap.get("sha256"):
        problems.append(f"{d}: SHA-256 is {check.data_sha256}, its manifest {repo.key} says "
                        f"{pcap.get('sha256')}")
    if len(blob) != pcap.get("size"):
        problems.append(f"{d}: size is {len(blob)}, its manifest says {pcap.get('size')}")
    check.data_status = _status(repo, repo.data_key, check.data_sha256, problems)
    raw, why = _readable(blob, str(pcap.get("format", "pcap.gz")))
    if why:
        problems.append(f"{d}: {why}")
    _cut(raw, hits, check)
    for i, hit in hits:
        got, want = len(check.packets.get(i, [])), hit.record["packets"]
        if got != want:
            problems.append(f"{d}: stream {hit.record['id']} has {got} packets in the capture, "
                            f"its manifest says {want}")
    return check


def _cut(raw: bytes, hits: list[tuple[int, Hit]], check: RepoCheck) -> None:
    """The packets of each hit: same 5-tuple (either direction) within the stream's first..last."""
    by_tuple: dict[tuple, list[tuple[int, Hit]]] = {}
    for i, hit in hits:
        rec = hit.record
        a = _endpoint(rec["client"]["ip"], rec["client"]["port"])
        b = _endpoint(rec["server"]["ip"], rec["server"]["port"])
        by_tuple.setdefault((rec["l4"], frozenset((a, b))), []).append((i, hit))
    if not raw:
        return
    errors: list[str] = []
    decoder = Decoder(CaptureConfig(), on_skip=lambda _reason: None)
    try:
        packets = read_capture(io.BytesIO(raw), lambda off, text: errors.append(f"offset {off}: {text}"),
                               lambda lt, snaplen: check.snaplens.__setitem__(lt, snaplen))
        for pkt in packets:
            dec = decoder.decode(pkt)
            if dec is None:
                continue
            proto, src, dst, buf, off, _wlen, frags = dec
            try:
                sport = (buf[off] << 8) | buf[off + 1]
                dport = (buf[off + 2] << 8) | buf[off + 3]
            except IndexError:
                continue
            key = (_L4.get(proto), frozenset(((str(ipaddress.ip_address(src)), sport),
                                              (str(ipaddress.ip_address(dst)), dport))))
            for i, hit in by_tuple.get(key, ()):
                if hit.record["first_ns"] <= pkt[0] <= hit.record["last_ns"]:
                    check.packets.setdefault(i, []).extend(frags or [pkt])
                    break
    except NotACapture as exc:
        errors.append(str(exc))
    if errors:
        check.problems.append(f"{check.repo.where(check.repo.data_key)}: capture damaged: {errors[0]}")
    for lst in check.packets.values():
        lst.sort(key=lambda p: p[0])

