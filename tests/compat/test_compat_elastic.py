"""vendor.elastic: a telemetry script (S3 telemetry/elastic_traffic_logs.js style) indexes every
HTTP error into Elasticsearch and prints the returned document id."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from tests.compat.conftest import MIXED, Request, kflpcap_run, tshark_count, tshark_fields

SCRIPT = """// Elastic HTTP Error Log
// Sends each HTTP error (status >= 400) to Elasticsearch.
function onItemCaptured(data) {
  if (data.protocol.name != "http") return;
  var status = data.response && data.response.status;
  if (!status || status < 400) return;
  var doc = {
    timestamp: data.timestamp,
    method: data.request.method,
    path: data.request.path,
    status: status,
    elapsedTime: data.elapsedTime,
    src: data.src.ip,
    dst: data.dst.ip + ":" + data.dst.port
  };
  var id = vendor.elastic(env.ELASTIC_URL, "kubeshark-errors", doc, env.ELASTIC_USER, env.ELASTIC_PASSWORD);
  console.log("Indexed " + status + " as " + id);
}
"""

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def elastic(req: Request) -> tuple[int, dict[str, str], bytes]:
    """The index API as Elasticsearch answers it: PUT /<index>/_doc/<id>?refresh=true."""
    path, _, query = req.path.partition("?")
    _, index, kind, doc_id = path.split("/")
    assert req.method == "PUT" and kind == "_doc" and query == "refresh=true", req.path
    assert UUID4.match(doc_id), doc_id
    assert req.headers["content-type"] == "application/json"
    assert req.headers["authorization"] == "Basic " + base64.b64encode(b"elastic:changeme").decode()
    json.loads(req.body)
    answer = {"_index": index, "_id": doc_id, "_version": 1, "result": "created",
              "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": 0, "_primary_term": 1}
    headers = {"Content-Type": "application/json", "X-Elastic-Product": "Elasticsearch"}
    return 201, headers, json.dumps(answer).encode()


def test_every_http_error_is_indexed_and_its_id_returned(tmp_path: Path, http_service) -> None:
    service = http_service(elastic)
    done = kflpcap_run(tmp_path, SCRIPT, MIXED, {"ELASTIC_URL": service.url, "ELASTIC_USER": "elastic",
                                                 "ELASTIC_PASSWORD": "changeme"})
    assert service.refused == []
    expected = tshark_count(MIXED, "http.response.code >= 400")
    assert expected == 5 and len(service.got) == expected
    docs = [r.json() for r in service.got]
    assert sorted(d["status"] for d in docs) == sorted(
        int(c) for c in tshark_fields(MIXED, "http.response.code >= 400", "http.response.code"))
    assert all(d["method"] and d["path"].startswith("/") and isinstance(d["elapsedTime"], int) for d in docs)
    assert {r.path.split("/")[1] for r in service.got} == {"kubeshark-errors"}
    ids = [r.path.split("/")[3].split("?")[0] for r in service.got]
    printed = re.findall(r"Indexed (\d+) as (\S+)", done.stdout)
    assert sorted(i for _, i in printed) == sorted(ids)


def test_an_error_answer_throws_in_the_script(tmp_path: Path, http_service) -> None:
    def refuse(_req: Request) -> tuple[int, dict[str, str], bytes]:
        return 401, {"Content-Type": "application/json"}, b'{"error":"security_exception","status":401}'

    service = http_service(refuse)
    script = SCRIPT.replace('var id = vendor.elastic', 'try { var id = vendor.elastic').replace(
        'console.log("Indexed " + status + " as " + id);',
        'console.log("Indexed " + id); } catch (e) { console.log("Elastic refused: " + e.message); }')
    done = kflpcap_run(tmp_path, script, MIXED, {"ELASTIC_URL": service.url})
    refused = [ln for ln in done.stdout.splitlines() if "Elastic refused: vendor.elastic: " in ln]
    assert len(refused) == len(service.got) == tshark_count(MIXED, "http.response.code >= 400")
    assert all("security_exception" in ln and "401" in ln for ln in refused)
