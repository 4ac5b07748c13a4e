"""vendor.azure.put: the integrations_azure pattern (upload the PCAP of each HTTP 500 stream with a
connection string) against Azurite, Microsoft's storage emulator; blobs read back and checked."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from tests.compat.conftest import MIXED, kflpcap_run, tshark_fields
from tests.seaweed import free_ports

# Azurite's documented development account
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

SCRIPT = """// Azure Blob PCAP Upload
// On each new HTTP 500 stream, upload its PCAP to Azure Blob Storage.
var uploaded = {};
function onItemCaptured(data) {
  if (data.protocol.name != "http") return;
  if (data.response && data.response.status == 500 && !uploaded[data.stream]) {
    uploaded[data.stream] = true;
    var url = vendor.azure.put(env.AZURE_CONTAINER, pcap.path(data.stream), "", "",
      env.AZURE_CONNECTION_STRING);
    console.log("Uploaded to Azure: " + url);
  }
}
"""


@pytest.fixture
def azurite(tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("azurite-blob")
    if exe is None:
        pytest.skip("azurite-blob not installed (npm install -g azurite)")
    port = free_ports(1)[0]
    proc = subprocess.Popen([exe, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
                             str(tmp_path / "azurite"), "--silent", "--skipApiVersionCheck"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "azurite did not start"
                time.sleep(0.2)
        yield (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
               f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def test_each_http_500_stream_pcap_lands_in_the_container(tmp_path: Path, azurite: str) -> None:
    container = BlobServiceClient.from_connection_string(azurite).create_container("kubeshark-pcaps")
    env = {"AZURE_CONTAINER": "kubeshark-pcaps", "AZURE_CONNECTION_STRING": azurite}
    done = kflpcap_run(tmp_path, SCRIPT, MIXED, env, ["--node", "node-7"])
    urls = re.findall(r"Uploaded to Azure: (\S+)", done.stdout)
    streams = set(tshark_fields(MIXED, "http.response.code == 500", "tcp.stream"))
    blobs = sorted(b.name for b in container.list_blobs())
    assert len(urls) == len(blobs) == len(streams) >= 1
    assert sorted(urls) == sorted(f"{container.url}/{name}" for name in blobs)
    for name in blobs:
        assert re.fullmatch(r"node-7_[0-9a-f.:]+_\d+/\d+\.pcap", name)
        blob = container.get_blob_client(name)
        assert blob.download_blob().readall()[:4] == b"\xd4\xc3\xb2\xa1"
        assert blob.get_blob_properties().metadata["sha256"]
