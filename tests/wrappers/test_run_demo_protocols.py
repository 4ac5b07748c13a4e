"""`kflpcap run` over the bundled demo capture with the seed script (scripts/kfl_pcap_s3.js, as shipped)
plus a script keeping one query per protocol beyond HTTP/1.x and DNS (HTTP/2, gRPC, TLS, Redis) with
wrapper.kflPcapS3: every query's repositories hold exactly the connections tshark selects on the same
capture (HTTP/2 and gRPC decoded by tshark with `-d tcp.port==P,http2`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.demo import DEMO_PCAP
from runtime.demo.livenet import flow_id
from tests.product.tshark_oracle import (
    dns_flows,
    grpc_statuses,
    http2_statuses,
    http500_streams,
    redis_error_streams,
    tls_server_names,
)
from tests.wrappers.checks import contiguous_totals
from wrappers.repos import Repository, load_repositories, verify
from wrappers.stores import open_store

ROOT = Path(__file__).parents[2]
QUERIES = ["http2 and response.status >= 500", "grpc and response.grpc.status != 0",
           'tls and request.sni.endsWith(".internal")', "redis and response.error"]
SCRIPT = """// Protocol Repositories
var QUERIES = %s;
function onItemCaptured(data) {
  wrapper.kflPcapS3(data, { kflArr: QUERIES, s3Prefix: "protocols" });
}
"""


def _flows(repos: list[Repository]) -> set[str]:
    return {flow_id(s["l4"], s["client"]["ip"], s["client"]["port"], s["server"]["ip"], s["server"]["port"])
            for repo in repos for s in repo.manifest["streams"]}


@pytest.fixture(scope="module")
def repositories(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, list[Repository]], Path]:
    tmp = tmp_path_factory.mktemp("protocols")
    scripts = tmp / "scripts"
    scripts.mkdir()
    shutil.copy(ROOT / "scripts" / "kfl_pcap_s3.js", scripts)
    (scripts / "protocols.js").write_text(SCRIPT % json.dumps(QUERIES))
    argv = [sys.executable, "-m", "runtime", "run", "--pcap", str(DEMO_PCAP), "--scripts", str(scripts),
            "--data-dir", str(tmp / "data"), "--node", "n1"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp, timeout=240)
    assert done.returncode == 0 and "ERROR" not in done.stdout + done.stderr, done.stdout + done.stderr
    store_dir = tmp / "data" / "repositories"
    by_query: dict[str, list[Repository]] = {}
    for repo in load_repositories(open_store(store_dir)):
        by_query.setdefault(repo.manifest["query"]["kfl"], []).append(repo)
    return by_query, store_dir


def test_seed_script_keeps_what_tshark_selects(repositories: tuple) -> None:
    by_query, _ = repositories
    assert _flows(by_query["http and response.status == 500"]) == http500_streams(DEMO_PCAP)
    assert _flows(by_query["dns"]) == dns_flows(DEMO_PCAP)


def test_one_query_per_new_protocol_keeps_what_tshark_selects(repositories: tuple) -> None:
    by_query, store_dir = repositories
    internal = {flow for flow, name in tls_server_names(DEMO_PCAP).items() if name.endswith(".internal")}
    oracle = {
        QUERIES[0]: http2_statuses(DEMO_PCAP)[1],
        QUERIES[1]: grpc_statuses(DEMO_PCAP)[1],
        QUERIES[2]: internal,
        QUERIES[3]: redis_error_streams(DEMO_PCAP),
    }
    for query, want in oracle.items():
        assert want, f"the demo has traffic for {query!r}"
        assert _flows(by_query[query]) == want, query
        assert all(r.key.startswith("protocols/n1/") for r in by_query[query])
    for chain in by_query.values():
        contiguous_totals(chain)
    assert verify(open_store(store_dir)).problems == []
