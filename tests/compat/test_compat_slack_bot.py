"""vendor.slackBot: the examples/slack_bot.js pattern (on HTTP 500 post a bot message with fields
and attach the stream PCAP and the item JSON) against a local Slack Web API that checks the wire
format; the checker itself is first run against the official `slack_sdk` client."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from urllib.parse import parse_qs

from slack_sdk import WebClient

from tests.compat.conftest import MIXED, Request, kflpcap_run, tshark_count

SCRIPT = """// Slack Bot Alert On HTTP 500
// Posts a message with the item's details and attaches its PCAP and JSON.
function onItemCaptured(data) {
  if (data.protocol.name == "http" && data.response && data.response.status == 500) {
    var itemFile = file.temp("item", "slack", "json");
    file.write(itemFile, JSON.stringify(data));
    vendor.slackBot(
      env.SLACK_BOT_TOKEN,
      env.SLACK_CHANNEL_ID,
      "Server error " + data.response.status,
      "A request to " + data.request.path + " failed",
      "#ff0000",
      {
        "Source": data.src.ip + ":" + data.src.port,
        "Destination": data.dst.ip + ":" + data.dst.port,
        "Method": data.request.method
      },
      {
        "stream.pcap": pcap.path(data.stream),
        "item.json": itemFile
      }
    );
  }
}
"""


class SlackApi:
    """The subset of the Slack Web API slackBot uses, strict about its wire format."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.url = ""
        self.messages: list[dict] = []
        self.pending: dict[str, tuple[str, int]] = {}  # file id -> (filename, length)
        self.uploaded: dict[str, bytes] = {}
        self.shared: list[tuple[str, str, bytes]] = []  # (channel, title, bytes)
        self._ids = itertools.count(1)

    def __call__(self, req: Request) -> tuple[int, dict[str, str], bytes]:
        assert req.method == "POST", req.method
        if req.path.startswith("/upload/"):
            file_id = req.path.rsplit("/", 1)[1]
            assert file_id in self.pending and file_id not in self.uploaded
            assert len(req.body) == self.pending[file_id][1]
            self.uploaded[file_id] = req.body
            return 200, {"Content-Type": "text/plain"}, b"OK - " + str(len(req.body)).encode()
        assert req.headers.get("authorization") == f"Bearer {self.token}"
        method = req.path.removeprefix("/api/")
        ctype = req.headers.get("content-type", "")
        if method == "chat.postMessage":
            assert ctype.startswith("application/json"), ctype
            doc = req.json()
            assert isinstance(doc["channel"], str) and isinstance(doc["attachments"], list)
            for att in doc["attachments"]:
                assert all(isinstance(f["title"], str) and isinstance(f["value"], str) for f in att["fields"])
            self.messages.append(doc)
            return self._ok({"channel": doc["channel"], "ts": f"1700000000.{len(self.messages):06d}"})
        assert ctype.startswith("application/x-www-form-urlencoded"), ctype
        form = {k: v[0] for k, v in parse_qs(req.body.decode(), strict_parsing=True).items()}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ids):08d}"
            self.pending[file_id] = (form["filename"], int(form["length"]))
            return self._ok({"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id})
        if method == "files.completeUploadExternal":
            files = json.loads(form["files"])
            for f in files:
                assert f["id"] in self.uploaded, f
                self.shared.append((form["channel_id"], f.get("title", ""), self.uploaded[f["id"]]))
            return self._ok({"files": [{"id": f["id"], "title": f.get("title", "")} for f in files]})
        raise AssertionError(f"unknown method {method}")

    @staticmethod
    def _ok(doc: dict) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, json.dumps({"ok": True, **doc}).encode()


def test_the_checker_accepts_the_official_client(http_service) -> None:
    api = SlackApi("xoxb-test")
    service = http_service(api)
    api.url = service.url
    client = WebClient(token="xoxb-test", base_url=service.url + "/api/")
    client.chat_postMessage(channel="C1", attachments=[{"pretext": "p", "text": "t", "color": "good",
                                                        "fields": [{"title": "a", "value": "b"}]}])
    client.files_upload_v2(channel="C1", filename="x.txt", title="x.txt", content="hello")
    assert service.refused == []
    assert [m["channel"] for m in api.messages] == ["C1"]
    assert api.shared == [("C1", "x.txt", b"hello")]


def test_slack_bot_posts_and_shares_per_server_error(tmp_path: Path, http_service) -> None:
    api = SlackApi("xoxb-kubeshark")
    service = http_service(api)
    api.url = service.url
    env = {"SLACK_BOT_TOKEN": "xoxb-kubeshark", "SLACK_CHANNEL_ID": "C0ALERTS",
           "SLACK_API_URL": service.url + "/api"}
    done = kflpcap_run(tmp_path, SCRIPT, MIXED, env)
    assert service.refused == []
    expected = tshark_count(MIXED, "http.response.code == 500")
    assert expected == 2 and len(api.messages) == expected
    for doc in api.messages:
        assert doc["channel"] == "C0ALERTS"
        (att,) = doc["attachments"]
        assert att["pretext"] == "Server error 500" and att["color"] == "#ff0000"
        titles = [f["title"] for f in att["fields"]]
        assert titles == ["Source", "Destination", "Method", "Timestamp"]
    assert len(api.shared) == 2 * expected
    for channel, title, data in api.shared:
        assert channel == "C0ALERTS"
        if title == "item.json":
            assert json.loads(data)["response"]["status"] == 500
        else:
            assert title == "stream.pcap" and data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
    out = done.stdout
    assert out.count("Message sent to Slack channel: C0ALERTS at ") == expected
    assert out.count("Shared file: stream.pcap to Slack channel: C0ALERTS") == expected
