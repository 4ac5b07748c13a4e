"""One kflpcap is its own hub: hub.action reaches every script's onHubAction; wrapper.joinMaps,
wrapper.buildHAR and utils.json2Yaml as Kubeshark's scripts use them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml

from tests.runtime.conftest import Recorder, run_pipeline
from tests.runtime.items import http_item

WORKER = """// Worker Counter
var scriptId = "request-counter";
var local = {};
var pushed = 0;
function onItemCaptured(data) {
  if (data.protocol.name !== "http") return;
  var key = data.dst.ip;
  local[key] = (local[key] || 0) + 1;
  pushed++;
  if (pushed % 10 === 0) { hub.action(scriptId, local); local = {}; }
}
jobs.schedule("flush", "*/30 * * * * *", function () { hub.action(scriptId, local); local = {}; });
"""

HUB = """// Hub Merger
var merged = {};
function onHubAction(action, object) {
  if (action !== "request-counter") return;
  merged = wrapper.joinMaps(merged, object);
  var total = 0;
  for (var k in merged) total += merged[k];
  console.log("total " + total);
  console.log("yaml " + JSON.stringify(utils.json2Yaml(JSON.stringify({servers: merged, n: total}))));
}
"""

SILENT = "// No Hub Hook\nfunction onItemCaptured(data) {}\n"


def test_hub_actions_reach_every_hub_script_in_order(tmp_path: Path) -> None:
    run = run_pipeline(tmp_path, {"a_worker.js": WORKER, "b_hub.js": HUB, "c_silent.js": SILENT})
    assert run.errors("Worker Counter") == [] and run.errors("Hub Merger") == []
    assert run.errors("No Hub Hook") == []
    totals = [int(line.split()[1]) for line in run.lines("Hub Merger") if line.startswith("total ")]
    http = run.pipeline.stats.items["http"]
    # every push arrives, in order: the totals only grow, and the pushes every 10 items are all there
    assert totals == sorted(totals) and len(totals) > http // 10  # every 10 items, and the jobs' pushes
    assert (http // 10) * 10 <= totals[-1] <= http
    yamls = [line[len("yaml ") :] for line in run.lines("Hub Merger") if line.startswith("yaml ")]
    last = json.loads(yamls[-1])
    doc = yaml.safe_load(last)
    assert doc["n"] == totals[-1] == sum(doc["servers"].values())


def test_join_maps_adds_numbers_and_merges_nested_maps(rec: Recorder) -> None:
    script = """// Join
var a = {dns: {"10.0.0.1": 2, "10.0.0.2": 1}, total: 3, label: "x"};
var b = {dns: {"10.0.0.1": 5, "10.0.0.9": 1}, total: 6, label: "y", extra: [1]};
console.log(JSON.stringify(wrapper.joinMaps(a, b)));
console.log(JSON.stringify(wrapper.joinMaps({}, null)));
"""
    with rec.host(script):
        pass
    merged = json.loads(rec.lines_of("Join")[0])
    assert merged == {"dns": {"10.0.0.1": 7, "10.0.0.2": 1, "10.0.0.9": 1}, "total": 9, "label": "y",
                      "extra": [1]}
    assert rec.lines_of("Join")[1] == "{}"


def test_json2yaml_round_trips_through_a_yaml_parser(rec: Recorder) -> None:
    doc = {"name": "checkout", "count": 3, "ratio": 0.25, "ok": True, "none": None, "empty": "",
           "list": [1, "a: b"], "multi": "a\nb",
           "nested": {"deep": {"x": [{"k": "v", "n": 1}, []]}, "yes": "yes", "num": "007"},
           "emptymap": {}, "colon": "key: value", "hash": "# not a comment"}
    script = f"// Yaml\nconsole.log(JSON.stringify(utils.json2Yaml({json.dumps(json.dumps(doc))})));\n"
    with rec.host(script):
        pass
    assert yaml.safe_load(json.loads(rec.lines_of("Yaml")[0])) == doc


def test_build_har_from_http_items(rec: Recorder) -> None:
    items = [http_item(1, status=500, body=b'{"error":"db down"}'), http_item(2, method="POST")]
    script = ("// Har\nvar seen = [];\nfunction onItemCaptured(d) { seen.push(d); }\n"
              "jobs.schedule('har', '* * * * * *', function () {\n"
              "  console.log(JSON.stringify(wrapper.buildHAR(seen)));\n});\n")
    with rec.host(script) as h:
        rec.feed(h, items)
        h.run_job("har")
    text = json.loads(rec.lines_of("Har")[1])
    assert text.startswith('{\n  "log"')  # indented, as Kubeshark's
    har = json.loads(text)
    entries = har["log"]["entries"]
    assert har["log"]["version"] == "1.2" and len(entries) == 2
    first = entries[0]
    assert first["request"]["method"] == "GET" and first["response"]["status"] == 500
    assert first["request"]["url"] == "http://catalogue" + items[0]["request"]["url"]
    assert {"name": "Host", "value": "catalogue"} in first["request"]["headers"]
    assert first["request"]["queryString"] == [{"name": "size", "value": "5"}]
    body = base64.b64decode(items[0]["response"]["content"]["text"]).decode()
    assert first["response"]["content"]["text"] == body == '{"error":"db down"}'
    assert first["timings"]["wait"] == items[0]["elapsedTime"] == first["time"]
    assert entries[1]["request"]["method"] == "POST"
