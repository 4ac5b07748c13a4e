"""vendor.kinesis.put: the kinesis/kinesis.js pattern (HAR of HTTP items to a Kinesis stream)
against moto's Kinesis server on loopback; the records are read back and their HARs checked."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.compat.conftest import MIXED, kflpcap_run, tshark_fields
from tests.seaweed import free_ports

SCRIPT = """// Kinesis HAR Stream Of HTTP Errors
// Sends a HAR of every HTTP error to a Kinesis data stream.
var sent = 0;
function onItemCaptured(data) {
  if (data.protocol.name !== "http") return;
  if (data.response && data.response.status >= 400) {
    var har = wrapper.buildHAR([data]);
    var result = vendor.kinesis.put(env.KINESIS_STREAM_NAME, har, env.AWS_REGION, env.AWS_ACCESS_KEY_ID,
      env.AWS_SECRET_ACCESS_KEY);
    sent++;
    console.log("Kinesis Results: " + result.ShardId + " " + result.SequenceNumber + " (" + sent + ")");
  }
}
"""


@pytest.fixture
def kinesis() -> Iterator[str]:
    port = free_ports(1)[0]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_each_http_error_lands_in_the_stream_as_a_har(tmp_path: Path, kinesis: str) -> None:
    client = boto3.client("kinesis", endpoint_url=kinesis, region_name="eu-west-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_stream(StreamName="kubeshark-hars", ShardCount=1)
    servers = tshark_fields(MIXED, "http.response.code >= 400", "ip.src")
    names = tmp_path / "names.json"
    names.write_text(json.dumps({ip: {"name": f"svc-{ip}", "namespace": "shop"} for ip in servers}))
    env = {"KINESIS_STREAM_NAME": "kubeshark-hars", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "KINESIS_ENDPOINT": kinesis}
    done = kflpcap_run(tmp_path, SCRIPT, MIXED, env, ["--names", str(names)])

    shard = client.describe_stream(StreamName="kubeshark-hars")["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = client.get_shard_iterator(StreamName="kubeshark-hars", ShardId=shard,
                                         ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = client.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    codes = sorted(int(c) for c in tshark_fields(MIXED, "http.response.code >= 400", "http.response.code"))
    assert len(records) == len(codes) == 5
    statuses = sorted(json.loads(r["Data"])["log"]["entries"][0]["response"]["status"] for r in records)
    assert statuses == codes
    printed = re.findall(r"Kinesis Results: (\S+) (\d+) \(\d+\)", done.stdout)
    assert sorted(seq for _, seq in printed) == sorted(r["SequenceNumber"] for r in records)
    assert {s for s, _ in printed} == {shard}


def test_an_unknown_stream_throws_in_the_script(tmp_path: Path, kinesis: str) -> None:
    script = """// Kinesis Missing Stream
try {
  vendor.kinesis.put("no-such-stream", {a: 1}, "eu-west-1", "testing", "testing");
} catch (e) {
  console.log("Kinesis failed: " + e.message);
}
"""
    done = kflpcap_run(tmp_path, script, MIXED, {"KINESIS_ENDPOINT": kinesis})
    assert re.search(r"Kinesis failed: vendor.kinesis.put: .*ResourceNotFoundException", done.stdout)
