"""`repo find|export|show` on the local store with long hash chains: the manifest cache, chain positions,
and a manifest edited in the middle of a chain or missing from it (found by its neighbours' links).

The repositories are written by bench.bench_repo_find's generator with the project's PCAP writer."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_repo_find import write_repositories
from wrappers.manifest_cache import ManifestCache
from wrappers.repo_export import ExportRefused, export
from wrappers.repo_find import Filters, find, parse_time
from wrappers.stores import open_store

ROOT = Path(__file__).parents[2]
NODES = 2  # × 2 queries: 4 chains of 3 repositories
REPOS = 12


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    write_repositories(tmp_path / "repos", REPOS, NODES)
    return tmp_path / "repos"


def manifests(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json"))


def rewrite(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    os.chmod(path, 0o644)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def test_parse_time_reads_rfc3339_offsets_and_relative_times() -> None:
    assert parse_time("2026-01-27T16:28:17Z") == 1769531297 * 10**9
    assert parse_time("2026-01-27T17:28:17.5+01:00") == 1769531297 * 10**9 + 500_000_000
    assert parse_time("2026-01-27") == 1769472000 * 10**9
    assert parse_time("-2h", now_ns=10 * 3600 * 10**9) == 8 * 3600 * 10**9
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_second_search_reads_the_cache_and_a_changed_object_is_fetched_again(store_dir, tmp_path) -> None:
    cache = ManifestCache(tmp_path / "cache")
    store = open_store(store_dir)
    first = find([store], Filters(nodes=["node-01"]), cache)
    assert first.repositories == REPOS and first.fetched == REPOS
    assert {h.repo.node for h in first.hits} == {"node-01"} and len(first.hits) == 9  # 6 repos, 1-2 streams
    second = find([store], Filters(nodes=["node-01"]), cache)
    assert second.fetched == 0 and [h.to_json() for h in second.hits] == [h.to_json() for h in first.hits]
    rewrite(manifests(store_dir / "node-01" / "bench" / "kfl_0")[1], lambda d: d.update(reason="edited"))
    third = find([store], Filters(nodes=["node-01"]), cache)
    assert third.fetched == 1


def test_a_manifest_edited_mid_chain_stops_the_export_naming_it(store_dir, tmp_path) -> None:
    cache = ManifestCache(tmp_path / "cache")
    store = open_store(store_dir)
    clean = find([store], Filters(nodes=["node-00"], queries=["0"]), cache)
    ok = export(clean, tmp_path / "ok.pcapng")
    assert len(ok.checks) == 3 and not ok.problems
    assert ok.outputs[0].packets == sum(h.record["packets"] for h in clean.hits) > 0
    edited, after = manifests(store_dir / "node-00" / "bench" / "kfl_0")[1:3]
    rewrite(edited, lambda d: d.update(reason="edited"))
    result = find([store], Filters(nodes=["node-00"], queries=["0"]), cache)
    with pytest.raises(ExportRefused) as refused:
        export(result, tmp_path / "bad.pcapng")
    key = edited.relative_to(store_dir).as_posix()
    assert refused.value.problems and all(key in p for p in refused.value.problems)
    assert any("hash chain" in p and "next manifest" in p for p in refused.value.problems)
    assert not (tmp_path / "bad.pcapng").exists()
    forced = export(result, tmp_path / "bad.pcapng", allow_unverified=True)
    report = json.loads((tmp_path / "bad.pcapng.custody.json").read_text())
    assert not report["verified"]
    # the broken link shows from both of its ends: the edited manifest and the one chained after it
    unverified = [o["manifest"]["key"] for o in report["objects"] if not o["verified"]]
    assert unverified == [key, after.relative_to(store_dir).as_posix()]
    assert forced.outputs[0].packets == ok.outputs[0].packets


def test_a_missing_manifest_is_a_gap_and_show_names_the_chain_position(store_dir, tmp_path) -> None:
    folder = store_dir / "node-01" / "bench" / "kfl_1"
    first, middle, last = manifests(folder)
    env = {**os.environ, "KFLPCAP_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    show = subprocess.run([sys.executable, "-m", "runtime", "repo", "show", str(store_dir),
                           middle.relative_to(store_dir).as_posix()], capture_output=True, text=True,
                          env=env, timeout=120)
    assert show.returncode == 0, show.stderr
    assert "seq 1: 2 of 3" in show.stdout and "links ok" in show.stdout
    assert first.name in show.stdout and last.name in show.stdout
    assert re.search(r"^manifest lock +none", show.stdout, re.M)
    middle.unlink()
    filters = Filters(nodes=["node-01"], queries=["kfl_1"])
    result = find([open_store(store_dir)], filters, ManifestCache(tmp_path / "c"))
    with pytest.raises(ExportRefused) as refused:
        export(result, tmp_path / "x.pcapng")
    assert any(last.name in p and "gap" in p for p in refused.value.problems)


def test_a_stream_kept_by_two_queries_is_exported_once(tmp_path) -> None:
    """Both queries keep every DNS flow of the capture: `find` lists each stream twice (once per query's
    repository), `export` writes its packets once — the capture's packets, as tshark reads them."""
    pcap = ROOT / "tests" / "pcaps" / "sv_dns_udp_and_tcp.pcap"
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "two.js").write_text(
        'function onItemCaptured(data) {\n'
        '  wrapper.kflPcapS3(data, { kflArr: ["dns", "dst.port == \\"53\\""] });\n}\n'
    )
    env = {**os.environ, "KFLPCAP_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop("S3_BUCKET", None)

    def kflpcap(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "runtime", *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=240)

    run = kflpcap("run", "--pcap", str(pcap), "--scripts", str(scripts), "--data-dir", "data", "--node", "n1")
    assert run.returncode == 0, run.stderr[-2000:]
    found = kflpcap("repo", "find", "data/repositories", "--json")
    queries = sorted((r["id"], r["query"]["index"]) for r in map(json.loads, found.stdout.splitlines()))
    ids = sorted({q[0] for q in queries})
    assert len(ids) == 2 and queries == sorted((i, q) for i in ids for q in (0, 1))
    out = tmp_path / "both.pcapng"
    export_run = kflpcap("repo", "export", "data/repositories", "-o", str(out))
    assert export_run.returncode == 0, export_run.stderr

    def frames(path: Path) -> list[str]:
        return subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch",
                               "-e", "frame.len"], capture_output=True, text=True, timeout=60, check=True,
                              ).stdout.splitlines()

    assert frames(out) == frames(pcap)
    report = json.loads((tmp_path / "both.pcapng.custody.json").read_text())
    assert report["verified"] and report["duplicate_packets_skipped"] == len(frames(pcap))
