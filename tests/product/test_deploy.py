"""deploy/daemonset.yaml parses and wires what a per-node kflpcap needs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docs() -> dict[str, list[dict]]:
    by_kind: dict[str, list[dict]] = {}
    for doc in yaml.safe_load_all((REPO / "deploy" / "daemonset.yaml").read_text()):
        by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


@pytest.fixture(scope="module")
def pod(docs: dict[str, list[dict]]) -> dict:
    (daemonset,) = docs["DaemonSet"]
    assert daemonset["apiVersion"] == "apps/v1"
    selector = daemonset["spec"]["selector"]["matchLabels"]
    template = daemonset["spec"]["template"]
    assert selector.items() <= template["metadata"]["labels"].items()
    return template


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _mounts(pod: dict) -> dict[str, dict]:
    (container,) = pod["spec"]["containers"]
    return {m["name"]: m for m in container["volumeMounts"]}


def test_host_network_capabilities_and_grace(pod: dict) -> None:
    spec = pod["spec"]
    assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert spec["terminationGracePeriodSeconds"] >= 30
    (container,) = spec["containers"]
    assert {"NET_ADMIN", "NET_RAW"} <= set(container["securityContext"]["capabilities"]["add"])


def test_args_run_one_capture_per_node(pod: dict) -> None:
    (container,) = pod["spec"]["containers"]
    args = container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert args[0] == "run"
    assert _flag(args, "--interface") == "$(KFLPCAP_INTERFACE)" and env["KFLPCAP_INTERFACE"]["value"]
    assert _flag(args, "--node") == "$(NODE_NAME)"
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    for var in re.findall(r"\$\((\w+)\)", " ".join(args)):
        assert var in env, f"$({var}) is expanded by Kubernetes only from the container env"
    assert {"S3_BUCKET", "S3_PREFIX"} <= env.keys()


def test_metrics_port_matches_container_port_and_annotations(pod: dict) -> None:
    (container,) = pod["spec"]["containers"]
    port = int(_flag(container["args"], "--metrics-port"))
    assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert container["livenessProbe"]["httpGet"]["port"] == port


def test_scripts_come_from_a_configmap_folder_that_updates(docs: dict, pod: dict) -> None:
    (container,) = pod["spec"]["containers"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = _mounts(pod)
    scripts_dir = _flag(container["args"], "--scripts")
    (scripts,) = [name for name, m in mounts.items() if m["mountPath"] == scripts_dir]
    assert "subPath" not in mounts[scripts], "subPath mounts never see ConfigMap updates"
    configmaps = {c["metadata"]["name"]: c for c in docs["ConfigMap"]}
    shipped = configmaps[volumes[scripts]["configMap"]["name"]]["data"]
    assert shipped["kfl_pcap_s3.js"] == (REPO / "scripts" / "kfl_pcap_s3.js").read_text()
    env_file = Path(_flag(container["args"], "--env-file"))
    (env_mount,) = [name for name, m in mounts.items() if m["mountPath"] == str(env_file.parent)]
    assert env_file.name in configmaps[volumes[env_mount]["configMap"]["name"]]["data"]


def test_data_folder_is_on_the_node(pod: dict) -> None:
    (container,) = pod["spec"]["containers"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    data_dir = _flag(container["args"], "--data-dir")
    (data,) = [name for name, m in _mounts(pod).items() if m["mountPath"] == data_dir]
    assert volumes[data]["hostPath"]["type"] == "DirectoryOrCreate"
    assert not _mounts(pod)[data].get("readOnly")


CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def test_every_namespaced_object_is_in_one_namespace(docs: dict) -> None:
    (namespace,) = docs["Namespace"]
    name = namespace["metadata"]["name"]
    for kind, objects in docs.items():
        for obj in objects:
            if kind not in CLUSTER_SCOPED:
                assert obj["metadata"]["namespace"] == name, kind
