"""Make the bundled demo capture: `sudo python3 -m runtime.demo.make_demo [--out-dir DIR]`.

Starts the demo network (`runtime.demo.livenet`: real HTTP/1.1, DNS, HTTP/2, gRPC, TLS and Redis
servers in one network namespace, real clients in another), captures 70 seconds of the seeded client
mix with dumpcap, and writes `demo.pcap` plus `demo.json`: what the capture must contain, derived from
what the clients actually did (HTTP connections with a 500 answer, DNS flows, per new protocol its
connections and the ones its demo query selects, counts by status and rcode).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

from runtime.demo import DEMO_PCAP
from runtime.demo.clients import ClientPlan
from runtime.demo.livenet import LiveNet, record_reference


def count_packets(pcap: Path) -> int:
    """Records in a classic pcap file (either byte order)."""
    data = pcap.read_bytes()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    offset, count = 24, 0
    while offset + 16 <= len(data):
        offset += 16 + struct.unpack_from(endian + "I", data, offset + 8)[0]
        count += 1
    return count


# The capture starts about a second after this second of a minute: files run on capture time, so the
# 70-second capture fires the per-minute jobs once, some 24 s in, while every stream a script selected
# before is still within the store's 30-second retention (scripts that snapshot once a minute see all).
START_SECOND = 35


def make_demo(out_dir: Path, plan: ClientPlan) -> dict:
    """Capture `plan`'s traffic into out_dir/demo.pcap and describe it in out_dir/demo.json."""
    with tempfile.TemporaryDirectory() as tmp, LiveNet() as net:
        net.start_servers(protocols=plan.protocols)
        time.sleep((START_SECOND - time.time()) % 60)
        raw = Path(tmp) / "capture.pcap"
        _, expected = record_reference(net, raw, plan)
        pcap = out_dir / "demo.pcap"
        shutil.copyfile(raw, pcap)
        os.chmod(pcap, 0o644)
        description = {
            "about": "Made by `python3 -m runtime.demo.make_demo`: real HTTP/1.1, DNS, HTTP/2, gRPC, TLS and "
            "Redis traffic between the demo servers and clients in two network namespaces, captured with "
            "dumpcap. The lists say what the capture holds, from what the clients saw.",
            "server": net.server_ip,
            "client": net.client_ip,
            "plan": json.loads(plan.to_json()),
            "packets": count_packets(pcap),
            "bytes": pcap.stat().st_size,
            "sha256": hashlib.sha256(pcap.read_bytes()).hexdigest(),
            **expected,
        }
    (out_dir / "demo.json").write_text(json.dumps(description, indent=1) + "\n")
    return description


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DEMO_PCAP.parent)
    parser.add_argument("--quick", action="store_true", help="a few seconds of traffic, not 70")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("make_demo needs root (network namespaces, packet capture)", file=sys.stderr)
        return 2
    plan = ClientPlan.quick() if args.quick else ClientPlan.demo()
    made = make_demo(args.out_dir, plan)
    print(f"{args.out_dir / 'demo.pcap'}: {made['packets']} packets, {made['bytes']} bytes; "
          f"{made['http_requests']} HTTP requests {made['http_by_status']} on {len(made['http_streams'])} "
          f"connections ({len(made['http500_streams'])} with a 500); {made['dns_queries']} DNS queries "
          f"{made['dns_by_rcode']}")
    if plan.protocols:
        print(f"HTTP/2: {made['h2_requests']} requests {made['h2_by_status']} on {len(made['h2_streams'])} "
              f"connections; gRPC: {made['grpc_calls']} calls {made['grpc_by_status']} on "
              f"{len(made['grpc_streams'])} connections; TLS: {len(made['tls_streams'])} handshakes "
              f"{made['tls_by_version']}; Redis: {made['redis_commands']} commands, {made['redis_errors']} "
              f"errors on {len(made['redis_streams'])} connections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
