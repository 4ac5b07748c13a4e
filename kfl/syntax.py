"""Turn lark's parse errors into `KFLSyntaxError`s a user can act on."""

from __future__ import annotations

import re

from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .errors import KFLSyntaxError

VALUE_START = frozenset({"NAME", "NUMBER", "STRING", "REGEX", "TRUE", "FALSE", "NIL"})
INDEX_START = frozenset({"STRING", "NUMBER", "STAR", "MINUS"})
OPERATORS = frozenset({"COMPOP", "_AND", "_OR"})
CLOSERS = (("_RPAR", "')'"), ("_RSQB", "']'"), ("_COMMA", "','"), ("_COLON", "':'"), ("$END", "end of query"))
RAW_PREFIX = re.compile(r"(?<!\w)r\Z")
NOT_OPERATORS = {
    "=": "'=' is not an operator; compare with '=='",
    "&": "'&' is not an operator; use 'and' (or '&&')",
    "|": "'|' is not an operator; use 'or' (or '||')",
}


def translate(error: UnexpectedInput, query: str, parser: Lark) -> KFLSyntaxError:
    """The `KFLSyntaxError` for a lark parse error on `query`."""
    if isinstance(error, UnexpectedCharacters):
        return _bad_character(error, query)
    if isinstance(error, UnexpectedToken):
        return _bad_token(error, query, parser)
    if isinstance(error, UnexpectedEOF):
        return KFLSyntaxError("unexpected end of query", query, _end(query))
    return KFLSyntaxError(str(error).splitlines()[0], query, getattr(error, "pos_in_stream", 0) or 0)


def _end(query: str) -> int:
    return len(query.rstrip())


def _bad_character(error: UnexpectedCharacters, query: str) -> KFLSyntaxError:
    pos = error.pos_in_stream
    char = query[pos]
    if char == "=" and query.startswith("===", pos - 2):
        return KFLSyntaxError("'===' is not an operator; compare with '=='", query, pos - 2)
    if char in NOT_OPERATORS and not query.startswith(char * 2, pos):
        return KFLSyntaxError(NOT_OPERATORS[char], query, pos)
    if char in "\"'":
        raw = RAW_PREFIX.search(query, 0, pos) is not None
        what = "regex" if raw else "string"
        return KFLSyntaxError(f"{what} is not closed (no matching {char})", query, pos - 1 if raw else pos)
    return KFLSyntaxError(f"unexpected character {char!r}; expected {_describe(_accepts(error))}", query, pos)


def _bad_token(error: UnexpectedToken, query: str, parser: Lark) -> KFLSyntaxError:
    token = error.token
    at_end = token.type == "$END"
    pos = _end(query) if at_end else token.start_pos
    expected = _accepts(error)
    if token.type == "COMPOP" and "COMPOP" not in expected and not expected & VALUE_START:
        return KFLSyntaxError(
            f"comparisons do not chain: '{token.value}' cannot follow a comparison; "
            "join them with 'and' (a < b and b < c)",
            query,
            pos,
        )
    if at_end:
        for kind, opener, closer in (("_RPAR", "(", ")"), ("_RSQB", "[", "]")):
            if kind in expected:
                open_pos = unclosed(query, len(query), opener)
                if open_pos is not None:
                    message = f"'{opener}' is never closed (no matching '{closer}')"
                    return KFLSyntaxError(message, query, open_pos)
    if token.type == "_RPAR" and unclosed(query, pos, "(") is None:
        return KFLSyntaxError("unbalanced ')': there is no '(' before it to close", query, pos)
    found = "end of query" if at_end else repr(_short(str(token.value)))
    previous = _previous_token(query, pos, parser)
    after = f" after {_short(previous)!r}" if previous else ""
    return KFLSyntaxError(f"expected {_describe(expected)}{after}, found {found}", query, pos)


def _accepts(error: UnexpectedToken | UnexpectedCharacters) -> set[str]:
    """The exact set of terminals the parser would take here (LALR's `expected` is a superset)."""
    interactive = getattr(error, "interactive_parser", None)
    if interactive is not None:
        try:
            return set(interactive.accepts())
        except UnexpectedInput:
            pass
    return set(getattr(error, "expected", None) or getattr(error, "allowed", None) or ())


def _describe(expected: set[str]) -> str:
    if expected and expected <= INDEX_START:
        return "a quoted key, an index or '*'"
    if expected & VALUE_START:
        return "a value" + (" or ')'" if "_RPAR" in expected else "")
    if expected and expected <= {"FIELD", "STAR"}:
        return "a field name or '*'" if "STAR" in expected else "a field name"
    parts = ["an operator"] if expected & OPERATORS else []
    parts += [text for kind, text in CLOSERS if kind in expected]
    if not parts:
        return "something else"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _short(text: str) -> str:
    return text if len(text) <= 24 else text[:21] + "..."


def _previous_token(query: str, pos: int, parser: Lark) -> str | None:
    try:
        tokens = list(parser.lex(query[:pos]))
    except UnexpectedInput:
        return None
    return str(tokens[-1].value) if tokens else None


def unclosed(query: str, pos: int, opener: str) -> int | None:
    """Offset of the innermost `opener` ('(' or '[') still open at `pos`, skipping quoted text."""
    stack: list[tuple[str, int]] = []
    pairs = {")": "(", "]": "["}
    i = 0
    while i < pos:
        c = query[i]
        if c in "\"'":
            i = _skip_quoted(query, i)
            continue
        if c in "([":
            stack.append((c, i))
        elif c in pairs and stack and stack[-1][0] == pairs[c]:
            stack.pop()
        i += 1
    for kind, at in reversed(stack):
        if kind == opener:
            return at
    return None


def _skip_quoted(query: str, start: int) -> int:
    quote = query[start]
    i = start + 1
    while i < len(query):
        if query[i] == "\\":
            i += 2
            continue
        if query[i] == quote:
            return i + 1
        i += 1
    return len(query)
