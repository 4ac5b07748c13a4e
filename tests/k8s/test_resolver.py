"""The resolver against a local API server: list + watch, resume, 410 Gone, lost server, auth."""

from __future__ import annotations

from capture.k8s.objects import timestamp_ns
from tests.k8s.apiserver import ApiServer, endpoint_slice, node, pod, service
from tests.k8s.conftest import wait_for

T_A = "2026-12-06T10:00:00Z"


def _cluster(api: ApiServer) -> dict:
    web = api.add("pods", pod("web-7d9f", "payments", "10.244.1.5", T_A, labels={"app": "web"}))
    api.add("pods", pod("metrics-agent", "mon", "192.168.50.1", T_A, host_network=True, ports=[9100]))
    api.add("services", service("web", "payments", "10.96.0.10", 80, T_A))
    api.add("endpointslices", endpoint_slice("web", "payments", 80, [web], T_A))
    api.add("nodes", node("node-1", "192.168.50.1", T_A))
    return web


def _now(resolver, key):
    return resolver.history.current(key)


def test_identities_of_pods_services_host_network_pods_and_nodes(api, connect):
    _cluster(api)
    resolver, _lines = connect()
    assert resolver.wait_synced(10) and not resolver.stale
    web = _now(resolver, "10.244.1.5")
    assert (web["name"], web["namespace"], web["resolutionMechanism"]) == ("web-7d9f", "payments", "ip")
    assert web["pod"]["labels"] == {"app": "web"} and web["pod"]["node"] == "node-1"
    assert web["pod"]["phase"] == "Running" and "managedFields" not in web["pod"]["metadata"]
    assert "env" not in web["pod"]["spec"]["containers"][0]
    assert web["service"]["name"] == "web" and web["endpointSlice"]["name"] == "web-abcde"
    svc = _now(resolver, "10.96.0.10")
    assert (svc["name"], svc["namespace"], svc["pod"]) == ("web", "payments", None)
    assert svc["service"]["clusterIP"] == "10.96.0.10"
    agent = _now(resolver, "192.168.50.1:9100")
    assert (agent["name"], agent["resolutionMechanism"], agent["pod"]["hostNetwork"]) == (
        "metrics-agent", "ip-and-port", True)
    host = _now(resolver, "192.168.50.1")
    assert (host["name"], host["namespace"], host["node"]["name"]) == ("node-1", "", "node-1")


def test_every_request_carries_the_token_and_watches_start_at_the_listed_version(api, connect):
    _cluster(api)
    resolver, _lines = connect()
    assert resolver.wait_synced(10)
    wait_for(lambda: all(api.watches(k) for k in ("pods", "services", "endpointslices", "nodes")))
    assert {r["auth"] for r in api.requests} == {f"Bearer {api.token}"}
    listed_at = str(api.rv)
    for kind in ("pods", "services", "endpointslices", "nodes"):
        first = api.watches(kind)[0]["query"]
        assert first["resourceVersion"] == listed_at and first["allowWatchBookmarks"] == "true"


def test_a_broken_watch_resumes_after_the_last_event_without_a_new_list(api, connect):
    _cluster(api)
    resolver, _lines = connect()
    assert resolver.wait_synced(10)
    late = api.add("pods", pod("late", "payments", "10.244.1.9", T_A))
    wait_for(lambda: _now(resolver, "10.244.1.9") is not None)
    lists_before = len(api.lists("pods"))
    watches_before = len(api.watches("pods"))
    api.drop_watches()
    wait_for(lambda: len(api.watches("pods")) > watches_before)
    assert api.watches("pods")[-1]["query"]["resourceVersion"] >= late["metadata"]["resourceVersion"]
    api.delete("pods", "payments", "late")
    wait_for(lambda: _now(resolver, "10.244.1.9") is None)
    assert len(api.lists("pods")) == lists_before
    assert resolver.counters["events"] >= 2


def test_410_gone_lists_again_and_drops_what_vanished_meanwhile(api, connect):
    _cluster(api)
    resolver, _lines = connect()
    assert resolver.wait_synced(10)
    lists_before = len(api.lists("pods"))
    api.stop()  # while it is away, a pod goes and the history is compacted
    wait_for(lambda: resolver.stale)
    del api.objects["pods"]["payments/web-7d9f"]
    api.compact()
    api.add("pods", pod("web-new", "payments", "10.244.1.6", "2026-12-06T11:00:00Z"))
    api.compact()
    api.start()
    wait_for(lambda: _now(resolver, "10.244.1.6") is not None and not resolver.stale)
    assert _now(resolver, "10.244.1.5") is None
    assert len(api.lists("pods")) == lists_before + 1 and resolver.counters["relists_gone"] >= 1


def test_server_down_at_start_then_up(api, connect):
    _cluster(api)
    api.stop()
    resolver, lines = connect()
    wait_for(lambda: lines)
    assert resolver.stale and "unreachable" in lines[0] and "stale" in lines[0]
    assert resolver.history.current("10.244.1.5") is None
    api.start()
    assert resolver.wait_synced(15)
    wait_for(lambda: not resolver.stale)
    assert _now(resolver, "10.244.1.5")["name"] == "web-7d9f"
    assert len(lines) == 2 and "reachable" in lines[1] and resolver.counters["errors"] >= 1


def test_server_lost_mid_run_keeps_the_last_known_names_and_says_so_once(api, connect):
    _cluster(api)
    resolver, lines = connect()
    assert resolver.wait_synced(10) and lines == []
    api.stop()
    wait_for(lambda: resolver.stale and resolver.counters["errors"] >= 3)
    assert len(lines) == 1 and "unreachable" in lines[0]
    assert _now(resolver, "10.244.1.5")["name"] == "web-7d9f"  # as last known
    api.add("pods", pod("while-away", "payments", "10.244.1.7", T_A))
    api.start()
    wait_for(lambda: _now(resolver, "10.244.1.7") is not None and not resolver.stale)
    assert len(lines) == 2


def test_a_wrong_token_is_refused_and_leaves_the_resolver_stale(api, connect):
    _cluster(api)
    resolver, lines = connect(token="another-token")
    wait_for(lambda: lines)
    assert "401" in lines[0] and resolver.stale and not resolver.wait_synced(0.2)


def test_ip_reuse_keeps_the_old_pod_for_earlier_times(api, connect):
    _cluster(api)
    resolver, _lines = connect()
    assert resolver.wait_synced(10)
    api.delete("pods", "payments", "web-7d9f", deletion_timestamp="2026-12-06T12:00:00Z")
    api.add("pods", pod("web-b", "payments", "10.244.1.5", "2026-12-06T12:05:00Z"))
    wait_for(lambda: (_now(resolver, "10.244.1.5") or {}).get("name") == "web-b")
    history = resolver.history
    assert history.lookup("10.244.1.5", timestamp_ns("2026-12-06T11:59:00Z"))[0]["name"] == "web-7d9f"
    assert history.lookup("10.244.1.5", timestamp_ns("2026-12-06T12:03:00Z"))[0] is None
    assert history.lookup("10.244.1.5", timestamp_ns("2026-12-06T12:06:00Z"))[0]["name"] == "web-b"
    assert history.lookup("10.244.1.5", timestamp_ns("2026-12-06T09:00:00Z"))[0] is None
