"""Repositories written with Kubernetes names: the manifest keeps each stream's endpoints as they
were at capture time, and `kflpcap repo list` shows them."""

from __future__ import annotations

import json

from tests.k8s.test_cli import _cli, _setup, _three

SCRIPT = """// Payments traffic
function onItemCaptured(data) { wrapper.kflPcapS3(data, {kflArr: ['dst.namespace == "payments"']}); }
"""


def test_manifests_carry_the_endpoints_identities_and_repo_list_shows_them(api, tmp_path):
    _setup(api)
    (tmp_path / "s.js").write_text(SCRIPT)
    done = _cli("run", "--pcap", str(_three(tmp_path)), "--scripts", str(tmp_path / "s.js"),
                "--data-dir", str(tmp_path / "d"), "--kubeconfig", str(api.kubeconfig(tmp_path / "kc")),
                "--no-progress")
    assert done.returncode == 0, done.stderr.decode()
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "d" / "repositories").rglob("*.json")
                 if "kflpcap_manifest" in p.read_text()]
    streams = [s for m in manifests for s in m["streams"]]
    assert len(streams) == 3
    by_port = {s["client"]["port"]: s for s in streams}
    web = by_port[40001]["server"]
    assert (web["name"], web["namespace"], web["workload"], web["labels"], web["service"]) == (
        "web-a", "payments", "pod", {"app": "web"}, "web")
    assert by_port[40003]["server"]["workload"] == "service"
    assert {s["client"]["name"] for s in streams} == {"frontend-7d9f"}
    assert all(m["names"]["10.244.1.5"]["name"] == "web-a" for m in manifests)
    listed = _cli("repo", "list", str(tmp_path / "d" / "repositories"))
    assert listed.returncode == 0, listed.stderr.decode()
    assert b"shop/frontend-7d9f -> payments/web-a" in listed.stdout
    assert b"shop/frontend-7d9f -> payments/web" in listed.stdout
