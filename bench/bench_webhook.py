"""A webhook to a server that never answers, once per DNS item, beside the seed script.

    python -m bench.bench_webhook [--pcap F]

Runs `kflpcap run` on the demo capture (or F) three ways, each with the real defaults (5 s webhook
timeout, breakers after 3 silent calls to a host): the seed script alone; beside it a script that
calls `vendor.webhook` on a local server that accepts connections and never answers, once per DNS
item; and beside it a script that sends `vendor.slack` to that server once per item. Printed per
run: wall seconds, the webhook script's calls and throws, and its console error lines. Before issue
14 the webhook run took 231 s (one 5 s timeout per DNS item, the whole pipeline waiting) and each
Slack post blocked the pipeline for its timeout.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "runtime" / "demo" / "demo.pcap"
SEED = (ROOT / "scripts" / "kfl_pcap_s3.js").read_text()

WEBHOOK = """// Webhook
var calls = 0, failed = 0;
function onItemCaptured(d) {
  if (d.protocol.name !== "dns") return;
  calls++;
  try { vendor.webhook("POST", "__URL__", d.stream); } catch (e) { failed++; }
}
jobs.schedule("bench-count", "*/10 * * * * *", function () { console.log("calls", calls, failed); });
"""

SLACK = """// Slack
function onItemCaptured(d) { vendor.slack("__URL__", "pre", d.stream, "#ff0000"); }
"""


def run(pcap: Path, scripts: dict[str, str]) -> tuple[float, list[str]]:
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        folder = Path(tmp) / "scripts"
        folder.mkdir()
        for name, text in scripts.items():
            (folder / name).write_text(text)
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "runtime", "run", "--pcap", str(pcap), "--scripts", str(folder),
             "--data-dir", str(Path(tmp) / "data")],
            capture_output=True, text=True, timeout=900, cwd=ROOT,
        )
        wall = time.monotonic() - start
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith(("Webhook", "Slack"))]
    return wall, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pcap", type=Path, default=DEMO)
    args = parser.parse_args()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1024)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
    try:
        for label, extra in (
            ("seed alone", {}),
            ("seed + webhook per DNS item (silent server)", {"webhook.js": WEBHOOK.replace("__URL__", url)}),
            ("seed + vendor.slack per item (silent server)", {"slack.js": SLACK.replace("__URL__", url)}),
        ):
            wall, lines = run(args.pcap, {"seed.js": SEED, **extra})
            print(f"{label}: {wall:.1f} s")
            for line in lines:
                if "loaded" not in line and "Scheduled" not in line:
                    print(f"    {line[:160]}")
    finally:
        silent.close()


if __name__ == "__main__":
    main()
