"""Every helper of docs/kfl.md."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest

import kfl
from kfl import helpers


def m(query: str, item: dict | None = None, **kw) -> bool:
    return kfl.compile(query).match({} if item is None else item, **kw)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- startsWith / endsWith / contains -------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    ('request.path.startsWith("/api")', True), ('request.path.startsWith("api")', False),
    ('request.path.endsWith("logue")', True), ('request.path.endsWith("/api")', False),
    ('request.path.contains("v2")', True), ('request.path.contains("v3")', False),
    ('response.status.startsWith("5")', True), ('response.status.endsWith("00")', True),   # numbers as text
    ("response.status.contains(0)", True), ('passed.contains("fal")', True),              # booleans as text
    ('request.pathSegments.contains("talo")', True),                                      # array: any element
    ('request.queryString.*.startsWith("5")', True), ('request.headers.*.endsWith("json")', True),
    ('request.pathSegments.startsWith("v3")', False),
    ('nothing.startsWith("a")', False), ("request.path.startsWith()", False),              # missing / no arg
    ('request.headers.startsWith("a")', False), ('response.content.startsWith("{")', False),  # objects
    ('request.path.contains(request.pathSegments[1])', True),                              # selector argument
    ('request.path.contains(request.nothing)', False),
    ('request.path.startsWith(request.pathSegments)', False),
    ('dst.name.contains(dst.name)', True),
    ('startsWith("a")', False),                                                            # no receiver
])
def test_text_helpers(http_item, query, expected):
    assert m(query, http_item) is expected


def test_text_helpers_as_values(http_item):
    assert m('request.path.startsWith("/api") == true', http_item)
    assert m('nothing.startsWith("a") == false', http_item)


# -- json() ---------------------------------------------------------------------------------------

def test_json_of_base64_text_continues_the_path(http_item):
    assert m("response.content.text.json().user.id == 7", http_item)
    assert m('response.content.text.json().error == "db down"', http_item)
    assert m('response.content.text.json().tags[1] == "b"', http_item)
    assert m('response.content.text.json()..name == "ann"', http_item)
    assert m('response.content.text.json().user.name.startsWith("an")', http_item)
    assert m('response.content.text.json().tags.*.contains("a")', http_item)
    assert m("response.content.text.json().user.id == 8", http_item) is False


def test_json_of_plain_text_and_arrays():
    item = {"a": '[{"x": "abc"}, {"x": "def"}]', "b": "  {\"n\": 1}  ", "c": "5", "d": "not json", "e": 5}
    assert m('a.json()[0].x == "abc"', item)
    assert m('a.json()[*].x == "def"', item)
    assert m('a.json()..x.startsWith("d")', item)
    assert m("b.json().n == 1", item)
    assert m("c.json() == 5", item)
    assert m("d.json()", item) is False and m("!(d.json() == nil)", item)
    assert m("e.json() == 5", item) is False        # not text: missing
    assert m("missing.json().x == 1", item) is False
    assert m('json().x == 1', item) is False          # no receiver


def test_json_on_a_multi_applies_to_each_element():
    item = {"docs": ['{"id": 1}', "garbage", b64('{"id": 2}')]}
    assert m("docs.*.json().id == 2", item)
    assert m("docs[*].json().id == docs[0].json().id", item)


# -- xml() ----------------------------------------------------------------------------------------

def test_xml_like_xmltodict(xml_item):
    assert m('response.content.text.xml().bookstore.book[1].title == "Harry Potter"', xml_item)
    assert m('request.postData.text.xml().bookstore.book[0].title == "Everyday Italian"', xml_item)
    assert m('request.postData.text.xml().bookstore.book[1]["@category"] == "children"', xml_item)
    assert m('request.postData.text.xml().bookstore.book[0].title["@lang"] == "en"', xml_item)
    assert m('request.postData.text.xml().bookstore.book[1].title["#text"] == "Harry Potter"', xml_item)
    assert m("request.postData.text.xml().bookstore.book[1].price == 29.99", xml_item)
    assert m("request.postData.text.xml().bookstore.book[*].price > 29.995", xml_item)
    assert m('request.postData.text.xml()..title == r"^Harry"', xml_item)
    assert m('request.postData.text.xml().bookstore.book.*.title.startsWith("Every")', xml_item)
    assert m('request.postData.text.xml().bookstore.book[2].title == "x"', xml_item) is False


def test_xml_shapes():
    item = {
        "one": "<a><b>1</b></a>",
        "empty": "<a><b/></a>",
        "mixed": '<a id="7">hello <b>x</b></a>',
        "ns": '<s:Envelope xmlns:s="urn:x"><s:Body>ok</s:Body></s:Envelope>',
        "bad": "<a><b></a>",
        "json": '{"a": 1}',
    }
    assert m("one.xml().a.b == 1", item)
    assert m("empty.xml().a.b == nil", item)
    assert m('mixed.xml().a["@id"] == 7 and mixed.xml().a["#text"] == "hello"', item)
    assert m('mixed.xml().a.b == "x"', item)
    assert m('mixed.xml().a == "hello"', item)    # an element with attributes compares by its text
    assert m('ns.xml()["s:Envelope"]["s:Body"] == "ok"', item)
    assert m("bad.xml()", item) is False and m("json.xml()", item) is False


# -- datetime(), now(), seconds() ... years() --------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("10/19/2021, 6:29:02.593 PM", datetime(2021, 10, 19, 18, 29, 2, 593000, tzinfo=UTC)),
    ("10/19/2021, 6:29:02 PM", datetime(2021, 10, 19, 18, 29, 2, tzinfo=UTC)),
    ("10/19/2021, 6:29:02 pm", datetime(2021, 10, 19, 18, 29, 2, tzinfo=UTC)),
    ("1/2/2006, 3:04:05 am", datetime(2006, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("10/19/2021, 12:00:00 AM", datetime(2021, 10, 19, 0, 0, 0, tzinfo=UTC)),
    ("2021-10-19T18:29:02Z", datetime(2021, 10, 19, 18, 29, 2, tzinfo=UTC)),
    ("2021-10-19T18:29:02.593+00:00", datetime(2021, 10, 19, 18, 29, 2, 593000, tzinfo=UTC)),
    ("2021-10-19T20:29:02+02:00", datetime(2021, 10, 19, 18, 29, 2, tzinfo=UTC)),
    ("2021-10-19 18:29:02", datetime(2021, 10, 19, 18, 29, 2, tzinfo=UTC)),
])
def test_datetime_formats_give_utc_milliseconds(text, expected):
    ms = int(expected.timestamp() * 1000)
    assert m(f'timestamp == datetime("{text}")', {"timestamp": ms})
    assert m(f'timestamp > datetime("{text}")', {"timestamp": ms + 1})
    assert not m(f'timestamp > datetime("{text}")', {"timestamp": ms})


@pytest.mark.parametrize("arg", ['"garbage"', '"13/45/2021, 6:29:02 PM"', '"2/30/2021, 6:29:02 PM"',
                                 '"10/19/2021, 13:29:02 PM"', '"10/19/2021, 0:29:02 AM"', '"10/19/2021 PM"',
                                 '""', "12", "true"])
def test_unparsable_datetime_is_a_syntax_error(arg):
    with pytest.raises(kfl.KFLSyntaxError) as err:
        kfl.compile(f"timestamp > datetime({arg})")
    assert err.value.column == len("timestamp > datetime(") + 1
    assert "datetime()" in err.value.message


def test_datetime_without_argument_is_missing_and_of_a_field_is_read_per_item():
    assert m("timestamp > datetime()", {"timestamp": 5}) is False
    assert m("!(timestamp > datetime())", {"timestamp": 5}) is True
    q = kfl.compile("timestamp == datetime(startTime)")
    assert q.match({"timestamp": 1634668142000, "startTime": "2021-10-19T18:29:02Z"})
    assert not q.match({"timestamp": 1634668142000, "startTime": "garbage"})


def test_now_is_read_at_evaluation_not_at_compile_time():
    q = kfl.compile("timestamp <= now()")
    time.sleep(0.02)
    stamp = time.time_ns() // 1_000_000
    assert q.match({"timestamp": stamp})
    assert not q.match({"timestamp": stamp + 3_600_000})
    assert q.match({"timestamp": stamp + 3_600_000}, now_ms=stamp + 3_600_000)


def test_now_is_read_once_per_evaluation(monkeypatch):
    reads = []

    def clock() -> int:
        reads.append(1)
        return (1_700_000_000_000 + len(reads)) * 1_000_000

    monkeypatch.setattr(helpers.time, "time_ns", clock)
    q = kfl.compile("now() == now() and seconds(0) == now() and minutes(0) == now()")
    assert q.match({}) and len(reads) == 1
    assert q.match({}) and len(reads) == 2


@pytest.mark.parametrize("helper, unit_ms", [
    ("seconds", 1000), ("minutes", 60_000), ("hours", 3_600_000), ("days", 86_400_000),
    ("weeks", 604_800_000), ("months", 30 * 86_400_000), ("years", 365 * 86_400_000),
])
def test_relative_time_helpers(helper, unit_ms):
    now = 1_700_000_000_000
    assert m(f"t == {helper}(2)", {"t": now + 2 * unit_ms}, now_ms=now)
    assert m(f"t == {helper}(-1)", {"t": now - unit_ms}, now_ms=now)
    assert m(f"t > {helper}(-1)", {"t": now}, now_ms=now)
    assert m(f"t == {helper}(n)", {"t": now + 3 * unit_ms, "n": 3}, now_ms=now)
    assert m(f"t == {helper}(0.5)", {"t": now + unit_ms // 2}, now_ms=now)
    assert not m(f"t == {helper}()", {"t": now}, now_ms=now)
    assert not m(f'!({helper}("x") == nil) and t == {helper}("x")', {"t": now}, now_ms=now)


def test_relative_time_against_the_wall_clock():
    stamp = time.time_ns() // 1_000_000
    assert m("timestamp > seconds(-30)", {"timestamp": stamp})
    assert not m("timestamp > minutes(1)", {"timestamp": stamp})


# -- limit() --------------------------------------------------------------------------------------

def test_limit_is_true_and_reports_the_first_n(http_item):
    q = kfl.compile("limit(5) and http")
    assert q.limit == 5 and q.match(http_item)
    assert kfl.compile("http and (limit(3) or limit(9))").limit == 3
    assert kfl.compile("limit(2)").match({}) is True
    assert kfl.compile("limit()").limit is None
    assert kfl.compile("limit(n)").limit is None
    assert kfl.compile("http").limit is None


# -- redact() -------------------------------------------------------------------------------------

def test_redact_replaces_in_a_copy_that_later_terms_and_apply_see(http_item):
    original = json.dumps(http_item, sort_keys=True)
    q = kfl.compile('redact("request.headers.Authorization", "request.cookies.session") '
                    'and request.headers.Authorization == "[REDACTED]"')
    ok, out = q.apply(http_item)
    assert ok is True
    assert out["request"]["headers"]["Authorization"] == "[REDACTED]"
    assert out["request"]["cookies"]["session"] == "[REDACTED]"
    assert out["request"]["headers"]["Accept"] == "application/json"
    assert json.dumps(http_item, sort_keys=True) == original
    assert out["response"] is http_item["response"]     # copy on write: untouched parts are shared
    assert q.match(http_item) is True


def test_redact_only_affects_later_terms(http_item):
    q = kfl.compile('request.headers.Authorization == "[REDACTED]" or '
                    'redact("request.headers.Authorization")')
    ok, out = q.apply(http_item)
    assert ok and out["request"]["headers"]["Authorization"] == "[REDACTED]"
    assert not kfl.compile('request.headers.Authorization == "[REDACTED]"').match(http_item)


def test_redact_paths(http_item, dns_item):
    cases = {
        'redact("request.headers[\\"User-Agent\\"]")': lambda o: o["request"]["headers"]["User-Agent"],
        'redact("request.pathSegments[1]")': lambda o: o["request"]["pathSegments"],
        'redact("request.queryString.*")': lambda o: o["request"]["queryString"],
        'redact("..ip")': lambda o: (o["src"]["ip"], o["dst"]["ip"]),
        'redact("..headers.Host")': lambda o: (o["request"]["headers"]["Host"], o["response"]["headers"]),
    }
    outs = {q: get(kfl.compile(q).apply(http_item)[1]) for q, get in cases.items()}
    assert list(outs.values()) == [
        "[REDACTED]",
        ["api", "[REDACTED]", "catalogue"],
        {"size": "[REDACTED]", "tags": "[REDACTED]"},
        ("[REDACTED]", "[REDACTED]"),
        ("[REDACTED]", http_item["response"]["headers"]),
    ]
    out = kfl.compile('redact("response.answers[*].ip")').apply(dns_item)[1]
    assert [a["ip"] for a in out["response"]["answers"]] == ["[REDACTED]", "[REDACTED]"]


def test_redact_through_json_and_xml_writes_the_document_back(http_item, xml_item):
    out = kfl.compile('redact("response.content.text.json().user.name")').apply(http_item)[1]
    body = json.loads(base64.b64decode(out["response"]["content"]["text"]))
    assert body["user"] == {"id": 7, "name": "[REDACTED]"} and body["error"] == "db down"
    out = kfl.compile('redact("request.postData.text.xml().bookstore.book[*].price") and '
                      'request.postData.text.xml().bookstore.book[0].price == "[REDACTED]"').apply(xml_item)
    assert out[0] is True
    text = out[1]["request"]["postData"]["text"]
    assert "29.99" not in text and text.count("[REDACTED]") == 2 and "Harry Potter" in text
    assert kfl.compile('request.postData.text.xml().bookstore.book[1].title == "Harry Potter"').match(out[1])


@pytest.mark.parametrize("path", ["", "a ==", "nothing.here", "request.headers.Nope", "1", "f()",
                                  "request.path.json().x", "request.headers.startsWith(\\\"a\\\")"])
def test_invalid_or_unmatched_redact_paths_redact_nothing(http_item, path):
    q = kfl.compile(f'redact("{path}")')
    ok, out = q.apply(http_item)
    assert ok is True and out is http_item


def test_redact_arguments_that_are_not_strings_are_ignored(http_item):
    ok, out = kfl.compile("redact(request.path, 5)").apply(http_item)
    assert ok is True and out is http_item


# -- unknown helpers ------------------------------------------------------------------------------

def test_unknown_helpers_are_false_and_listed(http_item):
    q = kfl.compile('foo() or request.path.bar(1) or baz(x: 1) or foo(2) or request.path.startsWith("/")')
    assert q.unknown_helpers == ("foo", "bar", "baz")
    assert q.match(http_item) is True
    assert kfl.compile("foo()").match(http_item) is False
    assert kfl.compile("!foo()").match(http_item) is True
    assert kfl.compile("request.path.now()").match(http_item) is False
    assert kfl.compile('http and json() == nil').unknown_helpers == ()


def test_errors_inside_helper_arguments_surface():
    with pytest.raises(kfl.KFLSyntaxError):
        kfl.compile('rule(query: timestamp > datetime("nope"))')
    with pytest.raises(kfl.KFLSyntaxError):
        kfl.compile('x.contains(r"(")')


def test_xml_with_entity_declarations_is_refused():
    laughs = "".join(f'<!ENTITY e{i + 1} "{f"&e{i};" * 10}">' for i in range(9))
    bomb = f'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY e0 "lol">{laughs}]><l>&e9;</l>'
    external = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY e SYSTEM "file:///etc/passwd">]><l>&e;</l>'
    harmless = '<!DOCTYPE l [<!ENTITY e "x">]><l>&e;</l>'
    for document in (bomb, external, harmless):
        assert m("x.xml()", {"x": document}) is False
        assert m("!(x.xml() == nil)", {"x": document}) is True
    assert m('x.xml().l == "<&"', {"x": "<l>&lt;&amp;</l>"})    # the predefined entities still work
