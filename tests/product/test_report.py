"""The progress bar, the summary and the exit code, rendered to a string console."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from runtime.cli.report import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    RunProgress,
    exit_code,
    failures,
    human_bytes,
    print_summary,
)
from runtime.engine.stats import RunStats
from tests.product.stats_sample import sample_stats


def render(stats: dict, width: int = 240) -> str:
    out = io.StringIO()
    print_summary(stats, Console(file=out, width=width, color_system=None))
    return out.getvalue()


def test_summary_says_what_was_read_matched_and_kept() -> None:
    stats = sample_stats()
    text = render(stats)
    assert f"{stats['packets']:,}" in text and f"{stats['packets'] / stats['elapsed_s']:,.0f}/s" in text
    assert f"{stats['streams']['tcp'] + stats['streams']['udp']:,}" in text
    for protocol, n in stats["items"].items():
        assert f"{protocol} {n:,}" in text
    for m in stats["matches"]:
        assert m["query"] in text and f"{m['matches']:,}" in text
    for repo in stats["repositories"]:
        assert repo["location"] in text
        assert human_bytes(repo["bytes_raw"]) in text and human_bytes(repo["bytes_gz"]) in text
    total_raw = sum(r["bytes_raw"] for r in stats["repositories"])
    total_gz = sum(r["bytes_gz"] for r in stats["repositories"])
    assert human_bytes(total_raw) in text and human_bytes(total_gz) in text
    assert f"Repositories written: {len(stats['repositories'])}" in text
    assert "hook errors" in text and "load errors" in text
    assert stats["scripts"]["Broken"]["error"] in text
    assert "uploads pending" in text and human_bytes(stats["uploads"]["spool_bytes"]) in text
    assert f"wireshark {stats['repositories'][0]['location']}" in text


def test_summary_of_an_empty_run_has_no_problem_section() -> None:
    text = render(RunStats().snapshot())
    assert "Repositories written: 0" in text
    assert "Errors and uploads" not in text and "wireshark" not in text


def test_s3_locations_get_a_download_hint() -> None:
    stats = RunStats().snapshot()
    stats["repositories"] = [{"script": "s", "query": "dns",
                              "location": "s3://bucket/p/node/seed/kfl_0/x.pcap.gz"}]
    assert "aws s3 cp s3://bucket/p/node/seed/kfl_0/x.pcap.gz . && wireshark x.pcap.gz" in render(stats)
    assert "Repositories were uploaded to s3://bucket/p/" in render(stats)
    stats["uploads"]["pending"] = 2
    assert "Repositories are spooled for upload to s3://bucket/p/ (2 bundle(s) still waiting" in render(stats)


def test_local_locations_get_folder_and_zcat_hints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stats = RunStats().snapshot()
    repo = tmp_path / "data" / "repositories" / "node" / "seed" / "kfl_0" / "x.pcap.gz"
    stats["repositories"] = [{"script": "s", "query": "dns", "location": str(repo)}]
    text = render(stats)
    assert "Repositories were written to data/repositories/ " in text
    assert "(list them: kflpcap repo list data/repositories)" in text
    assert "wireshark data/repositories/node/seed/kfl_0/x.pcap.gz" in text
    assert "wireshark <(zcat data/repositories/node/seed/kfl_0/x.pcap.gz)" in text
    assert "zcat data/repositories/node/seed/kfl_0/x.pcap.gz > repo.pcap" in text


def test_exit_codes() -> None:
    clean = RunStats().snapshot()
    assert exit_code(clean) == EXIT_OK and failures(clean) == []
    assert exit_code(clean, usage_error=True) == EXIT_USAGE

    broken = sample_stats()
    broken["uploads"]["pending"] = 0
    assert exit_code(broken) == EXIT_FAILED
    assert failures(broken) == [f"script Broken: {broken['scripts']['Broken']['error']}"]

    upload = RunStats().snapshot()
    upload["uploads"]["failed"] = [{"key": "k/kfl_0/a.pcap.gz", "error": "AccessDenied"}]
    assert exit_code(upload) == EXIT_FAILED
    assert failures(upload) == ["upload k/kfl_0/a.pcap.gz: AccessDenied"]
    assert "upload failed" in render(upload) and "AccessDenied" in render(upload)

    bad_input = sample_stats()
    bad_input["input"]["errors"] = ["demo.pcap: offset 4096: record length 900000 > snaplen"]
    assert exit_code(bad_input) == EXIT_USAGE
    assert "offset 4096" in render(bad_input)


def test_progress_shows_rate_items_and_matches() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=True, color_system=None)
    stats = sample_stats()
    with RunProgress(console) as progress:
        stats["packets"], stats["input"]["bytes_read"] = 1000, 100_000
        progress.update(stats, now=10.0)
        stats["packets"], stats["input"]["bytes_read"] = 5000, 200_000
        progress.update(stats, now=12.0)
    text = out.getvalue()
    items = sum(stats["items"].values())
    matches = sum(m["matches"] for m in stats["matches"])
    assert f"5,000 packets · 2,000 packets/s · {items} items · {matches} matches" in text
    assert f"{200_000 * 100 // stats['input']['bytes_total']}%" in text


def test_progress_without_a_known_size_still_counts() -> None:
    out = io.StringIO()
    stats = RunStats().snapshot()
    stats.update(live=True, packets=42)
    with RunProgress(Console(file=out, width=200, force_terminal=True, color_system=None)) as progress:
        progress.update(stats, now=1.0)
    assert "capturing" in out.getvalue() and "42 packets" in out.getvalue()


BOTO_BUCKET = ('Invalid bucket name "a/b": Bucket name must match the regex "^[a-zA-Z0-9.\\-_]{1,255}$" '
               'or be '
               'an ARN matching the regex "^arn:(aws).*:(s3|s3-object-lambda):[a-z\\-0-9]*:[0-9]{12}:'
               'accesspoint[/:][a-zA-Z0-9\\-.]{1,63}$"')


@pytest.mark.parametrize("text", [BOTO_BUCKET, "[a-z0-9] [bold]loud[/bold]", "[/] [/x] [link=x]"])
def test_error_texts_with_brackets_are_shown_verbatim(text: str) -> None:
    stats = sample_stats()
    stats["scripts"]["Broken"]["error"] = text
    stats["input"]["warnings"] = [f"in.pcap: {text}"]
    stats["matches"][0]["query"] = f'request.path == "{text}"'
    stats["uploads"]["failed"] = [{"key": f"p/{text}", "error": text}]
    stats["repositories"][0]["location"] = f"s3://b/{text}.pcap.gz"
    shown = render(stats, width=2000)
    for needle in (text, f"in.pcap: {text}", f"p/{text}"):
        assert needle in shown
    assert failures(stats)[0] == f"script Broken: {text}"


def test_uploads_pending_at_the_end_fail_the_run_whatever_the_store_did() -> None:
    # a store that refused connections leaves its last error; one that accepted and never answered
    # leaves none: both runs end with bundles in the spool, and both exit 1
    refused, silent = RunStats().snapshot(), RunStats().snapshot()
    refused["uploads"].update(pending=3, spool_bytes=900, retries=4,
                              failed=[{"key": "n/kfl_0/a.pcap.gz", "error": "Connection refused"}])
    silent["uploads"].update(pending=3, spool_bytes=900)
    for stats in (refused, silent):
        assert exit_code(stats) == EXIT_FAILED
        assert failures(stats)[-1] == ("3 upload(s) not confirmed by the store at the end "
                                       "(kept in the spool, sent at the next start)")
        assert "uploads pending" in render(stats)
