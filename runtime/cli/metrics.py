"""Prometheus metrics of one kflpcap process (`--metrics-port`).

Nothing here runs per packet. The pipeline keeps its figures in a `runtime.engine.stats.RunStats`;
`Metrics(stats)` reads its `snapshot()` (a plain dict) once per scrape (a custom collector)
and turns it into metric families. Only the script batch latency is observed as it happens
(`observe_batch`, once per batch, not per item), because a histogram cannot be rebuilt from totals.

Each `Metrics` has its own `CollectorRegistry` (not prometheus_client's global one), so several
pipelines or tests in one process never collide.

`Metrics.serve(port)` listens on 0.0.0.0 by default: the metrics are there to be scraped by a
Prometheus in the cluster, which reaches a hostNetwork DaemonSet pod on the node's address (a
127.0.0.1 listener would be unreachable). They carry counts, script titles and KFL queries, no
traffic content. Pass `addr="127.0.0.1"` to keep them on the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

DEFAULT_ADDR = "0.0.0.0"
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

StatsFn = Callable[[], Mapping[str, Any]]


def _items(mapping: Mapping | None) -> list[tuple[Any, Any]]:
    # One atomic copy under the GIL: the pipeline may add keys while a scrape reads.
    return list(dict(mapping or {}).items())


def _counter(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _total(name: str, doc: str, value: float) -> Metric:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float, labels: list[str] | None = None,
           rows: Iterable[tuple[list[str], float]] = ()) -> Metric:
    if labels is None:
        return GaugeMetricFamily(name, doc, value=value)
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, row_value in rows:
        family.add_metric(values, row_value)
    return family


class StatsCollector(Collector):
    """Metric families built from one call of `stats()` per scrape."""

    def __init__(self, stats: StatsFn) -> None:
        self._stats = stats

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        s = dict(self._stats())
        yield from self._traffic(s)
        yield from self._store(s)
        yield from self._scripts(s)
        yield from self._repositories(s)
        yield from self._uploads(s)
        yield from self._k8s(s)

    @staticmethod
    def _traffic(s: dict) -> Iterator[Metric]:
        yield _gauge("kflpcap_uptime_seconds", "Seconds since the run started.", s.get("elapsed_s", 0.0))
        yield _total("kflpcap_packets", "Packets read from the source.", s.get("packets", 0))
        yield _total("kflpcap_bytes", "Captured bytes read from the source.", s.get("bytes", 0))
        yield _counter("kflpcap_drops", "Packets not streamed or lost, by reason.", ["reason"],
                       (([str(k)], v) for k, v in _items(s.get("drops"))))
        yield _total("kflpcap_ring_freezes", "Times a live interface's kernel ring was full (packets lost "
                     "meanwhile count as kflpcap_drops{reason=\"kernel\"}).", s.get("ring_freezes", 0))
        streams = dict(s.get("streams") or {})
        if "total" in streams:
            streams["all"] = streams["total"]
        yield _counter("kflpcap_streams", "L4 streams seen, by transport (l4=\"all\": every transport).",
                       ["l4"], (([l4], streams.get(l4, 0)) for l4 in ("tcp", "udp", "all")
                                if l4 != "all" or "total" in streams))
        yield _gauge("kflpcap_streams_open", "L4 streams open now.", streams.get("open", 0))
        yield _counter("kflpcap_items", "Items dissected, by protocol.", ["protocol"],
                       (([str(k)], v) for k, v in _items(s.get("items"))))

    @staticmethod
    def _store(s: dict) -> Iterator[Metric]:
        store = dict(s.get("store") or {})
        yield _gauge("kflpcap_store_bytes", "Bytes of packets held by the stream store.",
                     store.get("bytes", 0))
        yield _gauge("kflpcap_store_budget_bytes", "The stream store's memory budget.",
                     store.get("budget", 0))
        yield _counter("kflpcap_store_evictions", "Evicted from the stream store by its budget.", ["what"],
                       (([w], store.get(f"evicted_{w}", 0)) for w in ("streams", "packets")))
        yield _total("kflpcap_store_truncated_streams", "Streams cut by the per-stream byte cap.",
                     store.get("truncated_streams", 0))

    @staticmethod
    def _scripts(s: dict) -> Iterator[Metric]:
        scripts = _items(s.get("scripts"))
        by_status: dict[str, int] = {"loaded": 0, "failed": 0}
        for _, script in scripts:
            status = str(script.get("status", "loaded"))
            by_status[status] = by_status.get(status, 0) + 1
        yield _gauge("kflpcap_scripts", "Scripts known, by status.", 0, ["status"],
                     (([k], v) for k, v in by_status.items()))
        yield _counter("kflpcap_script_errors", "Script errors, by script and kind.", ["script", "kind"],
                       (([str(title), str(kind)], n) for title, script in scripts
                        for kind, n in _items(script.get("errors"))))
        yield _counter("kflpcap_errors", "Errors of the whole run, by kind.", ["kind"],
                       (([str(k)], v) for k, v in _items(s.get("errors"))))
        yield _counter("kflpcap_matches", "Items that matched a KFL query, by script and query.",
                       ["script", "index", "query"],
                       (([str(m.get("script", "")), str(m.get("index", "")), str(m.get("query", ""))],
                         m.get("matches", 0)) for m in list(s.get("matches") or [])))

    @staticmethod
    def _repositories(s: dict) -> Iterator[Metric]:
        written: dict[tuple[str, str], list[int]] = {}
        for repo in list(s.get("repositories") or []):
            key = (str(repo.get("script", "")), str(repo.get("query", "")))
            total = written.setdefault(key, [0, 0, 0])
            total[0] += 1
            total[1] += repo.get("bytes_raw", 0)
            total[2] += repo.get("bytes_gz", 0)
        yield _counter("kflpcap_repositories", "Repositories written, by script and query.",
                       ["script", "query"], ((list(k), v[0]) for k, v in written.items()))
        yield _counter("kflpcap_repository_bytes",
                       "Bytes of repository PCAPs written, before (raw) and after (gzip) compression.",
                       ["script", "query", "kind"],
                       (row for k, v in written.items()
                        for row in (([*k, "raw"], v[1]), ([*k, "gzip"], v[2]))))

    @staticmethod
    def _uploads(s: dict) -> Iterator[Metric]:
        uploads = dict(s.get("uploads") or {})
        yield _gauge("kflpcap_upload_queue", "Artifacts spooled and not yet confirmed by the store.",
                     uploads.get("pending", 0))
        yield _gauge("kflpcap_spool_bytes", "Bytes in the spool folder.", uploads.get("spool_bytes", 0))
        yield _total("kflpcap_uploads", "Artifacts the store confirmed.", uploads.get("done", 0))
        yield _total("kflpcap_upload_retries", "Upload attempts that failed and will be retried.",
                     uploads.get("retries", 0))

    @staticmethod
    def _k8s(s: dict) -> Iterator[Metric]:
        k8s = dict(s.get("k8s") or {})
        if not k8s:
            return
        yield _gauge("kflpcap_k8s_stale", "1 while the Kubernetes names are as last known (API server "
                     "unreachable or not listed yet), else 0.", k8s.get("stale", 1))
        yield _total("kflpcap_k8s_errors", "Failed requests to the Kubernetes API server.",
                     k8s.get("errors", 0))
        yield _total("kflpcap_k8s_events", "Watch events applied to the Kubernetes names.",
                     k8s.get("events", 0))
        yield _total("kflpcap_k8s_relists", "Fresh lists after 410 Gone.", k8s.get("relists_gone", 0))


class MetricsServer:
    """The running /metrics endpoint; `port` is the bound port (useful with port 0)."""

    def __init__(self, port: int, addr: str, registry: CollectorRegistry) -> None:
        self._server, self._thread = start_http_server(port, addr=addr, registry=registry)
        self.addr = addr
        self.port: int = self._server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Metrics:
    """The metrics of one run: `Metrics(lambda: stats, services.prometheus)`; `observe_batch` per
    script batch; `serve(port)` for Prometheus, `render()` for a one-off text exposition."""

    def __init__(self, stats: StatsFn, scripts: Collector | None = None) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StatsCollector(stats))
        if scripts is not None:  # the scripts' prometheus.metric/vector series (Services.prometheus)
            self.registry.register(scripts)
        self._batch = Histogram("kflpcap_script_batch_seconds",
                                "Time a batch took in the scripts (kflpcap run: script=\"all scripts\", "
                                "every loaded script working on it in parallel).",
                                ["script"], buckets=BATCH_BUCKETS, registry=self.registry)

    def observe_batch(self, script: str, seconds: float) -> None:
        self._batch.labels(script=script).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, port: int, addr: str = DEFAULT_ADDR) -> MetricsServer:
        """Start the HTTP endpoint (`/metrics`) in a daemon thread."""
        return MetricsServer(port, addr, self.registry)
