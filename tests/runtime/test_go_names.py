"""Kubeshark's Go-style capitalised item names (`data.Protocol.Name`, `data.Request.Path`,
`data.Src.IP`) read the same values as the JSON names, on real items of the demo capture."""

from __future__ import annotations

from pathlib import Path

from tests.runtime.conftest import run_pipeline

GO_STYLE = """// Go
function onItemCaptured(data) {
  var p = data.Protocol;
  var same = p.Name === data.protocol.name && p.Abbr === data.protocol.abbr &&
      data.Src.IP === data.src.ip && data.Src.Ip === data.src.ip && data.Dst.Port === data.dst.port &&
      data.StartTime === data.startTime && data.Index === data.index &&
      data.src.Namespace === data.src.namespace;
  if (data.protocol.name === "http") {
    same = same && data.Request.Path === data.request.path && data.request.Method === data.request.method &&
        data.Response.Status === data.response.status &&
        data.Response.StatusText === data.response.statusText &&
        data.Request.Headers === data.request.headers &&
        data.Response.Content.Size === data.response.content.size;
  }
  if (data.protocol.name === "dns") {
    same = same && data.Request.Questions.length === data.request.questions.length &&
        data.Response.Code === data.response.code;
  }
  data.Request.Extra = 1;  // assigning still adds a field of its own
  same = same && data.request.Extra === 1 && !data.request.hasOwnProperty("Path") &&
      Object.keys(data.request).indexOf("Path") < 0 && data.Nope === undefined &&
      data.request.Nope === undefined;
  console.log((same ? "same " : "different ") + data.protocol.name);
}
"""

# no JSON.stringify / Object.* in the text: items come cut to the fields it names
GO_CUT = """// GoCut
function onItemCaptured(data) {
  var r = data.Protocol.Name === "http" ? data.Request.Path + " " + data.Response.Status : data.Response.Code;
  console.log(data.Protocol.Abbr + " " + data.Src.IP + " " + r);
}
"""
JSON_CUT = """// JsonCut
function onItemCaptured(data) {
  var r = data.protocol.name === "http" ? data.request.path + " " + data.response.status : data.response.code;
  console.log(data.protocol.abbr + " " + data.src.ip + " " + r);
}
"""

JSON_STYLE = """// Json
function onItemCaptured(data) { console.log(data.protocol.name + " " + (data["Protocol"] === undefined)); }
"""


def test_go_style_names_alias_the_json_names(tmp_path: Path) -> None:
    run = run_pipeline(tmp_path, {"go.js": GO_STYLE, "json.js": JSON_STYLE, "gocut.js": GO_CUT,
                                  "jsoncut.js": JSON_CUT})
    lines = run.lines("Go")[1:]
    assert run.errors("Go") == []
    assert {"same http", "same dns"} <= set(lines)
    assert [ln for ln in lines if not ln.startswith("same ")] == []
    # a script that never reads a capitalised name gets items without the aliases
    assert len(run.lines("Json")[1:]) == len(lines)
    assert all(ln.endswith(" true") for ln in run.lines("Json")[1:])
    assert run.lines("GoCut")[1:] == run.lines("JsonCut")[1:] and len(run.lines("GoCut")) == len(lines) + 1
    assert run.errors("GoCut") == []
