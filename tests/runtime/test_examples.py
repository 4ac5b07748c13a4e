"""The seed script and the five Kubeshark-style scripts of reference §12.3, run over real captures."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.product.tshark_oracle import AS_HTTP2
from tests.runtime.conftest import DEMO_PCAP, KUBESHARK, run_pipeline

SEED = """var KFL_PCAP_S3_KFL_ARR = [
  "http and response.status == 500",
  "dns",
];
function onItemCaptured(data) {
  wrapper.kflPcapS3(data, { kflArr: KFL_PCAP_S3_KFL_ARR });
}
"""
DEMO = json.loads((DEMO_PCAP.parent / "demo.json").read_text())


def script(name: str) -> str:
    return (KUBESHARK / name).read_text()


def tshark_count(pcap: Path, display_filter: str, options: Sequence[str] = ()) -> int:
    out = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), *options, "-Y", display_filter, "-T", "fields",
         "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.split())


def test_seed_script_writes_one_repository_per_query(tmp_path: Path) -> None:
    run = run_pipeline(tmp_path, {"seed.js": SEED})
    lines = run.lines("seed.js")
    assert any('KFL: "http and response.status == 500"' in ln for ln in lines), lines
    assert any('KFL: "dns"' in ln for ln in lines), lines
    assert run.errors("seed.js") == []
    repos = sorted((run.data / "repositories").rglob("*.pcap.gz"))
    assert {p.parent.name for p in repos} == {"kfl_0", "kfl_1"}
    http500 = next(p for p in repos if p.parent.name == "kfl_0")
    raw = tmp_path / "kfl_0.pcap"
    raw.write_bytes(gzip.decompress(http500.read_bytes()))
    # every connection that answered 500 is in the first repository, with its 500 responses
    assert tshark_count(raw, "http.response.code == 500") == DEMO["http_by_status"]["500"]
    streams = subprocess.run(
        ["tshark", "-n", "-r", str(raw), "-T", "fields", "-e", "tcp.stream"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(set(streams)) == len(DEMO["http500_streams"])


@pytest.mark.s3
def test_http_5xx_export_uploads_a_tar_each_minute(tmp_path: Path, seaweed) -> None:
    bucket = seaweed.create_bucket("exports-5xx", object_lock=False)
    run = run_pipeline(tmp_path, {"export.js": script("http_5xx_export.js")}, env=seaweed.env(bucket=bucket))
    title = "HTTP 5xx PCAP Export To S3"
    lines = run.lines(title)
    assert lines[0] == 'Scheduled the job: "export-5xx" for cron: "0 * * * * *" (limit: infinite)'
    exported = [ln for ln in lines if ln.startswith("Exported ")]
    assert exported, lines
    assert run.errors(title) == []
    client = seaweed.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert len(keys) == len(exported)
    url = exported[0].split(" to ")[1]
    key = url.split(f"/{bucket}/", 1)[1]
    assert key in keys and key.startswith("node-1_")
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        names = tar.getnames()
        content = json.loads(tar.extractfile("content.json").read())
        pcap_name = next(n for n in names if n.endswith(".pcap"))
        (tmp_path / "snap.pcap").write_bytes(tar.extractfile(pcap_name).read())
    assert "name_resolution_history.json" in names
    streams = content["l4_streams"]
    assert int(exported[0].split()[1]) == len(streams) > 0
    # the script keeps HTTP/1.x and HTTP/2 5xx answers (both are protocol.name "http")
    fives = "http.response.code >= 500 or http2.headers.status == 500"
    assert tshark_count(tmp_path / "snap.pcap", fives, AS_HTTP2) >= len(streams)
    # the work folders were deleted again; the tar was deleted after the upload
    assert not list(run.data.glob("errors*")) and not list(run.data.glob("kubeshark_*.tar.gz"))


def test_dns_top_talkers_reports_every_20_seconds(tmp_path: Path) -> None:
    run = run_pipeline(tmp_path, {"dns.js": script("dns_top_talkers.js")})
    lines = run.lines("DNS Top Talkers")
    assert lines[0].startswith('Scheduled the job: "dns-top-talkers" for cron: "*/20 * * * * *"')
    reports = [ln for ln in lines[1:] if ln[:2] in ("1.", "2.", "3.")]
    firsts = [ln for ln in reports if ln.startswith("1. ")]
    assert len(firsts) >= 3  # 70 s of traffic
    who, count = firsts[0].split()[1], int(firsts[0].split()[2])
    assert who == DEMO["client"] and count > 0
    total = sum(int(ln.split()[2]) for ln in reports)
    assert total <= DEMO["dns_queries"]
    assert run.errors("DNS Top Talkers") == []


@pytest.mark.s3
def test_kfl_recorder_copies_matching_streams_and_flushes(tmp_path: Path, seaweed) -> None:
    bucket = seaweed.create_bucket("recorder", object_lock=False)
    env = dict(seaweed.env(bucket=bucket), RECORDING_KFL="http and response.status == 500")
    trigger = "// Trigger\nsetTimeout(function () { jobs.run('kfl-recorder'); }, 30000);\n"
    run = run_pipeline(tmp_path, {"recorder.js": script("kfl_recorder.js"), "trigger.js": trigger}, env=env)
    title = "KFL Recorder"
    lines = run.lines(title)
    assert "Recording traffic matching: http and response.status == 500" in lines
    assert 'Scheduled the job: "kfl-recorder" for cron: "0 0 * * * *" (limit: infinite)' in lines
    assert run.lines("Trigger") == ["loaded trigger.js", 'Triggered the job: "kfl-recorder"']
    assert run.errors(title) == []
    uploaded = [ln for ln in lines if ln.startswith("Uploaded ")]
    assert len(uploaded) == 2  # the merged PCAP and the name resolution history
    keys = [o["Key"] for o in seaweed.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.endswith(".pcap") for k in keys) and any(
        k.endswith("name_resolution_history.json") for k in keys
    )
    # streams recorded after the flush wait in the folder for the next one
    left = sorted(p.name for p in (run.data / "kfl_recorder").iterdir())
    assert 0 < len(left) < len(DEMO["http500_streams"])
    assert all(name.endswith(".pcap") for name in left)


def test_redact_and_grade_loads_and_its_hook_never_fires(tmp_path: Path) -> None:
    probe = script("redact_and_grade.js").replace(
        "function onItemQueried(data) {", "function onItemQueried(data) {\n  console.log('queried');"
    )
    run = run_pipeline(tmp_path, {"grade.js": probe})
    assert run.lines("Redact And Grade") == ["loaded grade.js"]
    assert run.errors("Redact And Grade") == []


def test_cluster_wide_counter_pushes_to_this_process_as_its_hub(tmp_path: Path) -> None:
    """The worker half runs here (the node is not "hub"); its pushes reach every onHubAction here."""
    probe = (
        "// Hub Probe\nvar got = 0;\n"
        "function onHubAction(action, object) {\n"
        "  for (var k in object) got += object[k];\n"
        "  console.log(action + ' ' + got);\n}\n"
        "function onJobPassed(tag) { console.log('passed ' + tag); }\n"
    )
    run = run_pipeline(tmp_path, {"counter.js": script("cluster_wide_request_counter.js"), "probe.js": probe})
    title = "Cluster Wide Request Counter"
    assert (
        run.lines(title)[0] == 'Scheduled the job: "worker-push" for cron: "*/10 * * * * *" (limit: infinite)'
    )
    assert run.errors(title) == [] and run.errors("Hub Probe") == []
    lines = run.lines("Hub Probe")
    assert len([ln for ln in lines if ln == "passed worker-push"]) >= 6  # every 10 s of 70 s
    totals = [int(ln.split()[1]) for ln in lines if ln.startswith("cluster-wide-request-counter ")]
    assert len(totals) >= 6 and totals == sorted(totals)
    assert 0 < totals[-1] <= sum(run.pipeline.stats.items.values())
