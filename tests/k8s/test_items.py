"""Items' src/dst from the resolver: as of each item's capture time, queryable with KFL."""

from __future__ import annotations

import kfl
from capture.k8s.objects import timestamp_ns
from capture.names import NameTable
from tests.items.util import Talk, run_frames
from tests.k8s.apiserver import ApiServer, endpoint_slice, pod, service
from tests.k8s.conftest import wait_for

CLIENT = ("10.244.2.3", 40000)
POD_IP = "10.244.1.5"
CLUSTER_IP = "10.96.0.10"


def _get(t0: str, server: tuple[str, int], port: int = 40000) -> list:
    talk = Talk(client=(CLIENT[0], port), server=server, t0=timestamp_ns(t0))
    talk.send(0, b"GET /orders HTTP/1.1\r\nHost: web.payments\r\n\r\n")
    talk.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    return talk.close()


def _setup(api: ApiServer) -> None:
    a = api.add("pods", pod("web-a", "payments", POD_IP, "2026-12-06T10:00:00Z", labels={"app": "web"}))
    front = pod("frontend-7d9f", "shop", CLIENT[0], "2026-12-06T09:00:00Z", labels={"app": "frontend"})
    api.add("pods", front)
    api.add("services", service("web", "payments", CLUSTER_IP, 80, "2026-12-06T09:00:00Z"))
    api.add("endpointslices", endpoint_slice("web", "payments", 80, [a], "2026-12-06T09:00:00Z"))


def test_ip_reuse_items_before_name_the_old_pod_items_after_the_new_one(api, connect):
    _setup(api)
    resolver, _lines = connect()
    assert resolver.wait_synced(10)
    api.delete("pods", "payments", "web-a", deletion_timestamp="2026-12-06T12:00:00Z")
    api.add("pods", pod("web-b", "payments", POD_IP, "2026-12-06T12:05:00Z", labels={"app": "web-v2"}))
    wait_for(lambda: (resolver.history.current(POD_IP) or {}).get("name") == "web-b")
    frames = (_get("2026-12-06T11:50:00Z", (POD_IP, 80), 40001)
              + _get("2026-12-06T12:10:00Z", (POD_IP, 80), 40002)
              + _get("2026-12-06T11:55:00Z", (CLUSTER_IP, 80), 40003))
    items = run_frames(sorted(frames, key=lambda f: f[0]), names=NameTable(k8s=resolver.history))
    by_port = {int(i["src"]["port"]): i for i in items}
    before, after, via_service = by_port[40001], by_port[40002], by_port[40003]
    assert (before["dst"]["name"], before["dst"]["pod"]["labels"]) == ("web-a", {"app": "web"})
    assert (after["dst"]["name"], after["dst"]["pod"]["labels"]) == ("web-b", {"app": "web-v2"})
    assert before["dst"]["service"]["name"] == "web" and before["dst"]["resolutionMechanism"] == "ip"
    assert (via_service["dst"]["name"], via_service["dst"]["pod"]) == ("web", None)
    assert via_service["dst"]["service"]["spec"]["clusterIP"] == CLUSTER_IP
    for item in items:
        assert (item["src"]["name"], item["src"]["namespace"]) == ("frontend-7d9f", "shop")
        assert item["dst"]["namespace"] == "payments"
    labelled = kfl.compile('dst.pod.labels.app == "web"')
    assert [i["src"]["port"] for i in items if labelled.match(i)] == ["40001"]
    ns = kfl.compile('dst.namespace == "payments" and src.name.startsWith("frontend-")')
    assert sum(ns.match(i) for i in items) == 3
    assert not any(kfl.compile('dst.namespace == "shop"').match(i) for i in items)


def test_unresolved_endpoints_have_the_full_shape_and_http_falls_back_to_host(api, connect):
    _setup(api)
    resolver, _lines = connect()
    assert resolver.wait_synced(10)
    frames = _get("2026-12-06T11:50:00Z", ("203.0.113.9", 80))
    items = run_frames(frames, names=NameTable(k8s=resolver.history))
    dst = items[0]["dst"]
    no_process = {"cgroupId": 0, "containerId": "", "socketId": 0, "processId": 0, "parentProcessId": 0,
                  "hostProcessId": 0, "hostParentProcessId": 0, "processName": ""}  # no eBPF here
    assert dst == {"ip": "203.0.113.9", "port": "80", "name": "web.payments", "namespace": "", "pod": None,
                   "service": None, "endpointSlice": None, "resolutionMechanism": "http-header", **no_process}
    assert items[0]["src"]["resolutionMechanism"] == "ip"
    assert kfl.compile('dst.namespace == ""').match(items[0])
    plain = run_frames(frames)[0]["dst"]  # without Kubernetes names: the same shape, Host as the name
    assert plain == dst
