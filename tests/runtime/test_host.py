"""One script in its isolate: console, env, title, hooks, lazy items, kfl.match, absent helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.v8.host import LoadError, ScriptHost
from runtime.v8.source import ScriptSource
from tests.runtime.conftest import Recorder
from tests.runtime.items import dns_item, http_item


def test_console_lines_joined_with_string_semantics(rec: Recorder) -> None:
    with rec.host(
        '// Greeter\nconsole.log("a", 1, {x: 1}, [1, 2], null, undefined, true);\n'
        'console.error("bad", new Error("boom"));'
    ):
        pass
    assert rec.stdout[0] == "Greeter] a 1 [object Object] 1,2 null undefined true"
    assert rec.stderr == ["Greeter:ERROR] bad Error: boom"]
    assert rec.console.errors["Greeter"] == 1


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("// HTTP 5xx Export\nvar a = 1;", "HTTP 5xx Export"),
        ("/* Block Title */\nvar a = 1;", "Block Title"),
        ("var a = 1; // late comment\n", "late comment"),
        ('var s = "// not a comment";\n/*\n * Star Title\n */', "Star Title"),
        ("/*\n * Header Title\n * A long description of the script\n * over lines.\n */", "Header Title"),
        ("// First line\n// second line\nvar a = 1;", "First line"),
        ("/* Inline Title\n   more words */\nvar a = 1;", "Inline Title"),
        ("var a = 1;\n", "noname.js"),
    ],
)
def test_title_is_first_comment_trimmed_else_file_name(text: str, title: str) -> None:
    assert ScriptSource.parse(Path("/x/noname.js"), text).title == title


def test_env_as_object_and_identifier_safe_globals(tmp_path: Path) -> None:
    rec = Recorder(
        tmp_path,
        env={"S3_BUCKET": "b1", "VAR-1": "dash", "NUM": 77, "JSONISH": {"a": [1]}, "console": "shadow"},
    )
    with rec.host(
        '// E\nconsole.log(env.S3_BUCKET, S3_BUCKET, env["VAR-1"], typeof NUM, NUM + 1,'
        " JSONISH.a[0], typeof console.log, env.console);\n"
        "console.log(JSON.stringify(Object.keys(env).sort()));\n"
        'try { console.log(eval("VAR")); } catch (e) { console.log(e.name); }'
    ):
        pass
    assert rec.stdout[0] == "E] b1 b1 dash number 78 1 function shadow"
    assert rec.stdout[1] == 'E] ["JSONISH","NUM","S3_BUCKET","VAR-1","console"]'
    assert rec.stdout[2] == "E] ReferenceError"


def test_hook_sees_lazy_item_like_a_plain_object(rec: Recorder) -> None:
    script = """// Lazy
    var kept = [];
    function onItemCaptured(data) {
      kept.push(data);
      console.log(data.protocol.name, data.response.status || data.response.code, data.src.port,
                  typeof data.src.port, "response" in data, "nope" in data, Object.keys(data).length > 10);
      if (data.request.headers) data.request.headers["Authorization"] = "x";
      data.extra = 1;
      console.log(JSON.parse(JSON.stringify(data)).extra, (data.request.headers || {}).Authorization);
    }
    jobs.schedule("later", "0 0 0 1 1 *", function () {
      console.log(kept.length, kept[0].stream, kept[1].protocol.name, JSON.stringify(kept[1]).length > 100);
    });
    """
    with rec.host(script) as h:
        rec.feed(h, [http_item(1, status=500)])
        rec.feed(h, [dns_item(2)])
        assert h.run_job("later") == (True, None)
    out = [ln for ln in rec.stdout if not ln.startswith("Lazy] Scheduled")]
    assert len(out) == 5, rec.stdout + rec.stderr
    assert out[0] == "Lazy] http 500 30001 string true false true"
    assert out[1] == "Lazy] 1 x"
    assert out[2] == "Lazy] dns No Error 40512 string true false true"
    assert out[3] == "Lazy] 1 undefined"
    assert out[4] == "Lazy] 2 000000000001.pcap dns true"


def test_throwing_hook_reports_and_keeps_being_called(rec: Recorder) -> None:
    script = (
        "// T\nvar n = 0;\nfunction onItemCaptured(d) {\n  n++;\n"
        "  if (n % 2) throw new Error('odd ' + n);\n}\n"
        "jobs.schedule('c', '0 0 0 1 1 *', function () { console.log('calls', n); });"
    )
    with rec.host(script) as h:
        rec.feed(h, [http_item(i) for i in range(4)])
        h.run_job("c")
    assert rec.stderr == [
        "T:ERROR] (hook=onItemCaptured) Error: odd 1 (script.js:5)",
        "T:ERROR] (hook=onItemCaptured) Error: odd 3 (script.js:5)",
    ]
    assert rec.stdout[-1] == "T] calls 4"


def test_kfl_match_literal_env_runtime_and_invalid(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, env={"Q": "dns"})
    script = """// K
    var lit = {}, fromEnv = {}, built = {}, caught = {};
    function onItemCaptured(data) {
      var q = "response.status == " + (400 + data.index);
      var a = kfl.match("http and response.status == 500", data);
      var b = kfl.match(env.Q, data);
      var c = kfl.match(q, data);
      var bad = null;
      try { kfl.match("response.status ==", data); } catch (e) { bad = e.message; }
      if (a) lit[data.id] = 1;
      if (b) fromEnv[data.id] = 1;
      if (c) built[data.id] = 1;
      caught[data.id] = bad;
    }
    jobs.schedule("r", "0 0 0 1 1 *", function () {
      console.log(Object.keys(lit).length, Object.keys(fromEnv).length, Object.keys(built).length);
      var texts = Object.keys(caught).map(function (k) { return caught[k]; });
      var same = texts.every(function (t) { return t === texts[0]; });
      console.log(texts.length, same, texts[0].split("\\n")[0]);
      var obj = {protocol: {abbr: "HTTP"}};
      console.log(kfl.validate("http"), kfl.validate("(((", true), kfl.match("http", obj));
    });
    """
    items = [http_item(1, status=500), http_item(2, status=200), dns_item(3)]
    items[1]["index"] = 4  # "response.status == 404" does not match a 200
    items[0]["index"] = 100  # "response.status == 500" for the first item
    with rec.host(script) as h:
        assert "http and response.status == 500" in h.queries  # a literal: known at load
        assert "dns" in h.queries  # an env value
        rec.feed(h, items)
        assert "response.status == 500" in h.queries  # built at run time, learned
        assert "response.status ==" in h.invalid
        h.run_job("r")
    assert rec.stdout[-3] == "K] 1 1 1"
    assert rec.stdout[-2].startswith("K] 3 true 1:")
    assert rec.stdout[-1] == "K] true false true"
    assert rec.stderr == []


def test_unknown_helpers_are_absent(rec: Recorder) -> None:
    script = """// Absent
    var out = [];
    ["hub", "chatgpt", "aggregation"].forEach(function (n) { out.push(n + ":" + typeof globalThis[n]); });
    try { hub.targeted(); } catch (e) { out.push(e.name); }
    try { vendor.influxdb("u"); } catch (e) { out.push(e.name); }
    try { console.warn("w"); } catch (e) { out.push(e.name); }
    console.log(out.join(" "));
    """
    with rec.host(script):
        pass
    assert rec.stdout == [
        "Absent] hub:object chatgpt:undefined aggregation:undefined TypeError TypeError TypeError"
    ]


def test_syntax_error_names_file_and_line(rec: Recorder, tmp_path: Path) -> None:
    host = ScriptHost(
        ScriptSource.parse(tmp_path / "broken.js", "// B\nvar a = 1;\nfunction f( {\n}\n"), rec.services, 9
    )
    with pytest.raises(LoadError) as info:
        host.load()
    assert str(info.value).startswith("broken.js:")
    assert "SyntaxError" in str(info.value)
    assert host.state == "new"


def test_top_level_runtime_error_names_file_and_line(rec: Recorder, tmp_path: Path) -> None:
    host = ScriptHost(ScriptSource.parse(tmp_path / "bad.js", "// B\nvar a = 1;\nnull.x;\n"), rec.services, 9)
    with pytest.raises(LoadError, match=r"^bad\.js:3: TypeError"):
        host.load()


def test_test_pass_fail_and_utils(rec: Recorder) -> None:
    with rec.host(
        "// P\nvar o = {}; console.log(test.pass(o) === o, o.passed, test.fail({}).failed, utils.nodeName());"
    ):
        pass
    assert rec.stdout == ["P] true true true node-1"]


def test_set_timeout_runs_on_runtime_clock(rec: Recorder) -> None:
    script = (
        "// Tm\nsetTimeout(function (a) { console.log('fired', a); }, 2000, 'x');\n"
        "var id = setTimeout(function () { console.log('never'); }, 10); clearTimeout(id);"
    )
    with rec.host(script) as h:
        start = rec.services.clock.now_ns() // 1_000_000
        assert h.next_timer_ms == start + 2000
        h.run_timers(start + 1999)
        assert rec.stdout == []
        h.run_timers(start + 2000)
        assert rec.stdout == ["Tm] fired x"]
        assert h.next_timer_ms is None


def test_new_query_reruns_that_hook_run_once(rec: Recorder) -> None:
    """The documented consequence: state changed in the hook run that met a new query happens twice."""
    script = """// Twice
    var calls = 0;
    function onItemCaptured(data) {
      calls++;
      kfl.match("request.method == " + JSON.stringify(data.request.method), data);
    }
    jobs.schedule("r", "0 0 0 1 1 *", function () { console.log(calls); });
    """
    with rec.host(script) as h:
        rec.feed(h, [http_item(1, method="GET"), http_item(2, method="GET"), http_item(3, method="PUT")])
        h.run_job("r")
    assert rec.stdout[-1] == "Twice] 5"


def test_candidate_queries_unused_are_dropped_then_relearned(rec: Recorder) -> None:
    script = """// Drop
    var LATER = "http and request.method == \\"PUT\\"";
    var use = false, hits = {};
    function onItemCaptured(data) { if (use && kfl.match(LATER, data)) hits[data.id] = 1; }
    jobs.schedule("on", "0 0 0 1 1 *", function () { use = true; });
    jobs.schedule("r", "0 0 0 1 2 *", function () { console.log(Object.keys(hits).length); });
    """
    query = 'http and request.method == "PUT"'
    with rec.host(script) as h:
        qid = h.queries[query]
        assert qid in h.active  # a literal that is valid KFL: evaluated from the start
        for k in range(0, 5000, 1000):
            rec.feed(h, [http_item(k + i) for i in range(1000)])
        assert qid not in h.active  # unused for more than 4096 items: no longer evaluated
        h.run_job("on")
        rec.feed(h, [http_item(1, method="PUT"), http_item(2, method="GET")])
        assert qid in h.active  # used again: learned again
        h.run_job("r")
    assert rec.lines_of("Drop")[-1] == "1"


def test_top_level_query_not_known_reruns_top_level_in_a_fresh_isolate(rec: Recorder) -> None:
    script = """// Top Query
    var q = ["dns", "or", "http"].join(" ");
    console.log("before");
    var ok = kfl.validate(q);
    var bad = kfl.validate(q + " and (", true);
    console.log("after", ok, bad);
    """
    with rec.host(script) as h:
        assert "dns or http" in h.queries and "dns or http and (" in h.invalid
    assert rec.lines_of("Top Query") == ["before", "after true false"]  # the aborted runs left no trace
    assert rec.stderr == []


def test_items_cut_to_named_fields_are_completed_when_more_is_read(rec: Recorder) -> None:
    script = """// Fields
    var key = ["sr", "c"].join("");
    var seen = {};
    function onItemCaptured(d) {
      seen[d.id] = d.protocol.name + " " + (d.index > 0 ? d[key].port : "-");
    }
    jobs.schedule("r", "0 0 0 1 1 *", function () {
      for (var k in seen) console.log(k, seen[k]);
    });
    """
    first, second, third = http_item(1), http_item(2), http_item(3)
    first["index"], second["index"], third["index"] = 0, 1, 2
    with rec.host(script) as h:
        assert h.fields is not None and "src" not in h.fields
        rec.feed(h, [first])
        assert h.fields is not None  # nothing beyond the named fields was read yet
        rec.feed(h, [second, third])
        assert h.fields is None  # reading d["src"] asked for complete items
        h.run_job("r")
    assert rec.lines_of("Fields")[-3:] == [
        "node-1/000000000001.pcap-0 http -",
        "node-1/000000000002.pcap-0 http 30002",
        "node-1/000000000003.pcap-0 http 30003",
    ]
    assert rec.stderr == []


def test_lean_batches_until_the_hook_is_replaced(rec: Recorder) -> None:
    script = """// Lean
    function onItemCaptured(data) { wrapper.kflPcapS3(data, { kflArr: ["http"] }); }
    jobs.schedule("swap", "0 0 0 1 1 *", function () {
      globalThis["onItem" + "Captured"] = function (d) { console.log("now reading", d.stream); };
    });
    """
    with rec.host(script) as h:
        assert h.lean
        rec.feed(h, [http_item(1), http_item(2)])
        assert h.lean and h.commands.wrapper.counters["items"] == 2
        h.run_job("swap")
        rec.feed(h, [http_item(3)])
        assert not h.lean
    assert rec.lines_of("Lean")[-1] == "now reading 000000000003.pcap"


def test_objects_inside_items_are_cut_and_completed_too(rec: Recorder) -> None:
    script = """// Nested
    var suffix = ["Te", "xt"].join("");
    var out = {};
    function onItemCaptured(d) {
      var r = d.response;
      out[d.stream] = r.status + " " + (d.index > 0 ? r["status" + suffix] : "") + " " + ("bogus" in r);
    }
    jobs.schedule("r", "0 0 0 1 1 *", function () { for (var k in out) console.log(k, out[k]); });
    """
    first, second = http_item(1, status=404), http_item(2, status=500)
    second["index"] = 1
    with rec.host(script) as h:
        rec.feed(h, [first])
        assert h.fields is not None
        rec.feed(h, [second])
        assert h.fields is None
        h.run_job("r")
    assert rec.lines_of("Nested")[-2:] == [
        "000000000001.pcap 404  false",
        "000000000002.pcap 500 Error false",
    ]
    assert rec.stderr == []


def test_bodies_left_out_are_sent_when_a_hook_reads_one(rec: Recorder) -> None:
    script = """// Bodies
    var key = ["con", "tent"].join("");
    var got = [];
    function onItemCaptured(d) { got.push(d.response.status + " " + d.response[key].text); }
    jobs.schedule("r", "0 0 0 1 1 *", function () { got.forEach(function (g) { console.log(g); }); });
    """
    item = http_item(1, body=b"the body")
    with rec.host(script) as h:
        assert not h.bodies  # the text names no body field of any dissector
        rec.feed(h, [item])
        assert h.bodies
        h.run_job("r")
    assert rec.lines_of("Bodies")[-1] == "200 dGhlIGJvZHk="
    assert rec.stderr == []
