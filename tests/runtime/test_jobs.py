"""Jobs: 6-field cron with seconds (UTC), tags, limit, extra args, pass/fail hooks, clocks."""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path

import pytest

from capture import open_sources
from runtime.helpers.console import Console
from runtime.helpers.jobs import NS, CronError, Scheduler
from tests.runtime.conftest import DEMO_PCAP, Recorder, run_pipeline

T0 = 1_700_000_000 * NS  # 2023-11-14T22:13:20Z


def test_scheduler_cron_with_seconds_utc_and_coalescing() -> None:
    s = Scheduler()
    owner = object()
    job, old = s.schedule(owner, "t", "*/5 * * * * *", 0, T0 + 1 * NS)
    assert old is None and job.next_ns == T0 + 5 * NS
    assert s.due(T0 + 4 * NS) == []
    assert s.due(T0 + 5 * NS) == [job] and job.next_ns == T0 + 10 * NS
    # a jump over many fire times runs the job once and continues after the clock
    assert s.due(T0 + 3600 * NS) == [job] and job.next_ns == T0 + 3605 * NS
    hourly, _ = s.schedule(owner, "h", "0 0 * * * *", 0, T0)
    assert hourly.next_ns == (1_700_002_800) * NS  # 23:00:00 UTC
    with pytest.raises(CronError):
        s.schedule(owner, "bad", "61 * * * * *", 0, T0)
    for cron, where in (("*/0 * * * * *", "field 1 (second)"), ("0 0 0 30 2 *", "never fires"),
                        ("0 0 24 * * *", "field 3 (hour)"), ("0 0 0 * * 6-1", "field 6 (day of week)")):
        with pytest.raises(CronError, match=re.escape(where)):
            s.schedule(owner, "bad", cron, 0, T0)
    assert s.tags() == ["t", "h"]


def test_scheduler_limit_and_global_tags() -> None:
    s = Scheduler()
    a, b = object(), object()
    job, _ = s.schedule(a, "t", "* * * * * *", 2, T0)
    s.ran(job)
    assert s.get("t") is job
    s.ran(job)
    assert s.get("t") is None
    first, _ = s.schedule(a, "x", "* * * * * *", 0, T0)
    second, old = s.schedule(b, "x", "* * * * * *", 0, T0)
    assert old is first and s.get("x").owner is b
    assert s.remove_owner(a) == [] and s.remove_owner(b) == [second]


def test_jobs_helpers_in_scripts(rec: Recorder) -> None:
    script = """// J
    jobs.schedule("My Job", "*/5 * * * * *", function (a, b) { console.log("run", a, b); }, 0, "x", 7);
    jobs.schedule("Other  Job", "0 * * * * *", function () {});
    console.log(JSON.stringify(jobs.list()), jobs.scheduler.isRunning());
    jobs.remove("other  job");
    console.log(JSON.stringify(jobs.list()));
    try { jobs.remove("nope"); } catch (e) { console.log(e.message); }
    try { jobs.run("nope"); } catch (e) { console.log(e.message); }
    jobs.scheduler.stop();
    console.log(jobs.scheduler.isRunning());
    jobs.scheduler.start();
    """
    with rec.host(script) as h:
        assert rec.services.scheduler.tags() == ["my-job"]
        assert h.run_job("my-job") == (True, None)
        h.close("unload")
        assert rec.services.scheduler.tags() == []
    assert rec.lines_of("J") == [
        'Scheduled the job: "my-job" for cron: "*/5 * * * * *" (limit: infinite)',
        'Scheduled the job: "other--job" for cron: "0 * * * * *" (limit: infinite)',
        '["my-job","other--job"] true',
        'Removed the job: "other--job"',
        '["my-job"]',
        'jobs.remove: no job with tag "nope"',
        'jobs.run: no job with tag "nope"',
        "false",
        "run x 7",
    ]


def test_invalid_cron_throws_at_schedule_naming_the_field_in_the_users_order(rec: Recorder) -> None:
    script = """// C
    var bad = ["99 * * * * *", "*/0 * * * * *", "0 0 0 30 2 *", "* * * * *", "5-2 * * * * *",
               "0 0 0 31 4,6 *", "0 0 0 * * 8", "0 60 * * * *"];
    bad.forEach(function (c) {
        try { jobs.schedule("j", c, function () {}); console.log("accepted", c); }
        catch (e) { console.log(e.message); }
    });
    jobs.schedule("ok", "0 0 0 29 2 *", function () {});
    jobs.schedule("named", "0 0 0 * jan-mar mon-fri", function () {});
    """
    with rec.host(script):
        assert rec.services.scheduler.tags() == ["ok", "named"]
    lines = rec.lines_of("C")
    assert not [line for line in lines if line.startswith("accepted")]
    assert lines[:8] == [
        "jobs.schedule: invalid cron '99 * * * * *': field 1 (second) '99': 99 is out of range 0-59",
        "jobs.schedule: invalid cron '*/0 * * * * *': field 1 (second) '*/0': a step of 0",
        "jobs.schedule: invalid cron '0 0 0 30 2 *': never fires (no month of field 5 has a day of field 4)",
        "jobs.schedule: invalid cron '* * * * *': 5 fields, expected 6 "
        "(second minute hour day-of-month month day-of-week)",
        "jobs.schedule: invalid cron '5-2 * * * * *': field 1 (second) '5-2': the range starts after it ends",
        "jobs.schedule: invalid cron '0 0 0 31 4,6 *': never fires "
        "(no month of field 5 has a day of field 4)",
        "jobs.schedule: invalid cron '0 0 0 * * 8': field 6 (day of week) '8': 8 is out of range 0-7",
        "jobs.schedule: invalid cron '0 60 * * * *': field 2 (minute) '60': 60 is out of range 0-59",
    ]


def test_jobs_fire_on_capture_time_with_limit_args_and_hooks(tmp_path: Path) -> None:
    owner = """// Owner
    var n = 0;
    function tick(label, k) { n++; console.log(label, k, n); }
    jobs.schedule("Tick Tock", "*/10 * * * * *", tick, 3, "tick", 42);
    jobs.schedule("boom", "*/20 * * * * *", function () { throw new Error("kaput " + n); }, 2);
    """
    other = """// Other
    function onJobPassed(tag, cron, limit) { console.log("passed", tag, cron, limit); }
    function onJobFailed(tag, cron, limit, err) { console.log("failed", tag, cron, limit, err); }
    jobs.schedule("cleanup", "0 0 0 1 1 *", function () {});
    """
    run = run_pipeline(tmp_path, {"a.js": owner, "b.js": other})
    assert [ln for ln in run.lines("Owner") if ln.startswith("tick")] == [
        "tick 42 1",
        "tick 42 2",
        "tick 42 3",
    ]
    errors = run.errors("Owner")
    assert len(errors) == 2 and errors[0].startswith("(job=boom) Error: kaput ")
    other_lines = [ln for ln in run.lines("Other") if ln.startswith(("passed", "failed"))]
    assert other_lines.count("passed tick-tock */10 * * * * * 3") == 3
    failed = [ln for ln in other_lines if ln.startswith("failed")]
    assert len(failed) == 2 and failed[0].startswith("failed boom */20 * * * * * 2 Error: kaput ")


def _span_s(pcap: Path) -> tuple[float, float]:
    times = [p[0] / NS for p in open_sources([str(pcap)])]
    return min(times), max(times)


def test_capture_clock_versus_wall_clock(tmp_path: Path) -> None:
    script = """// Clock
    jobs.schedule("ten", "*/10 * * * * *", function () { console.log("fired"); });
    setTimeout(function () { console.log("timer"); }, 60000);
    """
    first, last = _span_s(DEMO_PCAP)
    expected = int(last // 10) - int(first // 10)
    capture = run_pipeline(tmp_path / "c", {"c.js": script}, clock="capture")
    assert capture.lines("Clock").count("fired") == expected >= 6
    assert "timer" in capture.lines("Clock")
    stamped = script.replace('console.log("fired")', 'console.log("fired", Date.now())').replace(
        "// Clock\n", '// Clock\nconsole.log("loaded at", Date.now());\n')
    wall = run_pipeline(tmp_path / "w", {"c.js": stamped}, clock="wall")
    # on the wall clock a */10 job fires at most once per wall-clock 10-second slot after loading
    # (however long the run takes): the slots of its runs rise strictly, from after the load's slot
    loaded = next(int(ln.split()[2]) for ln in wall.lines("Clock") if ln.startswith("loaded at "))
    slots = [loaded // 10_000] + [int(ln.split()[1]) // 10_000 for ln in wall.lines("Clock")
                                  if ln.startswith("fired ")]
    assert slots == sorted(set(slots))
    assert "timer" not in wall.lines("Clock")


def test_a_job_that_triggers_itself_runs_once_per_tick(tmp_path: Path) -> None:
    """Requests made while requested jobs run wait for the next flush or tick: from the first run on,
    every flush and every tick runs the job exactly once (never twice, never forever)."""
    from runtime.engine.pipeline import Pipeline, PipelineConfig

    script = """// Self
    var runs = 0;
    jobs.schedule("again", "0 0 0 1 1 *", function () {
      runs++;
      console.log("run", runs);
      jobs.run("again");
    });
    setTimeout(function () { jobs.run("again"); }, 1000);
    """
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "s.js").write_text(script)
    out, err = io.StringIO(), io.StringIO()
    config = PipelineConfig(sources=[str(DEMO_PCAP)], scripts=[str(folder)], data_dir=tmp_path / "data",
                            node="node-1", watch=False)
    pipeline = Pipeline(config, console=Console(out, err))
    runs_after: list[int] = []  # the job's runs so far, after each flush and each tick

    def chance(*_args: object) -> None:
        runs_after.append(sum(ln.startswith("Self] run ") for ln in out.getvalue().splitlines()))

    pipeline.on_batch.append(chance)
    pipeline.on_tick.append(chance)
    try:
        pipeline.run()
    finally:
        pipeline.close()
    assert err.getvalue() == ""
    first = next(i for i, n in enumerate(runs_after) if n)
    assert runs_after[first:] == list(range(1, len(runs_after) - first + 1))
    assert len(runs_after) - first > 10  # it went on for many flushes and ticks, and the run ended


def test_capture_time_jumping_an_hour_runs_a_missed_job_once(tmp_path: Path) -> None:
    """Cron catch-up through the pipeline: a capture with an hour's hole in it (360 missed `*/10` fire
    times) runs the job once when the capture resumes, then on its 10-second boundaries again."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    start = 1_700_000_005  # 22:13:25 UTC: boundaries at :30, :40, :50
    seconds = [start + i for i in range(26)] + [start + 3600 + i for i in range(26)]
    packets = []
    for second in seconds:
        pkt = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=40000, dport=9999) / b"x"
        pkt.time = second
        packets.append(pkt)
    pcap = tmp_path / "jump.pcap"
    wrpcap(str(pcap), packets)
    script = """// Ten
    var last = null;
    function onPacketCaptured(info) { last = Date.parse(info.timestamp) / 1000; }
    jobs.schedule("ten", "*/10 * * * * *", function () { console.log("fired", last); });
    """
    run = run_pipeline(tmp_path / "run", {"t.js": script}, pcaps=[pcap])
    fired = [float(ln.split()[1]) for ln in run.lines("Ten") if ln.startswith("fired ")]

    # the pipeline ticks at the first packet at or after the fire time; the job has seen the packets
    # before it; a tick runs a due job once and schedules it after the tick's time
    expected, due = [], (start // 10 + 1) * 10
    for before, now in itertools.pairwise(seconds):
        if now >= due:
            expected.append(before)
            due = (now // 10 + 1) * 10
    assert fired == expected
    assert fired.count(start + 25) == 1  # the hour-long hole: one run when the capture resumed
    assert len(fired) == 7 and run.errors("Ten") == []
