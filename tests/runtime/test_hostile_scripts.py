"""Hostile scripts beside the seed script on the demo capture: link tricks against every file and
pcap helper, ArrayBuffer and string bombs, a 120 MB console.log, webhooks to a server that never
answers and to a slow one, Slack messages to a hanging server, regex bombs in kfl.match, bad cron
strings, bad wrapper options. Whatever they do: nothing outside the data folder is read or written
(a canary tree beside it keeps its hashes; nothing new appears outside it), the pipeline finishes,
each hostile script is stopped or told, and the seed's repositories hold exactly the packets of a
clean run (PCAP contents and streams; manifests differ only in times and run ids)."""

from __future__ import annotations

import gzip
import importlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runtime.helpers.services import MIB, Limits
from tests.runtime.conftest import Recorder, Run, run_pipeline
from tests.runtime.test_containment import canary, planted, tree_hashes  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
SEED = (ROOT / "scripts" / "kfl_pcap_s3.js").read_text()
SEED_TITLE = "KFL PCAP S3"
LIMITS = Limits(heap_bytes=64 * MIB)  # the script's process: 2 × 64 + 256 = 384 MiB


def seed_repositories(data: Path) -> dict[str, list[tuple[bytes, Any]]]:
    """The seed script's repositories by query: (PCAP bytes, streams) in window order."""
    found: dict[str, list[tuple[int, bytes, Any]]] = {}
    for path in sorted((data / "repositories").rglob("*.json")):
        manifest = json.loads(path.read_text())
        if manifest.get("script", {}).get("title") != SEED_TITLE:
            continue
        pcap = gzip.decompress(path.with_name(path.name.removesuffix(".json") + ".pcap.gz").read_bytes())
        found.setdefault(manifest["query"]["kfl"], []).append(
            (manifest["window"]["start_ns"], pcap, manifest["streams"])
        )
    return {query: [(pcap, streams) for _t, pcap, streams in sorted(repos, key=lambda r: r[0])]
            for query, repos in found.items()}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[bytes, Any]]]:
    run = run_pipeline(tmp_path_factory.mktemp("clean"), {"seed.js": SEED}, limits=LIMITS)
    repos = seed_repositories(run.data)
    assert sorted(repos) == ["dns", "http and response.status == 500"] and all(repos.values())
    return repos


class _Slow(BaseHTTPRequestHandler):
    delay_s = 0.5

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(self.delay_s)
        self.send_response(200)
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"late")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoints() -> Iterator[dict[str, str]]:
    """A server that accepts connections and never answers, and one that answers after 0.5 s."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1024)
    slow = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=slow.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            "silent": f"http://127.0.0.1:{silent.getsockname()[1]}/hook",
            "slow": f"http://127.0.0.1:{slow.server_address[1]}/hook",
        }
    finally:
        slow.shutdown()
        slow.server_close()
        silent.close()


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhook and Slack timeouts of 1 s and a 0.3 s 'slow' mark (defaults 5 s and 2 s)."""
    webhook = importlib.import_module("runtime.helpers.vendor.webhook")
    slack = importlib.import_module("runtime.helpers.vendor.slack")
    monkeypatch.setattr(webhook, "TIMEOUT_S", 1.0)
    monkeypatch.setattr(webhook, "SLOW_S", 0.3)
    monkeypatch.setattr(slack, "TIMEOUT_S", 1.0)


LINKS = """// Links
var thrown = [];
function attempt(label, f) { try { f(); } catch (e) { thrown.push(label + ": " + e.message); } }
file.write("out.txt", "replaced, not written through");
file.write("dirlink/victim.txt", "pwned");
file.write("out.pcap.part", "pwned");
file.append("filelink", "pwned");
file.append("hard.txt", "pwned");
file.copy("filelink", "stolen1.txt");
file.copy("hard.txt", "stolen2.txt");
file.copy("dirlink/secret.txt", "stolen3.txt");
file.copy("tree/link.txt", "stolen4.txt");
file.move("filelink", "moved");
file.move("tree/ok.txt", "dirlink/sub");
file.mkdir("dirlink/new");
file.delete("dirlink/sub");
file.delete("dirlink");
file.tar("dirlink");
file.tar("tree");
attempt("write up", function () { file.write("../data-evil/x", "pwned"); });
attempt("temp", function () { file.temp("x", "dirlink", "txt"); });
attempt("mkdirTemp", function () { file.mkdirTemp("x", "dirlink"); });
pcap.snapshot([], "in");
attempt("snapshot", function () { pcap.snapshot([], "dirlink"); });
pcap.nameResolutionHistory();
vendor.s3.put("bucket", "hard.txt");
vendor.s3.put("bucket", "filelink");
vendor.s3.put("bucket", "dirlink/secret.txt");
console.log(JSON.stringify(thrown));
"""

FILLED = """// Filled
var keep = [], done = false;
function onItemCaptured(d) {
  if (done) return;
  done = true;
  for (var i = 0; i < 64; i++) { var a = new Uint8Array(64 * 1024 * 1024); a.fill(1); keep.push(a); }
}
"""

UNFILLED = """// Unfilled
var keep = [], done = false;
function onItemCaptured(d) {
  if (done) return;
  done = true;
  try { for (var i = 0; i < 1024; i++) keep.push(new ArrayBuffer(64 * 1024 * 1024)); }
  catch (e) { console.log("refused after", keep.length, e.name); }
  keep = [];
}
"""

STRINGS = """// Strings
var done = false;
function onItemCaptured(d) {
  if (done) return;
  done = true;
  var s = "x";
  try { while (true) s = s + s; } catch (e) { console.log("doubling:", e.name); }
}
"""

CONSOLE = """// Console
var done = false;
function onItemCaptured(d) {
  if (done) return;
  done = true;
  var big = "y".repeat(3 * 1024 * 1024);
  console.log(big, big, big);
  var line = big.slice(0, 1024 * 1024 - 10);
  for (var i = 0; i < 40; i++) console.log(i, line);
}
"""

WEBHOOKS = """// Webhooks
var calls = 0, failed = 0, last = "";
function onItemCaptured(d) {
  calls++;
  var url = d.protocol.name === "dns" ? "__SILENT__" : "__SLOW__";
  try { vendor.webhook("POST", url, "x"); } catch (e) { failed++; last = e.message; }
}
jobs.schedule("webhooks-report", "*/20 * * * * *", function () {
  console.log("calls", calls, "failed", failed);
});
"""

SLACK = """// Slack
var sent = 0;
function onItemCaptured(d) { sent++; vendor.slack("__SILENT__", "pre", "item " + sent, "#ff0000"); }
"""

REGEX = """// Regex
var hits = 0, n = 0;
function onItemCaptured(d) {
  n++;
  if (kfl.match('request.path == r"^/(a+)+$"', d)) hits++;
  if (kfl.match('dst.name == r"(x+x+)+y"', d)) hits++;
  if (kfl.match('src.name == r"^(([a-z])+.)+[A-Z]([a-z])+$"', d)) hits++;
}
jobs.schedule("regex-report", "*/20 * * * * *", function () { console.log("matched", n, hits); });
"""

CRON = """// Cron
["99 * * * * *", "*/0 * * * * *", "0 0 0 30 2 *", "* * * *", "a b c d e f"].forEach(function (c) {
  try { jobs.schedule("bad", c, function () {}); console.log("accepted", c); }
  catch (e) { console.log("refused", c); }
});
"""

WRAPPER = """// Wrapper
function onItemCaptured(data) {
  wrapper.kflPcapS3(data, { kflArr: ["dns", 'request.path == r"("'], s3Prefix: "../../x",
                            objectLockMode: "COMPLIANCE" });
}
"""


def _outside(tmp: Path) -> dict[str, str]:
    """Everything under `tmp` except the data folder (and the scripts the test wrote)."""
    return {k: v for k, v in tree_hashes(tmp).items() if not k.startswith(("data", "scripts"))}


@pytest.mark.timeout(300)
def test_hostile_scripts_beside_the_seed(
    tmp_path: Path, rec: Recorder, planted: Path, clean: dict, endpoints: dict, short_timeouts: None  # noqa: F811
) -> None:
    before = _outside(tmp_path)
    scripts = {
        "seed.js": SEED,
        "links.js": LINKS,
        "filled.js": FILLED,
        "unfilled.js": UNFILLED,
        "strings.js": STRINGS,
        "console.js": CONSOLE,
        "webhooks.js": WEBHOOKS.replace("__SILENT__", endpoints["silent"]).replace(
            "__SLOW__", endpoints["slow"]),
        "slack.js": SLACK.replace("__SILENT__", endpoints["silent"]),
        "regex.js": REGEX,
        "cron.js": CRON,
        "wrapper.js": WRAPPER,
    }
    run = run_pipeline(tmp_path, scripts, limits=LIMITS)

    assert _outside(tmp_path) == before  # (the canary fixture checks the canary tree's hashes)
    assert seed_repositories(run.data) == clean
    assert run.errors(SEED_TITLE) == []
    _check_each(run, endpoints)


def _check_each(run: Run, endpoints: dict[str, str]) -> None:
    # the link tricks are refused (test_containment.py checks each message)
    refusals = ("not followed", "refused", "escapes the data folder", "no such folder", "no packets",
                "no file")
    assert json.loads(run.lines("Links")[0]) == [
        'write up: file.write: path "../data-evil/x" escapes the data folder']
    s3 = [e for e in run.errors("Links") if e.startswith("vendor.s3.put: ")]
    assert len(s3) == 3 and "has other hard links (refused)" in s3[0], s3
    assert len(run.errors("Links")) >= 15 and all(any(r in e for r in refusals) for e in run.errors("Links"))
    # ArrayBuffers outside the V8 heap: filled ones stop the script, unfilled ones are refused
    [stopped] = run.errors("Filled")
    assert stopped.startswith("script stopped: memory — its process held ") and "384 MiB" in stopped
    [refused] = [ln for ln in run.lines("Unfilled") if ln.startswith("refused after")]
    assert int(refused.split()[2]) < 16 and refused.endswith("RangeError")
    # strings: V8's own length limit; console output capped, with notes
    assert run.lines("Strings") == ["loaded strings.js", "doubling: RangeError"]
    printed = run.lines("Console")
    assert len(printed[1]) < MIB + 100 and printed[1].endswith(
        f" … [console line cut: {9 * MIB + 2 - MIB} more characters; a line is capped at {MIB}]")
    assert [ln.split()[0] for ln in printed[2:]] == [str(i) for i in range(len(printed) - 2)]
    assert 14 <= len(printed) - 2 < 16
    assert run.errors("Console") == [
        f"console: {40 - (len(printed) - 2)} lines left out: one call may print {16 * MIB} characters"]
    # webhooks: every call answered or thrown; the silent and slow hosts throttled, told once each
    counts = [ln.split() for ln in run.lines("Webhooks") if ln.startswith("calls ")]
    calls, failed = int(counts[-1][1]), int(counts[-1][3])
    assert calls > 200 and failed >= calls - 3  # only the slow server's first (slow) answers came
    told = run.errors("Webhooks")
    assert all(e.startswith("vendor.webhook: throttled: ") for e in told) and len(told) <= 3, told
    assert any(e.split()[2] == endpoints["slow"].removesuffix("/hook") for e in told)
    assert any(e.split()[2] == endpoints["silent"].removesuffix("/hook") for e in told)
    # slack to a hanging server: sent in the background, a few timeouts, then throttled (one line)
    slack = run.errors("Slack")
    assert all(e.startswith("vendor.slack: ") for e in slack) and len(slack) <= 6, slack
    assert sum("did not answer the last 3 calls" in e for e in slack) == 1, slack
    # regex bombs are linear-time: the script saw every item, no time budget was hit
    matched = [ln for ln in run.lines("Regex") if ln.startswith("matched ")]
    assert matched and run.errors("Regex") == []
    # bad cron strings throw at the call
    assert [ln.split()[0] for ln in run.lines("Cron") if ln.startswith(("refused", "accepted"))] == [
        "refused"] * 5
