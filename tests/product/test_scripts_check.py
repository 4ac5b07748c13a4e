"""`kflpcap scripts check` acts on nothing outside its throw-away folder: webhooks, Slack and S3
calls at top level and in jobs reach no server; the report lists each would-be call."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class Receiver(BaseHTTPRequestHandler):
    got: list[str] = []

    def _any(self) -> None:
        Receiver.got.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = do_HEAD = _any

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


SCRIPT = """// Outside Caller
var base = "%s";
var answer = vendor.webhook("POST", base + "/top-hook", JSON.stringify({a: 1}));
vendor.slack(base + "/top-slack", "pre", "text", "#ff0000");
file.write("x.txt", "hello");
vendor.s3.put("bucket-top", "x.txt", "us-east-1");
jobs.schedule("push", "0 * * * * *", function () {
  vendor.webhook("GET", base + "/job-hook");
  vendor.slack(base + "/job-slack", "p", "t", "good");
  vendor.s3.put("bucket-job", "x.txt", "us-east-1");
});
"""


def test_check_sends_nothing_and_lists_the_would_be_calls(tmp_path: Path, receiver: str) -> None:
    script = tmp_path / "outside.js"
    script.write_text(SCRIPT % receiver)
    done = subprocess.run(
        [sys.executable, "-m", "runtime", "scripts", "check", str(script),
         "--env", f"S3_ENDPOINT={receiver}", "--env", "AWS_ACCESS_KEY_ID=k",
         "--env", "AWS_SECRET_ACCESS_KEY=s"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert Receiver.got == []
    out = done.stdout
    top = "would call (top level, not sent in a check): "
    assert f"{top}vendor.webhook('POST', '{receiver}/top-hook')" in out
    assert f"vendor.slack(webhook='{receiver}/top-slack', pretext='pre', text='text')" in out
    assert "vendor.s3.put(bucket='bucket-top', path='x.txt', region='us-east-1')" in out
    assert "job: push cron='0 * * * * *' limit=0 (ran once: ok)" in out
    assert f"would call (job push, not sent in a check): vendor.webhook('GET', '{receiver}/job-hook')" in out
    assert f"vendor.slack(webhook='{receiver}/job-slack', pretext='p', text='t')" in out
    assert "vendor.s3.put(bucket='bucket-job', path='x.txt', region='us-east-1')" in out


def test_a_failing_job_is_a_problem_in_the_check(tmp_path: Path) -> None:
    (tmp_path / "job.js").write_text('// Bad Job\njobs.schedule("boom", "0 * * * * *", function () '
                                     '{ undefinedThing.call(); });\n')
    done = subprocess.run([sys.executable, "-m", "runtime", "scripts", "check", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "job: boom cron='0 * * * * *' limit=0 (error: ReferenceError: undefinedThing is not defined" \
        in done.stdout


VENDOR = """// Every Vendor Helper
var base = "%s";
var sa = {type: "service_account", project_id: "p", private_key: "x", client_email: "e@p",
  token_uri: base + "/t"};
var azure = "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=" + base + "/a;";
function outside(where) {
  var body = vendor.webhookForm("POST", base + "/" + where + "-form", {a: "1"});
  var id = vendor.elastic(base, where + "-index", {a: 1}, "u", "p");
  vendor.slackBot("xoxb", "C1", "pre", "text", "good", {k: "v"}, {});
  vendor.influxdb(base, "t", "org", where + "-bucket", "m", {v: 1}, {t: "x"});
  file.write("y.txt", "hello");
  vendor.gcs.put(where + "-gcs", "y.txt", sa);
  vendor.gcs.clear(where + "-gcs", sa);
  vendor.azure.put(where + "-container", "y.txt", "", "", azure);
  vendor.s3.clear(where + "-s3", "us-east-1");
  var r = vendor.kinesis.put(where + "-stream", {a: 1}, "us-east-1", "k", "s");
  if (body !== "" || id !== "" || r !== "") throw new Error("a check answers empty strings");
}
outside("top");
jobs.schedule("push", "0 * * * * *", function () { outside("job"); });
"""


def test_check_runs_no_vendor_helper(tmp_path: Path, receiver: str) -> None:
    script = tmp_path / "vendor.js"
    script.write_text(VENDOR % receiver)
    env = {"S3_ENDPOINT": receiver, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
           "SLACK_API_URL": receiver, "GCS_ENDPOINT": receiver, "KINESIS_ENDPOINT": receiver}
    args = [arg for k, v in env.items() for arg in ("--env", f"{k}={v}")]
    done = subprocess.run([sys.executable, "-m", "runtime", "scripts", "check", str(script), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert Receiver.got == []
    out = done.stdout
    for where, label in (("top", "top level"), ("job", "job push")):
        said = f"would call ({label}, not sent in a check): "
        assert f"{said}vendor.webhookForm('POST', '{receiver}/{where}-form', fields=['a'])" in out
        assert f"{said}vendor.elastic(url='{receiver}', index='{where}-index')" in out
        assert f"{said}vendor.slackBot(channel='C1', pretext='pre', files=[])" in out
        assert f"{said}vendor.influxdb(url='{receiver}', bucket='{where}-bucket', measurement='m')" in out
        assert f"{said}vendor.gcs.put(bucket='{where}-gcs', path='y.txt')" in out
        assert f"{said}vendor.gcs.clear(bucket='{where}-gcs')" in out
        assert f"{said}vendor.azure.put(container='{where}-container', path='y.txt')" in out
        assert f"{said}vendor.s3.clear(bucket='{where}-s3', region='us-east-1')" in out
        assert f"{said}vendor.kinesis.put(streamName='{where}-stream', region='us-east-1')" in out
    assert "1 script(s) checked, 0 with problems" in out
