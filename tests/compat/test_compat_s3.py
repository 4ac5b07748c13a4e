"""vendor.s3.put in the 2023 argument order and vendor.s3.clear, against a real S3 (SeaweedFS):
the examples/s3_pcap_stream.js pattern uploads the PCAP of each HTTP 500 stream; a later run
clears this node's uploads, and nothing of kflPcapS3's repositories in the same bucket."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.compat.conftest import MIXED, kflpcap_run, tshark_fields

pytestmark = pytest.mark.s3

PUT_2023 = """// S3 PCAP Stream Upload (2023 argument order)
// On HTTP 500, upload that stream's PCAP to S3 (once per stream).
var uploaded = {};
function onItemCaptured(data) {
  if (data.protocol.name != "http" || !data.response) return;
  if (data.response.status == 500 && !uploaded[data.stream]) {
    uploaded[data.stream] = true;
    var url = vendor.s3.put(env.AWS_REGION, env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY,
      env.S3_BUCKET, pcap.path(data.stream));
    console.log("Uploaded: " + url);
  }
}
"""

SEED = """// Repositories
function onItemCaptured(data) {
  wrapper.kflPcapS3(data, { kflArr: ["http and response.status == 500"] });
}
"""

CLEAR_2023 = """// S3 Clear
vendor.s3.clear(env.AWS_REGION, env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY, env.S3_BUCKET);
"""


def test_put_in_2023_order_then_clear_spares_repositories(tmp_path: Path, seaweed) -> None:
    bucket = seaweed.create_bucket("compat-s3-clear", object_lock=False)
    env = seaweed.env(bucket=bucket)
    client = seaweed.client()

    def keys() -> list[str]:
        return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))

    kflpcap_run(tmp_path / "seed", SEED, MIXED, env, ["--node", "node-7"])
    repositories = keys()
    assert repositories and all(re.match(r"node-7/[a-z0-9-]+/kfl_0/", k) for k in repositories)
    done = kflpcap_run(tmp_path / "put", PUT_2023, MIXED, env, ["--node", "node-7"])
    urls = re.findall(r"Uploaded: (\S+)", done.stdout)
    assert len(urls) == len(set(tshark_fields(MIXED, "http.response.code == 500", "tcp.stream")))
    uploaded = sorted(set(keys()) - set(repositories))
    assert sorted({u.split(f"/{bucket}/", 1)[1] for u in urls}) == uploaded
    for key in uploaded:
        assert re.fullmatch(r"node-7_[0-9a-f.:]+_\d+/[^/]+\.pcap", key)
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read()[:4] in (b"\xd4\xc3\xb2\xa1",
                                                                                 b"\xa1\xb2\xc3\xd4")
    # another node whose name + IP only extends this one's (Kubeshark's prefix would match it)
    node_prefix = uploaded[0].rsplit("_", 1)[0]
    decoy = f"{node_prefix}2_1/other.pcap"
    client.put_object(Bucket=bucket, Key=decoy, Body=b"x")

    cleared = kflpcap_run(tmp_path / "clear", CLEAR_2023, MIXED, env, ["--node", "node-7"])
    assert f"Deleted all files under {node_prefix} in AWS S3 bucket: {bucket}" in cleared.stdout
    assert keys() == sorted([*repositories, decoy])
