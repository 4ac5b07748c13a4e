"""Checks shared by the wrapper tests: repositories vs ground truth, read back with real tshark."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from wrappers.repos import Repository, load_repositories


def by_query(store: Any) -> dict[int, list[Repository]]:
    out: dict[int, list[Repository]] = {}
    for repo in load_repositories(store):
        out.setdefault(repo.manifest["query"]["index"], []).append(repo)
    return out


def stream_tuples(repos: list[Repository], with_l4: bool = False) -> Counter:
    """Multiset of 5-tuples of the distinct streams of one query's repositories (oracle shape)."""
    seen: dict[str, tuple] = {}
    for repo in repos:
        for s in repo.manifest["streams"]:
            t = (s["client"]["ip"], s["client"]["port"], s["server"]["ip"], s["server"]["port"])
            seen[s["id"]] = ((s["l4"], *t) if with_l4 else t)
    return Counter(seen.values())


def contiguous_totals(repos: list[Repository]) -> dict[tuple[str, str], int]:
    """Per (run, stream): its packet ranges across repositories start at 0, touch, never overlap."""
    nxt: dict[tuple[str, str], int] = {}
    for repo in sorted(repos, key=lambda r: r.manifest["seq"]):
        for s in repo.manifest["streams"]:
            lo, hi = s["packet_range"]
            sid = (repo.manifest["run"], s["id"])
            expected = nxt.get(sid, 0)
            assert lo == expected, f"{sid} in {repo.key}: packets {lo}..{hi}, expected from {expected}"
            assert hi - lo == s["packets"] > 0
            nxt[sid] = hi
    return nxt


def tshark(path: Path, *args: str) -> str:
    cmd = ["tshark", "-n", "-r", str(path), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"tshark could not read {path}: {out.stderr}"
    return out.stdout


def tshark_packets(path: Path) -> int:
    return len(tshark(path, "-T", "fields", "-e", "frame.number").splitlines())


def tshark_500_tuples(path: Path) -> set[tuple]:
    """Client→server tuples of the TCP connections where tshark sees an HTTP 500 response."""
    out = tshark(path, "-Y", "http.response.code == 500", "-T", "fields", "-E", "separator=,",
                 "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport", "-e", "ip.src", "-e", "ipv6.src",
                 "-e", "tcp.srcport")
    found = set()
    for line in out.splitlines():
        c4, c6, cport, s4, s6, sport = line.split(",")
        found.add((c4 or c6, int(cport), s4 or s6, int(sport)))
    return found


def tuple5(s: dict) -> tuple:
    return (s["l4"], s["client"]["ip"], s["client"]["port"], s["server"]["ip"], s["server"]["port"])


def tuple_totals(repos: list[Repository]) -> dict[tuple, int]:
    """Packets exported per 5-tuple (a connection idle past the TCP timeout becomes two streams)."""
    totals = contiguous_totals(repos)
    tuples = {(r.manifest["run"], s["id"]): tuple5(s) for r in repos for s in r.manifest["streams"]}
    out: dict[tuple, int] = {}
    for sid, n in totals.items():
        out[tuples[sid]] = out.get(tuples[sid], 0) + n
    return out
