"""vendor.webhookForm: a ZAP-style script (S3 zap-proxy/zap.js) uploads a HAR of every server
error as a multipart form and reads the JSON answer."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

from tests.compat.conftest import MIXED, Request, kflpcap_run, tshark_count, tshark_fields

SCRIPT = """// ZAP HAR Upload Of Server Errors
// Uploads a HAR of each HTTP 5xx to an OWASP ZAP instance.
var zapUrl = env.ZAP_URL;
var uploads = 0;

function onItemCaptured(data) {
  if (data.protocol.name !== "http") return;
  if (data.response && data.response.status >= 500) {
    var har = wrapper.buildHAR([data]);
    var fileName = "kubeshark_" + utils.nodeName() + "_" + uploads + ".har";
    var path = vendor.webhookForm("POST", zapUrl + "/OTHER/core/other/fileUpload/", {
      apikey: env.ZAP_API_KEY, fileName: fileName, fileContents: har
    });
    uploads++;
    console.log("Uploaded HAR " + JSON.parse(path).Uploaded + " (" + uploads + ")");
  }
}
"""


def form_fields(req: Request) -> dict[str, str]:
    ctype = req.headers["content-type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + req.body)
    assert message.is_multipart() and not message.defects
    fields = {}
    for part in message.iter_parts():
        assert part.get_content_disposition() == "form-data"
        fields[part.get_param("name", header="content-disposition")] = part.get_payload(decode=True).decode()
    return fields


def test_zap_upload_receives_one_form_per_server_error(tmp_path: Path, http_service) -> None:
    def zap(req: Request) -> tuple[int, dict[str, str], bytes]:
        assert req.method == "POST" and req.path == "/OTHER/core/other/fileUpload/"
        fields = form_fields(req)
        assert fields["apikey"] == "zap-key"
        answer = json.dumps({"Uploaded": "/zap/" + fields["fileName"]}).encode()
        return 200, {"Content-Type": "application/json"}, answer

    service = http_service(zap)
    servers = tshark_fields(MIXED, "http.response.code >= 500", "ip.src")
    names = tmp_path / "names.json"
    names.write_text(json.dumps({ip: {"name": f"svc-{ip}", "namespace": "shop"} for ip in servers}))
    done = kflpcap_run(tmp_path, SCRIPT, MIXED, {"ZAP_URL": service.url, "ZAP_API_KEY": "zap-key"},
                       ["--names", str(names)])
    assert service.refused == []
    expected = tshark_count(MIXED, "http.response.code >= 500")
    assert expected == 4
    assert len(service.got) == expected
    statuses = []
    for req in service.got:
        fields = form_fields(req)
        har = json.loads(fields["fileContents"])
        assert har["log"]["version"] == "1.2"
        (entry,) = har["log"]["entries"]
        statuses.append(entry["response"]["status"])
        assert entry["request"]["url"].startswith("http://svc-")
    assert sorted(statuses) == [500, 500, 502, 502]
    names = sorted(form_fields(r)["fileName"] for r in service.got)
    assert names == sorted(f"kubeshark_{_node(done.stdout)}_{i}.har" for i in range(expected))
    assert sum("Uploaded HAR /zap/kubeshark_" in line for line in done.stdout.splitlines()) == expected


def _node(stdout: str) -> str:
    line = next(ln for ln in stdout.splitlines() if "Uploaded HAR /zap/kubeshark_" in ln)
    return line.split("Uploaded HAR /zap/kubeshark_")[1].rsplit("_", 1)[0]
