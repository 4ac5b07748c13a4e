"""A stats dict as a run over the demo capture would leave it (the shape of RunStats.snapshot())."""

from __future__ import annotations

from runtime.engine.stats import RunStats


def sample_stats() -> dict:
    stats = RunStats().snapshot()
    stats.update(source="demo.pcap", elapsed_s=2.0, packets=1337, bytes=311404)
    stats["input"].update(bytes_read=332820, bytes_total=332820)
    stats["drops"] = {"not ip": 2}
    stats["streams"] = {"tcp": 70, "udp": 40, "open": 3}
    stats["store"].update(bytes=250_000, budget=512 << 20, evicted_streams=1, evicted_packets=9)
    stats["items"] = {"http": 97, "dns": 46, "tcp": 2}
    stats["scripts"] = {
        "KFL PCAP S3": {"file": "scripts/kfl_pcap_s3.js", "status": "loaded", "errors": {}},
        "Broken": {"file": "scripts/broken.js", "status": "failed",
                   "error": "SyntaxError: Unexpected token (3:7)", "errors": {"load": 1}},
        "HTTP 5xx Logger": {"file": "scripts/http_5xx_logger.js", "status": "loaded", "errors": {"hook": 2}},
    }
    stats["matches"] = [
        {"script": "KFL PCAP S3", "index": 0, "query": "http and response.status == 500", "matches": 19,
         "streams": 18},
        {"script": "KFL PCAP S3", "index": 1, "query": "dns", "matches": 46, "streams": 46},
    ]
    stats["repositories"] = [
        {"script": "KFL PCAP S3", "index": 0, "query": "http and response.status == 500",
         "location": "kflpcap-data/store/demo-node/kfl-pcap-s3/kfl_0/20261127T163445Z_000001.pcap.gz",
         "streams": 18,
         "packets": 420, "bytes_raw": 120_000, "bytes_gz": 30_000},
        {"script": "KFL PCAP S3", "index": 1, "query": "dns",
         "location": "kflpcap-data/store/demo-node/kfl-pcap-s3/kfl_1/20261127T163445Z_000001.pcap.gz",
         "streams": 46,
         "packets": 110, "bytes_raw": 11_000, "bytes_gz": 3_000},
    ]
    stats["errors"] = {"hook": 2, "load": 1}
    stats["uploads"].update(pending=2, spool_bytes=33_000, done=4, retries=3)
    return stats
