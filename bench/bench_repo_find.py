"""`kflpcap repo find` over many repositories in S3 (SeaweedFS): a cold search (listing + every manifest
fetched into an empty cache) and a warm one (listing + the cache), as a responder runs them.

    python -m bench.bench_repo_find [--repos 2000] [--nodes 10] [--endpoint URL --bucket NAME]

The repositories are small and synthetic — one or two UDP streams each, written with the project's
writer (wrappers.artifacts.write_pcap_gz) and manifests shaped like kflPcapS3's, chained per node and
query — and uploaded as kflPcapS3 uploads them (SHA-256 checksum and metadata). Without --endpoint a
SeaweedFS server (tests/seaweed.py) is started in a temporary folder. Each search is a fresh
`python -m runtime repo find` process; wall time and its peak RSS are printed (no pass/fail).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import struct
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.harness import Sample, run_once
from wrappers.artifacts import key_time, rfc3339, write_pcap_gz

ROOT = Path(__file__).parents[1]
BASE_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z


def _udp_packet(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    ip_src, ip_dst = bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, ip_src, ip_dst)
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + ip + udp


def write_repositories(root: Path, repos: int, nodes: int, queries: int = 2) -> int:
    """`repos` repositories in the local-store layout under `root` (`<node>/bench/kfl_<i>/…`, the
    script titled "bench"), chained per
    node and query; returns the number of streams written."""
    chains = [(n, q) for n in range(nodes) for q in range(queries)]
    heads: dict[tuple[int, int], tuple[int, str | None]] = {c: (0, None) for c in chains}
    streams_written = 0
    for r in range(repos):
        node, query = chains[r % len(chains)]
        seq, previous = heads[(node, query)]
        start = BASE_NS + r * 60 * 1_000_000_000
        folder = root / f"node-{node:02d}" / "bench" / f"kfl_{query}"
        folder.mkdir(parents=True, exist_ok=True)
        packets, streams = [], []
        for s in range(1 + r % 2):
            client, server = f"10.{node}.{r // 250}.{r % 250}", f"10.200.0.{1 + (r + s) % 20}"
            cport = 10_000 + (r * 2 + s) % 50_000
            first = start + s * 1_000_000
            pkts = [(first, 1, _udp_packet(client, cport, server, 53, b"q" * 30), 0),
                    (first + 500_000, 1, _udp_packet(server, 53, client, cport, b"a" * 60), 0)]
            pkts = [(t, lt, d, len(d)) for t, lt, d, _w in pkts]
            packets += pkts
            streams.append({
                "id": f"{r:06d}{s}_udp.pcap", "l4": "udp", "client": {"ip": client, "port": cport},
                "server": {"ip": server, "port": 53}, "protocols": ["dns"], "first": rfc3339(pkts[0][0]),
                "last": rfc3339(pkts[-1][0]), "packets": 2, "bytes": sum(len(p[2]) for p in pkts),
                "wire_bytes": sum(p[3] for p in pkts), "packet_range": [0, 2], "continued": False,
                "closed": True, "truncated_packets": 0, "evicted": False,
                "items": [f"node-{node:02d}/{r}-{s}"],
            })
        packets.sort(key=lambda p: p[0])
        base = f"{key_time(start)}_{seq:06d}"
        rel = f"node-{node:02d}/kfl_{query}"
        sha, size, _raw = write_pcap_gz(folder / f"{base}.pcap.gz", packets, 262144)
        manifest: dict[str, Any] = {
            "kflpcap_manifest": 1, "seq": seq, "run": "bench", "query": {"index": query, "kfl": "dns"},
            "script": {"title": "bench", "sha256": "0" * 64}, "node": {"name": f"node-{node:02d}", "ip": ""},
            "reason": "maxMinutes",
            "window": {"start": rfc3339(start), "end": rfc3339(start + 60 * 10**9), "start_ns": start,
                       "end_ns": start + 60 * 10**9},
            "pcap": {"format": "pcap.gz", "gzip_level": 1, "packets": len(packets), "linktypes": [1],
                     "first": rfc3339(packets[0][0]), "last": rfc3339(packets[-1][0]),
                     "key": f"{rel}/{base}.pcap.gz", "size": size, "sha256": sha},
            "streams": streams, "names": {}, "previous_manifest_sha256": previous,
            "key": f"{rel}/{base}.json",
        }
        body = json.dumps(manifest, indent=2).encode() + b"\n"
        (folder / f"{base}.json").write_bytes(body)
        heads[(node, query)] = (seq + 1, hashlib.sha256(body).hexdigest())
        streams_written += len(streams)
    return streams_written


def upload(root: Path, client: Any, bucket: str, workers: int = 8) -> int:
    files = [p for p in root.rglob("*") if p.is_file()]

    def put(path: Path) -> None:
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()
        client.put_object(Bucket=bucket, Key=path.relative_to(root).as_posix(), Body=body, IfNoneMatch="*",
                          Metadata={"sha256": digest},
                          ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode())

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(put, files))
    return len(files)


def timed_find(args: list[str], env: dict[str, str], out: Path) -> tuple[Sample, int]:
    """One `kflpcap repo find` process (bench.harness.run_once) and the number of streams it printed."""
    sample = run_once([sys.executable, "-m", "runtime", "repo", "find", *args], stdout=out, cwd=ROOT,
                      env=env, timeout=600)
    return sample, len(out.read_text().splitlines())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repos", type=int, default=2000)
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--endpoint", help="an S3 endpoint with --bucket (default: a SeaweedFS started here)")
    ap.add_argument("--bucket", default="bench-find")
    args = ap.parse_args()
    from tests.seaweed import SeaweedS3

    with tempfile.TemporaryDirectory(prefix="bench-repo-find-") as tmp:
        tmpdir = Path(tmp)
        began = time.perf_counter()
        streams = write_repositories(tmpdir / "repos", args.repos, args.nodes)
        print(f"wrote {args.repos} repositories ({streams} streams) in {time.perf_counter() - began:.1f} s")
        server = SeaweedS3(tmpdir / "weed")
        server.start()
        try:
            server.create_bucket(args.bucket, object_lock=True)
            began = time.perf_counter()
            n = upload(tmpdir / "repos", server.client(), args.bucket)
            print(f"uploaded {n} objects in {time.perf_counter() - began:.1f} s")
            env = {**os.environ, **server.env(), "KFLPCAP_CACHE": str(tmpdir / "cache"),
                   "PYTHONPATH": str(ROOT)}
            half = rfc3339(BASE_NS + args.repos * 30 * 1_000_000_000)  # the later half of the repositories
            search = [f"s3://{args.bucket}", "--ip", "10.200.0.7", "--from", half]
            print(f"search: kflpcap repo find {' '.join(search)}")
            print("| search | wall s | CPU s | peak RSS MB | streams found |")
            print("|---|---:|---:|---:|---:|")
            for label in ("cold (empty cache)", "warm (cache)", "warm (cache)"):
                sample, found = timed_find(search, env, tmpdir / "found.txt")
                print(f"| {label} | {sample.wall:.2f} | {sample.cpu:.2f} | {sample.rss_mb:.0f} | {found} |")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
