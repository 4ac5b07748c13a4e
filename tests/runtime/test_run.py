"""`kflpcap run` basics: env files and options, onPacketCaptured, batches, data folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.helpers.env import EnvError, build_env, global_names
from tests.runtime.conftest import DEMO_PCAP, run_pipeline

ROOT = Path(__file__).resolve().parents[2]


def test_env_files_and_assignments(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text('# comment\nexport S3_BUCKET="bucket-a"\nREGION=eu-west-1\nEMPTY=\n')
    (tmp_path / "b.json").write_text(json.dumps({"NUM": 77, "NESTED": {"k": [1, 2]}, "REGION": "us-east-2"}))
    (tmp_path / "c.yaml").write_text("VAR-1: dash\nFLAG: true\n")
    env = build_env([str(tmp_path / n) for n in ("a.env", "b.json", "c.yaml")], ["S3_BUCKET=cli", "EQ=a=b"])
    assert env == {
        "S3_BUCKET": "cli",
        "REGION": "us-east-2",
        "EMPTY": "",
        "NUM": 77,
        "NESTED": {"k": [1, 2]},
        "VAR-1": "dash",
        "FLAG": True,
        "EQ": "a=b",
    }
    assert "VAR-1" not in global_names(env) and "S3_BUCKET" in global_names(env)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(EnvError, match="expected a mapping"):
        build_env([str(tmp_path / "bad.json")], [])
    (tmp_path / "bad.env").write_text("JUSTAWORD\n")
    with pytest.raises(EnvError, match=r"bad\.env:1: expected KEY=VALUE"):
        build_env([str(tmp_path / "bad.env")], [])
    with pytest.raises(EnvError, match="expected KEY=VALUE"):
        build_env([], ["=x"])
    with pytest.raises(EnvError, match="No such file"):
        build_env([str(tmp_path / "missing.env")], [])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runtime", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_cli_run_env_and_single_script_file(tmp_path: Path) -> None:
    script = tmp_path / "print_env.js"
    script.write_text("// Print Env\nconsole.log(JSON.stringify(env), typeof SECRET, utils.nodeName());\n")
    (tmp_path / "e.yaml").write_text("SECRET: s3cr3t\nPORT: 8080\n")
    proc = _cli(
        "--pcap",
        str(DEMO_PCAP),
        "--scripts",
        str(script),
        "--data-dir",
        str(tmp_path / "d"),
        "--env-file",
        str(tmp_path / "e.yaml"),
        "--env",
        "PORT=9",
        "--node",
        "worker-7",
    )
    assert proc.returncode == 0, proc.stderr
    assert 'Print Env] {"SECRET":"s3cr3t","PORT":"9"} string worker-7' in proc.stdout.splitlines()
    bad = _cli("--pcap", str(DEMO_PCAP), "--scripts", str(script), "--env-file", str(tmp_path / "nope.env"))
    assert bad.returncode == 2 and "nope.env" in bad.stderr
    missing = _cli("--pcap", str(DEMO_PCAP), "--scripts", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not a folder or a .js file" in missing.stderr


def test_on_packet_captured_gets_every_packet(tmp_path: Path) -> None:
    script = """// Packets
    var RFC3339 = /^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}Z$/;
    function onPacketCaptured(info) {
      var ok = RFC3339.test(info.timestamp) && info.captureLength <= info.length &&
          info.truncated === false && typeof info.fragmented === "boolean";
      console.log(ok ? "packet" : "bad", info.stream || "-");
    }
    """
    run = run_pipeline(tmp_path, {"p.js": script}, batch_items=300)
    seen = [ln.split() for ln in run.lines("Packets") if ln.startswith(("packet ", "bad "))]
    counters = run.pipeline.capture.counters
    assert [stream for kind, stream in seen if kind == "bad"] == []
    # every packet of the capture, once; those of TCP/UDP streams name their stream
    assert len(seen) == counters["packets_read"] == tshark_count(DEMO_PCAP, "frame")
    in_streams = [stream for _kind, stream in seen if stream != "-"]
    assert len(in_streams) == counters["packets_streamed"] == tshark_count(DEMO_PCAP, "tcp or udp")
    assert len(set(in_streams)) == counters["streams"]
    assert run.errors("Packets") == []


def tshark_count(pcap: Path, display_filter: str) -> int:
    out = subprocess.run(["tshark", "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields", "-e",
                          "frame.number"], capture_output=True, text=True, check=True, timeout=120).stdout
    return len(out.split())


def test_items_reach_scripts_in_order_across_batches(tmp_path: Path) -> None:
    script = """// Order
    var last = 0, disorder = 0, n = 0;
    function onItemCaptured(d) {
      n++;
      if (d.timestamp < last - 60000) disorder++;
      last = Math.max(last, d.timestamp);
    }
    jobs.schedule("r", "*/5 * * * * *", function () { console.log(n, disorder); });
    """
    small = run_pipeline(tmp_path / "s", {"o.js": script}, batch_items=7)
    big = run_pipeline(tmp_path / "b", {"o.js": script}, batch_items=5000)
    assert small.lines("Order")[1:] == big.lines("Order")[1:]  # same output whatever the batch size
    assert small.lines("Order")[-1].split()[1] == "0"


def test_stats_show_scripts_and_errors(tmp_path: Path) -> None:
    good = "// Good\nfunction onItemCaptured(d) { if (d.index > 100000) throw 1; }\n"
    broken = "// Broken\nvar = ;\n"
    hook_errors = "// Noisy\nfunction onItemCaptured(d) { throw new Error('x'); }\n"
    run = run_pipeline(tmp_path, {"good.js": good, "broken.js": broken, "noisy.js": hook_errors})
    scripts = run.pipeline.stats.scripts
    assert scripts["Good"]["status"] == "loaded" and scripts["Good"]["errors"] == {}
    assert scripts["Broken"]["status"] == "failed" and "SyntaxError" in scripts["Broken"]["error"]
    assert scripts["Noisy"]["errors"]["hook"] == len(run.errors("Noisy")) > 10
    assert run.pipeline.stats.errors["hook"] == scripts["Noisy"]["errors"]["hook"]
    assert run.pipeline.stats.packets == run.pipeline.capture.counters["packets_read"]
    assert run.pipeline.capture.packet_listener is None  # no script defines onPacketCaptured
