"""KFL values and their rules: missing, multis, text forms, truthiness, equality and ordering."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from .regex import Regex

Pattern = Regex
NUMBER_RE = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?\Z")
BOOL_TEXT = {True: "true", False: "false"}
ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


class Missing:
    """The value of a selector that leads nowhere. Falsy; any comparison with it is false."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "missing"


MISSING = Missing()


class Multi(list):
    """Several values from one selector (`.*`, `[*]`, `..name`, or a step after one of those)."""

    __slots__ = ()


class XmlNode(dict):
    """An XML element with attributes or children (from `xml()`); compares with scalars by its `#text`."""

    __slots__ = ()


def as_number(text: str) -> int | float | None:
    """The number a string holds in JSON number syntax, else None."""
    if not NUMBER_RE.match(text):
        return None
    if "." in text or "e" in text or "E" in text:
        return float(text)
    return int(text)


def text_form(value: Any) -> str | None:
    """The text a helper or regex sees: strings as they are, numbers without a trailing `.0`."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return BOOL_TEXT[value]
    if kind is int:
        return str(value)
    if kind is float:
        return str(int(value)) if value.is_integer() else repr(value)
    if kind is XmlNode:
        return text_form(value.get("#text"))
    return None


def texts(value: Any) -> list[str]:
    """Every text form in `value` (a multi or an array gives one per element)."""
    if isinstance(value, list):
        return [t for element in value for t in texts(element)]
    text = text_form(value)
    return [] if text is None else [text]


def truthy(value: Any) -> bool:
    """false, 0, "", [], {}, null and missing are false; a multi is true if any element is."""
    if value.__class__ is Multi:
        return any(truthy(v) for v in value)
    return bool(value)


def equal(a: Any, b: Any) -> bool:
    """`a == b` for two values that exist."""
    if isinstance(a, list):
        if isinstance(b, list):
            return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
        return any(equal(x, b) for x in a)
    if isinstance(b, list):
        return any(equal(a, y) for y in b)
    if isinstance(a, Pattern):
        return _search(a, b)
    if isinstance(b, Pattern):
        return _search(b, a)
    return _scalar_equal(a, b)


def _search(pattern: Pattern, value: Any) -> bool:
    text = text_form(value)
    return text is not None and pattern.search(text)


def _scalar_equal(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if ta is str and tb is str:
        return a == b
    if a is None or b is None:
        return a is b
    if ta is bool or tb is bool:
        if ta is tb:
            return a is b
        flag, other = (a, b) if ta is bool else (b, a)
        return type(other) is str and other == BOOL_TEXT[flag]
    if ta in (int, float):
        if tb in (int, float):
            return a == b
        if tb is str:
            return as_number(b) == a
    elif ta is str and tb in (int, float):
        return as_number(a) == b
    if ta is XmlNode and tb is not XmlNode:
        return "#text" in a and equal(a["#text"], b)
    if tb is XmlNode and ta is not XmlNode:
        return "#text" in b and equal(a, b["#text"])
    if isinstance(a, dict) and isinstance(b, dict):
        return json_equal(a, b)
    return False


def json_equal(a: Any, b: Any) -> bool:
    """Structural equality of two JSON documents (booleans are not numbers)."""
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool or a is None or b is None:
        return a is b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(json_equal, a, b))
    if ta in (int, float) and tb in (int, float):
        return a == b
    return ta is tb and a == b


def _order_number(value: Any) -> int | float | None:
    kind = type(value)
    if kind is int or kind is float:
        return value
    if kind is bool:
        return int(value)
    if kind is str:
        return as_number(value)
    return None


def ordered(op: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    """`a <op> b` for two values that exist: numerically, or two non-numeric strings as text."""
    if isinstance(a, list):
        if isinstance(b, list):
            return all(ordered(op, x, y) for x in a for y in b)
        return any(ordered(op, x, b) for x in a)
    if isinstance(b, list):
        return any(ordered(op, a, y) for y in b)
    if type(a) is XmlNode:
        return "#text" in a and ordered(op, a["#text"], b)
    if type(b) is XmlNode:
        return "#text" in b and ordered(op, a, b["#text"])
    na, nb = _order_number(a), _order_number(b)
    if na is not None and nb is not None:
        return op(na, nb)
    if na is None and nb is None and type(a) is str and type(b) is str:
        return op(a, b)
    return False


def literal_equal(literal: Any) -> Callable[[Any], bool]:
    """A one-argument `value == literal` (value may be missing), with the common cases first."""
    kind = type(literal)
    if kind is str:

        def eq_str(value: Any) -> bool:
            if value.__class__ is str:
                return value == literal
            return value is not MISSING and equal(value, literal)

        return eq_str
    if kind is int or kind is float:
        text = text_form(literal)

        def eq_number(value: Any) -> bool:
            cls = value.__class__
            if cls is int or cls is float:
                return value == literal
            if cls is str and value == text:
                return True
            return value is not MISSING and equal(value, literal)

        return eq_number
    if kind is Pattern:
        search = literal.search

        def eq_regex(value: Any) -> bool:
            if value.__class__ is str:
                return search(value)
            return value is not MISSING and equal(value, literal)

        return eq_regex

    def eq_other(value: Any) -> bool:
        return value is not MISSING and equal(value, literal)

    return eq_other


def literal_differs(literal: Any) -> Callable[[Any], bool]:
    """A one-argument `value != literal`: false when value is missing, else not `==`."""
    matches = literal_equal(literal)
    return lambda value: value is not MISSING and not matches(value)


def literal_order(op_text: str, literal: Any) -> Callable[[Any], bool]:
    """A one-argument `value <op> literal`."""
    op = ORDER_OPS[op_text]
    if type(literal) in (int, float):

        def order_number(value: Any) -> bool:
            cls = value.__class__
            if cls is int or cls is float:
                return op(value, literal)
            return value is not MISSING and ordered(op, value, literal)

        return order_number

    def order_other(value: Any) -> bool:
        return value is not MISSING and ordered(op, value, literal)

    return order_other


def compare(op_text: str) -> Callable[[Any, Any], bool]:
    """`a <op> b` for any two values (false when either is missing)."""
    if op_text == "==":
        return lambda a, b: a is not MISSING and b is not MISSING and equal(a, b)
    if op_text == "!=":
        return lambda a, b: a is not MISSING and b is not MISSING and not equal(a, b)
    op = ORDER_OPS[op_text]
    return lambda a, b: a is not MISSING and b is not MISSING and ordered(op, a, b)
