"""The command line with Kubernetes identity: items/streams with --kubeconfig, `k8s snapshot` and a
replay with --names that gives the same items."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
from pathlib import Path

from tests.k8s.apiserver import ApiServer, endpoint_slice, pod, service
from tests.k8s.conftest import wait_for
from tests.k8s.test_items import CLIENT, CLUSTER_IP, POD_IP, _get


def _pcap(path: Path, frames: list[tuple[int, bytes]]) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)]  # nanosecond pcap, Ethernet
    for ts, raw in sorted(frames, key=lambda f: f[0]):
        sec, ns = divmod(ts, 1_000_000_000)
        out.append(struct.pack("<IIII", sec, ns, len(raw), len(raw)) + raw)
    path.write_bytes(b"".join(out))
    return path


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runtime", *args], capture_output=True, timeout=timeout)


def _setup(api: ApiServer) -> None:
    a = api.add("pods", pod("web-a", "payments", POD_IP, "2026-12-06T10:00:00Z", labels={"app": "web"}))
    api.add("pods", pod("frontend-7d9f", "shop", CLIENT[0], "2026-12-06T09:00:00Z"))
    api.add("services", service("web", "payments", CLUSTER_IP, 80, "2026-12-06T09:00:00Z"))
    api.add("endpointslices", endpoint_slice("web", "payments", 80, [a], "2026-12-06T09:00:00Z"))


def _three(tmp_path: Path) -> Path:
    """Talks to the pod IP before and after 12:00-12:05 and one to the ClusterIP."""
    return _pcap(tmp_path / "t.pcap", _get("2026-12-06T11:50:00Z", (POD_IP, 80), 40001)
                 + _get("2026-12-06T12:10:00Z", (POD_IP, 80), 40002)
                 + _get("2026-12-06T11:55:00Z", (CLUSTER_IP, 80), 40003))


def _dst_names(items: list[dict]) -> dict[str, tuple[str, str]]:
    return {i["src"]["port"]: (i["dst"]["name"], i["dst"]["namespace"]) for i in items}


def _lines(proc: subprocess.CompletedProcess) -> list[dict]:
    assert proc.returncode == 0, proc.stderr.decode()
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_snapshot_then_names_replays_the_same_items_as_the_live_resolver(api, tmp_path):
    _setup(api)
    kc = str(api.kubeconfig(tmp_path / "kubeconfig"))
    pcap = _three(tmp_path)
    live = _lines(_cli("items", "--pcap", str(pcap), "--kubeconfig", kc, "--jobs", "1", "--node", "n"))
    assert _dst_names(live) == {"40001": ("web-a", "payments"), "40002": ("web-a", "payments"),
                                "40003": ("web", "payments")}
    sharded = _lines(_cli("items", "--pcap", str(pcap), "--kubeconfig", kc, "--jobs", "2", "--node", "n"))
    assert sorted(sharded, key=lambda i: i["id"]) == sorted(live, key=lambda i: i["id"])

    snap = _cli("k8s", "snapshot", "-o", str(tmp_path / "names.json"), "--kubeconfig", kc)
    assert snap.returncode == 0, snap.stderr.decode()
    table = json.loads((tmp_path / "names.json").read_text())
    assert [(e["name"], e["since"], e["until"]) for e in table[POD_IP]] == [
        ("web-a", "2026-12-06T10:00:00.000000000Z", None)]
    api.stop()  # away from the cluster
    replay = _lines(_cli("items", "--pcap", str(pcap), "--names", str(tmp_path / "names.json"), "--jobs", "1",
                         "--node", "n"))
    assert replay == live
    filtered = _lines(_cli("items", "--pcap", str(pcap), "--names", str(tmp_path / "names.json"),
                           "--filter", 'dst.pod.labels.app == "web" and src.namespace == "shop"'))
    assert sorted(i["src"]["port"] for i in filtered) == ["40001", "40002"]


def test_streams_show_the_endpoints_names(api, tmp_path):
    _setup(api)
    kc = str(api.kubeconfig(tmp_path / "kubeconfig"))
    pcap = _three(tmp_path)
    rows = _lines(_cli("streams", "--pcap", str(pcap), "--kubeconfig", kc, "--json"))
    assert (rows[0]["src_name"], rows[0]["src_namespace"], rows[0]["dst_name"], rows[0]["dst_namespace"]) == (
        "frontend-7d9f", "shop", "web-a", "payments")
    text = _cli("streams", "--pcap", str(pcap), "--kubeconfig", kc)
    assert b"names=shop/frontend-7d9f->payments/web-a" in text.stdout


def test_a_missing_kubeconfig_is_a_usage_error(tmp_path):
    for cmd in ("items", "streams"):
        proc = _cli(cmd, "--pcap", str(tmp_path / "none.pcap"), "--kubeconfig", str(tmp_path / "nope"))
        assert proc.returncode == 2 and b"no such kubeconfig" in proc.stderr


def test_snapshot_watch_records_ip_reuse_for_a_replay(api, tmp_path):
    _setup(api)
    kc = str(api.kubeconfig(tmp_path / "kubeconfig"))
    out = tmp_path / "names.json"
    proc = subprocess.Popen([sys.executable, "-m", "runtime", "k8s", "snapshot", "-o", str(out), "--watch",
                             "--kubeconfig", kc], stderr=subprocess.PIPE)
    try:
        wait_for(out.exists, timeout=30)
        api.delete("pods", "payments", "web-a", deletion_timestamp="2026-12-06T12:00:00Z")
        api.add("pods", pod("web-b", "payments", POD_IP, "2026-12-06T12:05:00Z", labels={"app": "web-v2"}))
        wait_for(lambda: json.loads(out.read_text())[POD_IP][-1]["name"] == "web-b", timeout=30)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert b"watch ended" in proc.stderr.read()
    api.stop()
    replay = _lines(_cli("items", "--pcap", str(_three(tmp_path)), "--names", str(out)))
    assert _dst_names(replay) == {"40001": ("web-a", "payments"), "40002": ("web-b", "payments"),
                                  "40003": ("web", "payments")}
