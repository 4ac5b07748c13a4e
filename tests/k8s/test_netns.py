"""Acceptance: real traffic in network namespaces — client pod → service ClusterIP → backend pod —
captured, then replayed with the local API server describing those pods and services.

Topology (one namespace each): `client` (the frontend pod, 10.232.1.2), `node` (the node:
10.232.1.1 towards the client, 10.232.2.1 towards the backend, the ClusterIP 10.232.96.10 on its
loopback with a userspace proxy in front of it, as kube-proxy's userspace mode does, and a
host-network metrics agent on 10.232.1.1:9100), `backend` (the web pod, 10.232.2.2:8080). The
capture is taken on the node's two interfaces."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kfl
from tests.k8s.apiserver import ApiServer, endpoint_slice, node, pod, service
from tests.k8s.test_cli import _cli
from tests.netns import netns, netns_available, veth

pytestmark = [pytest.mark.live, pytest.mark.skipif(not netns_available(), reason="needs root and ip netns")]

CLIENT, NODE_A, NODE_B, BACKEND = "10.232.1.2", "10.232.1.1", "10.232.2.1", "10.232.2.2"
CLUSTER_IP = "10.232.96.10"
T = "2026-01-01T00:00:00Z"

PROXY = """
import socket, sys, threading
listen, target = (sys.argv[1], int(sys.argv[2])), (sys.argv[3], int(sys.argv[4]))
def pipe(a, b):
    while data := a.recv(65536):
        b.sendall(data)
    b.shutdown(socket.SHUT_WR)
srv = socket.create_server(listen)
while True:
    conn, _ = srv.accept()
    up = socket.create_connection(target)
    threading.Thread(target=pipe, args=(conn, up), daemon=True).start()
    threading.Thread(target=pipe, args=(up, conn), daemon=True).start()
"""

SNIFF = """
import signal, sys, threading
from scapy.all import AsyncSniffer, wrpcap
sniffer = AsyncSniffer(iface=sys.argv[2:], store=True)
sniffer.start()
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
print("ready", flush=True)
done.wait()
wrpcap(sys.argv[1], sniffer.stop())
"""

GET = """
import sys, urllib.request
for url in sys.argv[1:]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200, url
"""


def _describe(api: ApiServer) -> None:
    front = pod("frontend-7d9f", "shop", CLIENT, T, labels={"app": "frontend"})
    web = pod("web-5c8d", "payments", BACKEND, T, labels={"app": "web"}, ports=[8080])
    agent = pod("metrics-agent", "mon", NODE_A, T, host_network=True, ports=[9100])
    for obj in (front, web, agent):
        api.add("pods", obj)
    api.add("services", service("web", "payments", CLUSTER_IP, 80, T))
    api.add("endpointslices", endpoint_slice("web", "payments", 8080, [web], T))
    n = node("node-1", NODE_A, T)
    n["status"]["addresses"].append({"type": "InternalIP", "address": NODE_B})
    api.add("nodes", n)


def _capture(tmp_path: Path) -> Path:
    pcap = tmp_path / "node.pcap"
    (tmp_path / "proxy.py").write_text(PROXY)
    (tmp_path / "sniff.py").write_text(SNIFF)
    (tmp_path / "get.py").write_text(GET)
    with (netns("k8sc") as client, netns("k8sn") as node_ns, netns("k8sb") as backend,
          veth(node_ns, client, f"{NODE_A}/24", f"{CLIENT}/24", prefix="k8v") as (node_a, _c),
          veth(node_ns, backend, f"{NODE_B}/24", f"{BACKEND}/24", prefix="k8v") as (node_b, _b)):
        client.run(["ip", "route", "add", "default", "via", NODE_A])
        backend.run(["ip", "route", "add", "default", "via", NODE_B])
        node_ns.run(["ip", "addr", "add", f"{CLUSTER_IP}/32", "dev", "lo"])
        client.run(["ip", "route", "add", f"{CLUSTER_IP}/32", "via", NODE_A])
        serve = [sys.executable, "-m", "http.server", "--directory", str(tmp_path), "--bind"]
        backend.popen([*serve, BACKEND, "8080"])
        node_ns.popen([*serve, NODE_A, "9100"])
        node_ns.popen([sys.executable, str(tmp_path / "proxy.py"), CLUSTER_IP, "80", BACKEND, "8080"])
        backend.wait_tcp(BACKEND, 8080, timeout=60)  # slow starts on a loaded machine
        node_ns.wait_tcp(CLUSTER_IP, 80, timeout=60)
        node_ns.wait_tcp(NODE_A, 9100, timeout=60)
        sniffer = subprocess.Popen(node_ns.cmd([sys.executable, str(tmp_path / "sniff.py"), str(pcap),
                                                node_a, node_b]), stdout=subprocess.PIPE, text=True)
        try:
            assert sniffer.stdout is not None and sniffer.stdout.readline().strip() == "ready"
            time.sleep(0.5)  # the sniffer's sockets are bound once it said ready; let them settle
            client.run([sys.executable, str(tmp_path / "get.py"), f"http://{CLUSTER_IP}/",
                        f"http://{NODE_A}:9100/"])
            time.sleep(0.5)
            sniffer.send_signal(signal.SIGTERM)
            assert sniffer.wait(timeout=60) == 0
        finally:
            if sniffer.poll() is None:
                sniffer.kill()
                sniffer.wait(timeout=10)
    return pcap


def test_namespaced_traffic_through_a_cluster_ip_names_every_endpoint(api, tmp_path):
    pcap = _capture(tmp_path)
    _describe(api)
    kubeconfig = str(api.kubeconfig(tmp_path / "kc"))
    done = _cli("items", "--pcap", str(pcap), "--kubeconfig", kubeconfig, "--jobs", "1")
    assert done.returncode == 0, done.stderr.decode()
    items = [json.loads(line) for line in done.stdout.splitlines()]
    http = [i for i in items if i["protocol"]["name"] == "http"]
    ends = sorted(((i["src"]["ip"], i["src"]["name"], i["src"]["namespace"]),
                   (i["dst"]["ip"], i["dst"]["port"], i["dst"]["name"], i["dst"]["namespace"],
                    (i["dst"]["pod"] or {}).get("name"), (i["dst"]["service"] or {}).get("name")))
                  for i in http)
    assert ends == sorted([
        ((CLIENT, "frontend-7d9f", "shop"), (CLUSTER_IP, "80", "web", "payments", None, "web")),
        ((NODE_B, "node-1", ""), (BACKEND, "8080", "web-5c8d", "payments", "web-5c8d", "web")),
        ((CLIENT, "frontend-7d9f", "shop"), (NODE_A, "9100", "metrics-agent", "mon", "metrics-agent", None)),
    ])
    query = kfl.compile('dst.namespace == "payments"')
    selected = {i["stream"] for i in items if query.match(i)}
    to_payments = {i["stream"] for i in items if i["dst"]["ip"] in (CLUSTER_IP, BACKEND)}
    assert selected == to_payments and len(selected) == 2
