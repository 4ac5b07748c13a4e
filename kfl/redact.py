"""`redact("path", ...)`: replace values with "[REDACTED]" in a copy of the item (copy on write).

A path is a selector (`request.headers["Authorization"]`, `a.*.b`, `x.json().password`) or `..name`
followed by steps. Only the containers on the way to a redacted value are copied, so the caller's
item is never changed and an item with nothing to redact is returned as the same object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import nodes as n
from .documents import dump_json, dump_xml, load_json, load_xml
from .errors import KFLSyntaxError
from .parser import parse_plain

REDACTED = "[REDACTED]"
DEEP_ROOT = "kfl_redact_root"
Ops = tuple[n.Field | n.Index | n.Wild | n.Deep | str, ...]
DOCUMENTS: dict[str, tuple[Callable[[Any], tuple[Any, str | None]], Callable[[Any, str], str]]] = {
    "json": (load_json, dump_json),
    "xml": (load_xml, dump_xml),
}


def redact_ops(path: str) -> Ops | None:
    """The steps of a redact path, or None when it is not a valid path (it then redacts nothing)."""
    text = path.strip()
    deep_start = text.startswith("..")
    try:
        tree = parse_plain(DEEP_ROOT + text if deep_start else text)
    except KFLSyntaxError:
        return None
    if not isinstance(tree, n.Path) or not isinstance(tree.root, str):
        return None
    ops: list = [] if deep_start else [n.Field(tree.root)]
    for step in tree.steps:
        if isinstance(step, n.Call):
            if step.name not in DOCUMENTS or step.args:
                return None
            ops.append(step.name)
        else:
            ops.append(step)
    return tuple(ops)


def redact(item: Any, ops: Ops) -> Any:
    """`item` with every value at `ops` replaced (the same object when nothing matched)."""
    return _rewrite(item, ops, 0)


def _rewrite(value: Any, ops: Ops, i: int) -> Any:
    if i == len(ops):
        return REDACTED
    op = ops[i]
    if isinstance(op, n.Field):
        keys = [op.name] if isinstance(value, dict) and op.name in value else []
        return _update(value, keys, lambda child: _rewrite(child, ops, i + 1))
    if isinstance(op, n.Index):
        keys = [op.index] if isinstance(value, list) and op.index < len(value) else []
        return _update(value, keys, lambda child: _rewrite(child, ops, i + 1))
    if isinstance(op, n.Wild):
        return _update(value, _keys(value), lambda child: _rewrite(child, ops, i + 1))
    if isinstance(op, n.Deep):
        return _deep(value, op.name, ops, i + 1)
    load, dump = DOCUMENTS[op]
    document, encoding = load(value)
    if encoding is None:
        return value
    rewritten = _rewrite(document, ops, i + 1)
    return value if rewritten is document else dump(rewritten, encoding)


def _deep(value: Any, name: str, ops: Ops, i: int) -> Any:
    """Every `name` at any depth below `value` gets the rest of the path (deepest first)."""
    changes = []
    for key in _keys(value):
        child = _deep(value[key], name, ops, i)
        if key == name:
            child = _rewrite(child, ops, i)
        if child is not value[key]:
            changes.append((key, child))
    return _apply(value, changes)


def _keys(value: Any) -> list:
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, list):
        return list(range(len(value)))
    return []


def _update(container: Any, keys: list, rewrite: Callable[[Any], Any]) -> Any:
    changes = []
    for key in keys:
        new = rewrite(container[key])
        if new is not container[key]:
            changes.append((key, new))
    return _apply(container, changes)


def _apply(container: Any, changes: list) -> Any:
    """`container`, or a shallow copy of it with `changes` (key, value) made."""
    if not changes:
        return container
    copy = type(container)(container)
    for key, new in changes:
        copy[key] = new
    return copy
