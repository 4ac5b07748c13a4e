"""Name resolution: the static map file (YAML/JSON), names learned from DNS, lookup order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capture.names import NameTable, dns_resolution


def test_static_yaml_ip_and_ip_port(tmp_path: Path) -> None:
    f = tmp_path / "names.yaml"
    f.write_text('10.0.0.2: {name: web, namespace: shop}\n'
                 '"10.0.0.2:9090": {name: web-metrics, namespace: mon}\n'
                 '"[fd00::0:1]:53": {name: kube-dns, namespace: kube-system}\n10.0.0.3: plain-name\n')
    names = NameTable.load(f)
    assert names.resolve("10.0.0.2", 80) == ("web", "shop")
    assert names.resolve("10.0.0.2", 9090) == ("web-metrics", "mon")
    assert names.resolve("fd00::1", 53) == ("kube-dns", "kube-system")
    assert names.resolve("fd00::1", 54) == ("", "")
    assert names.resolve("10.0.0.3", 1) == ("plain-name", "")
    snap = names.snapshot()
    assert snap["10.0.0.2:9090"] == {"ip": "10.0.0.2", "port": "9090", "name": "web-metrics",
                                     "namespace": "mon", "source": "static"}
    assert "[fd00::1]:53" in snap


def test_static_json(tmp_path: Path) -> None:
    f = tmp_path / "names.json"
    f.write_text(json.dumps({"192.168.1.5": {"name": "db", "namespace": "data"}}))
    assert NameTable.load(f).resolve("192.168.1.5", 5432) == ("db", "data")


@pytest.mark.parametrize("text", ["- just\n- a list\n", "10.0.0.1: [1, 2]\n", "not-an-ip: x\n"])
def test_bad_static_files_are_refused(tmp_path: Path, text: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ValueError):
        NameTable.load(f)


def test_learned_names_latest_answer_wins_static_first() -> None:
    names = NameTable({"10.0.0.9": {"name": "pinned", "namespace": "ops"}})
    v0 = names.version
    names.learn("10.0.0.7", "api.prod.svc.cluster.local")
    assert names.resolve("10.0.0.7", 443) == ("api", "prod") and names.version == v0 + 1
    names.learn("10.0.0.7", "www.example.com")
    assert names.resolve("10.0.0.7", 443) == ("www.example.com", "")
    names.learn("10.0.0.7", "www.example.com")
    assert names.version == v0 + 2  # unchanged answers do not bump the version
    names.learn("10.0.0.9", "other.example")
    assert names.resolve("10.0.0.9", 1) == ("pinned", "ops")
    assert names.snapshot()["10.0.0.9"]["source"] == "static"


@pytest.mark.parametrize("dns_name, expected", [
    ("web.shop.svc.cluster.local", ("web", "shop")),
    ("web-0.web.shop.svc.cluster.local.", ("web-0", "shop")),
    ("10-1-2-3.shop.pod.cluster.local", ("10-1-2-3", "shop")),
    ("example.com", ("example.com", "")),
])
def test_kubernetes_dns_names(dns_name: str, expected: tuple[str, str]) -> None:
    assert dns_resolution(dns_name) == expected
