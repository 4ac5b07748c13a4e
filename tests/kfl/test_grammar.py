"""Grammar rules of docs/kfl.md: precedence, operators, literals, selectors, calls, macros."""

from __future__ import annotations

import pytest

import kfl
from kfl import nodes as n
from kfl.parser import parse
from kfl.regex import Regex


def ast(query: str, macros: dict | None = None):
    return parse(query, kfl.MACROS if macros is None else macros)


def m(query: str, item: dict | None = None) -> bool:
    return kfl.compile(query).match({} if item is None else item)


@pytest.mark.parametrize("query", ["", "   ", "\n\t "])
def test_empty_query_matches_everything(query, http_item):
    assert ast(query) is None
    assert m(query, http_item) and m(query, {})


def test_and_binds_tighter_than_or():
    # basenine grouped to the right with equal precedence: false and (false or true) == false
    assert m("false and false or true")
    assert m("true or true and false")
    assert ast("a or b and c") == n.Or((n.Path("a", pos=0), n.And((n.Path("b", pos=5), n.Path("c", pos=11)))))


@pytest.mark.parametrize("query, expected", [
    ("true && false", False), ("true || false", True), ("not false", True), ("! false", True),
    ("!true", False), ("not not true", True), ("true and not false && !false", True),
    ("false or false || true", True),
])
def test_operator_spellings(query, expected):
    assert m(query) is expected


def test_not_binds_looser_than_comparison():
    tree = ast('!request.headers["user-agent"] == "kube-probe"')
    assert isinstance(tree, n.Not) and isinstance(tree.expr, n.Compare)
    assert m('!a == 1', {"a": 2}) and not m('!a == 1', {"a": 1})


def test_unary_minus_binds_tightest():
    assert ast("-3") == n.Literal(-3, 0)
    assert m("a == -3", {"a": -3})
    assert m("-a == 3", {"a": -3})
    assert m("-a < -2", {"a": 3})
    tree = ast("-a == -3")
    assert isinstance(tree, n.Compare) and isinstance(tree.left, n.Neg)


@pytest.mark.parametrize("text, value", [
    ("12", 12), ("1.5", 1.5), ("-3", -3), ("1e3", 1000.0), ("2.5E-1", 0.25), ("0", 0),
])
def test_numbers(text, value):
    tree = ast(text)
    assert tree.value == value and type(tree.value) is type(value)


@pytest.mark.parametrize("text, value", [
    ('"plain"', "plain"), ("'single'", "single"), (r'"a\"b"', 'a"b'), (r"'a\'b'", "a'b"),
    (r'"back\\slash"', "back\\slash"), (r'"\/"', "/"), (r'"\b\f\n\r\t"', "\b\f\n\r\t"),
    (r'"\u00e9\u4e2d"', "é中"), (r'"\ud83d\ude00"', "😀"), ('"it\'s"', "it's"), ("'say \"hi\"'", 'say "hi"'),
    ('"and or not true nil"', "and or not true nil"),
])
def test_strings_decode_json_escapes(text, value):
    assert ast(text).value == value


@pytest.mark.parametrize("text, pattern", [
    (r'r"\d+"', r"\d+"), (r"r'\w+\.x'", r"\w+\.x"), (r'r"a\"b"', r'a\"b'), (r'r"4.*"', "4.*"),
])
def test_regex_literals_are_raw(text, pattern):
    value = ast(text).value
    assert isinstance(value, Regex) and value.pattern == pattern


def test_raw_regex_backslashes_work():
    assert m(r'a == r"^\d+$"', {"a": "123"}) and not m(r'a == r"^\d+$"', {"a": "12x"})
    assert m(r'a == r"a\"b"', {"a": 'xa"by'})


@pytest.mark.parametrize("text, value", [("true", True), ("false", False), ("nil", None), ("null", None)])
def test_keyword_literals(text, value):
    assert ast(text) == n.Literal(value, 0)


def test_selector_steps():
    tree = ast('a.b["User-Agent"][0].*[*]..c.d')
    assert tree.root == "a"
    assert tree.steps == (n.Field("b"), n.Field("User-Agent"), n.Index(0), n.Wild(), n.Wild(), n.Deep("c"),
                          n.Field("d"))


def test_method_calls_and_helpers_after_json():
    tree = ast('x.json()[0].y.startsWith("a")')
    assert tree.steps[0] == n.Call("json", (), 2)
    assert tree.steps[-1].name == "startsWith"


def test_named_arguments_parse():
    tree = ast('rule(description: "slow", query: http and elapsedTime > 100)')
    assert [a.name for a in tree.root.args] == ["description", "query"]
    assert kfl.compile('rule(description: "x", query: http)').unknown_helpers == ("rule",)


@pytest.mark.parametrize("name", ["and", "or", "not", "true", "false", "nil", "null", "http", "dns"])
def test_keywords_and_macro_names_are_fields_after_a_dot(name):
    item = {"a": {name: 1}}
    assert m(f"a.{name} == 1", item)
    assert m(f"a..{name} == 1", item)


def test_names_containing_keywords_are_names():
    item = {"android": 1, "order": 2, "nothing": 3, "true_x": 4, "nullable": 5}
    assert m("android == 1 and order == 2 and nothing == 3 and true_x == 4 and nullable == 5", item)


def test_macros_expand_only_as_whole_bare_names(http_item):
    assert isinstance(ast("http"), n.Compare)
    assert ast("http.x") == n.Path("http", (n.Field("x"),), 0)
    assert ast("request.http") == n.Path("request", (n.Field("http"),), 0)
    assert ast('"http"') == n.Literal("http", 0)
    assert ast("https") == n.Path("https", (), 0)
    assert m("http", http_item) and not m("dns", http_item)
    assert m('request.httpVersion == "HTTP/1.1"', http_item)  # basenine's textual macros broke this
    assert m('http and request.httpVersion == "HTTP/1.1"', http_item)


def test_macro_expansion_is_parenthesised(http_item):
    macros = {**kfl.MACROS, "either": "dns or http"}
    # `not either` must negate the whole expansion, `either and false` must not bind into it
    assert not kfl.compile("not either", macros).match(http_item)
    assert not kfl.compile("either and false", macros).match(http_item)


def test_every_default_macro(items):
    http_item, _, dns_item, tcp_item = items
    assert set(kfl.MACROS) == {"http", "http2", "grpc", "gql", "dns", "amqp", "kafka", "redis", "tcp", "udp",
                               "tls", "tlsx"}
    abbrs = [("http", "HTTP"), ("http2", "HTTP/2"), ("grpc", "gRPC"), ("gql", "GQL"), ("dns", "DNS")]
    for name, abbr in abbrs:
        assert m(name, {"protocol": {"abbr": abbr}}) and not m(name, {"protocol": {"abbr": abbr.lower()}})
    for name in ["amqp", "kafka", "redis", "tcp", "udp", "tls"]:
        assert m(name, {"protocol": {"name": name}}) and not m(name, {"protocol": {"abbr": name}})
    assert m("tlsx", {"protocol": {"name": "tls"}}) and not m("tlsx", {"protocol": {"name": "tcp"}})
    assert m("tcp", tcp_item) and m("dns", dns_item) and not m("tcp", http_item)


def test_extra_macros_for_one_compile(http_item):
    q = kfl.compile("shop and http", macros={"shop": 'dst.namespace == "shop"'})
    assert q.match(http_item)
    assert kfl.compile("shop", macros={"shop": "false"}).match({"shop": True}) is False
    assert m("shop", {"shop": True})  # not a default macro: a field


def test_macros_may_use_other_macros_but_not_themselves(http_item):
    macros = {"web": "http or http2", "loop": "loop or a == 1"}
    assert kfl.compile("web", macros).match(http_item)
    assert kfl.compile("loop", macros).match({"a": 1})
    assert kfl.compile("loop", macros).match({"loop": True})


def test_add_macro_and_cache_invalidation(http_item):
    text = "kfl_test_macro"
    assert kfl.match(text, http_item) is False
    kfl.add_macro(text, "http")
    try:
        assert kfl.match(text, http_item) is True
        kfl.MACROS[text] = "dns"
        assert kfl.match(text, http_item) is False
    finally:
        del kfl.MACROS[text]
    assert kfl.match(text, http_item) is False


@pytest.mark.parametrize("name, expansion", [("and", "true"), ("9x", "true"), ("a.b", "true"), ("ok", ""),
                                             ("ok", "a ==")])
def test_bad_macros_are_refused(name, expansion):
    with pytest.raises(ValueError):
        kfl.add_macro(name, expansion)
    with pytest.raises(ValueError):
        kfl.compile("x", macros={name: expansion})
    assert name not in kfl.MACROS


def test_whitespace_and_newlines_are_free(http_item):
    assert m("http\n\tand\n  response . status==500", http_item)
    assert m('request . headers [ "Accept" ] == "application/json"', http_item)
