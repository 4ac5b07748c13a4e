"""The public functions: compile, validate, match (with a bounded compile cache) and the macro table."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .compiler import Query, build
from .errors import KFLSyntaxError
from .parser import NAME_RE, parse

CACHE_SIZE = 1024
DEFAULT_MACROS = {
    "http": 'protocol.abbr == "HTTP"',
    "http2": 'protocol.abbr == "HTTP/2"',
    "grpc": 'protocol.abbr == "gRPC"',
    "gql": 'protocol.abbr == "GQL"',
    "dns": 'protocol.abbr == "DNS"',
    "amqp": 'protocol.name == "amqp"',
    "kafka": 'protocol.name == "kafka"',
    "redis": 'protocol.name == "redis"',
    "tcp": 'protocol.name == "tcp"',
    "udp": 'protocol.name == "udp"',
    "tls": 'protocol.name == "tls"',
    "tlsx": 'protocol.name == "tls"',
}


def _build(query: str, macros: Mapping[str, str]) -> Query:
    try:
        return build(query, parse(query, macros))
    except RecursionError:
        raise KFLSyntaxError("the query is nested too deeply", query, 0) from None


@lru_cache(maxsize=256)
def check_macro(name: str, expansion: str) -> None:
    """Raise ValueError for a bad macro name, KFLSyntaxError (on the expansion) for a bad expansion."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"macro name {name!r} is not a name (letters, digits and '_', not a keyword)")
    if not isinstance(expansion, str) or not expansion.strip():
        raise ValueError(f"macro {name!r}: the expansion must be a non-empty query")
    try:
        _build(expansion, {})
    except KFLSyntaxError as exc:
        raise KFLSyntaxError(f"in macro '{name}': {exc.message}", expansion, exc.pos) from None


class MacroTable(dict):
    """name → expansion. Every change is checked and makes cached compiled queries stale."""

    __slots__ = ("version",)

    def __init__(self, macros: Mapping[str, str] = ()) -> None:
        super().__init__()
        self.version = 0
        self.update(macros)

    def __setitem__(self, name: str, expansion: str) -> None:
        check_macro(name, expansion)
        super().__setitem__(name, expansion)
        self.version += 1

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        self.version += 1

    def update(self, *args: Any, **kwargs: str) -> None:
        for name, expansion in dict(*args, **kwargs).items():
            self[name] = expansion

    def __ior__(self, other: Mapping[str, str]) -> MacroTable:
        self.update(other)
        return self

    def setdefault(self, name: str, expansion: str) -> str:
        if name not in self:
            self[name] = expansion
        return self[name]

    def pop(self, name: str, *default: Any) -> Any:
        self.version += 1
        return super().pop(name, *default)

    def popitem(self) -> tuple[str, str]:
        self.version += 1
        return super().popitem()

    def clear(self) -> None:
        self.version += 1
        super().clear()


MACROS = MacroTable(DEFAULT_MACROS)


def add_macro(name: str, expansion: str) -> None:
    """Add (or replace) a default macro: `kfl.add_macro("prod", 'dst.namespace == "prod"')`."""
    MACROS[name] = expansion


def compile(query: str, macros: Mapping[str, str] | None = None) -> Query:
    """Compile `query` (raises KFLSyntaxError). `macros` are added to (and override) `kfl.MACROS`."""
    if macros:
        for name, expansion in macros.items():
            check_macro(name, expansion)
        table: Mapping[str, str] = {**MACROS, **macros}
    else:
        table = MACROS
    return _build(query, table)



@lru_cache(maxsize=CACHE_SIZE)
def _cached(query: str, version: int) -> Query:
    return compile(query)


def cached(query: str) -> Query:
    """`compile(query)` through a bounded cache (keyed by the query text and the macro table)."""
    return _cached(query, MACROS.version)


def validate(query: str, macros: Mapping[str, str] | None = None) -> None:
    """None when `query` compiles, else raises KFLSyntaxError."""
    if macros:
        compile(query, macros)
    else:
        cached(query)


def match(query: str | Query, item: Any) -> bool:
    """Does `item` match `query` (text, compiled once and cached, or a `Query`)?"""
    if isinstance(query, Query):
        return query.match(item)
    return _cached(query, MACROS.version).match(item)
