"""The README's two commands, `kflpcap run` exit codes on real bad input, and `kflpcap scripts check`
on good and bad scripts (real V8, real KFL, real captures)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path
from typing import Any

from runtime.demo import DEMO_JSON, DEMO_PCAP
from tests.product.tshark_oracle import l4_flows, tshark_fields
from tests.seaweed import free_ports

REPO = Path(__file__).resolve().parents[2]
FIRST = "python3 -m pip install -e . && kflpcap run --demo"
SECOND = ("apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y tshark redis-server && "
          "npm install -g azurite && python3 -m pip install -e '.[test]' && python3 -m pytest")


CHECKOUT_ENV = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout first, whatever is installed
KFLPCAP = [sys.executable, "-m", "runtime"]


def kflpcap(*args: str, cwd: Path, timeout: float = 120,
            argv: list[str] = KFLPCAP) -> subprocess.CompletedProcess:
    return subprocess.run([*argv, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=CHECKOUT_ENV)


def installed_entry_point() -> list[str]:
    """The `kflpcap` that `pip install -e .` put beside the running interpreter (not PATH's), after
    checking that, run as the tests run it, it loads this checkout's code."""
    scripts = Path(sysconfig.get_path("scripts"))
    exe = next((d / "kflpcap" for d in (scripts, Path(sys.executable).parent) if (d / "kflpcap").is_file()),
               None)
    assert exe is not None, f"no kflpcap entry point in {scripts}: run the README's first command"
    interpreter = exe.read_text().splitlines()[0].removeprefix("#!").split()
    where = subprocess.run([*interpreter, "-c", "import runtime.cli.main as m; print(m.__file__)"],
                           capture_output=True, text=True, timeout=60, env=CHECKOUT_ENV, cwd="/")
    assert Path(where.stdout.strip()).resolve().is_relative_to(REPO), (exe, where.stdout, where.stderr)
    return [str(exe)]


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", (REPO / "README.md").read_text(), re.S)
    assert blocks[:2] == [FIRST, SECOND]
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    assert ci[-1] == SECOND


def test_readme_first_command_runs_the_demo_in_a_fresh_folder(tmp_path: Path) -> None:
    done = kflpcap(*FIRST.split(" && ")[1].split()[1:], cwd=tmp_path, argv=installed_entry_point())
    assert done.returncode == 0, done.stderr
    pcaps = sorted((tmp_path / "kflpcap-data" / "repositories").glob("*/*/kfl_*/*.pcap.gz"))
    assert {p.parent.relative_to(p.parents[2]).as_posix() for p in pcaps} == {
        "kfl-pcap-s3/kfl_0", "kfl-pcap-s3/kfl_1"}
    assert "Repositories written: 2" in done.stderr
    assert "http and response.status == 500" in done.stderr
    assert "Repositories were written to kflpcap-data/repositories/" in done.stderr
    assert "Open one in Wireshark: wireshark kflpcap-data/repositories/" in done.stderr
    listed = kflpcap("repo", "verify", "kflpcap-data/repositories", cwd=tmp_path)
    assert listed.returncode == 0, listed.stdout + listed.stderr


def test_help_explains_every_option_with_examples(tmp_path: Path) -> None:
    done = kflpcap("run", "--help", cwd=tmp_path)
    assert done.returncode == 0
    for option in ("--pcap", "--interface", "--bpf", "--scripts", "--env", "--env-file", "--data-dir",
                   "--node", "--names", "--clock", "--metrics-port", "--log-level", "--demo"):
        assert option in done.stdout, option
    assert "examples:" in done.stdout and "exit codes:" in done.stdout


def test_exit_2_for_bad_usage_and_unreadable_input(tmp_path: Path, only_seed: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a capture\n" * 10)
    cases = {
        "no input": [],
        "missing file": ["--pcap", "missing.pcap"],
        "not a capture": ["--pcap", "notes.txt"],
        "bad bpf": ["--pcap", str(DEMO_PCAP), "--bpf", "tcp port"],
        "bad env": ["--pcap", str(DEMO_PCAP), "--env", "no-equals-sign"],
    }
    for name, args in cases.items():
        done = kflpcap("run", *args, "--scripts", str(only_seed), cwd=tmp_path)
        assert done.returncode == 2, (name, done.stderr)
        assert "Traceback" not in done.stderr, name
    assert "notes.txt" in kflpcap("run", "--pcap", "notes.txt", cwd=tmp_path).stderr


def test_truncated_capture_is_a_warning_and_its_part_is_kept(tmp_path: Path, only_seed: Path) -> None:
    data = DEMO_PCAP.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) * 2 // 3 + 7])
    done = kflpcap("run", "--pcap", str(cut), "--scripts", str(only_seed), "--data-dir", "d", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "input warning" in done.stderr and "cut.pcap" in done.stderr
    assert list((tmp_path / "d" / "repositories").glob("*/kfl-pcap-s3/kfl_0/*.pcap.gz"))


def test_exit_1_when_a_script_fails_and_it_is_listed(tmp_path: Path, only_seed: Path) -> None:
    (only_seed / "broken.js").write_text("// Broken On Purpose\nundefinedThing.call();\n")
    done = kflpcap("run", "--pcap", str(DEMO_PCAP), "--scripts", str(only_seed), "--data-dir", "d",
                   cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "failed: script Broken On Purpose" in done.stderr
    assert "Repositories written: 2" in done.stderr  # the other script still did its work


def test_scripts_check_reports_hooks_jobs_and_kfl_of_good_scripts(tmp_path: Path) -> None:
    done = kflpcap("scripts", "check", str(REPO / "scripts"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "kfl_pcap_s3.js: loaded (KFL PCAP S3)" in out
    assert "kfl_pcap_s3.js:9: ok 'http and response.status == 500'" in out
    assert "hooks: onPacketCaptured" in out and "hooks: onItemCaptured, onJobFailed" in out
    assert "job: status-report cron='0 * * * * *'" in out
    assert f"{len(list((REPO / 'scripts').glob('*.js')))} script(s) checked, 0 with problems" in out


def test_scripts_check_finds_syntax_top_level_and_kfl_errors(tmp_path: Path) -> None:
    (tmp_path / "a_kfl.js").write_text('// Bad KFL\nvar Q = ["dns", "http and response.status = 500"];\n'
                                       "function onItemCaptured(d) { wrapper.kflPcapS3(d, {kflArr: Q}); }\n")
    (tmp_path / "b_syntax.js").write_text('// Bad Syntax\nfunction onItemCaptured(d) {\n'
                                          '  console.log("x";\n}\n')
    (tmp_path / "c_throws.js").write_text("// Throws\nvar a = 1;\nundefinedThing.call();\n")
    done = kflpcap("scripts", "check", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    out = done.stdout
    assert "a_kfl.js:2: INVALID 'http and response.status = 500'" in out
    assert "'=' is not an operator" in out and "                               ^" in out
    assert "a_kfl.js:2: ok 'dns'" in out
    assert "b_syntax.js:3: SyntaxError" in out
    assert "c_throws.js:3: ReferenceError: undefinedThing is not defined" in out
    assert "3 script(s) checked, 3 with problems" in out
    assert kflpcap("scripts", "check", str(tmp_path / "missing.js"), cwd=tmp_path).returncode == 2


def test_bpf_limits_what_the_scripts_see(tmp_path: Path, only_seed: Path) -> None:
    done = kflpcap("run", "--pcap", str(DEMO_PCAP), "--bpf", "udp port 53", "--scripts", str(only_seed),
                   "--data-dir", "d", "--node", "n1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    repos = tmp_path / "d" / "repositories" / "n1" / "kfl-pcap-s3"
    assert not list(repos.glob("kfl_0/*.pcap.gz"))
    udp = {flow for pcap in repos.glob("kfl_1/*.pcap.gz") for flow in l4_flows(pcap)}
    want = json.loads(DEMO_JSON.read_text())["dns_flows"]
    assert udp == {flow for flow in want if flow.startswith("udp ")}
    assert "http " not in done.stderr.split("items", 1)[1].split("\n", 1)[0]


def test_sigterm_stops_a_run_waiting_on_a_stalled_pipe(tmp_path: Path, only_seed: Path) -> None:
    port = free_ports(1)[0]
    with (tmp_path / "stderr").open("wb") as stderr:
        proc = subprocess.Popen([*KFLPCAP, "run", "--pcap", "-", "--scripts", str(only_seed),
                                 "--data-dir", "d", "--metrics-port", str(port)],
                                cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr,
                                env=CHECKOUT_ENV)
    try:
        assert proc.stdin is not None
        proc.stdin.write(DEMO_PCAP.read_bytes()[:4096])  # the writer then stalls, the pipe stays open
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # /metrics answers once the signal handlers are in place
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)  # stdin still open: the run must not wait for the writer
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
    err = (tmp_path / "stderr").read_bytes()
    assert proc.returncode == 0, err
    assert b"SIGTERM: stopping" in err
    # what was read before the stop is kept: the first 34 packets hold a DNS exchange (one
    # repository); whether the run had read them when the signal came depends on the machine
    read = re.search(r"packets\s*│\s*([\d,]+) \(", err.decode())
    assert read is not None, err
    assert f"Repositories written: {1 if read[1] == '34' else 0}".encode() in err, err


def test_two_scripts_keep_their_repositories_in_their_own_folders_and_chains(
    tmp_path: Path, only_seed: Path
) -> None:
    """The seed keeps HTTP-500 connections as its kfl_0; a second script's kfl_0 is DNS: neither folder
    nor hash chain is shared, and each holds exactly its own query's streams."""
    (only_seed / "dns_keeper.js").write_text(
        "// DNS Keeper\nfunction onItemCaptured(data) { wrapper.kflPcapS3(data, {kflArr: ['dns']}); }\n")
    done = kflpcap("run", "--pcap", str(DEMO_PCAP), "--scripts", str(only_seed), "--data-dir", "d",
                   "--node", "n1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    repos = tmp_path / "d" / "repositories" / "n1"
    folders = {p.parent.relative_to(repos).as_posix() for p in repos.glob("**/*.pcap.gz")}
    assert folders == {"kfl-pcap-s3/kfl_0", "kfl-pcap-s3/kfl_1", "dns-keeper/kfl_0"}
    want = json.loads(DEMO_JSON.read_text())
    for folder, flows in (("kfl-pcap-s3/kfl_1", want["dns_flows"]), ("dns-keeper/kfl_0", want["dns_flows"])):
        assert {f for p in (repos / folder).glob("*.pcap.gz") for f in l4_flows(p)} == set(flows), folder
    manifests = [json.loads(p.read_text()) for p in (repos / "dns-keeper" / "kfl_0").glob("*.json")]
    assert [m["seq"] for m in manifests] == [0] and manifests[0]["previous_manifest_sha256"] is None
    assert manifests[0]["script"]["title"] == "DNS Keeper"
    verified = kflpcap("repo", "verify", "d/repositories", cwd=tmp_path)
    assert verified.returncode == 0 and "3 chains" in verified.stdout + verified.stderr, verified.stdout


def _start_run(tmp_path: Path, pcap: Path, script: str, *options: str,
               **popen: Any) -> tuple[subprocess.Popen, Path]:
    """`kflpcap run` of `script` alone on `pcap` in the background, stdout piped: (process, data dir)."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "script.js").write_text(script)
    data = tmp_path / "data"
    proc = subprocess.Popen([*KFLPCAP, "run", "--pcap", str(pcap), "--scripts", str(scripts), "--data-dir",
                             str(data), "--no-progress", *options], cwd=tmp_path, env=CHECKOUT_ENV,
                            stdout=subprocess.PIPE, **popen)
    return proc, data


def test_a_reader_that_stops_reading_does_not_stop_the_run(tmp_path: Path) -> None:
    """`kflpcap run … | head -3`: once the pipe is closed, console lines go nowhere and the run still
    writes every repository (it used to wait forever on its writer, which retried the failed print)."""
    proc, data = _start_run(tmp_path, DEMO_PCAP,
                            '// Chatty\nfunction onItemCaptured(data) {\n  console.log(data.id);\n'
                            '  wrapper.kflPcapS3(data, { kflArr: ["dns"], maxL4Streams: 2 });\n}\n',
                            stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    try:
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    assert first.startswith(b"Chatty] ")
    assert code == 0
    dns_flows = {tuple(row) for row in tshark_fields(DEMO_PCAP, "dns", ["tcp.stream", "udp.stream"])}
    manifests = [json.loads(p.read_text()) for p in (data / "repositories").rglob("*.json")]
    assert len({s["id"] for m in manifests for s in m["streams"]}) == len(dns_flows)


def test_ctrl_c_with_workers_stops_them_and_keeps_what_was_read(tmp_path: Path) -> None:
    """^C (SIGINT to the process group) during `run --workers 2`: exit 0, the dissection worker gone,
    no traceback, and the repositories written so far verify."""
    from bench.trafficgen import write_capture

    pcap = tmp_path / "big.pcap"
    write_capture(pcap, packets=300_000, seed=5, plain=True)
    proc, data = _start_run(tmp_path, pcap,
                            'function onItemCaptured(data) {\n'
                            '  wrapper.kflPcapS3(data, { kflArr: ["dns"], maxL4Streams: 50 });\n}\n',
                            "--workers", "2", stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the first repository: the run is well under way
            if "New PCAP" in line:
                break
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err and "ERROR]" not in out + err and "dissection worker" not in err, err
    left = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True).stdout.split()
    assert left == []
    verify = kflpcap("repo", "verify", str(data / "repositories"), cwd=tmp_path)
    assert verify.returncode == 0 and "OK:" in verify.stdout, verify.stdout + verify.stderr


def test_items_from_a_pipe_reach_the_scripts_while_it_is_still_written(tmp_path: Path) -> None:
    """`tcpdump -w - | kflpcap run --pcap -`: items go to the scripts within a capture second of
    traffic, not once a batch is full (the writer here stops with the pipe open)."""
    proc, _data = _start_run(tmp_path, Path("-"),
                             '// Tell\nfunction onItemCaptured(data) { console.log(data.protocol.name); }\n',
                             stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(DEMO_PCAP.read_bytes()[:60000])
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        while ready:
            line = proc.stdout.readline()
            if line.startswith(b"Tell] ") and b"loaded" not in line:
                break
            ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no item reached the script while the pipe stayed open"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.stdin.close()


def test_a_capture_file_on_the_wall_clock_is_read_whole(tmp_path: Path, only_seed: Path) -> None:
    """`--clock wall` on a file: every packet goes through the scripts and the DNS flows tshark sees
    are kept (the run read nothing: the loop only started from the first packet of the capture clock)."""
    done = kflpcap("run", "--pcap", str(DEMO_PCAP), "--clock", "wall", "--scripts", str(only_seed),
                   "--data-dir", "d", "--node", "n1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    packets = len(tshark_fields(DEMO_PCAP, "frame", ["frame.number"]))
    assert re.search(rf"packets\s+│\s+{packets:,} ", done.stderr), done.stderr
    repos = tmp_path / "d" / "repositories" / "n1" / "kfl-pcap-s3"
    dns = {flow for pcap in repos.glob("kfl_1/*.pcap.gz") for flow in l4_flows(pcap)}
    assert dns == set(json.loads(DEMO_JSON.read_text())["dns_flows"])
