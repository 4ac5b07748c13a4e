"""deploy/daemonset.yaml: the resolver's RBAC is read-only and covers exactly what it reads."""

from __future__ import annotations

from pathlib import Path

import yaml

from capture.k8s.resolver import PATHS

REPO = Path(__file__).resolve().parents[2]
READ = {"get", "list", "watch"}


def _docs() -> dict[str, list[dict]]:
    by_kind: dict[str, list[dict]] = {}
    for doc in yaml.safe_load_all((REPO / "deploy" / "daemonset.yaml").read_text()):
        by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def _group_resource(path: str) -> tuple[str, str]:
    """/api/v1/pods -> ("", "pods"); /apis/discovery.k8s.io/v1/endpointslices -> ("discovery.k8s.io", ...)."""
    parts = path.strip("/").split("/")
    return ("", parts[-1]) if parts[0] == "api" else (parts[1], parts[-1])


def test_cluster_role_is_read_only_on_exactly_what_the_resolver_reads() -> None:
    docs = _docs()
    assert "Role" not in docs and "RoleBinding" not in docs
    (role,) = docs["ClusterRole"]
    granted = set()
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}  # no nonResourceURLs, resourceNames
        assert set(rule["verbs"]) == READ
        assert "*" not in rule["apiGroups"] and "*" not in rule["resources"]
        granted |= {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {_group_resource(p) for p in PATHS.values()}


def test_the_daemonset_runs_with_the_bound_service_account_and_k8s_on() -> None:
    docs = _docs()
    (role,) = docs["ClusterRole"]
    (binding,) = docs["ClusterRoleBinding"]
    (account,) = docs["ServiceAccount"]
    (daemonset,) = docs["DaemonSet"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    spec = daemonset["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    assert daemonset["metadata"]["namespace"] == account["metadata"]["namespace"]
    assert spec.get("automountServiceAccountToken", True) is True
    (container,) = spec["containers"]
    assert "--k8s" in container["args"]
