"""Parse query text into the AST of `nodes.py` (lark LALR, grammar in `grammar.lark`) and expand macros."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path as FilePath

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedInput

from . import nodes as n
from .errors import KFLSyntaxError
from .regex import Regex, RegexError
from .syntax import translate

ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)
SURROGATE_PAIR_RE = re.compile("[\ud800-\udbff][\udc00-\udfff]")
NAME_RE = re.compile(r"(?!(?:and|or|not|true|false|nil|null)\b)[^\W\d]\w*\Z")


class Failure(Exception):
    """Raised inside the transformer; `parse` turns it into a `KFLSyntaxError` on the query text."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def decode_string(token: Token) -> str:
    """The text of a "..." or '...' literal, JSON escapes decoded (\\uXXXX surrogate pairs joined)."""
    body = token.value[1:-1]
    if "\\" not in body:
        return body

    def one(m: re.Match) -> str:
        code = m.group(1)
        if code[0] == "u" and len(code) == 5:
            return chr(int(code[1:], 16))
        if code in ESCAPES:
            return ESCAPES[code]
        raise Failure(
            f"unknown escape '\\{code}' in a string (for a regex with backslashes write r\"...\")",
            token.start_pos + 1 + m.start(),
        )

    text = ESCAPE_RE.sub(one, body)
    return SURROGATE_PAIR_RE.sub(lambda m: m.group().encode("utf-16", "surrogatepass").decode("utf-16"), text)


class Build(Transformer):
    """Callbacks run by the LALR parser as it reduces: they build `nodes` directly."""

    def start(self, children):
        return children[0] if children else None

    def or_expr(self, children):
        return n.Or(tuple(children))

    def and_expr(self, children):
        return n.And(tuple(children))

    def not_(self, children):
        return n.Not(children[0])

    def comparison(self, children):
        left, op, right = children
        return n.Compare(op.value, left, right, op.start_pos)

    def neg(self, children):
        expr = children[1]
        if isinstance(expr, n.Literal) and type(expr.value) in (int, float):
            return n.Literal(-expr.value, children[0].start_pos)
        return n.Neg(expr)

    def number(self, children):
        token = children[0]
        text = token.value
        try:
            value = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:  # over Python's int digits limit
            raise Failure(f"a number of {len(text):,} digits is too long", token.start_pos) from None
        return n.Literal(value, token.start_pos)

    def string(self, children):
        return n.Literal(decode_string(children[0]), children[0].start_pos)

    def regex(self, children):
        token = children[0]
        try:
            return n.Literal(Regex(token.value[2:-1]), token.start_pos)
        except RegexError as exc:
            raise Failure(f"invalid regex: {exc}", token.start_pos + 2 + exc.pos) from None

    def true(self, children):
        return n.Literal(True, children[0].start_pos)

    def false(self, children):
        return n.Literal(False, children[0].start_pos)

    def nil(self, children):
        return n.Literal(None, children[0].start_pos)

    def name_path(self, children):
        name = children[0]
        return n.Path(name.value, tuple(children[1:]), name.start_pos)

    def call_path(self, children):
        name, args, *steps = children
        return n.Path(n.Call(name.value, args or (), name.start_pos), tuple(steps), name.start_pos)

    def field(self, children):
        return n.Field(children[0].value)

    def method(self, children):
        name, args = children
        return n.Call(name.value, args or (), name.start_pos)

    def wild(self, children):
        return n.Wild()

    def key(self, children):
        return n.Field(decode_string(children[0]))

    def index(self, children):
        token = children[0]
        if not token.value.isdigit():
            raise Failure("an array index must be a whole number ≥ 0", token.start_pos)
        if len(token.value) > 18:
            raise Failure("an array index must be under 10¹⁸", token.start_pos)
        return n.Index(int(token.value))

    def negative_index(self, children):
        raise Failure("an array index must be a whole number ≥ 0 (negative indexes are not supported)",
                      children[0].start_pos)

    def deep(self, children):
        return n.Deep(children[0].value)

    def arglist(self, children):
        return tuple(children)

    def arg(self, children):
        return n.Arg(children[0])

    def named_arg(self, children):
        return n.Arg(children[1], children[0].value)


def _cache_file() -> str | bool:
    """Where lark keeps the analysed grammar between processes (a start-up of ~50 ms saved): the
    user's own cache folder, made private; False (no cache) when it cannot be. lark names the grammar,
    its options and its version in the file and ignores a cache that does not match."""
    import lark

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "kflpcap")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.stat(folder)
    except OSError:
        return False
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        return False  # someone else could plant the pickle lark loads
    return os.path.join(folder, f"kfl-grammar-lark-{lark.__version__}.pickle")


PARSER = Lark(
    (FilePath(__file__).parent / "grammar.lark").read_text(encoding="utf-8"),
    parser="lalr",
    maybe_placeholders=True,
    transformer=Build(),
    cache=_cache_file(),
)


@lru_cache(maxsize=512)
def parse_plain(query: str) -> n.Node | None:
    """The AST of `query` with no macro expanded (None for an empty query). Raises KFLSyntaxError."""
    try:
        return PARSER.parse(query)
    except Failure as exc:
        raise KFLSyntaxError(exc.message, query, exc.pos) from None
    except UnexpectedInput as exc:
        raise translate(exc, query, PARSER) from None


def parse(query: str, macros: Mapping[str, str]) -> n.Node | None:
    """The AST of `query` with every macro (a bare name that is not part of a path) expanded."""
    if not isinstance(query, str):
        raise TypeError(f"a KFL query is a str, not {type(query).__name__}")
    tree = parse_plain(query)
    return None if tree is None else expand(tree, query, dict(macros))


def expand(node: n.Node, query: str, macros: dict[str, str]) -> n.Node:
    """`node` with macros expanded; an expansion may use other macros but never itself."""
    match node:
        case n.Path(root=str(name), steps=()) if name in macros:
            inner = {k: v for k, v in macros.items() if k != name}
            return expand(parse_plain(macros[name]), macros[name], inner)
        case n.Path():
            root = _expand_call(node.root, query, macros) if isinstance(node.root, n.Call) else node.root
            steps = tuple(_expand_call(s, query, macros) if isinstance(s, n.Call) else s for s in node.steps)
            return n.Path(root, steps, node.pos)
        case n.Compare():
            left, right = expand(node.left, query, macros), expand(node.right, query, macros)
            return n.Compare(node.op, left, right, node.pos)
        case n.And(terms) | n.Or(terms):
            return type(node)(tuple(expand(t, query, macros) for t in terms))
        case n.Not(expr) | n.Neg(expr):
            return type(node)(expand(expr, query, macros))
    return node


def _expand_call(call: n.Call, query: str, macros: dict[str, str]) -> n.Call:
    if not call.args:
        return call
    args = tuple(n.Arg(expand(a.expr, query, macros), a.name) for a in call.args)
    return n.Call(call.name, args, call.pos)
