"""A throw-away test network with real servers and clients, and a capture of what crossed it.

Topology (created by `LiveNet`, removed on exit; nothing is addressed outside it):

    netns <tag>-cli: eth0 10.213.0.2 ──veth── kfl<tag>c ─┐
                                                          ├─ bridge kfl<tag>br (root namespace, no address)
    netns <tag>-srv: eth0 10.213.0.1 ──veth── kfl<tag>s ─┘

The server namespace runs `runtime.demo.servers` (HTTP on 80 and 8080, some paths answer 500; DNS on
53 UDP+TCP; with `start_servers(protocols=True)` also HTTP/2 cleartext on 8081, gRPC on 50051, TLS on
443 and Redis on 6379), the client namespace runs `runtime.demo.clients` (a seeded `ClientPlan`). Every packet
between them crosses `capture_iface` (`kfl<tag>c`) in the root namespace, so a capture there, by
dumpcap or by `kflpcap run --interface`, sees all of it while still reaching services on 127.0.0.1
(SeaweedFS). Needs root. Typical use:

    with LiveNet() as net:
        net.start_servers()
        log, want = record_reference(net, tmp / "reference.pcap", ClientPlan.quick())
        # want: {"http500_streams": [...], "dns_flows": [...], "http_streams": [...], counts}

A live end-to-end test of `kflpcap run --interface` follows the same shape: start kflpcap on
`net.capture_iface` (root namespace, so it reaches SeaweedFS on 127.0.0.1), call `net.send_probe()`
until its packet counter moves (metrics or console), then `record_reference(...)`, SIGTERM, and
compare the flows of the repositories (tests/product/tshark_oracle.py: `l4_flows(repo.pcap.gz)`)
with `want["http500_streams"]` / `want["dns_flows"]` and with tshark on the reference capture.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from runtime.demo.clients import ClientPlan
from runtime.demo.protocol_servers import GRPC_PORT, H2_PORT, REDIS_PORT, TLS_PORT

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_IP = "10.213.0.1"
CLIENT_IP = "10.213.0.2"
PREFIX_LEN = 24


def flow_id(l4: str, client_ip: str, client_port: int, server_ip: str, server_port: int) -> str:
    """One L4 stream as text, client first: `tcp 10.213.0.2:41234 > 10.213.0.1:80`."""
    return f"{l4} {client_ip}:{client_port} > {server_ip}:{server_port}"


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def _disable_ipv6(path: str) -> None:
    # No IPv6 on the test links: no router solicitations or MLD reports in the capture.
    with contextlib.suppress(OSError), open(path, "w") as fh:
        fh.write("1")


START_S = 0.5


class LiveNet:
    """Two network namespaces joined by a bridge in the root namespace; see the module doc."""

    def __init__(self, tag: str | None = None) -> None:
        self.tag = tag or secrets.token_hex(3)
        self.server_ns = f"kflpcap-{self.tag}-srv"
        self.client_ns = f"kflpcap-{self.tag}-cli"
        self.bridge = f"kfl{self.tag}br"
        self.capture_iface = f"kfl{self.tag}c"
        self.server_port_iface = f"kfl{self.tag}s"
        self.server_ip = SERVER_IP
        self.client_ip = CLIENT_IP
        self._servers: subprocess.Popen | None = None

    def __enter__(self) -> LiveNet:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def ns_argv(self, ns: str, argv: list[str]) -> list[str]:
        """`argv` to run inside namespace `ns` (server_ns or client_ns)."""
        return ["ip", "netns", "exec", ns, *argv]

    def python_argv(self, ns: str, module: str, *args: str) -> list[str]:
        """Run `python3 -m module args` inside `ns` with this repository importable."""
        return self.ns_argv(ns, [sys.executable, "-m", module, *args])

    def up(self) -> None:
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        _disable_ipv6(f"/proc/sys/net/ipv6/conf/{self.bridge}/disable_ipv6")
        for ns, port_iface, ip in (
            (self.server_ns, self.server_port_iface, self.server_ip),
            (self.client_ns, self.capture_iface, self.client_ip),
        ):
            _run(["ip", "netns", "add", ns])
            _run(self.ns_argv(ns, ["sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; "
                                               "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"]))
            _run(["ip", "link", "add", port_iface, "type", "veth", "peer", "name", "eth0", "netns", ns])
            _disable_ipv6(f"/proc/sys/net/ipv6/conf/{port_iface}/disable_ipv6")
            _run(["ip", "link", "set", port_iface, "master", self.bridge, "up"])
            _run(["ip", "-n", ns, "addr", "add", f"{ip}/{PREFIX_LEN}", "dev", "eth0"])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            # One MSS per packet (no TSO super-frames), as on a physical link.
            _run(["ip", "-n", ns, "link", "set", "eth0", "gso_max_segs", "1"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        _run(["ip", "link", "set", self.bridge, "up"])

    def down(self) -> None:
        self.stop_servers()
        for link in (self.capture_iface, self.server_port_iface, self.bridge):
            _run(["ip", "link", "del", link], check=False)
        for ns in (self.client_ns, self.server_ns):
            _run(["ip", "netns", "del", ns], check=False)

    def start_servers(self, http_ports: tuple[int, ...] = (80, 8080), dns_port: int = 53,
                      protocols: bool = False) -> None:
        """Start the demo HTTP and DNS servers in the server namespace (with `protocols` also HTTP/2,
        gRPC, TLS and Redis: `runtime.demo.protocol_servers`); returns once they listen."""
        args = ["--addr", self.server_ip, "--dns-port", str(dns_port)]
        if protocols:
            args.append("--protocols")
        for port in http_ports:
            args += ["--http-port", str(port)]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self._servers = subprocess.Popen(self.python_argv(self.server_ns, "runtime.demo.servers", *args),
                                         stdout=subprocess.PIPE, text=True, env=env)
        line = self._servers.stdout.readline().strip() if self._servers.stdout else ""
        if line != "ready":
            self.stop_servers()
            raise RuntimeError(f"demo servers did not start (said {line!r})")

    def stop_servers(self) -> None:
        if self._servers is None:
            return
        self._servers.send_signal(signal.SIGTERM)
        try:
            self._servers.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._servers.kill()
            self._servers.wait()
        if self._servers.stdout:
            self._servers.stdout.close()
        self._servers = None

    def run_clients(self, plan: ClientPlan | None = None) -> dict:
        """Run the client mix in the client namespace; returns its log (see `runtime.demo.clients`)."""
        plan = plan or ClientPlan.quick()
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        done = subprocess.run(
            self.python_argv(self.client_ns, "runtime.demo.clients", "--server", self.server_ip,
                             "--plan", plan.to_json()),
            capture_output=True, text=True, env=env, timeout=plan.duration_s + 120,
        )
        if not done.stdout:
            raise RuntimeError(f"demo clients failed: {done.stderr.strip()}")
        log = json.loads(done.stdout)
        log["client"] = self.client_ip
        return log

    def send_probe(self, count: int = 1) -> None:
        """Send `count` UDP datagrams client -> server port 9 (discard; nothing listens there): traffic
        that is neither HTTP nor DNS, to see a capture (kflpcap's packet counter) come alive before
        the client mix starts."""
        code = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                f"for _ in range({count}): s.sendto(b'probe', ({self.server_ip!r}, 9))")
        _run(self.ns_argv(self.client_ns, [sys.executable, "-c", code]))

    @contextlib.contextmanager
    def capture(self, path: Path, bpf: str | None = None, settle_s: float = 0.5) -> Iterator[Path]:
        """dumpcap on `capture_iface` into classic pcap at `path` while the block runs. On exit waits
        `settle_s` for the last segments (FIN/ACK), then stops dumpcap so it flushes."""
        with dumpcap(self.capture_iface, path, bpf, settle_s=settle_s):
            yield path


@contextlib.contextmanager
def dumpcap(iface: str, path: Path, bpf: str | None = None, prefix: Sequence[str] = (),
            settle_s: float = 0.0) -> Iterator[Path]:
    """dumpcap on `iface` (run behind `prefix`, e.g. `ip netns exec NS`) into classic pcap at `path`
    while the block runs; on exit, after `settle_s`, waits until the file is complete, then stops
    dumpcap so it flushes."""
    argv = [*prefix, "dumpcap", "-q", "-P", "-i", iface, "-w", str(path)]
    if bpf:
        argv += ["-f", bpf]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, start_new_session=True)
    said = []
    for line in proc.stderr or []:
        said.append(line)
        if line.startswith("Capturing on"):
            break
    else:
        proc.wait()
        raise RuntimeError(f"dumpcap did not start: {''.join(said).strip()}")
    # "Capturing on" is printed before dumpcap's capture loop reads its socket: packets sent at
    # once can be missed (seen: 1 run in 3 lost the first probes)
    time.sleep(START_S)
    try:
        yield path
        time.sleep(settle_s)
        _wait_until_stable(path)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def _wait_until_stable(path: Path, quiet_s: float = 0.6, limit_s: float = 10.0) -> None:
    """Wait until dumpcap has stopped adding to `path` for `quiet_s`. Packets wait in a kernel ring
    block until it is retired (libpcap: 250 ms) and dumpcap flushes its file every 100 ms; a SIGINT
    before both leaves them out of the capture (seen on a loaded CI machine: all 3 probes lost)."""
    deadline = time.monotonic() + limit_s
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = path.stat().st_size if path.exists() else 0
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.05)


def expected_flows(log: dict, net: LiveNet | None = None) -> dict:
    """What a capture of `log`'s traffic must contain, derived from what the clients saw:
    `http_streams`, `http500_streams` (connections with at least one 500 answer), `dns_flows`
    (one per query: UDP or TCP), all as sorted `flow_id` texts, plus counts by status and rcode."""
    client = net.client_ip if net else log.get("client", CLIENT_IP)
    server = net.server_ip if net else log["server"]
    http_streams: set[str] = set()
    http500: set[str] = set()
    for request in log["http"]:
        flow = flow_id("tcp", client, request["local_port"], server, request["server_port"])
        http_streams.add(flow)
        if request["status"] == 500:
            http500.add(flow)
    dns_flows = {flow_id(q["transport"], client, q["local_port"], server, 53) for q in log["dns"]}
    others = protocol_expectations(log, client, server) if any(log.get(k) for k in PROTOCOL_LOGS) else {}
    return {
        "http_streams": sorted(http_streams),
        "http500_streams": sorted(http500),
        "dns_flows": sorted(dns_flows),
        "http_requests": len(log["http"]),
        "http_by_status": dict(sorted(Counter(str(r["status"]) for r in log["http"]).items())),
        "dns_queries": len(log["dns"]),
        "dns_by_rcode": dict(sorted(Counter(q["rcode"] for q in log["dns"]).items())),
        **others,
    }


PROTOCOL_LOGS = {"h2": H2_PORT, "grpc": GRPC_PORT, "tls": TLS_PORT, "redis": REDIS_PORT}


def protocol_expectations(log: dict, client: str, server: str) -> dict:
    """The HTTP/2, gRPC, TLS and Redis part of `expected_flows`: per protocol its connections
    (`<p>_streams`), the ones a demo query selects (`h2_500_streams`: a 5xx answer,
    `grpc_error_streams`: a grpc-status other than 0, `tls_internal_streams`: a server name ending in
    `.internal`, `redis_error_streams`: an error reply) and counts."""
    def flows(kind: str, keep=lambda entry: True) -> list[str]:
        return sorted({flow_id("tcp", client, e["local_port"], server, PROTOCOL_LOGS[kind])
                       for e in log[kind] if keep(e)})

    def counts(values) -> dict[str, int]:
        return dict(sorted(Counter(str(v) for v in values).items()))

    return {
        "h2_streams": flows("h2"),
        "h2_500_streams": flows("h2", lambda e: e["status"] >= 500),
        "h2_requests": len(log["h2"]),
        "h2_by_status": counts(e["status"] for e in log["h2"]),
        "grpc_streams": flows("grpc"),
        "grpc_error_streams": flows("grpc", lambda e: e["code"] != 0),
        "grpc_calls": len(log["grpc"]),
        "grpc_by_status": counts(e["code"] for e in log["grpc"]),
        "tls_streams": flows("tls"),
        "tls_internal_streams": flows("tls", lambda e: e["sni"].endswith(".internal")),
        "tls_by_version": counts(e["version"] for e in log["tls"]),
        "redis_streams": flows("redis"),
        "redis_error_streams": flows("redis", lambda e: e["errors"] > 0),
        "redis_commands": sum(e["commands"] for e in log["redis"]),
        "redis_errors": sum(e["errors"] for e in log["redis"]),
    }


def protocol_streams(want: dict) -> set[str]:
    """Every HTTP/2, gRPC, TLS and Redis connection of an `expected_flows` result (none without)."""
    return set().union(*(want.get(f"{kind}_streams", []) for kind in PROTOCOL_LOGS))


def record_reference(net: LiveNet, pcap: Path, plan: ClientPlan | None = None) -> tuple[dict, dict]:
    """Run the client mix while dumpcap writes the reference capture `pcap`;
    returns (the clients' log, `expected_flows` of it)."""
    with net.capture(pcap):
        log = net.run_clients(plan)
    if log["errors"]:
        raise RuntimeError(f"the demo clients failed: {log['errors']}")
    return log, expected_flows(log, net)
