"""vendor.gcs.put / vendor.gcs.clear: the dfir/forensics_gcs.js pattern (copy the PCAP of each
HTTP 500 stream, tar, upload with a service-account key) against a local server implementing the
subset of the GCS JSON/upload API and the OAuth token exchange google-cloud-storage uses, strictly
(the JWT assertion is verified with the key's public half; every API call needs the token)."""

from __future__ import annotations

import base64
import io
import json
import re
import tarfile
import threading
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import google_crc32c
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from tests.compat.conftest import MIXED, Request, kflpcap_run, tshark_fields

SCRIPT = """// Traffic Recording To GCS
// On each new HTTP 500 stream: copy its PCAP and the item, tar them and upload the tar to GCS.
var copied = {};

function onItemCaptured(data) {
  if (data.protocol.name !== "http" || !data.response) return;
  if (data.response.status === 500 && !copied[data.stream]) {
    copied[data.stream] = true;
    var dir = file.mkdirTemp("dfir");
    file.copy(pcap.path(data.stream), dir + "/" + data.stream);
    file.write(dir + "/item.json", JSON.stringify(data));
    var tarFile = file.tar(dir);
    var url = vendor.gcs.put(env.GCS_BUCKET, tarFile, JSON.parse(env.GCS_SA_KEY_JSON));
    console.log("Uploaded to: " + url);
    file.delete(dir);
  }
}
"""

CLEAR = """// GCS Clear
vendor.gcs.clear(env.GCS_BUCKET, JSON.parse(env.GCS_SA_KEY_JSON));
"""

TOKEN = "ya29.kflpcap-test"


class FakeGcs:
    def __init__(self, public_pem: bytes, bucket: str) -> None:
        self.public_pem = public_pem
        self.bucket = bucket
        self.objects: dict[str, tuple[bytes, dict]] = {}
        self.lock = threading.Lock()
        self.generation = 0

    def resource(self, name: str) -> dict:
        data, meta = self.objects[name]
        return {"kind": "storage#object", "bucket": self.bucket, "name": name, "size": str(len(data)),
                "generation": str(meta["generation"]), "metadata": meta.get("metadata", {}),
                "contentType": meta.get("contentType", "")}

    def __call__(self, req: Request) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(req.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/token":
            form = {k: v[0] for k, v in parse_qs(req.body.decode(), strict_parsing=True).items()}
            assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
            claims = jwt.decode(form["assertion"], certs=self.public_pem,
                                audience="https://oauth2.googleapis.com/token")
            assert "devstorage" in claims["scope"]
            return self.json({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})
        assert req.headers.get("authorization") == f"Bearer {TOKEN}"
        with self.lock:
            return self.api(req, url.path, query)

    def api(self, req: Request, path: str, query: dict) -> tuple[int, dict[str, str], bytes]:
        upload = f"/upload/storage/v1/b/{self.bucket}/o"
        objects = f"/storage/v1/b/{self.bucket}/o"
        if req.method == "POST" and path == upload:
            assert query["uploadType"] == "multipart"
            meta, data = self.multipart(req)
            name = meta["name"]
            if query.get("ifGenerationMatch") == "0" and name in self.objects:
                return 412, {"Content-Type": "application/json"}, b'{"error":{"code":412}}'
            if "crc32c" in meta:
                assert base64.b64decode(meta["crc32c"]) == google_crc32c.Checksum(data).digest()
            self.generation += 1
            self.objects[name] = (data, {**meta, "generation": self.generation})
            return self.json(self.resource(name))
        if req.method == "GET" and path == f"/storage/v1/b/{self.bucket}":
            return self.json({"kind": "storage#bucket", "id": self.bucket, "name": self.bucket,
                              "location": "US", "storageClass": "STANDARD"})
        if req.method == "GET" and path == objects:
            prefix = query.get("prefix", "")
            items = [self.resource(n) for n in sorted(self.objects) if n.startswith(prefix)]
            return self.json({"kind": "storage#objects", "items": items})
        if path.startswith(objects + "/"):
            name = unquote(path[len(objects) + 1:])
            if name not in self.objects:
                return 404, {"Content-Type": "application/json"}, b'{"error":{"code":404}}'
            if req.method == "DELETE":
                del self.objects[name]
                return 204, {}, b""
            if query.get("alt") == "media":
                return 200, {"Content-Type": "application/octet-stream"}, self.objects[name][0]
            return self.json(self.resource(name))
        raise AssertionError(f"unexpected {req.method} {path}")

    @staticmethod
    def multipart(req: Request) -> tuple[dict, bytes]:
        ctype = req.headers["content-type"]
        match = re.fullmatch(r'multipart/related; boundary="?([^";]+)"?', ctype)
        assert match, ctype
        boundary = match[1].encode()
        parts = req.body.split(b"--" + boundary)
        assert parts[0] == b"" and parts[-1].strip() == b"--", "bad multipart framing"
        (head1, meta), (head2, data) = (p.removeprefix(b"\r\n").split(b"\r\n\r\n", 1) for p in parts[1:3])
        assert b"application/json" in head1.lower()
        kind = re.search(rb"(?im)^content-type:\s*(\S+)", head2)
        assert kind, head2
        return {**json.loads(meta), "contentType": kind[1].decode()}, data.removesuffix(b"\r\n")

    @staticmethod
    def json(doc: dict) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()


def test_forensics_to_gcs_then_clear(tmp_path: Path, http_service) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    gcs = FakeGcs(public_pem, "forensics")
    service = http_service(gcs)
    gcs.url = service.url
    sa_key = {"type": "service_account", "project_id": "acme", "private_key_id": "k1",
              "private_key": private_pem, "client_email": "kubeshark@acme.iam.gserviceaccount.com",
              "client_id": "1", "token_uri": f"{service.url}/token"}
    env = {"GCS_BUCKET": "forensics", "GCS_SA_KEY_JSON": json.dumps(sa_key), "GCS_ENDPOINT": service.url}
    done = kflpcap_run(tmp_path / "put", SCRIPT, MIXED, env, ["--node", "node-7"])
    assert service.refused == []
    urls = re.findall(r"Uploaded to: (\S+)", done.stdout)
    streams = set(tshark_fields(MIXED, "http.response.code == 500", "tcp.stream"))
    assert len(urls) == len(gcs.objects) == len(streams) >= 1
    assert sorted(urls) == sorted("https://storage.googleapis.com/forensics/" + n for n in gcs.objects)
    for name, (data, meta) in gcs.objects.items():
        assert re.fullmatch(r"node-7_[0-9a-f.:]+_\d+/kubeshark_[\w]+\.tar\.gz", name)
        assert meta["contentType"] in ("application/gzip", "application/x-tar")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            files = {m.name.rsplit("/", 1)[-1]: tar.extractfile(m).read() for m in members}
        item = json.loads(files.pop("item.json"))
        assert item["response"]["status"] == 500
        (pcap,) = files.values()
        assert pcap[:4] == b"\xd4\xc3\xb2\xa1"
    name = next(iter(gcs.objects))
    # clear: only this node's uploads; a repository-like key and another node's upload stay
    gcs.objects["node-7/kfl_0/repo.pcap.gz"] = (b"x", {"generation": 99})
    other = name.split("_")[0] + "_" + name.split("_")[1] + "9_1/other.tar.gz"
    gcs.objects[other] = (b"x", {"generation": 100})
    cleared = kflpcap_run(tmp_path / "clear", CLEAR, MIXED, env, ["--node", "node-7"])
    assert "Deleted all files under node-7_" in cleared.stdout
    assert sorted(gcs.objects) == sorted(["node-7/kfl_0/repo.pcap.gz", other])
