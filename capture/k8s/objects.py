"""Kubernetes objects as items carry them: trimmed copies plus a few flat fields for queries.

Items share these objects (treat them as read-only). A full Pod is large (managedFields, every
container's env and volumes); an item keeps what identifies a workload: metadata without
managedFields and the last-applied annotation, the containers' names, images and ports, the node,
the phase and the addresses. Flat fields are added next to `metadata`/`spec`/`status` so that
queries read naturally: `dst.pod.labels.app`, `dst.pod.node`, `dst.service.name`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

_DROP_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
_SERVICE_SPEC = ("type", "clusterIP", "clusterIPs", "ports", "selector", "externalIPs", "loadBalancerIP")


def uid(obj: dict[str, Any]) -> str:
    md = obj.get("metadata") or {}
    return md.get("uid") or f"{md.get('namespace', '')}/{md.get('name', '')}"


def created_ns(obj: dict[str, Any] | None) -> int | None:
    """metadata.creationTimestamp in ns, None when absent or unreadable."""
    return timestamp_ns((obj or {}).get("metadata", {}).get("creationTimestamp"))


def deleted_ns(obj: dict[str, Any] | None) -> int | None:
    return timestamp_ns((obj or {}).get("metadata", {}).get("deletionTimestamp"))


def timestamp_ns(text: Any) -> int | None:
    """An RFC 3339 time (`2026-12-06T15:00:00Z`, fractions to the ns) in ns since the epoch."""
    if not isinstance(text, str) or not text:
        return None
    frac = 0
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac = int(rest[:digits][:9].ljust(9, "0") or 0)
        text = head + rest[digits:]
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp()) * 1_000_000_000 + frac


def rfc3339(ns: int) -> str:
    """ns since the epoch as RFC 3339 UTC with 9 fraction digits."""
    sec, frac = divmod(ns, 1_000_000_000)
    return dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    md = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    notes = md.get("annotations")
    if notes and any(k in notes for k in _DROP_ANNOTATIONS):
        md["annotations"] = {k: v for k, v in notes.items() if k not in _DROP_ANNOTATIONS}
    return md


def _container(c: dict[str, Any]) -> dict[str, Any]:
    return {k: c[k] for k in ("name", "image", "ports") if k in c}


def pod_view(pod: dict[str, Any]) -> dict[str, Any]:
    md = _metadata(pod)
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    keep_spec = {k: spec[k] for k in ("nodeName", "hostNetwork", "serviceAccountName") if k in spec}
    keep_spec["containers"] = [_container(c) for c in spec.get("containers") or []]
    keep_status = {k: status[k] for k in ("phase", "podIP", "podIPs", "hostIP", "startTime") if k in status}
    return {
        "name": md.get("name", ""),
        "namespace": md.get("namespace", ""),
        "labels": md.get("labels") or {},
        "node": spec.get("nodeName", ""),
        "phase": status.get("phase", ""),
        "ip": status.get("podIP", ""),
        "hostNetwork": bool(spec.get("hostNetwork")),
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": md,
        "spec": keep_spec,
        "status": keep_status,
    }


def service_view(svc: dict[str, Any]) -> dict[str, Any]:
    md = _metadata(svc)
    spec = svc.get("spec") or {}
    return {
        "name": md.get("name", ""),
        "namespace": md.get("namespace", ""),
        "labels": md.get("labels") or {},
        "type": spec.get("type", "ClusterIP"),
        "clusterIP": spec.get("clusterIP", ""),
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": md,
        "spec": {k: v for k, v in spec.items() if k in _SERVICE_SPEC},
        "status": svc.get("status") or {},
    }


def slice_view(es: dict[str, Any]) -> dict[str, Any]:
    md = _metadata(es)
    return {
        "name": md.get("name", ""),
        "namespace": md.get("namespace", ""),
        "labels": md.get("labels") or {},
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": md,
        "addressType": es.get("addressType", ""),
        "ports": es.get("ports") or [],
        "endpoints": es.get("endpoints") or [],
    }


def node_view(node: dict[str, Any]) -> dict[str, Any]:
    md = _metadata(node)
    status = node.get("status") or {}
    return {
        "name": md.get("name", ""),
        "labels": md.get("labels") or {},
        "addresses": status.get("addresses") or [],
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {k: md[k] for k in ("name", "uid", "labels", "creationTimestamp") if k in md},
    }


def pod_ips(pod: dict[str, Any]) -> list[str]:
    status = pod.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or [] if p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return ips


def pod_ports(pod: dict[str, Any]) -> list[int]:
    """The ports a host-network pod listens on (containerPort, hostPort)."""
    ports: set[int] = set()
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            for k in ("containerPort", "hostPort"):
                if isinstance(p.get(k), int):
                    ports.add(p[k])
    return sorted(ports)


def service_ips(svc: dict[str, Any]) -> list[str]:
    spec = svc.get("spec") or {}
    ips = list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
    ips += spec.get("externalIPs") or []
    for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if ing.get("ip"):
            ips.append(ing["ip"])
    return [ip for ip in dict.fromkeys(ips) if ip and ip != "None"]


def node_ips(node: dict[str, Any]) -> list[str]:
    return [a["address"] for a in (node.get("status") or {}).get("addresses") or []
            if a.get("type") in ("InternalIP", "ExternalIP") and a.get("address")]


def slice_service(es: dict[str, Any]) -> tuple[str, str]:
    md = es.get("metadata") or {}
    return md.get("namespace", ""), (md.get("labels") or {}).get("kubernetes.io/service-name", "")


def brief(end: dict[str, Any]) -> dict[str, Any]:
    """An item's src/dst in a few fields (for manifests and tables): name, namespace, and when
    known the workload kind, pod labels and node, service name and resolution mechanism."""
    out: dict[str, Any] = {"name": end.get("name") or "", "namespace": end.get("namespace") or ""}
    pod, svc, node = end.get("pod"), end.get("service"), end.get("node")
    if isinstance(pod, dict):
        out.update(workload="pod", labels=pod.get("labels") or {}, node=pod.get("node") or "")
    elif isinstance(svc, dict):
        out["workload"] = "service"
    elif isinstance(node, dict):
        out["workload"] = "node"
    if isinstance(svc, dict):
        out["service"] = svc.get("name") or ""
    if end.get("resolutionMechanism"):
        out["resolutionMechanism"] = end["resolutionMechanism"]
    return out
