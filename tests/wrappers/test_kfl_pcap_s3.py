"""KflPcapS3 on generated captures with the local store: contents vs ground truth, rotation, options."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from bench.trafficgen import write_capture
from tests.wrappers.checks import (
    by_query,
    stream_tuples,
    tshark_500_tuples,
    tshark_packets,
    tuple_totals,
)
from tests.wrappers.drive import SEED_QUERIES, drive, synthetic_items
from wrappers import chain as chain_module
from wrappers.pcapfile import count_packets
from wrappers.repos import verify
from wrappers.stores import open_store


def generated(tmp_path: Path, name: str, **kw) -> tuple[Path, dict]:
    pcap = tmp_path / f"{name}.pcap"
    write_capture(pcap, truth_path=tmp_path / f"{name}.json", **kw)
    return pcap, json.loads((tmp_path / f"{name}.json").read_text())


def truth_packets(truth: dict) -> dict[tuple, int]:
    out = {}
    for l4 in ("tcp", "udp"):
        for s in truth["packets_per_stream"][l4]:
            out[(l4, *s["tuple"])] = s["packets"]
    return out


def repo_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runtime", "repo", *args], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).parents[2])


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> tuple[Path, dict]:
    return generated(tmp_path_factory.mktemp("gen"), "mixed", packets=6000, seed=11)


def test_seed_queries_export_exactly_the_matching_streams(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    run = drive(pcap, tmp_path / "data", {"kflArr": SEED_QUERIES}, synthetic_items(truth))
    assert run.errors == [] and run.left_spooled == 0
    assert any("no S3 bucket configured" in line for line in run.lines)
    store = open_store(tmp_path / "data" / "repositories")
    repos = by_query(store)
    assert stream_tuples(repos[0]) == Counter(tuple(t) for t in truth["http500_streams"])
    assert stream_tuples(repos[1], with_l4=True) == Counter(tuple(t) for t in truth["dns_flows"])
    expected = truth_packets(truth)
    for index, chain in repos.items():
        totals = tuple_totals(chain)
        assert totals == {k: v for k, v in expected.items() if k in totals}
        for repo in chain:
            m = repo.manifest
            path = tmp_path / "data" / "repositories" / repo.data_key
            assert stat.S_IMODE(path.stat().st_mode) == 0o444
            assert tshark_packets(path) == m["pcap"]["packets"] == sum(s["packets"] for s in m["streams"])
            assert hashlib.sha256(path.read_bytes()).hexdigest() == m["pcap"]["sha256"]
            assert m["query"] == {"index": index, "kfl": SEED_QUERIES[index]}
            assert m["node"]["name"] == "node-1" and m["names"]["10.0.0.53"]["namespace"] == "kube-system"
            assert all(s["items"] for s in m["streams"] if not s["continued"])
            if index == 0:
                assert tshark_500_tuples(path) == {tuple(t) for t in stream_tuples([repo])}
    report = verify(store)
    assert report.problems == [] and report.chains == 2
    for entry in run.wrapper.written:
        path = Path(entry["location"])
        assert path.is_file() and path.stat().st_size == entry["bytes_gz"]
        assert len(gzip.decompress(path.read_bytes())) == entry["bytes_raw"]
    assert sum(e["packets"] for e in run.wrapper.written) == run.wrapper.counters["packets"]


def test_slack_webhook_hears_of_each_uploaded_repository(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        run = drive(pcap, tmp_path / "data", {"kflArr": ["dns"], "slackWebhook": url}, synthetic_items(truth))
        deadline = time.monotonic() + 20
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
    assert run.errors == [] and len(received) == 1
    msg = received[0]
    assert msg["pretext"] == "Notification" and msg["color"] == "#ff0000"
    assert msg["text"].startswith("New PCAP: ") and 'KFL: "dns"' in msg["text"]
    assert run.wrapper.written[0]["location"] in msg["text"]


def test_console_says_spooled_then_uploaded_only_what_the_store_confirmed(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    options = {"kflArr": SEED_QUERIES, "maxL4Streams": 5}
    run = drive(pcap, tmp_path / "data", options, synthetic_items(truth))
    root = tmp_path / "data" / "repositories"
    keys = [str(Path(e["location"]).relative_to(root)) for e in run.wrapper.written]
    spooled = [line for line in run.lines if line.startswith("kflPcapS3: New PCAP (spooled): ")]
    uploaded = [line for line in run.lines if line.startswith("kflPcapS3: Uploaded: ")]
    assert len(keys) > 4 and run.left_spooled == 0
    assert sorted(line.split(": ")[2].split(";")[0] for line in spooled) == sorted(keys)
    assert sorted(line.split(": ")[2].split(";")[0] for line in uploaded) == sorted(
        e["location"] for e in run.wrapper.written)
    # a store that refuses connections: every repository is spooled, none said uploaded
    down = {"S3_BUCKET": "down", "S3_ENDPOINT": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}
    run = drive(pcap, tmp_path / "down", options, synthetic_items(truth), env=down, close_timeout=0.5)
    assert len([line for line in run.lines if "New PCAP (spooled): " in line]) == len(keys)
    assert run.left_spooled == len(keys) and not [line for line in run.lines if "Uploaded" in line]


def test_verify_fails_after_tampering_with_a_local_copy(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    drive(pcap, tmp_path / "data", {"kflArr": SEED_QUERIES, "maxL4Streams": 40}, synthetic_items(truth))
    root = tmp_path / "data" / "repositories"
    ok = repo_cli("verify", str(root))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK:" in ok.stdout and "FAIL" not in ok.stdout
    listing = repo_cli("list", str(root))
    assert listing.returncode == 0
    assert "kfl_0/" in listing.stdout and "http and response.status" in listing.stdout
    victim = sorted(root.glob("node-1/kflpcaps3-test/kfl_1/*.pcap.gz"))[1]
    os.chmod(victim, 0o644)
    data = bytearray(gzip.decompress(victim.read_bytes()))
    data[-1] ^= 0xFF  # one flipped bit in the last packet
    victim.write_bytes(gzip.compress(bytes(data)))
    bad = repo_cli("verify", str(root))
    assert bad.returncode == 1
    assert f"{victim.name} is" in bad.stdout and "SHA-256" in bad.stdout
    broken = sorted(root.glob("node-1/kflpcaps3-test/kfl_1/*.pcap.gz"))[2]
    os.chmod(broken, 0o644)
    raw = bytearray(broken.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # corrupt the compressed stream itself
    broken.write_bytes(bytes(raw))
    corrupt = repo_cli("verify", "-q", str(root))
    assert corrupt.returncode == 1 and f"{broken.name} is not a readable capture" in corrupt.stdout
    manifest = sorted(root.glob("node-1/kflpcaps3-test/kfl_1/*.json"))[0]
    os.chmod(manifest, 0o644)
    manifest.write_text(manifest.read_text().replace('"reason"', '"reason "'))
    worse = repo_cli("verify", "-q", str(root))
    assert worse.returncode == 1 and "hash chain" in worse.stdout


def test_rotation_by_minutes_over_three_hours(tmp_path: Path) -> None:
    pcap, truth = generated(tmp_path, "3h", packets=4000, seed=5, duration=10800)
    run = drive(pcap, tmp_path / "data", {"kflArr": SEED_QUERIES, "maxMinutes": 60}, synthetic_items(truth))
    assert run.errors == []
    repos = by_query(open_store(tmp_path / "data" / "repositories"))
    expected = truth_packets(truth)
    for index in (0, 1):
        chain = sorted(repos[index], key=lambda r: r.manifest["seq"])
        assert len(chain) == 3, [r.key for r in chain]
        windows = [(r.manifest["window"]["start_ns"], r.manifest["window"]["end_ns"]) for r in chain]
        assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
        assert [r.manifest["reason"] for r in chain] == ["maxMinutes", "maxMinutes", "end"]
        for (start, end), repo in zip(windows, chain, strict=True):
            assert 59 * 60e9 <= end - start <= 61 * 60e9 or repo.manifest["reason"] == "end"
        totals = tuple_totals(chain)
        assert sum(totals.values()) == sum(r.manifest["pcap"]["packets"] for r in chain)
        assert totals == {k: v for k, v in expected.items() if k in totals}


def test_manifests_say_how_many_packets_the_capture_lost_since_the_last_repository(tmp_path: Path) -> None:
    """Kernel drops at 90 and 150 minutes of a 3-hour capture rotated hourly: the second and third
    repositories of each query say how many packets were lost since the one before."""
    pcap, truth = generated(tmp_path, "3h", packets=4000, seed=5, duration=10800)

    def lost(now_ns: int) -> int:
        minutes = (now_ns / 1e9 - truth["first_ts"]) / 60
        return (100 if minutes >= 90 else 0) + (7 if minutes >= 150 else 0)

    run = drive(pcap, tmp_path / "data", {"kflArr": SEED_QUERIES, "maxMinutes": 60}, synthetic_items(truth),
                lost=lost)
    assert run.errors == []
    repos = by_query(open_store(tmp_path / "data" / "repositories"))
    for index in (0, 1):
        chain = sorted(repos[index], key=lambda r: r.manifest["seq"])
        said = [r.manifest.get("capture") for r in chain]
        assert said == [None, {"kernel_drops": 100}, {"kernel_drops": 7}]


def test_rotation_by_stream_count_continues_open_streams(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    run = drive(pcap, tmp_path / "data", {"kflArr": SEED_QUERIES, "maxL4Streams": 10}, synthetic_items(truth))
    assert run.errors == []
    repos = by_query(open_store(tmp_path / "data" / "repositories"))
    assert stream_tuples(repos[1], with_l4=True) == Counter(tuple(t) for t in truth["dns_flows"])
    expected = truth_packets(truth)
    continued = 0
    for chain in repos.values():
        assert all(len(r.manifest["streams"]) <= 10 for r in chain)
        totals = tuple_totals(chain)
        assert totals == {k: v for k, v in expected.items() if k in totals}
        continued += sum(s["continued"] for r in chain for s in r.manifest["streams"])
    assert len(repos[1]) >= len(truth["dns_flows"]) // 10
    assert continued > 0  # some streams were open across a rotation and appear in two repositories
    assert verify(open_store(tmp_path / "data" / "repositories")).problems == []


def test_late_items_of_written_streams_do_not_write_packets_twice(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    emitted: list[dict] = []
    late = 0

    def replay(wrapper, cap) -> None:
        nonlocal late
        cap.store.advance(cap.now_ns)
        for item in emitted:
            if cap.store.info(item["stream"]) is not None:
                wrapper.handle(dict(item, id=item["id"] + "-late"))
                late += 1

    options = {"kflArr": SEED_QUERIES, "maxL4Streams": 10}
    run = drive(pcap, tmp_path / "data", options, synthetic_items(truth, emitted), before_close=replay)
    assert run.errors == [] and late > 0
    repos = by_query(open_store(tmp_path / "data" / "repositories"))
    expected = truth_packets(truth)
    for chain in repos.values():
        totals = tuple_totals(chain)  # raises on a packet range written twice
        assert totals == {k: v for k, v in expected.items() if k in totals}
    # the late items did match (again) and found their streams already written: nothing new to write
    assert run.wrapper.matches[1] >= 2 * len(truth["dns_flows"])


def test_reload_continues_streams_without_writing_packets_twice(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    emitted: list[dict] = []

    def again(wrapper, cap) -> None:
        """Items of the streams still open reach the reloaded script (as their next items would)."""
        for item in emitted:
            info = cap.store.info(item["stream"])
            if info is not None and not info.closed:
                wrapper.handle(dict(item, id=item["id"] + "-after-reload"), {"kflArr": SEED_QUERIES})

    run = drive(pcap, tmp_path / "data", {"kflArr": SEED_QUERIES}, synthetic_items(truth, emitted),
                reload_at=3000, after_reload=again)
    assert run.errors == []
    repos = by_query(open_store(tmp_path / "data" / "repositories"))
    assert [r.manifest["reason"] for r in repos[1]] == ["reload", "end"]
    assert any(s["continued"] for s in repos[1][1].manifest["streams"])
    expected = truth_packets(truth)
    for chain in repos.values():
        totals = tuple_totals(chain)  # raises on a packet range written twice
        assert totals == {k: v for k, v in expected.items() if k in totals}
    assert stream_tuples(repos[1], with_l4=True) == Counter(tuple(t) for t in truth["dns_flows"])
    assert verify(open_store(tmp_path / "data" / "repositories")).problems == []


def test_options_problems_are_named_and_valid_queries_keep_working(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    options = {"kflArr": ["http and response.status ==", "dns"], "maxMinutes": "soon", "colour": "red",
               "slackAuthChannelId": "C123", "format": "zip"}
    run = drive(pcap, tmp_path / "data", options, synthetic_items(truth))
    text = "\n".join(run.errors)
    assert "unknown option 'colour'" in text
    assert "option maxMinutes must be a number of minutes > 0, got 'soon'" in text
    assert 'option format must be "pcap.gz" or "tar.gz"' in text
    assert "kflArr[0] is not valid KFL" in text and "^" in text
    assert len(run.errors) == 4
    assert run.wrapper.opts.slack_channel_id == "C123" and run.wrapper.opts.max_minutes == 60
    repos = by_query(open_store(tmp_path / "data" / "repositories"))
    assert list(repos) == [1]
    assert stream_tuples(repos[1], with_l4=True) == Counter(tuple(t) for t in truth["dns_flows"])


@pytest.mark.parametrize(
    ("options", "message"),
    [({"verbose": True}, "kflArr is mandatory"), ({"kflArr": "dns"}, "kflArr is mandatory"),
     ({"kflArr": ["dns"], "active": False}, None)],
)
def test_unusable_options_write_nothing(capture, tmp_path: Path, options: dict, message: str | None) -> None:
    pcap, truth = capture
    run = drive(pcap, tmp_path / "data", options, synthetic_items(truth))
    if message:
        assert len(run.errors) == 1 and message in run.errors[0]
    else:
        assert run.errors == [] and "kflPcapS3: Inactive" in run.lines
    assert not (tmp_path / "data" / "repositories").exists()


BUCKET_DOWN = {"s3Bucket": "b", "s3Endpoint": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("options", "message"),
    [({"s3Prefix": "../x"}, "option s3Prefix must be folder names without '.', '..'"),
     ({"s3Prefix": "a/./b", **BUCKET_DOWN}, "option s3Prefix must be folder names"),
     ({"s3Prefix": "a\nb"}, "option s3Prefix must be folder names"),
     ({"s3Bucket": "a/b"}, "option s3Bucket must be a bucket name"),
     ({"objectLockMode": "COMPLIANCE", "objectLockDays": 1}, "option objectLockMode needs an S3 bucket"),
     ({"objectLockMode": "FOREVER", "objectLockDays": 1, **BUCKET_DOWN},
      "option objectLockMode must be COMPLIANCE or GOVERNANCE, got 'FOREVER'"),
     ({"objectLockMode": "GOVERNANCE", **BUCKET_DOWN},
      "option objectLockMode needs objectLockDays > 0")],
    ids=["climbing-prefix", "dot-prefix", "control-prefix", "bucket-name", "lock-without-bucket",
         "lock-mode", "lock-without-days"],
)
def test_destination_and_retention_problems_leave_the_wrapper_off(
    capture, tmp_path: Path, options: dict, message: str
) -> None:
    """Going on would write elsewhere than asked, unprotected, or retry forever: a clear error at the
    first call, nothing written or spooled."""
    pcap, truth = capture
    run = drive(pcap, tmp_path / "data", {"kflArr": SEED_QUERIES, **options}, synthetic_items(truth),
                close_timeout=1)
    assert len(run.errors) == 1, run.errors
    assert run.errors[0].startswith(f"kflPcapS3: {message}")
    assert run.errors[0].endswith("; the wrapper stays off")
    assert not run.wrapper.active and run.wrapper.written == [] and run.left_spooled == 0
    assert not (tmp_path / "data" / "repositories").exists()
    assert list((tmp_path / "data" / "spool" / "failed").iterdir()) == []


def test_later_calls_with_other_options_are_reported_once(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    first = {"kflArr": ["dns"], "slackAuthToken": "xoxb-secret"}
    seen: list[dict] = []

    def later_calls(wrapper, _cap) -> None:
        """The script passes other options from some call on (Kubeshark keeps the first ones)."""
        for item in [i for i in seen if i["protocol"]["name"] == "http"][:5]:
            wrapper.handle(item, {**first, "kflArr": ["http"]})
            wrapper.handle(item, dict(first))  # the same options again: nothing to say

    run = drive(pcap, tmp_path / "data", first, synthetic_items(truth, seen), before_close=later_calls)
    (warning,) = run.errors
    assert "options differ from the first call's and are ignored" in warning
    assert "'kflArr': ['dns']" in warning and "'kflArr': ['http']" in warning
    assert "xoxb-secret" not in warning
    assert run.wrapper.opts.kfl_arr == ["dns"]


def test_env_fallbacks_and_kubeshark_tar_layout(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    env = {"S3_PREFIX": "forensics/cluster-a"}
    run = drive(pcap, tmp_path / "data", {"kflArr": SEED_QUERIES, "format": "tar.gz"}, synthetic_items(truth),
                env=env)
    assert run.errors == []
    root = tmp_path / "data" / "repositories"
    tars = sorted(root.glob("forensics/cluster-a/node-1/kflpcaps3-test/kfl_1/kfl_1_kubeshark_*.tar.gz"))
    assert len(tars) == 1
    with tarfile.open(tars[0]) as tar:
        names = sorted(tar.getnames())
        unix = tars[0].name.split("_")[-1].split(".")[0]
        assert names == [f"{unix}.pcap", "content.json", "name_resolution_history.json"]
        content = json.load(tar.extractfile("content.json"))
        capture_bytes = tar.extractfile(f"{unix}.pcap").read()
        history = json.load(tar.extractfile("name_resolution_history.json"))
    assert content["kfl_index"] == 1 and content["kfl_query"] == "dns"
    assert content["pcap_file_name"] == f"{unix}.pcap" and content["time"].endswith(" GMT")
    assert len(content["l4_streams"]) == len(truth["dns_flows"])
    assert list(history) == [unix]
    extracted = tmp_path / "inner.pcap"
    extracted.write_bytes(capture_bytes)
    manifest = json.loads(tars[0].with_name(tars[0].name.replace(".tar.gz", ".json")).read_text())
    assert tshark_packets(extracted) == count_packets(capture_bytes) == manifest["pcap"]["packets"]
    assert verify(open_store(root)).problems == []


def fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget what this process knows of the chains, as a restarted process would: the next wrapper
    reads the state file (and the spool) again."""
    monkeypatch.setattr(chain_module, "_registry", {})


def test_hash_chain_continues_across_restarts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    for seed in (1, 2):
        fresh_process_state(monkeypatch)
        pcap, truth = generated(tmp_path, f"run{seed}", packets=1500, seed=seed)
        assert drive(pcap, data, {"kflArr": SEED_QUERIES}, synthetic_items(truth)).errors == []
    store = open_store(data / "repositories")
    chain = sorted(by_query(store)[1], key=lambda r: r.manifest["seq"])
    assert [r.manifest["seq"] for r in chain] == [0, 1]
    assert chain[0].manifest["previous_manifest_sha256"] is None
    assert chain[1].manifest["previous_manifest_sha256"] == chain[0].sha256
    assert verify(store).problems == []


def test_chain_head_is_recovered_from_the_spool_when_the_state_file_lags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after a repository was committed to the spool but before the state file was rewritten:
    the next process takes the chain's head from the spooled bundle, uploads the bundle and continues
    the chain after it (no second seq 0, no fork)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "repositories").write_text("not a folder: the local store cannot take anything")
    fresh_process_state(monkeypatch)
    pcap, truth = generated(tmp_path, "first", packets=1500, seed=1)
    first = drive(pcap, data, {"kflArr": ["dns"]}, synthetic_items(truth), close_timeout=1)
    assert first.left_spooled == 1  # one repository, committed to the spool, never uploaded
    state = data / "kflpcaps3" / "chains.json"
    assert json.loads(state.read_text())  # the head the crash is about to lose
    state.unlink()  # the state file never got it
    (data / "repositories").unlink()  # the store is back

    fresh_process_state(monkeypatch)
    pcap, truth = generated(tmp_path, "second", packets=1500, seed=2)
    second = drive(pcap, data, {"kflArr": ["dns"]}, synthetic_items(truth))
    assert second.errors == [] and second.left_spooled == 0
    store = open_store(data / "repositories")
    chain = sorted(by_query(store)[0], key=lambda r: r.manifest["seq"])
    assert [r.manifest["seq"] for r in chain] == [0, 1]
    assert chain[1].manifest["previous_manifest_sha256"] == chain[0].sha256
    assert verify(store).problems == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny tmpfs needs root")
def test_full_spool_disk_keeps_the_repository_and_retries(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(data)], check=True)
    try:
        filler = data / "filler"
        free = os.statvfs(data).f_bavail * os.statvfs(data).f_frsize
        filler.write_bytes(b"\0" * (free - 16 * 1024))
        full_errors: list[str] = []

        def on_error(text: str) -> None:
            if "spool disk full" in text and filler.exists():
                full_errors.append(text)
                filler.unlink()  # the operator frees space; the next tick retries

        run = drive(pcap, data, {"kflArr": SEED_QUERIES, "maxL4Streams": 40}, synthetic_items(truth),
                    on_error=on_error, retry_s=0)
        assert len(full_errors) == 1 and "kept in memory" in full_errors[0], run.errors
        assert run.errors == full_errors and run.left_spooled == 0
        store = open_store(data / "repositories")
        repos = by_query(store)
        assert stream_tuples(repos[1], with_l4=True) == Counter(tuple(t) for t in truth["dns_flows"])
        assert stream_tuples(repos[0]) == Counter(tuple(t) for t in truth["http500_streams"])
        expected = truth_packets(truth)
        for chain in repos.values():
            totals = tuple_totals(chain)
            assert totals == {k: v for k, v in expected.items() if k in totals}
        assert verify(store).problems == []
        assert not [p for p in (data / "spool").iterdir() if p.name.startswith(".tmp-")]
    finally:
        subprocess.run(["umount", "-l", str(data)], check=True)


def test_repo_list_and_show_print_queries_with_brackets_verbatim(capture, tmp_path: Path) -> None:
    pcap, truth = capture
    query = 'dns or request.path == "[/:][bold]x"'
    run = drive(pcap, tmp_path / "data", {"kflArr": [query]}, synthetic_items(truth))
    assert run.errors == [] and run.wrapper.written
    root = tmp_path / "data" / "repositories"
    listing = repo_cli("list", str(root))
    assert listing.returncode == 0, listing.stderr
    assert "[/:][bold]x" in listing.stdout
    (manifest,) = root.glob("**/kfl_0/*.json")
    shown = repo_cli("show", str(manifest))
    assert shown.returncode == 0, shown.stderr
    assert query in shown.stdout
