"""Compile the AST into Python closures: `test(state) -> bool` and `value(state) -> value`.

`state` is a two-element list made once per evaluation: `[item, now_ms or None]`. `redact()` replaces
`state[0]` with its redacted copy so later terms see it; `now()` fills `state[1]` on first use.
Literals are folded into the closures (comparisons with a literal get a one-argument matcher), static
paths are unrolled, and nothing walks the tree at evaluation time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import nodes as n
from .documents import load_json, load_xml
from .errors import KFLSyntaxError
from .helpers import KNOWN, TEXT_TESTS, TIME_UNITS_MS, now_ms, parse_datetime, text_test, text_test_dynamic
from .redact import redact, redact_ops
from .selectors import (
    Step,
    deep_step,
    field_step,
    fused_test,
    index_step,
    per_element,
    static_getter,
    wild_step,
)
from .values import (
    FLIPPED,
    MISSING,
    Multi,
    Pattern,
    compare,
    literal_differs,
    literal_equal,
    literal_order,
    truthy,
)

Test = Callable[[list], bool]
Value = Callable[[list], Any]
DOCUMENT_LOADERS = {"json": load_json, "xml": load_xml}
REVERSED_ORDER = {"<": "__gt__", "<=": "__ge__", ">": "__lt__", ">=": "__le__"}  # v < lit == lit.__gt__(v)


class Query:
    """A compiled query: `match(item)`, `apply(item)`, the first `limit(n)` and unknown helper names."""

    __slots__ = ("_test", "limit", "query", "unknown_helpers")

    def __init__(self, query: str, test: Test, limit: int | None, unknown_helpers: tuple[str, ...]) -> None:
        self.query = query
        self._test = test
        self.limit = limit
        self.unknown_helpers = unknown_helpers

    def match(self, item: Any, now_ms: int | None = None) -> bool:
        """Does `item` match? `now_ms` fixes what `now()` reads (default: the clock, once).

        An item nested too deeply for Python's stack to compare does not match."""
        if item.__class__ is not dict and not isinstance(item, dict):
            item = {}
        try:
            return self._test([item, now_ms])
        except RecursionError:
            return False

    def apply(self, item: Any, now_ms: int | None = None) -> tuple[bool, Any]:
        """(matches, item after `redact()`): a copy when something was redacted, else `item` itself."""
        state = [item if isinstance(item, dict) else {}, now_ms]
        try:
            ok = self._test(state)
        except RecursionError:
            return False, item
        return ok, state[0] if isinstance(item, dict) else item

    def __repr__(self) -> str:
        return f"kfl.Query({self.query!r})"


def build(query: str, tree: n.Node | None) -> Query:
    """The `Query` for a parsed, macro-expanded tree (None: the empty query, which matches all)."""
    compiler = Compiler(query)
    test = (lambda state: True) if tree is None else compiler.test(tree)
    return Query(query, test, compiler.limit, tuple(compiler.unknown))


def _all_of(tests: list[Test]) -> Test:
    """`and` of the tests, left to right, stopping at the first false (a tree of groups of three)."""
    while len(tests) > 3:
        tests = [_all_of(tests[i : i + 3]) for i in range(0, len(tests), 3)]
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda state: a(state) and b(state)
    a, b, c = tests
    return lambda state: a(state) and b(state) and c(state)


def _any_of(tests: list[Test]) -> Test:
    """`or` of the tests, left to right, stopping at the first true (a tree of groups of three)."""
    while len(tests) > 3:
        tests = [_any_of(tests[i : i + 3]) for i in range(0, len(tests), 3)]
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda state: a(state) or b(state)
    a, b, c = tests
    return lambda state: a(state) or b(state) or c(state)


def _flatten(node: n.And | n.Or) -> list[n.Node]:
    out: list[n.Node] = []
    for term in node.terms:
        out.extend(_flatten(term) if type(term) is type(node) else [term])
    return out


def _static_keys(node: n.Node) -> tuple[str, ...] | None:
    """The field names of a path made only of field names from the item, else None."""
    if not isinstance(node, n.Path) or not isinstance(node.root, str):
        return None
    if not all(isinstance(step, n.Field) for step in node.steps):
        return None
    return (node.root, *(step.name for step in node.steps))


def _fused_compare(op: str, left: n.Node, literal: Any) -> Test | None:
    """`path <op> literal` as one closure, for short static paths and str, int or regex literals (the
    usual `protocol.abbr == "HTTP"`, `response.status >= 500`); None when the shape is not one of those."""
    keys = _static_keys(left)
    kind = type(literal)
    if keys is None or len(keys) > 3 or kind not in (str, int, Pattern):
        return None
    if kind is Pattern:
        if op != "==":
            return None
        return fused_test(keys, str, literal.search, literal_equal(literal))
    if op == "==":
        return fused_test(keys, kind, literal.__eq__, literal_equal(literal))
    if op == "!=":
        return fused_test(keys, kind, literal.__ne__, literal_differs(literal))
    if kind is int:
        return fused_test(keys, int, getattr(literal, REVERSED_ORDER[op]), literal_order(op, literal))
    return None


def _constant(value: Any) -> Value:
    return lambda state: value


class Compiler:
    def __init__(self, query: str) -> None:
        self.query = query
        self.limit: int | None = None
        self.unknown: list[str] = []

    def fail(self, message: str, pos: int) -> KFLSyntaxError:
        return KFLSyntaxError(message, self.query, pos)

    def test(self, node: n.Node) -> Test:
        """A closure giving the truth of `node`."""
        if isinstance(node, n.And):
            return _all_of([self.test(t) for t in _flatten(node)])
        if isinstance(node, n.Or):
            return _any_of([self.test(t) for t in _flatten(node)])
        if isinstance(node, n.Not):
            inner = self.test(node.expr)
            return lambda state: not inner(state)
        if isinstance(node, n.Compare):
            return self.compare(node)
        if isinstance(node, n.Literal):
            return _constant(truthy(node.value))
        get = self.value(node)

        def truth(state: list) -> bool:
            value = get(state)
            if value.__class__ is Multi:
                return truthy(value)
            return bool(value)

        return truth

    def value(self, node: n.Node) -> Value:
        """A closure giving the value of `node` (MISSING when a path leads nowhere)."""
        if isinstance(node, n.Literal):
            return _constant(node.value)
        if isinstance(node, n.Path):
            return self.path(node)
        if isinstance(node, n.Neg):
            inner = self.value(node.expr)

            def negate(state: list) -> Any:
                value = inner(state)
                cls = value.__class__
                return -value if cls is int or cls is float else MISSING

            return negate
        return self.test(node)

    def compare(self, node: n.Compare) -> Test:
        op, left, right = node.op, node.left, node.right
        if isinstance(left, n.Literal) and isinstance(right, n.Literal):
            return _constant(compare(op)(left.value, right.value))
        if isinstance(left, n.Literal):
            left, right, op = right, left, FLIPPED[op]
        if isinstance(right, n.Literal):
            fused = _fused_compare(op, left, right.value)
            if fused is not None:
                return fused
            get = self.value(left)
            if op == "==":
                check = literal_equal(right.value)
            elif op == "!=":
                check = literal_differs(right.value)
            else:
                check = literal_order(op, right.value)
            return lambda state: check(get(state))
        get_left, get_right, both = self.value(left), self.value(right), compare(op)
        return lambda state: both(get_left(state), get_right(state))

    def path(self, node: n.Path) -> Value:
        steps = node.steps
        if isinstance(node.root, str):
            keys: list[str | int] = [node.root]
            for step in steps:
                if isinstance(step, n.Field):
                    keys.append(step.name)
                elif isinstance(step, n.Index):
                    keys.append(step.index)
                else:
                    break
            get = static_getter(tuple(keys))
            steps = steps[len(keys) - 1 :]
        else:
            get = self.function(node.root)
        if not steps:
            return get
        fns = tuple(self.step(s) for s in steps)
        if len(fns) == 1:
            only = fns[0]
            return lambda state: only(get(state), state)

        def select(state: list) -> Any:
            value = get(state)
            for fn in fns:
                value = fn(value, state)
            return value

        return select

    def step(self, step: n.Step) -> Step:
        if isinstance(step, n.Field):
            return field_step(step.name)
        if isinstance(step, n.Index):
            return index_step(step.index)
        if isinstance(step, n.Wild):
            return wild_step
        if isinstance(step, n.Deep):
            return deep_step(step.name)
        return self.method(step)

    def _args(self, call: n.Call) -> list[n.Node]:
        """The argument expressions, each compiled once so compile-time errors in them surface."""
        exprs = [a.expr for a in call.args]
        for expr in exprs:
            self.value(expr)
        if call.name not in KNOWN and call.name not in self.unknown:
            self.unknown.append(call.name)
        return exprs

    def method(self, call: n.Call) -> Step:
        args = self._args(call)
        if call.name in TEXT_TESTS:
            if not args:
                return lambda value, state: False
            if isinstance(args[0], n.Literal):
                check = text_test(call.name, args[0].value)
                return lambda value, state: check(value)
            needle, name = self.value(args[0]), call.name
            return lambda value, state: text_test_dynamic(name, value, needle(state))
        if call.name in DOCUMENT_LOADERS:
            load = DOCUMENT_LOADERS[call.name]
            return per_element(lambda value, state: load(value)[0])
        return lambda value, state: False

    def function(self, call: n.Call) -> Value:
        args = self._args(call)
        name = call.name
        if name == "datetime":
            return self._datetime(args)
        if name == "now":
            return now_ms
        if name in TIME_UNITS_MS:
            return self._relative(TIME_UNITS_MS[name], args)
        if name == "limit":
            if self.limit is None and args and isinstance(args[0], n.Literal):
                count = args[0].value
                if (type(count) is int or type(count) is float and count.is_integer()) and count >= 0:
                    self.limit = int(count)
            return _constant(True)
        if name == "redact":
            return self._redact(args)
        if name in DOCUMENT_LOADERS:
            return _constant(MISSING)
        return _constant(False)

    def _datetime(self, args: list[n.Node]) -> Value:
        if not args:
            return _constant(MISSING)
        arg = args[0]
        if isinstance(arg, n.Literal):
            ms = parse_datetime(arg.value) if type(arg.value) is str else None
            if ms is None:
                raise self.fail(
                    f"datetime() cannot read {arg.value!r}; write it like \"10/19/2021, 6:29:02.593 PM\" "
                    "or ISO 8601 (\"2021-10-19T18:29:02Z\")",
                    arg.pos,
                )
            return _constant(ms)
        text = self.value(arg)

        def runtime_datetime(state: list) -> Any:
            value = text(state)
            ms = parse_datetime(value) if type(value) is str else None
            return MISSING if ms is None else ms

        return runtime_datetime

    def _relative(self, unit_ms: int, args: list[n.Node]) -> Value:
        if not args:
            return _constant(MISSING)
        if isinstance(args[0], n.Literal):
            count = args[0].value
            if type(count) not in (int, float):
                return _constant(MISSING)
            delta = count * unit_ms
            return lambda state: now_ms(state) + delta
        get = self.value(args[0])

        def relative(state: list) -> Any:
            count = get(state)
            cls = count.__class__
            return now_ms(state) + count * unit_ms if cls is int or cls is float else MISSING

        return relative

    def _redact(self, args: list[n.Node]) -> Value:
        paths = [redact_ops(a.value) for a in args if isinstance(a, n.Literal) and type(a.value) is str]
        paths = [p for p in paths if p]
        if not paths:
            return _constant(True)

        def redact_all(state: list) -> bool:
            item = state[0]
            for ops in paths:
                item = redact(item, ops)
            state[0] = item
            return True

        return redact_all
