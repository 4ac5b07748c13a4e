"""Values and operators of docs/kfl.md: selectors, multis, missing operands, equality, ordering, truth."""

from __future__ import annotations

import pytest

import kfl


def m(query: str, item: dict | None = None) -> bool:
    return kfl.compile(query).match({} if item is None else item)


DOC = {
    "a": {"b": [{"c": 1}, {"c": 2}, {"d": 3}], "e": None, "s": "text", "n": 0},
    "list": [1, 2, 3],
    "same": [1, 2, 3],
    "nested": {"x": {"name": "n1", "y": {"name": "n2"}}, "z": [{"name": "n3"}]},
    "empty": [],
    "emptyobj": {},
    "port": "443",
    "flag": True,
    "null": None,
    "ts": 1700000000123,
}


@pytest.mark.parametrize("query, expected", [
    ("a.s == \"text\"", True),
    ('a["s"] == "text"', True),
    ("a.b[1].c == 2", True),
    ("a.b[5].c == 2", False),
    ("list[0] == 1", True),
    ("list[3] == 1", False),
    ("a.b.*.c == 2", True),
    ("a.b[*].c == 1", True),
    ("a.*.c == 1", False),            # a.* holds a list, None, strings: no .c anywhere
    ("nested..name == \"n2\"", True),
    ("nested..name == \"n3\"", True),
    ("..name == \"n1\"", None),       # a syntax error: a selector starts with a name
])
def test_selectors(query, expected):
    if expected is None:
        with pytest.raises(kfl.KFLSyntaxError):
            kfl.compile(query)
    else:
        assert m(query, DOC) is expected


def test_walking_through_missing_null_scalars_and_empty_wildcards_is_missing():
    for path in ["nope.x", "a.e.x", "a.s.x", "a.s[0]", "list.x", "empty.*", "emptyobj[*]", "a.n.x",
                 "list[0].x", "a.b.*.nope", "nested.x.name.*"]:
        assert m(f"{path} != 1", DOC) is False, path
        assert m(f"!({path} == 1)", DOC) is True, path
        assert m(f"{path} == nil", DOC) is False, path


def test_steps_after_a_multi_apply_to_each_element_and_drop_missing():
    assert m("a.b.*.c == same[0]", DOC)         # a multi against a scalar: any element
    assert m("a.b.*.c == list", DOC) is False   # [1, 2] vs [1, 2, 3]: ordered lists differ
    assert m("a.b.*.c == nested.z.*.name", DOC) is False
    assert m("nested..name == nested..name", DOC)
    assert m("list[*] == same[*]", DOC)


def test_arrays_act_as_multis_against_scalars_and_regexes(http_item):
    assert m('request.pathSegments == "api"', http_item)
    assert m('request.pathSegments == r"^v\\d$"', http_item)
    assert m('request.pathSegments != "api"', http_item) is False  # some segment is "api"
    assert m('request.pathSegments != "nope"', http_item)
    assert m('request.queryString.tags == "red"', http_item)


def test_missing_operands_affect_only_their_own_comparison():
    assert m('missing != "x"') is False
    assert m('missing == "x"') is False
    assert m('!(missing != "x")') is True
    assert m("missing == 1 or true") is True
    assert m("missing < 1 or missing >= 1") is False
    assert m("missing == missing") is False
    assert m("-a.s == 1", DOC) is False       # unary minus of a non-number is missing
    assert m("!(-a.s == 1)", DOC) is True
    assert m("-flag == -1", DOC) is False


@pytest.mark.parametrize("query", [
    "1 == 1.0", "ts == 1700000000123", "ts != 1700000000124", "ts > 1700000000122",
    "port == 443", "443 == port", "port == 443.0", "port != 444", 'port == "443"',
    '"1e3" == 1000', "a.s != 1", 'flag == "true"', '"false" != flag', "flag == true", "flag != false",
    "null == nil", "null == null", "nil == nil", "a.e == nil", "a.n != nil", 'a.s != nil',
    "a.n == 0", "a.n == false or true", "list == same", "emptyobj == emptyobj",
    'nested.x.y == nested.x.y', "a.b[0] == a.b[0]",
])
def test_equality_true(query):
    assert m(query, DOC) is True


@pytest.mark.parametrize("query", [
    "ts == 1700000000124", 'port == "0443"', "port == 444", 'a.s == 1', "flag == 1", "a.n == false",
    "null == 0", 'null == ""', "a.e == false", 'flag == "True"', "list == 4", "a.b[0] == a.b[1]",
    "emptyobj == empty", "nested.x == nested.z", '1 == "1x"', "a.n == nil",
])
def test_equality_false(query):
    assert m(query, DOC) is False


def test_regex_on_either_side_searches_the_text_form():
    for status, expected in [(404, True), (140, True), (500, False), ("4xx", True)]:
        assert m('response.status == r"4.*"', {"response": {"status": status}}) is expected
        assert m('r"4.*" == response.status', {"response": {"status": status}}) is expected
    assert m('x == r"^1$"', {"x": 1.0})        # numbers without a trailing .0
    assert m('x == r"^1\\.5$"', {"x": 1.5})
    assert m('x == r"^true$"', {"x": True})
    assert m('x != r"^a"', {"x": "bcd"})
    assert m('x == r"."', {"x": None}) is False
    assert m('x == r"."', {"x": {"a": 1}}) is False


def test_multis_against_scalars():
    assert m("list == 2", DOC) and not m("list == 4", DOC)
    assert m("list != 4", DOC) and not m("list != 2", DOC)
    assert m("a.b.*.c != 3", DOC) and not m("a.b.*.c != 2", DOC)


def test_multi_against_multi_is_list_equality():
    assert m("list[*] == same[*]", DOC)
    assert not m("list[*] != same[*]", DOC)
    assert m("a.b.*.c != list[*]", DOC)


@pytest.mark.parametrize("query, expected", [
    ("2 > 1", True), ("1 >= 1", True), ("1 < 1", False), ("1 <= 1.0", True),
    ("port > 400", True), ('port < "1000"', True), ('"10" > "9"', True),     # numeric strings: numerically
    ('"b" > "a"', True), ('"abc" < "abd"', True), ('"B" < "a"', True),       # non-numeric: lexicographic
    ('"a" > 1', False), ('"a" < 1', False), ('"10" < "a"', False),
    ("flag > 0", True), ("flag >= 1", True), ("flag < 1", False),            # booleans as 0/1
    ("null < 1", False), ("null >= 0", False), ("emptyobj > 0", False), ('x < r"a"', False),
    ("list > 2", True), ("list > 3", False), ("list < 2", True),             # multi vs scalar: any
    ("list >= same", False), ("list[*] >= same[*]", False),                # every combination
    ("list >= 1", True), ("list[*] > empty[*]", False),
    ("ts >= 1700000000123", True), ("ts > 1700000000123", False),
    ('a.s > "a"', True), ("missing > 0", False), ("0 > missing", False),
])
def test_ordering(query, expected):
    assert m(query, DOC) is expected


def test_multi_vs_multi_ordering_holds_for_every_pair():
    item = {"x": [5, 6], "y": [1, 2, 3]}
    assert m("x > y", item) and not m("y > x", item) and not m("x[*] > x[*]", item)


@pytest.mark.parametrize("query, expected", [
    ("a.e", False), ("a.n", False), ("empty", False), ("emptyobj", False), ("missing", False),
    ('""', False), ("0", False), ("0.0", False), ("false", False), ("nil", False),
    ("a.s", True), ("list", True), ("a", True), ("flag", True), ("1", True), ('"x"', True), ('r"x"', True),
    ("-1", True), ("a.b.*.c", True), ("a.b.*.d", True), ("nested..name", True),
    ("!a.e", True), ("!list", False), ("a.s and list and flag", True), ("a.e or empty or null", False),
])
def test_truthiness(query, expected):
    assert m(query, DOC) is expected


def test_a_multi_is_true_when_any_element_is():
    assert m("x.*", {"x": [0, "", None, 1]})
    assert not m("x.*", {"x": [0, "", None, [], {}]})
    assert m("x", {"x": [0]})   # an array with an element is true, whatever the element


def test_and_or_short_circuit_and_yield_booleans():
    q = kfl.compile('a.s or redact("a.s")')
    ok, item = q.apply(DOC)
    assert ok is True and item is DOC     # redact never ran
    ok, item = kfl.compile('a.e and redact("a.s")').apply(DOC)
    assert ok is False and item is DOC
    assert kfl.compile("a.s or list").match(DOC) is True


def test_objects_compare_by_content():
    assert m("x == y", {"x": {"a": [1, {"b": None}]}, "y": {"a": [1, {"b": None}]}})
    assert not m("x == y", {"x": {"a": 1}, "y": {"a": True}})
    assert not m("x == y", {"x": {"a": 1}, "y": {"a": "1"}})
    assert m("x == y", {"x": {"a": 1}, "y": {"a": 1.0}})
    assert not m("x == y", {"x": {"a": 1}, "y": {"a": 1, "b": 2}})
    assert not m('x == "a"', {"x": {"a": 1}})


def test_items_are_never_changed_by_matching(http_item, items):
    before = repr(http_item)
    for query in ["http", 'redact("request.headers")', "request.pathSegments.*", "response..name == 1",
                  "response.content.text.json().user.id == 7"]:
        kfl.compile(query).apply(http_item)
    assert repr(http_item) == before


@pytest.mark.parametrize("terms", [2, 3, 4, 7, 10, 40])
def test_long_and_or_chains_run_left_to_right(terms):
    names = [f"t{i}" for i in range(terms)]
    ands = " and ".join([*names[:-1], f'redact("{names[-2]}")', f'{names[-2]} == "[REDACTED]"'])
    item = dict.fromkeys(names, 1)
    ok, out = kfl.compile(ands).apply(item)
    assert ok and out[names[-2]] == "[REDACTED]"
    item[names[0]] = 0
    assert kfl.compile(ands).apply(item) == (False, item)
    ors = " or ".join([*(f"{n} == 2" for n in names), f'redact("{names[-1]}")', "t0 == 1"])
    ok, out = kfl.compile(ors).apply(dict.fromkeys(names, 1))
    assert ok and out[names[-1]] == "[REDACTED]" and out["t0"] == 1
    assert kfl.compile(" or ".join(f"{n} == 2" for n in names)).match(dict.fromkeys(names, 1)) is False


def test_items_too_deep_to_compare_do_not_match():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    item = {"x": deep, "y": deep, "s": "a"}
    assert kfl.compile("x == y").match(item) is False
    assert kfl.compile('redact("s") and x == y').apply(item) == (False, item)
    assert kfl.compile('s == "a"').match(item) is True
