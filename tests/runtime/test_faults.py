"""Faulty scripts: endless loops, huge allocations, throwing hooks — reported, never fatal, no hang."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from runtime.helpers.services import MIB, Limits
from tests.runtime.conftest import DEMO_PCAP, run_pipeline

WITNESS = """// Witness
var n = 0;
function onItemCaptured(data) { n++; }
jobs.schedule("witness", "*/30 * * * * *", function () { console.log("items", n); });
"""


def _witness_ok(run) -> None:
    counts = [int(ln.split()[1]) for ln in run.lines("Witness") if ln.startswith("items ")]
    assert counts and counts[-1] > 50  # the other script kept getting items
    assert run.errors("Witness") == []


def test_endless_loop_in_a_hook_stops_only_that_script(tmp_path: Path) -> None:
    loop = "// Looper\nfunction onItemCaptured(data) { if (data.index >= 0) { while (true) {} } }\n"
    run = run_pipeline(tmp_path, {"loop.js": loop, "w.js": WITNESS}, limits=Limits(call_timeout_s=1.0))
    assert run.errors("Looper") == ["a call exceeded the time budget of 1 s (terminated); script stopped"]
    _witness_ok(run)


def test_endless_loop_in_top_level_code_and_in_a_job(tmp_path: Path) -> None:
    top = "// Top\nwhile (true) {}\n"
    job = "// Job\njobs.schedule('spin', '*/20 * * * * *', function () { for (;;) {} });\n"
    run = run_pipeline(
        tmp_path, {"top.js": top, "job.js": job, "w.js": WITNESS}, limits=Limits(call_timeout_s=1.0)
    )
    assert run.errors("Top") == ["top.js: top-level code exceeded the time budget of 1 s; not loaded"]
    assert run.errors("Job") == ["a call exceeded the time budget of 1 s (terminated); script stopped"]
    _witness_ok(run)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("var big = new ArrayBuffer(2 * 1024 * 1024 * 1024);", "RangeError: Array buffer allocation failed"),
        ("var a = []; while (true) a.push(new Array(1e6).fill(1.5));", "heap limit of 64 MiB exceeded"),
        ("var s = 'x'.repeat(2 ** 31);", "(hook=onItemCaptured) RangeError: Invalid string length"),
    ],
)
def test_two_gigabyte_allocations(tmp_path: Path, code: str, expected: str) -> None:
    hog = (
        "// Hog\nvar done = false;\nfunction onItemCaptured(data) {\n  if (done) return;\n  done = true;\n"
        f"  {code}\n}}\n"
    )
    run = run_pipeline(tmp_path, {"hog.js": hog, "w.js": WITNESS}, limits=Limits(heap_bytes=64 * MIB))
    errors = run.errors("Hog")
    assert len(errors) == 1 and expected in errors[0], errors
    _witness_ok(run)


@pytest.mark.slow
def test_v8_fatal_out_of_memory_only_ends_that_scripts_process(tmp_path: Path) -> None:
    # a dictionary-mode array past V8's table limit aborts the whole V8 process ("invalid table
    # size"); in kflpcap that is the script's own child process
    hog = (
        "// Fatal\nvar once = false;\nfunction onItemCaptured(d) {\n  if (once) return;\n  once = true;\n"
        "  var a = new Array(2e9).fill(0);\n}\n"
    )
    run = run_pipeline(tmp_path, {"hog.js": hog, "w.js": WITNESS}, limits=Limits(call_timeout_s=20.0))
    errors = run.errors("Fatal")
    assert len(errors) == 1 and errors[0].endswith("script stopped"), errors
    _witness_ok(run)


def test_a_throw_in_every_hook_is_reported_and_calls_go_on(tmp_path: Path) -> None:
    thrower = """// Thrower
    var items = 0, packets = 0;
    function onItemCaptured(d) { items++; throw new Error("item " + items); }
    function onPacketCaptured(info) {
      packets++;
      if (packets % 500 === 1) throw new TypeError("packet " + packets);
    }
    function onJobPassed(tag) { throw new Error("passed " + tag); }
    function onJobFailed(tag, cron, limit, err) { throw new Error("failed " + tag); }
    jobs.schedule("ok", "*/30 * * * * *", function () { console.log("items", items, "packets", packets); });
    jobs.schedule("bad", "15 * * * * *", function () { throw new Error("job"); }, 1);
    setTimeout(function () { throw new RangeError("timer"); }, 5000);
    """
    run = run_pipeline(tmp_path, {"t.js": thrower})
    errors = run.errors("Thrower")
    item_errors = [e for e in errors if e.startswith("(hook=onItemCaptured) Error: item ")]
    reported = [ln for ln in run.lines("Thrower") if ln.startswith("items ")]
    assert reported and len(item_errors) >= int(reported[-1].split()[1]) > 50
    assert any(e.startswith("(hook=onPacketCaptured) TypeError: packet 1 ") for e in errors)
    assert any(e.startswith("(hook=onJobPassed) Error: passed ok") for e in errors)
    assert any(e.startswith("(hook=onJobFailed) Error: failed bad") for e in errors)
    assert any(e.startswith("(job=bad) Error: job") for e in errors)
    assert any(e.startswith("(setTimeout) RangeError: timer") for e in errors)
    assert int(reported[-1].split()[3]) > 500  # packets kept coming


def _processes_with(marker: str) -> list[int]:
    """Processes whose environment holds `marker` (the run and every child it started)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_cli_run_with_faulty_scripts_exits_and_leaves_no_process(tmp_path: Path) -> None:
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "loop.js").write_text("// Loop\nfunction onItemCaptured(d) { while (true) {} }\n")
    (folder / "throw.js").write_text("// Throw\nfunction onItemCaptured(d) { throw 1; }\n")
    (folder / "syntax.js").write_text("// Syntax\nfunction (\n")
    (folder / "w.js").write_text(WITNESS)
    marker = f"KFLPCAP_TEST_RUN={uuid.uuid4().hex}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime",
            "run",
            "--pcap",
            str(DEMO_PCAP),
            "--scripts",
            str(folder),
            "--data-dir",
            str(tmp_path / "data"),
            "--call-timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        env={
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            marker.split("=")[0]: marker.split("=")[1],
        },
    )
    assert proc.returncode == 1, proc.stderr  # the run went to the end; scripts failed (exit code 1)
    assert "Loop:ERROR] a call exceeded the time budget of 1 s (terminated); script stopped" in proc.stderr
    assert "Throw:ERROR] (hook=onItemCaptured) 1" in proc.stderr
    assert "Syntax:ERROR] syntax.js:2: SyntaxError" in proc.stderr
    assert "Witness] items " in proc.stdout
    # no V8 process outlives the run (children that are exiting get a generous while to go)
    deadline = time.monotonic() + 60
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []


@pytest.mark.parametrize("fill", [True, False])
def test_arraybuffers_outside_the_heap_are_bounded(tmp_path: Path, fill: bool) -> None:
    # 32 × 64 MiB = 2 GiB of backing stores, which the V8 heap limit does not count
    hog = (
        "// Hog\nvar keep = [], done = false;\nfunction onItemCaptured(d) {\n  if (done) return;\n"
        "  done = true;\n  try {\n    for (var i = 0; i < 32; i++) {\n"
        f"      var a = new Uint8Array(64 * 1024 * 1024);{' a.fill(1);' if fill else ''} keep.push(a);\n"
        "    }\n  } catch (e) { console.log('refused after', keep.length, e.name); }\n}\n"
    )
    run = run_pipeline(tmp_path, {"hog.js": hog, "w.js": WITNESS}, limits=Limits(heap_bytes=64 * MIB))
    if fill:  # resident memory: the watchdog stops the script
        [stopped] = run.errors("Hog")
        held = int(stopped.split()[7])
        assert held > 384 and stopped == (
            f"script stopped: memory — its process held {held} MiB, over the limit of 384 MiB "
            "(V8 heap, ArrayBuffers and the process itself)"
        )
    else:  # untouched pages: the data segment cap refuses the allocation
        refused = [ln for ln in run.lines("Hog") if ln.startswith("refused after ")]
        assert refused and int(refused[0].split()[2]) < 8 and refused[0].endswith("RangeError")
    _witness_ok(run)


def test_a_huge_console_line_is_cut_with_a_note(tmp_path: Path) -> None:
    big = (
        "// Big\nvar done = false;\nfunction onItemCaptured(d) {\n  if (done) return;\n  done = true;\n"
        "  var s = 'x'.repeat(200 * 1024 * 1024);\n  console.log(s);\n  console.log('after');\n}\n"
    )
    run = run_pipeline(tmp_path, {"big.js": big, "w.js": WITNESS})
    assert run.errors("Big") == []
    cut, after = run.lines("Big")[1:]
    assert cut == "x" * MIB + f" … [console line cut: {199 * MIB} more characters; a line is capped at {MIB}]"
    assert after == "after"
    _witness_ok(run)
