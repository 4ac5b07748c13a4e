"""Walking an item: static paths (fields and indexes, unrolled) and the steps that make multis.

A step is `step(value, state) -> value`; `MISSING` in means `MISSING` out. Steps that work element by
element are wrapped by `per_element`, which maps them over a multi, flattens, and drops what goes missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .values import MISSING, Multi

Getter = Callable[[list], Any]
Step = Callable[[Any, list], Any]


def walk(value: Any, keys: tuple[str | int, ...]) -> Any:
    """Follow field names (str) and array indexes (int) from `value`; MISSING where the way ends."""
    for key in keys:
        if key.__class__ is str:
            if not isinstance(value, dict):
                return MISSING
            value = value.get(key, MISSING)
        elif isinstance(value, list) and key < len(value):
            value = value[key]
        else:
            return MISSING
    return value


def static_getter(keys: tuple[str | int, ...]) -> Getter:
    """A getter for a path of fields and indexes from the item (`state[0]`, always a dict)."""
    first, rest = keys[0], keys[1:]
    if first.__class__ is not str:
        return lambda state: MISSING
    if not rest:
        return lambda state: state[0].get(first, MISSING)
    if len(rest) == 1 and rest[0].__class__ is str:
        second = rest[0]

        def get2(state: list) -> Any:
            value = state[0].get(first)
            if value.__class__ is dict:
                return value.get(second, MISSING)
            return walk(value, rest) if isinstance(value, dict) else MISSING

        return get2

    def get_n(state: list) -> Any:
        value = state[0].get(first)
        return MISSING if value is None else walk(value, rest)

    return get_n


def fused_test(keys: tuple[str, ...], fast_class: type, fast: Callable[[Any], bool],
               slow: Callable[[Any], bool]) -> Callable[[list], bool]:
    """`slow(value at keys)` with the common case inlined: plain dicts all the way down to a value of
    `fast_class`, which `fast` decides alone (a C method such as `"HTTP".__eq__`). 1 to 3 field names."""
    if len(keys) == 1:
        (first,) = keys

        def test1(state: list) -> bool:
            value = state[0].get(first, MISSING)
            return fast(value) if value.__class__ is fast_class else slow(value)

        return test1
    if len(keys) == 2:
        first, second = keys

        def test2(state: list) -> bool:
            value = state[0].get(first)
            if value.__class__ is dict:
                value = value.get(second, MISSING)
                return fast(value) if value.__class__ is fast_class else slow(value)
            return slow(walk(state[0], keys))

        return test2
    first, second, third = keys

    def test3(state: list) -> bool:
        value = state[0].get(first)
        if value.__class__ is dict:
            value = value.get(second)
            if value.__class__ is dict:
                value = value.get(third, MISSING)
                return fast(value) if value.__class__ is fast_class else slow(value)
        return slow(walk(state[0], keys))

    return test3


def per_element(step: Step) -> Step:
    """`step` applied to each element of a multi (results flattened, missing ones dropped)."""

    def mapped(value: Any, state: list) -> Any:
        if value.__class__ is not Multi:
            return step(value, state)
        out = Multi()
        for element in value:
            result = step(element, state)
            if result is MISSING:
                continue
            if result.__class__ is Multi:
                out.extend(result)
            else:
                out.append(result)
        return out or MISSING

    return mapped


def field_step(name: str) -> Step:
    return per_element(lambda value, state: value.get(name, MISSING) if isinstance(value, dict) else MISSING)


def index_step(index: int) -> Step:
    return per_element(
        lambda value, state: value[index] if isinstance(value, list) and index < len(value) else MISSING
    )


def _wild(value: Any, state: list) -> Any:
    if isinstance(value, dict):
        return Multi(value.values()) or MISSING
    if isinstance(value, list):
        return Multi(value) or MISSING
    return MISSING


wild_step = per_element(_wild)


def deep_step(name: str) -> Step:
    """`..name`: every value under key `name` at any depth below, in document order."""

    def deep(value: Any, state: list) -> Any:
        out = Multi()
        try:
            _collect(value, name, out)
        except RecursionError:
            return MISSING
        return out or MISSING

    return per_element(deep)


def _collect(node: Any, name: str, out: Multi) -> None:
    if isinstance(node, dict):
        for key, child in node.items():
            if key == name:
                out.append(child)
            _collect(child, name, out)
    elif isinstance(node, list):
        for child in node:
            _collect(child, name, out)
