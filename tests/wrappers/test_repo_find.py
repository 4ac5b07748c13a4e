"""The responder's side against real S3 (SeaweedFS): two `kflpcap run`s with different `--node` names on
two captures into one Object-Locked bucket, then `kflpcap repo find|export|show`.

tshark is the oracle: the streams of an address overlapping a window are read off the input
captures, and the exported pcapng is read back with tshark and compared packet by packet (count,
lengths, timestamps, order) with the union of those streams in the inputs.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from wrappers.repo_find import parse_time

ROOT = Path(__file__).parents[2]
PCAPS = ROOT / "tests" / "pcaps"
# node name → capture; both talk to 8.8.8.8 (DNS, kept by the seed script's query 1)
CAPTURES = {"A": "ndpi_mixed_http500-502-keepalive_1kxun_2.5MB.pcap", "B": "sv_dns_udp_and_tcp.pcap"}
IP = "8.8.8.8"
# a window that cuts into both captures' streams of IP: the later ones of A, the earlier ones of B
START, END = "2016-08-02T02:19:39Z", "2022-02-08T18:47:20Z"


@pytest.fixture(scope="module")
def bucket(seaweed) -> str:
    return seaweed.create_bucket("respond", object_lock=True)


@pytest.fixture(scope="module")
def env(seaweed, bucket: str, tmp_path_factory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("cache")
    return {**os.environ, **seaweed.env(bucket), "KFLPCAP_CACHE": str(cache), "PYTHONPATH": str(ROOT)}


def kflpcap(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runtime", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def runs(env: dict[str, str], tmp_path_factory) -> None:
    """`kflpcap run` with the seed script, once per node, into the locked bucket."""
    scripts = tmp_path_factory.mktemp("scripts")
    shutil.copy(ROOT / "scripts" / "kfl_pcap_s3.js", scripts)
    lock = {"S3_OBJECT_LOCK_MODE": "GOVERNANCE", "S3_OBJECT_LOCK_DAYS": "1"}
    for node, pcap in CAPTURES.items():
        data = tmp_path_factory.mktemp(f"data-{node}")
        proc = kflpcap("run", "--pcap", str(PCAPS / pcap), "--scripts", str(scripts), "--data-dir", str(data),
                       "--node", node, env={**env, **lock})
        assert proc.returncode == 0, proc.stderr[-3000:]


def tshark_streams(pcap: Path, ip: str) -> dict[tuple, dict[str, Any]]:
    """tshark's TCP/UDP conversations of `ip`: endpoints, first/last time, packets (time, length)."""
    out = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-Y", f"ip.addr == {ip} && (tcp || udp)", "-T", "fields",
         "-E", "separator=,", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "tcp.stream",
         "-e", "udp.stream", "-e", "ip.src", "-e", "ip.dst", "-e", "tcp.srcport", "-e", "tcp.dstport",
         "-e", "udp.srcport", "-e", "udp.dstport"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    streams: dict[tuple, dict[str, Any]] = {}
    for line in out.splitlines():
        t, length, tcp, udp, src, dst, tsp, tdp, usp, udp_dp = line.split(",")
        l4 = "tcp" if tcp else "udp"
        ends = frozenset(((src, int(tsp or usp)), (dst, int(tdp or udp_dp))))
        s = streams.setdefault((l4, tcp or udp), {"l4": l4, "ends": ends, "packets": []})
        s["packets"].append((Decimal(t), int(length)))
    for s in streams.values():
        s["first"] = s["packets"][0][0]
        s["last"] = s["packets"][-1][0]
    return streams


def expected_streams() -> dict[tuple, dict[str, Any]]:
    """(node, l4, endpoints) → tshark's stream, for the streams of IP overlapping START..END."""
    lo, hi = Decimal(parse_time(START)) / 10**9, Decimal(parse_time(END)) / 10**9
    out = {}
    for node, pcap in CAPTURES.items():
        for s in tshark_streams(PCAPS / pcap, IP).values():
            if s["last"] >= lo and s["first"] <= hi:
                out[(node, s["l4"], s["ends"])] = s
    return out


def found_streams(stdout: str) -> list[tuple]:
    rows = [json.loads(line) for line in stdout.splitlines()]
    return [(r["node"]["name"], r["l4"], frozenset(((r["client"]["ip"], r["client"]["port"]),
                                                   (r["server"]["ip"], r["server"]["port"])))) for r in rows]


def test_find_lists_exactly_the_streams_of_an_address_in_a_window_from_both_nodes(runs, env, bucket) -> None:
    expected = expected_streams()
    everything = {(n, s["l4"], s["ends"])
                  for n, p in CAPTURES.items() for s in tshark_streams(PCAPS / p, IP).values()}
    assert {k[0] for k in expected} == set(CAPTURES), "the window must hold streams of both nodes"
    assert everything - set(expected), "the window must leave some streams of the address out"
    proc = kflpcap("repo", "find", f"s3://{bucket}", "--ip", IP, "--from", START, "--to", END, "--json",
                   env=env)
    assert proc.returncode == 0, proc.stderr
    found = found_streams(proc.stdout)
    assert sorted(found, key=str) == sorted(expected, key=str)
    # the same search answered from the cache (nothing fetched), in the human form
    again = kflpcap("repo", "find", f"s3://{bucket}", "--ip", IP, "--from", START, "--to", END, env=env)
    assert again.returncode == 0
    assert len(again.stdout.splitlines()) == len(expected)
    assert "0 manifests fetched" in again.stderr and " 0 read from the cache" not in again.stderr
    # a KFL expression over the stream records narrows it further
    tcp = kflpcap("repo", "find", f"s3://{bucket}", "--ip", IP, "--kfl", 'l4 == "tcp" and server.port == 53',
                  "--json", env=env)
    assert sorted(found_streams(tcp.stdout), key=str) == sorted(
        (k for k in everything if k[1] == "tcp"), key=str)


def tshark_out(path: Path, *fields: str) -> list[list[str]]:
    args = [a for f in fields for a in ("-e", f)]
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=|", *args],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


def test_export_writes_one_pcapng_equal_to_the_union_of_the_streams(runs, env, bucket, tmp_path) -> None:
    expected = expected_streams()
    want = sorted((p for s in expected.values() for p in s["packets"]), key=lambda p: p[0])
    out = tmp_path / "incident.pcapng"
    proc = kflpcap("repo", "export", f"s3://{bucket}", "--ip", IP, "--from", START, "--to", END,
                   "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    rows = tshark_out(out, "frame.time_epoch", "frame.len", "frame.interface_name", "frame.comment",
                      "tcp.stream")
    got = [(Decimal(r[0]), int(r[1])) for r in rows]
    assert len(got) == len(want) and sum(p[1] for p in got) == sum(p[1] for p in want)
    assert got == want  # count, bytes and order
    assert {r[2] for r in rows} == set(CAPTURES)  # one interface per node (one link type each here)
    tcp = {r[4] for r in rows if r[4]}  # Wireshark's tcp.stream numbering: one number per TCP stream
    assert len(tcp) == sum(1 for k in expected if k[1] == "tcp")
    comments = [r[3] for r in rows if r[3]]
    assert len(comments) == len(expected) and all("repository s3://" in c and "kfl_1" in c for c in comments)
    report = json.loads((tmp_path / "incident.pcapng.custody.json").read_text())
    assert report["verified"] and not report["problems"]
    assert "repo export" in report["command"] and report["user"] and report["host"]
    assert report["outputs"][0]["packets"] == len(want)
    s3 = boto_client(env)
    for obj in report["objects"]:
        body = s3.get_object(Bucket=bucket, Key=obj["data"]["key"])["Body"].read()
        assert obj["data"]["sha256"] == obj["data"]["manifest_sha256"] == sha256(body)
        assert obj["data"]["store_status"]["lock_mode"] == "GOVERNANCE"
    assert "every object verified" in (tmp_path / "incident.pcapng.custody.md").read_text()


def test_export_per_stream_writes_one_file_per_stream(runs, env, bucket, tmp_path) -> None:
    expected = expected_streams()
    proc = kflpcap("repo", "export", f"s3://{bucket}", "--ip", IP, "--from", START, "--to", END,
                   "-o", str(tmp_path / "out"), "--per-stream", env=env)
    assert proc.returncode == 0, proc.stderr
    files = sorted((tmp_path / "out").glob("*.pcapng"))
    assert len(files) == len(expected)
    lengths = sorted(sorted(int(r[0]) for r in tshark_out(f, "frame.len")) for f in files)
    assert lengths == sorted(sorted(p[1] for p in s["packets"]) for s in expected.values())
    assert (tmp_path / "out" / "custody.json").exists()


def boto_client(env: dict[str, str]) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_REGION"])


def sha256(body: bytes) -> str:
    import hashlib

    return hashlib.sha256(body).hexdigest()


def clone(s3: Any, src: str, dst: str) -> list[str]:
    """Copy every object of bucket `src` into `dst` as kflpcap uploads them (SHA-256 checksum, metadata)."""
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=src).get("Contents", [])]
    for key in keys:
        body = s3.get_object(Bucket=src, Key=key)["Body"].read()
        digest = sha256(body)
        s3.put_object(Bucket=dst, Key=key, Body=body, Metadata={"sha256": digest},
                      ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode())
    return keys


@pytest.mark.parametrize("what", ["pcap", "manifest"])
def test_tampering_stops_export_naming_the_object(runs, env, bucket, seaweed, tmp_path, what: str) -> None:
    s3 = boto_client(env)
    copy = seaweed.create_bucket(f"tampered-{what}", object_lock=True)
    keys = clone(s3, bucket, copy)
    manifest = next(k for k in keys if k.startswith("B/kfl-pcap-s3/kfl_1/") and k.endswith(".json"))
    if what == "pcap":
        target = manifest.removesuffix(".json") + ".pcap.gz"
        body = bytearray(s3.get_object(Bucket=copy, Key=target)["Body"].read())
        body[len(body) // 2] ^= 0x01
    else:
        target = manifest
        doc = json.loads(s3.get_object(Bucket=copy, Key=target)["Body"].read())
        doc["reason"] = "edited"
        body = bytearray(json.dumps(doc, indent=2).encode())
    s3.put_object(Bucket=copy, Key=target, Body=bytes(body))  # a new version over the locked one
    out = tmp_path / "x.pcapng"
    args = ["repo", "export", f"s3://{copy}", "--ip", IP, "-o", str(out)]
    stopped = kflpcap(*args, env=env)
    assert stopped.returncode == 1
    assert "STOPPED" in stopped.stderr and target in stopped.stderr
    assert not out.exists()
    forced = kflpcap(*args, "--allow-unverified", env=env)
    assert forced.returncode == 0, forced.stderr
    assert out.exists() and target in forced.stderr
    report = json.loads((tmp_path / "x.pcapng.custody.json").read_text())
    assert not report["verified"] and report["allow_unverified"]
    assert any(target in p for p in report["problems"])
    bad = [o for o in report["objects"] if not o["verified"]]
    assert [o["manifest"]["key"] for o in bad] == [manifest]
    # the report says which of the repository's two objects failed
    assert bad[0]["manifest"]["verified"] == (what == "pcap")
    assert bad[0]["data"]["verified"] == (what == "manifest")
    assert target in (tmp_path / "x.pcapng.custody.md").read_text()


def test_show_prints_object_lock_mode_and_retention(runs, env, bucket) -> None:
    s3 = boto_client(env)
    key = next(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="A/kfl-pcap-s3/kfl_1/")["Contents"]
               if o["Key"].endswith(".pcap.gz"))
    manifest_key = key.removesuffix(".pcap.gz") + ".json"
    proc = kflpcap("repo", "show", f"s3://{bucket}/{key}", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for label, k in (("manifest lock", manifest_key), ("capture lock", key)):
        until = s3.head_object(Bucket=bucket, Key=k)["ObjectLockRetainUntilDate"]
        text = until.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert any(line.startswith(label) and f"GOVERNANCE until {text}" in line for line in lines)
    assert "seq 0: 1 of 1" in proc.stdout and "links ok" in proc.stdout
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    for s in manifest["streams"]:
        assert f"{s['client']['ip']}:{s['client']['port']}" in proc.stdout
