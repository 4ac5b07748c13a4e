"""Property tests: queries built from the grammar compile; any text either compiles or raises
KFLSyntaxError (nothing else); `validate` and `compile` agree; matching never raises."""

from __future__ import annotations

import json
import operator
from collections import OrderedDict
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kfl
from kfl import compiler, parser

from .conftest import ITEMS

ITEMS_TO_MATCH = [*ITEMS, {}, {"a": [1, {"b": None}], "request": "x", "x": {"json": "[1]"}}]
ROOTS = ["a", "b", "request", "response", "protocol", "x_1", "dst", "src", "ändern", "http", "dns", "data"]
FIELDS = [*ROOTS, "and", "or", "not", "true", "null", "nil", "status", "headers", "name", "json"]
HELPERS = ["startsWith", "endsWith", "contains", "json", "xml", "now", "seconds", "days", "limit",
           "redact", "unknownHelper"]
REGEXES = [r"4.*", r"^\d+$", r"a|b", r"[a-z]+\.x", r"\"", r"(?i)get"]
DATES = ["10/19/2021, 6:29:02.593 PM", "1/2/2006, 3:04:05 pm", "2021-10-19T18:29:02Z"]
PY_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
          ">=": operator.ge}
FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def quoted(text: str, single: bool) -> str:
    body = json.dumps(text)[1:-1]
    if single:
        return "'" + body.replace('\\"', '"').replace("'", "\\'") + "'"
    return '"' + body + '"'


literals = st.one_of(
    st.integers(0, 10**15).map(str),
    st.floats(0, 1e6, allow_nan=False).map(lambda f: repr(f) if "e" not in repr(f) else "1e3"),
    st.builds(quoted, st.text(max_size=8), st.booleans()),
    st.sampled_from(REGEXES).map(lambda r: f'r"{r}"'),
    st.sampled_from(["true", "false", "nil", "null"]),
    st.sampled_from(DATES).map(lambda d: f'datetime("{d}")'),
)

steps = st.one_of(
    st.sampled_from(FIELDS).map(lambda f: "." + f),
    st.builds(quoted, st.text(max_size=6), st.booleans()).map(lambda s: f"[{s}]"),
    st.integers(0, 5).map(lambda i: f"[{i}]"),
    st.sampled_from([".*", "[*]", ".json()", ".xml()"]),
    st.sampled_from(FIELDS).map(lambda f: ".." + f),
)


def selector(base: str, more: list[str]) -> str:
    return base + "".join(more)


STEP_CHAINS = st.lists(steps, max_size=2).map("".join)
COMPARISONS = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
HELPER_NAMES = st.sampled_from(HELPERS)


def build_queries() -> st.SearchStrategy[str]:
    def extend(expr: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        operand = st.one_of(operands, expr.map(lambda e: f"({e})"))
        args = st.lists(st.one_of(expr, st.builds(lambda n, e: f"{n}: {e}", st.sampled_from(ROOTS), expr)),
                        max_size=3).map(", ".join)
        return st.one_of(
            st.builds(lambda a, b: f"{a} and {b}", expr, expr),
            st.builds(lambda a, b: f"{a} || {b}", expr, expr),
            st.builds(lambda a, b: f"{a} && {b}", expr, expr),
            st.builds(lambda a, b: f"{a} or {b}", expr, expr),
            expr.map(lambda e: f"not {e}"),
            expr.map(lambda e: f"!({e})"),
            st.builds(lambda a, op, b: f"{a} {op} {b}", operand, COMPARISONS, operand),
            operand.map(lambda o: f"-{o}"),
            st.builds(lambda h, a, s: f"{h}({a}){s}", HELPER_NAMES, args, STEP_CHAINS),
            st.builds(lambda r, h, a: f"{r}.{h}({a})", st.sampled_from(ROOTS), HELPER_NAMES, args),
        )

    operands = st.one_of(literals, st.builds(selector, st.sampled_from(ROOTS), st.lists(steps, max_size=4)))
    return st.recursive(operands, extend, max_leaves=12)


VALID = build_queries()
TOKENS = ["a", "b.c", "http", "(", ")", "[", "]", "[0]", '["k"]', ".", "..", "*", ",", ":", "==", "!=", "<",
          ">=", "and", "or", "not", "!", "&&", "||", "-", "1", "2.5", "1e3", '"s"', "'t'", 'r"x+"', "true",
          "nil", "null", "json()", "f(", "datetime(", '"10/19/2021, 6:29:02 PM"', "=", "===", "&", "#", '"',
          "r'", "\\", "\n", "\t", "é", "limit(", "redact(", "-1", "[-1]", "[1.5]"]
SOUP = st.lists(st.sampled_from(TOKENS), max_size=14).flatmap(
    lambda tokens: st.sampled_from([" ", ""]).map(lambda sep: sep.join(tokens)))


def outcome(query: str):
    """('ok', Query) or ('error', KFLSyntaxError); anything else raised fails the test."""
    try:
        return "ok", kfl.compile(query)
    except kfl.KFLSyntaxError as exc:
        return "error", exc


def check_consistent(query: str) -> str:
    kind, result = outcome(query)
    try:
        kfl.validate(query)
        validated = "ok"
    except kfl.KFLSyntaxError as exc:
        validated = "error"
        assert str(exc) == str(result)
    assert validated == kind
    if kind == "ok":
        for item in ITEMS_TO_MATCH:
            assert type(result.match(item, now_ms=1_700_000_000_000)) is bool
            ok, out = result.apply(item, now_ms=1_700_000_000_000)
            assert type(ok) is bool and isinstance(out, dict)
    else:
        lines = query.split("\n")
        assert 1 <= result.line <= len(lines)
        assert 1 <= result.column <= len(lines[result.line - 1]) + 1
        assert result.query == query and str(result).startswith(f"{result.line}:{result.column}: ")
    return kind


@SETTINGS
@given(VALID)
def test_queries_built_from_the_grammar_compile(query):
    assert check_consistent(query) == "ok", query


@SETTINGS
@given(SOUP)
def test_token_soup_compiles_or_raises_kfl_syntax_error(query):
    check_consistent(query)


@SETTINGS
@given(st.text(max_size=40))
def test_any_text_compiles_or_raises_kfl_syntax_error(query):
    check_consistent(query)


@SETTINGS
@given(VALID, st.data())
def test_damaged_queries_compile_or_raise_kfl_syntax_error(query, data):
    cut = data.draw(st.integers(0, len(query)))
    insert = data.draw(st.sampled_from(["", *TOKENS]))
    drop = data.draw(st.integers(0, 3))
    check_consistent(query[:cut] + insert + query[cut + drop:])


KEYS = st.sampled_from(["a", "b", "c"])
LITERALS = ['"HTTP"', '"500"', '"abc"', '""', "500", "0", "-1", 'r"^5"', 'r"T"', "true", "nil", "2.5"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 600) | st.floats(-2, 600, allow_nan=False)
    | st.sampled_from(["HTTP", "500", "5e2", "abc", "", "true", "curl/8"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3).flatmap(
        lambda d: st.sampled_from([d, OrderedDict(d)])),
    max_leaves=8,
)
CONTAINERS = st.sampled_from([dict, OrderedDict, lambda d: [d]])
SCALARS = st.sampled_from(["HTTP", "500", "5e2", "abc", "", "true", "T", 500, 0, -1, 2.5, True, False, None])
LEAVES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
ALONG_THE_PATH = st.one_of(
    st.builds(lambda leaf, outer: outer({"b": leaf}), LEAVES, CONTAINERS),
    st.builds(lambda leaf, outer, inner: outer({"b": inner({"c": leaf})}), LEAVES, CONTAINERS, CONTAINERS),
)
FUSED_SHAPES = st.builds(
    lambda path, op, literal: f"{path} {op} {literal}",
    st.sampled_from(["a", "a.b", "a.b.c"]),
    COMPARISONS,
    st.sampled_from(LITERALS),
)


def generic(query: str) -> kfl.Query:
    """`query` compiled without the specialised `path <op> literal` closures."""
    with mock.patch.object(compiler, "_fused_compare", lambda *args: None):
        return compiler.build(query, parser.parse(query, kfl.MACROS))


@SETTINGS
@given(FUSED_SHAPES, st.one_of(JSON, ALONG_THE_PATH), st.booleans())
def test_specialised_comparisons_agree_with_the_generic_closures(query, value, ordered):
    item = OrderedDict(a=value) if ordered else {"a": value}
    assert kfl.compile(query).match(item) is generic(query).match(item)


NUMBERS = st.sampled_from([-1, 0, 499, 500, 2.5])


def at_the_boundary(number: int | float) -> st.SearchStrategy:
    """The literal itself (as int and as float), its neighbours, and lists holding it."""
    near = st.sampled_from([number, float(number), number - 1, number + 1, number - 0.5, number + 0.5])
    return st.one_of(near, st.lists(near, min_size=1, max_size=3))


@SETTINGS
@given(st.sampled_from(["a", "a.b", "a.b.c"]), COMPARISONS, NUMBERS.flatmap(
    lambda number: st.tuples(st.just(number), at_the_boundary(number))), st.booleans())
def test_comparisons_agree_with_python_on_values_equal_to_the_literal(path, op, drawn, flipped):
    """Values equal to the literal on purpose: `<=` and `>=` must hold at the boundary, `<` and `>`
    must not, in the fused and the generic closures alike, with the literal on either side."""
    number, value = drawn
    leaf: object = value
    for key in reversed(path.split(".")[1:]):
        leaf = {key: leaf}
    item = {"a": leaf}
    query = f"{number} {FLIPPED[op]} {path}" if flipped else f"{path} {op} {number}"
    values = value if isinstance(value, list) else [value]
    if op == "!=":  # an array is != a scalar when no element equals it (docs/kfl.md)
        expected = not any(v == number for v in values)
    else:
        expected = any(PY_OPS[op](v, number) for v in values)
    assert kfl.compile(query).match(item) is expected, query
    assert generic(query).match(item) is expected, query
