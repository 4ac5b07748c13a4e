"""`kflpcap run` keeps TLS connections by SNI and Redis connections with error replies: a script with
those two queries over live captures (tests/items: Python ssl / openssl, redis-server / redis-py)
writes local repositories whose streams are exactly tshark's selection on the same captures."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.items.live import tshark_rows
from tests.items.test_redis import record_redis
from tests.items.test_tls import record_traffic
from tests.wrappers.checks import by_query, contiguous_totals, stream_tuples
from wrappers.repos import verify
from wrappers.stores import open_store

ROOT = Path(__file__).parents[2]
SCRIPT = """
var QUERIES = ['tls and request.sni.endsWith(".internal")', "redis and response.error"];
function onItemCaptured(data) {
  wrapper.kflPcapS3(data, { kflArr: QUERIES });
}
"""
pytestmark = pytest.mark.live


def _tuples(rows: list[list[str]]) -> Counter:
    return Counter((c, int(cp), s, int(sp)) for c, cp, s, sp in set(map(tuple, rows)))


def test_run_keeps_tls_by_sni_and_redis_errors_as_tshark_selects(tmp_path: Path) -> None:
    tls_pcap, redis_pcap = tmp_path / "tls.pcap", tmp_path / "redis.pcap"
    record_traffic(tls_pcap, tmp_path)
    record_redis(redis_pcap)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "keep.js").write_text(SCRIPT)
    argv = [sys.executable, "-m", "runtime", "run", "--pcap", str(tls_pcap), "--pcap", str(redis_pcap),
            "--scripts", str(scripts), "--data-dir", str(tmp_path / "data"), "--node", "n1"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert done.returncode == 0 and "ERROR" not in done.stdout, done.stdout + done.stderr
    store = open_store(tmp_path / "data" / "repositories")
    repos = by_query(store)
    by_sni = tshark_rows(tls_pcap, 'tls.handshake.extensions_server_name matches "\\\\.internal$"',
                         ["ip.src", "tcp.srcport", "ip.dst", "tcp.dstport"])
    errors = tshark_rows(redis_pcap, "resp.error", ["ip.dst", "tcp.dstport", "ip.src", "tcp.srcport"])
    assert len(by_sni) == 4 and len(set(map(tuple, errors))) >= 8
    assert stream_tuples(repos[0]) == _tuples(by_sni)
    assert stream_tuples(repos[1]) == _tuples(errors)
    for chain in repos.values():
        contiguous_totals(chain)
    assert verify(store).problems == []
