"""Prometheus metrics: scraped over real HTTP, read from the stats dict at scrape time."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime.cli.metrics import Metrics, MetricsServer
from tests.product.stats_sample import sample_stats


def scrape(server: MetricsServer) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def stats() -> dict:
    return sample_stats()


@pytest.fixture
def served(stats: dict) -> Iterator[tuple[Metrics, MetricsServer]]:
    metrics = Metrics(lambda: stats)
    server = metrics.serve(0, addr="127.0.0.1")
    yield metrics, server
    server.close()


def test_scrape_reports_the_stats(stats: dict, served: tuple[Metrics, MetricsServer]) -> None:
    _, server = served
    got = scrape(server)
    assert got[("kflpcap_packets_total", ())] == stats["packets"]
    assert got[("kflpcap_bytes_total", ())] == stats["bytes"]
    for reason, n in stats["drops"].items():
        assert got[("kflpcap_drops_total", (("reason", reason),))] == n
    assert got[("kflpcap_streams_total", (("l4", "tcp"),))] == stats["streams"]["tcp"]
    assert got[("kflpcap_streams_open", ())] == stats["streams"]["open"]
    assert got[("kflpcap_store_bytes", ())] == stats["store"]["bytes"]
    assert got[("kflpcap_store_evictions_total", (("what", "streams"),))] == stats["store"]["evicted_streams"]
    assert got[("kflpcap_store_evictions_total", (("what", "packets"),))] == stats["store"]["evicted_packets"]
    for protocol, n in stats["items"].items():
        assert got[("kflpcap_items_total", (("protocol", protocol),))] == n
    for m in stats["matches"]:
        labels = (("index", str(m["index"])), ("query", m["query"]), ("script", m["script"]))
        assert got[("kflpcap_matches_total", labels)] == m["matches"]
    for repo in stats["repositories"]:
        labels = (("query", repo["query"]), ("script", repo["script"]))
        assert got[("kflpcap_repositories_total", labels)] == 1
        assert got[("kflpcap_repository_bytes_total", (("kind", "gzip"), *labels))] == repo["bytes_gz"]
        assert got[("kflpcap_repository_bytes_total", (("kind", "raw"), *labels))] == repo["bytes_raw"]
    assert got[("kflpcap_upload_queue", ())] == stats["uploads"]["pending"]
    assert got[("kflpcap_spool_bytes", ())] == stats["uploads"]["spool_bytes"]
    assert got[("kflpcap_uploads_total", ())] == stats["uploads"]["done"]
    assert got[("kflpcap_script_errors_total", (("kind", "hook"), ("script", "HTTP 5xx Logger")))] == 2
    assert got[("kflpcap_scripts", (("status", "failed"),))] == 1
    assert got[("kflpcap_scripts", (("status", "loaded"),))] == 2
    for kind, n in stats["errors"].items():
        assert got[("kflpcap_errors_total", (("kind", kind),))] == n


def test_counters_move_between_scrapes(stats: dict, served: tuple[Metrics, MetricsServer]) -> None:
    metrics, server = served
    before = scrape(server)
    stats["packets"] += 500
    stats["items"]["http"] += 7
    stats["items"]["redis"] = 3
    stats["uploads"]["pending"] = 0
    metrics.observe_batch("KFL PCAP S3", 0.003)
    metrics.observe_batch("KFL PCAP S3", 0.2)
    after = scrape(server)
    assert after[("kflpcap_packets_total", ())] == before[("kflpcap_packets_total", ())] + 500
    assert after[("kflpcap_items_total", (("protocol", "http"),))] == stats["items"]["http"]
    assert after[("kflpcap_items_total", (("protocol", "redis"),))] == 3
    assert after[("kflpcap_upload_queue", ())] == 0
    script = (("script", "KFL PCAP S3"),)
    assert after[("kflpcap_script_batch_seconds_count", script)] == 2
    assert after[("kflpcap_script_batch_seconds_sum", script)] == pytest.approx(0.203)
    assert after[("kflpcap_script_batch_seconds_bucket", (("le", "0.005"), *script))] == 1


def test_two_runs_in_one_process_have_separate_registries(stats: dict) -> None:
    other = {"packets": 1}
    first, second = Metrics(lambda: stats), Metrics(lambda: other)
    assert b"kflpcap_packets_total 1337.0" in first.render()
    assert b"kflpcap_packets_total 1.0" in second.render()


def test_empty_stats_and_closing_the_endpoint() -> None:
    server = Metrics(dict).serve(0, addr="127.0.0.1")
    assert scrape(server)[("kflpcap_packets_total", ())] == 0
    server.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=2):
        pass
