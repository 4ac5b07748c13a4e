"""The small AST the parser builds and the compiler turns into closures. `pos` is a character offset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Literal:
    """A number, string, boolean, null (None) or regex (a compiled `kfl.regex.Regex`)."""

    value: Any
    pos: int = 0


@dataclass(frozen=True)
class Arg:
    expr: Node
    name: str | None = None


@dataclass(frozen=True)
class Call:
    """A helper: `name(args)` at the start of a path, or `.name(args)` as a method step."""

    name: str
    args: tuple[Arg, ...]
    pos: int = 0


@dataclass(frozen=True)
class Field:
    """`.name` or `["name"]`."""

    name: str


@dataclass(frozen=True)
class Index:
    """`[n]`, n ≥ 0."""

    index: int


@dataclass(frozen=True)
class Wild:
    """`.*` or `[*]`."""


@dataclass(frozen=True)
class Deep:
    """`..name`."""

    name: str


Step = Field | Index | Wild | Deep | Call


@dataclass(frozen=True)
class Path:
    """A selector: a root (a field name of the item, or a helper call) and the steps after it."""

    root: str | Call
    steps: tuple[Step, ...] = ()
    pos: int = 0


@dataclass(frozen=True)
class Neg:
    expr: Node


@dataclass(frozen=True)
class Not:
    expr: Node


@dataclass(frozen=True)
class And:
    terms: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    terms: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node
    pos: int = 0


Node = Literal | Path | Neg | Not | And | Or | Compare

