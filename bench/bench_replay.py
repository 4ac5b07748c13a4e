"""Live capture under load: a generated capture replayed with `tcpreplay --pps=R` into a veth pair, at
rising rates, captured by `kflpcap run --interface` with the seed script (local store).

    python3 -m bench.bench_replay [--packets 60000] [--rates 10000,30000,60000,120000] [--ring-mib 32]

Needs root (network namespaces, AF_PACKET) and tcpreplay (`apt-get install -y tcpreplay`). For each
rate: two fresh namespaces joined by a veth pair without addresses; kflpcap captures one end
(promiscuous, `--bpf ip`), tcpreplay sends the capture (bench.trafficgen's plain shape) into the other.
Reported per rate: packets sent (tcpreplay), seen (kflpcap_packets_total), dropped by the kernel
(`kflpcap_drops{reason="kernel"}`), unaccounted (sent - seen - dropped: should be 0), the HTTP-500
streams and DNS flows in the repositories against the generator's truth, and the kernel drops the
manifests of each query report (`capture.kernel_drops`, summed: equal to dropped).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.harness import cached_capture, cached_truth

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "scripts" / "kfl_pcap_s3.js"
METRICS_PORT = 19313
SCRAPE = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextmanager
def veth_pair(tag: str) -> Iterator[tuple[str, str, str, str]]:
    """(sender ns, sender iface, capture ns, capture iface): two namespaces, one veth, no addresses."""
    base = f"l13rp{os.getpid() % 1000}{tag}"
    tx_ns, rx_ns, tx_if, rx_if = f"{base}t", f"{base}r", f"{base}a", f"{base}b"
    _ip("netns", "add", tx_ns)
    try:
        _ip("netns", "add", rx_ns)
        try:
            _ip("link", "add", tx_if, "netns", tx_ns, "type", "veth", "peer", "name", rx_if, "netns", rx_ns)
            for ns, name in ((tx_ns, tx_if), (rx_ns, rx_if)):
                _ip("netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{name}.disable_ipv6=1")
                _ip("-n", ns, "link", "set", name, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
            yield tx_ns, tx_if, rx_ns, rx_if
        finally:
            subprocess.run(["ip", "netns", "del", rx_ns], capture_output=True, timeout=30)
    finally:
        subprocess.run(["ip", "netns", "del", tx_ns], capture_output=True, timeout=30)


def scrape(ns: str) -> dict[str, float]:
    res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", SCRAPE,
                          f"http://127.0.0.1:{METRICS_PORT}/metrics"],
                         capture_output=True, text=True, timeout=30)
    out: dict[str, float] = {}
    for line in res.stdout.splitlines():
        if line.startswith("kflpcap_packets_total "):
            out["seen"] = float(line.split()[1])
        elif line.startswith('kflpcap_drops_total{reason="kernel"}'):
            out["dropped"] = float(line.split()[1])
    return out if "seen" in out else {}


def packet_socket_open(ns: str, iface: str) -> bool:
    res = subprocess.run(["ip", "netns", "exec", ns, "ss", "-a", "-0", "-n"], capture_output=True, text=True,
                         timeout=30)
    return f"*:{iface}" in res.stdout


def exported(data_dir: Path) -> tuple[set[tuple], set[tuple], list[int]]:
    """(HTTP-500 streams, DNS flows) in the manifests of the local store, as client/server tuples, and
    per query the kernel drops its manifests report."""
    found: tuple[set[tuple], set[tuple]] = (set(), set())
    drops = [0, 0]
    for path in (data_dir / "repositories").rglob("*.json"):
        manifest = json.loads(path.read_text())
        index = manifest["query"]["index"]
        drops[index] += manifest.get("capture", {}).get("kernel_drops", 0)
        for s in manifest["streams"]:
            ends = (s["client"]["ip"], s["client"]["port"], s["server"]["ip"], s["server"]["port"])
            found[index].add(ends if index == 0 else (s["l4"], *ends))
    return (*found, drops)


def one_rate(pcap: Path, truth: dict, rate: int, ring_mib: int, work: Path) -> dict:
    data = work / f"data-{rate}"
    scripts = work / "scripts"
    with veth_pair(str(rate)[:3]) as (tx_ns, tx_if, rx_ns, rx_if):
        run = subprocess.Popen(
            ["ip", "netns", "exec", rx_ns, sys.executable, "-m", "runtime", "run", "--interface", rx_if,
             "--bpf", "ip", "--ring-mib", str(ring_mib), "--scripts", str(scripts), "--data-dir", str(data),
             "--node", "bench", "--metrics-port", str(METRICS_PORT)],
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith(("S3_", "AWS_"))})
        try:
            deadline = time.monotonic() + 60
            while not (packet_socket_open(rx_ns, rx_if) and scrape(rx_ns)):
                if time.monotonic() > deadline or run.poll() is not None:
                    raise RuntimeError("kflpcap run did not start")
                time.sleep(0.2)
            started = time.monotonic()
            replay = subprocess.run(["ip", "netns", "exec", tx_ns, "tcpreplay", f"--pps={rate}", "-i", tx_if,
                                     str(pcap)], capture_output=True, text=True, timeout=600)
            replay_s = time.monotonic() - started
            m = re.search(r"Successful packets:\s+(\d+)", replay.stdout)
            sent = int(m.group(1)) if m else -1
            got: dict[str, float] = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until kflpcap has read or lost every packet sent
                got = scrape(rx_ns) or got
                if got.get("seen", 0) + got.get("dropped", 0) >= sent:
                    break
                time.sleep(0.5)
            run.send_signal(signal.SIGTERM)  # kflpcap only: it stops its script processes itself
            _out, err = run.communicate(timeout=180)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.communicate()
    http500, dns, manifest_drops = exported(data)
    want500 = {tuple(t) for t in truth["http500_streams"]}
    want_dns = {tuple(t) for t in truth["dns_flows"]}
    seen, dropped = int(got.get("seen", 0)), int(got.get("dropped", 0))
    return {"rate": rate, "achieved_pps": round(sent / replay_s) if replay_s else 0, "sent": sent,
            "seen": seen, "dropped": dropped, "unaccounted": sent - seen - dropped,
            "http500": len(http500 & want500), "http500_truth": len(want500),
            "dns": len(dns & want_dns), "dns_truth": len(want_dns), "exit": run.returncode,
            "manifest_drops": manifest_drops,
            "lost_line": next((ln.strip() for ln in err.splitlines() if "dropped by the kernel" in ln), ""),
            "stderr_tail": err.splitlines()[-25:] if run.returncode else []}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_replay", description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=60_000)
    ap.add_argument("--rates", default="10000,30000,60000,120000", help="packets/s, comma-separated")
    ap.add_argument("--ring-mib", type=int, default=32)
    ap.add_argument("--json", default=None, help="also write one JSON line per rate here")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_replay needs root (network namespaces, AF_PACKET)", file=sys.stderr)
        return 2
    pcap = cached_capture(packets=args.packets, seed=1, plain=True, duration=120.0)
    truth = cached_truth(pcap)
    print(f"capture: {pcap.name}, {truth['packets']:,} packets; ring {args.ring_mib} MiB; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'rate':>8} {'achieved':>9} {'sent':>8} {'seen':>8} {'dropped':>8} {'unacc.':>7} "
          f"{'500 streams':>12} {'dns flows':>10} {'in manifests':>14} {'exit':>4}")
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        work = Path(tmp)
        (work / "scripts").mkdir()
        (work / "scripts" / SEED.name).write_bytes(SEED.read_bytes())
        for rate in (int(r) for r in args.rates.split(",") if r):
            r = one_rate(pcap, truth, rate, args.ring_mib, work)
            print(f"{r['rate']:>8,} {r['achieved_pps']:>9,} {r['sent']:>8,} {r['seen']:>8,} "
                  f"{r['dropped']:>8,} {r['unaccounted']:>7,} {r['http500']:>5}/{r['http500_truth']:<6} "
                  f"{r['dns']:>4}/{r['dns_truth']:<5} {'/'.join(map(str, r['manifest_drops'])):>14} "
                  f"{r['exit']:>4}", flush=True)
            if r["exit"]:
                print("    kflpcap run's last lines:\n      " + "\n      ".join(r["stderr_tail"]))
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(r) + "\n")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
