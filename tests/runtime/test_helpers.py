"""Every helper: its happy path and its failure path (thrown at once, or reported after the call)."""

from __future__ import annotations

import importlib
import json
import socket
import subprocess
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.runtime.conftest import Recorder, run_pipeline
from tests.runtime.items import http_item
from wrappers.http_client import drain_background


def tshark_streams(pcap: Path) -> set[str]:
    out = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-T", "fields", "-e", "tcp.stream", "-e", "udp.stream"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {ln.strip() for ln in out.splitlines() if ln.strip()}


def test_file_helpers_happy_paths(rec: Recorder) -> None:
    script = """// Files
    file.mkdir("a/b");
    file.write("a/b/one.txt", "hello");
    file.append("a/b/one.txt", " world");
    file.append("a/new.txt", 42);
    file.copy("a/b/one.txt", "a/copy.txt");
    file.write("moveme.txt", "m");
    file.move("moveme.txt", "a/b");
    var tmpDir = file.mkdirTemp("work_*_x");
    var tmpDir2 = file.mkdirTemp("plain", "a");
    var tmpFile = file.temp("report", "a", ".json");
    var tmpFile2 = file.temp("log", "", "");
    file.write("gone/x.txt", "x");
    file.delete("gone");
    file.delete("never-existed");
    var tarName = file.tar("a");
    console.log(tmpDir, tmpDir2, tmpFile, tmpFile2, tarName);
    """
    with rec.host(script):
        pass
    assert rec.stderr == []
    data = rec.services.data.root
    tmp_dir, tmp_dir2, tmp_file, tmp_file2, tar_name = rec.stdout[0].removeprefix("Files] ").split()
    assert (data / "a/b/one.txt").read_text() == "hello world"
    assert (data / "a/new.txt").read_text() == "42"
    assert (data / "a/copy.txt").read_text() == "hello world"
    assert (data / "a/b/moveme.txt").read_text() == "m" and not (data / "moveme.txt").exists()
    assert tmp_dir.startswith("work_") and tmp_dir.endswith("_x") and (data / tmp_dir).is_dir()
    assert tmp_dir2.startswith("a/plain") and (data / tmp_dir2).is_dir()
    assert tmp_file.startswith("a/report") and tmp_file.endswith(".json") and (data / tmp_file).is_file()
    assert tmp_file2.startswith("log") and tmp_file2.endswith(".txt")
    assert not (data / "gone").exists()
    assert tar_name.startswith("kubeshark_") and tar_name.endswith(".tar.gz")
    with tarfile.open(data / tar_name) as tar:
        names = set(tar.getnames())
    assert {"b/one.txt", "b/moveme.txt", "new.txt", "copy.txt"} <= names
    assert all(not n.startswith("/") and ".." not in n for n in names)


def test_file_helpers_failures(rec: Recorder, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (rec.services.data.root / "link").symlink_to(outside)
    script = """// Bad Files
    var thrown = [];
    function attempt(f) {
      try { f(); thrown.push("ok"); } catch (e) { thrown.push(e.name + ": " + e.message); }
    }
    attempt(function () { file.write("../escape.txt", "x"); });
    attempt(function () { file.copy("a", "x/../../../etc/passwd"); });
    attempt(function () { file.write(42, "x"); });
    attempt(function () { file.write("x.txt"); });
    attempt(function () { file.mkdirTemp(5); });
    console.log(JSON.stringify(thrown));
    file.copy("missing.txt", "b.txt");
    file.move("missing.txt", "b.txt");
    file.write("link/evil.txt", "x");
    file.tar("no-such-dir");
    """
    with rec.host(script):
        pass
    thrown = json.loads(rec.stdout[0].removeprefix("Bad Files] "))
    assert thrown[0] == 'Error: file.write: path "../escape.txt" escapes the data folder'
    assert thrown[1] == 'Error: file.copy: path "x/../../../etc/passwd" escapes the data folder'
    assert thrown[2] == "TypeError: file.write: path must be a string, got number"
    assert thrown[3] == "TypeError: file.write: content is missing"
    assert thrown[4] == "TypeError: file.mkdirTemp: name must be a string, got number"
    assert rec.stderr == [
        "Bad Files:ERROR] file.copy: cannot copy 'missing.txt': no such file",
        "Bad Files:ERROR] file.move: cannot move 'missing.txt': no such file or folder",
        "Bad Files:ERROR] file.write: path 'link/evil.txt' escapes the data folder (through the symbolic "
        "link 'link', which is not followed)",
        "Bad Files:ERROR] file.tar: cannot tar 'no-such-dir': no such folder",
    ]
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "escape.txt").exists()


def test_pcap_helpers_over_a_real_capture(tmp_path: Path) -> None:
    script = """// Pcaps
    var first = null, http = [];
    function onItemCaptured(data) {
      if (data.protocol.name !== "http") return;
      if (first === null) {
        first = data.stream;
        console.log(pcap.path(data.stream), pcap.path(data.stream, "other"));
        file.copy(pcap.path(data.stream), "copies/" + data.stream);
      }
      // the store keeps a closed stream 30 s (capture time): snapshot recent ones
      if (http.indexOf(data.stream) < 0) http.push(data.stream);
      if (http.length > 3) http.shift();
    }
    jobs.schedule("snap", "30 * * * * *", function () {
      var one = pcap.snapshot(http);
      var two = pcap.snapshot(http);
      console.log(one !== two, one.slice(-5));
      file.mkdir("snaps");
      file.move(one, "snaps");
      var merged = pcap.snapshot([], "copies");
      file.move(merged, "snaps/merged.pcap");
      console.log(JSON.stringify(http));
      console.log(typeof pcap.nameResolutionHistory());
      pcap.snapshot(["000000999999.pcap"]);
      try { pcap.snapshot("not-an-array"); } catch (e) { console.log(e.name); }
      try { pcap.path(7); } catch (e) { console.log(e.name); }
      file.copy(pcap.path("000000999999.pcap"), "never.pcap");
    }, 1);
    """
    run = run_pipeline(tmp_path, {"p.js": script})
    lines = [ln for ln in run.lines("Pcaps") if not ln.startswith(("loaded ", "Scheduled "))]
    first = lines[0].split()[0]
    assert first.startswith("pcaps/master/") and lines[0].split()[1].startswith("pcaps/other/")
    stream = first.rsplit("/", 1)[1]
    copy = run.data / "copies" / stream
    assert len(tshark_streams(copy)) == 1
    assert lines[1] == "true .pcap"
    selected = json.loads(lines[2])
    snaps = sorted((run.data / "snaps").iterdir())
    one = next(p for p in snaps if p.name != "merged.pcap")
    assert len(tshark_streams(one)) == len(selected) == 3
    assert len(tshark_streams(run.data / "snaps" / "merged.pcap")) == 1
    assert lines[3:] == ["object", "TypeError", "TypeError"]
    errors = run.errors("Pcaps")
    assert errors[0] == "pcap.snapshot: no packets to write (1 selected streams no longer in the store)"
    assert errors[1].startswith("file.copy: stream '000000999999.pcap' is not in the stream store")
    assert len(errors) == 2


class _Sink(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, str], bytes]] = []

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append((self.command, self.path, dict(self.headers), body))
        answer = json.dumps({"path": self.path, "n": len(self.received)}).encode()
        self.send_response(500 if self.path == "/fail" else 200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = _handle

    def log_message(self, *args: object) -> None:
        pass


def test_webhook_returns_the_response_and_slack_posts(rec: Recorder) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _Sink.received = []
    try:
        script = f"""// Hooks
        var seen = {{}};
        function onItemCaptured(d) {{
          var answer = JSON.parse(vendor.webhook("POST", "{base}/item", d.stream));
          seen[d.stream] = answer.path;
        }}
        var headers = {{"content-type": "application/json"}};
        console.log(vendor.webhook("POST", "{base}/hook", JSON.stringify({{a: 1}}), headers));
        console.log(JSON.parse(vendor.webhook("GET", "{base}/plain", "")).path);
        vendor.slack("{base}/slack", "pre", "the text", "#ff0000");
        console.log(JSON.parse(vendor.webhook("POST", "{base}/fail", "x")).path);
        var refused = "http://127.0.0.1:1/refused";
        try {{ vendor.webhook("POST", refused, "x"); }} catch (e) {{ console.log(e.message); }}
        try {{ vendor.webhook("POST"); }} catch (e) {{ console.log(e.name); }}
        jobs.schedule("r", "0 0 0 1 1 *", function () {{ for (var k in seen) console.log(k, seen[k]); }});
        """
        with rec.host(script) as h:
            rec.feed(h, [http_item(1), http_item(2)])
            h.run_job("r")
        assert drain_background(10.0) == 0  # vendor.slack is sent in the background
    finally:
        server.shutdown()
        server.server_close()
    paths = [path for _m, path, _h, _b in _Sink.received]
    # each request was made once, although the script ran again to receive the answer
    assert sorted(paths) == sorted(["/hook", "/plain", "/fail", "/item", "/item", "/slack"])
    got = {path: (method, headers, body) for method, path, headers, body in _Sink.received}
    assert got["/hook"][0] == "POST" and json.loads(got["/hook"][2]) == {"a": 1}
    assert got["/hook"][1]["Content-Type"] == "application/json"
    assert got["/plain"][0] == "GET"
    assert sorted(b for m, p, _h, b in _Sink.received if p == "/item") == [
        b"000000000001.pcap",
        b"000000000002.pcap",
    ]
    slack = json.loads(got["/slack"][2])
    assert (slack["pretext"], slack["text"], slack["color"]) == ("pre", "the text", "#ff0000")
    assert slack["fields"][0]["title"] == "Timestamp"
    lines = [ln for ln in rec.lines_of("Hooks") if not ln.startswith("Scheduled")]
    assert json.loads(lines[0])["path"] == "/hook"
    assert lines[1:3] == ["/plain", "/fail"]
    assert lines[3].startswith("vendor.webhook: POST http://127.0.0.1:1/refused: ")
    assert lines[4:] == ["TypeError", "000000000001.pcap /item", "000000000002.pcap /item"]
    assert rec.stderr == []


def test_s3_put_failures(rec: Recorder) -> None:
    script = """// Up
    var url = vendor.s3.put("bucket", "missing.txt", "eu-west-1");
    console.log(url.indexOf("https://bucket.s3.eu-west-1.amazonaws.com/node-1_10.0.0.1_") === 0);
    try { vendor.s3.put(5, "x"); } catch (e) { console.log(e.name); }
    try { vendor.s3.put("b", "../x"); } catch (e) { console.log(e.message); }
    """
    with rec.host(script):
        pass
    assert rec.stdout == [
        "Up] true",
        "Up] TypeError",
        'Up] vendor.s3.put: path "../x" escapes the data folder',
    ]
    assert rec.stderr == ["Up:ERROR] vendor.s3.put: no file 'missing.txt' in the data folder"]


def test_wrong_types_are_clear_errors(rec: Recorder) -> None:
    script = """// Types
    var out = [];
    function t(f) { try { f(); out.push("ok"); } catch (e) { out.push(e.name + ": " + e.message); } }
    t(function () { kfl.match(5, {}); });
    t(function () { kfl.match("http", "not an object"); });
    t(function () { kfl.validate(null); });
    t(function () { wrapper.kflPcapS3("x", {kflArr: ["dns"]}); });
    t(function () { wrapper.kflPcapS3({}, "opts"); });
    t(function () { jobs.schedule("x", "* * * * * *", "not a function"); });
    t(function () { jobs.schedule("x", "* * * * *", function () {}); });
    t(function () { jobs.schedule(1, "* * * * * *", function () {}); });
    t(function () { setTimeout("code", 1); });
    t(function () { prometheus.metric("m", "d", 2, "NaN"); });
    t(function () { vendor.slack(null, "a", "b", "c"); });
    out.forEach(function (x) { console.log(x); });
    """
    with rec.host(script):
        pass
    assert rec.lines_of("Types") == [
        "TypeError: kfl.match: query must be a string, got number",
        "TypeError: kfl.match: data must be an object, got string",
        "TypeError: kfl.validate: query must be a string, got null",
        "TypeError: wrapper.kflPcapS3: data must be an item object",
        "TypeError: wrapper.kflPcapS3: options must be an object",
        "TypeError: jobs.schedule: job must be a function, got string",
        "Error: jobs.schedule: invalid cron '* * * * *': 5 fields, expected 6 (second minute hour "
        "day-of-month month day-of-week)",
        "TypeError: jobs.schedule: tag must be a string, got number",
        "TypeError: setTimeout: callback must be a function, got string",
        "TypeError: prometheus.metric: value must be a number, got string",
        "TypeError: vendor.slack: webhook URL must be a string, got null",
    ]
    assert rec.stderr == []


def test_wrapper_gets_the_item_itself(rec: Recorder) -> None:
    script = """// W
    function onItemCaptured(data) {
      wrapper.kflPcapS3(data, {kflArr: ["http and response.status == 500"]});
      var copy = JSON.parse(JSON.stringify(data));
      wrapper.kflPcapS3(copy, {kflArr: ["http and response.status == 500"]});
    }
    """
    with rec.host(script) as h:
        rec.feed(h, [http_item(1, status=500), http_item(2, status=200)])
        wrapper = h.commands.wrapper
        assert wrapper.counters["items"] == 4
        assert wrapper.matches[0] == 2


def test_vendor_argument_errors_are_thrown_at_once(rec: Recorder) -> None:
    script = """// Vendor Types
    var out = [];
    function t(f) { try { f(); out.push("ok"); } catch (e) { out.push(e.name + ": " + e.message); } }
    t(function () { vendor.slackBot("xoxb", "C1", "p", "t", "good", {n: 5}); });
    t(function () { vendor.slackBot("xoxb", "C1", "p", "t", "good", {}, {"a.pcap": "../x"}); });
    t(function () { vendor.influxdb("http://i", "t", "o", "b", "m", {v: 1}, {n: 5}); });
    t(function () { vendor.influxdb("http://i", "t", "o", "b", "m", [1]); });
    t(function () { vendor.webhookForm("POST", "http://f", {a: 1}); });
    t(function () { vendor.elastic("http://e", 5, {}); });
    t(function () { vendor.gcs.put("b", "x", 5); });
    t(function () { vendor.azure.put("c", "x"); });
    t(function () { vendor.kinesis.put("s"); });
    // the 2023 order is read as such only when unambiguous
    var a = vendor.s3.put("eu-west-1", "AKIA", "secret", "bucket", "x.txt");
    var b = vendor.s3.put("us-east-1", "x.txt", "eu-west-1", "AKIA", "secret");
    out.push(a.indexOf("https://bucket.s3.eu-west-1.amazonaws.com/node-1_10.0.0.1_") === 0);
    out.push(b.indexOf("https://us-east-1.s3.eu-west-1.amazonaws.com/node-1_10.0.0.1_") === 0);
    out.forEach(function (x) { console.log(x); });
    """
    with rec.host(script):
        pass
    assert rec.lines_of("Vendor Types") == [
        "TypeError: vendor.slackBot: fields.n must be a string, got number",
        'Error: vendor.slackBot: path "../x" escapes the data folder',
        "TypeError: vendor.influxdb: tags.n must be a string, got number",
        "TypeError: vendor.influxdb: fields must be an object",
        "TypeError: vendor.webhookForm: fields.a must be a string, got number",
        "TypeError: vendor.elastic: index must be a string, got number",
        "TypeError: vendor.gcs.put: the service-account key must be an object",
        "Error: vendor.azure.put: give accountName or connectionString",
        "TypeError: vendor.kinesis.put: payload is missing",
        "true",
        "true",
    ]


def test_a_silent_webhook_host_is_throttled_and_the_script_told(rec: Recorder, monkeypatch) -> None:
    monkeypatch.setattr(importlib.import_module("runtime.helpers.vendor.webhook"), "TIMEOUT_S", 0.3)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    host = f"http://127.0.0.1:{silent.getsockname()[1]}"
    script = f"""// Silent
    var thrown = [];
    for (var i = 0; i < 6; i++) {{
      try {{ vendor.webhook("POST", "{host}/hook", "x"); }} catch (e) {{ thrown.push(e.message); }}
    }}
    console.log(JSON.stringify(thrown));
    """
    try:
        with rec.host(script):
            pass
    finally:
        silent.close()
    thrown = json.loads(rec.lines_of("Silent")[0])
    throttled = f"vendor.webhook: throttled: {host} did not answer within 2 s the last 3 calls; calls fail " \
        "at once for 30 s"
    assert thrown == [f"vendor.webhook: POST {host}/hook: timed out"] * 3 + [throttled] * 3
    assert rec.stderr == [f"Silent:ERROR] {throttled}"]  # told once
