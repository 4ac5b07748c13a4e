"""KFL regular expressions: RE2 semantics (Go's `regexp`, as Kubeshark's KFL), linear in the text.

No query can make a regex backtrack catastrophically: RE2 has no backreferences or lookaround and
matches in time linear in the text (docs/kfl.md lists the syntax differences from Python's `re`).
Patterns and texts are UTF-8; a text with lone surrogates (from JSON `\\ud800` escapes) is searched
with them encoded as they are, so no text makes a search raise.
"""

from __future__ import annotations

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every rejected pattern on stderr
_OPTIONS.never_capture = True  # only "does it match" is asked: no group positions to track
_UNANCHORED = re2._Anchor.UNANCHORED


class RegexError(ValueError):
    """A pattern RE2 does not accept; `pos` is where in the pattern RE2's complaint points (or 0)."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


class Regex:
    """A compiled KFL regex; `search(text)` is true when it matches anywhere in `text`."""

    __slots__ = ("_match", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        try:
            compiled = re2.compile(pattern.encode("utf-8", "surrogatepass"), _OPTIONS)
        except re2.error as exc:
            raise _error(pattern, exc) from None
        # the RE2 object itself (google-re2's `search` builds a match object with character offsets)
        self._match = compiled._regexp.Match

    def search(self, text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return self._match(_UNANCHORED, data, 0, len(data))[0][0] >= 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Regex) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"


def _error(pattern: str, exc: Exception) -> RegexError:
    """RE2's "<what>: <the part of the pattern>" as a RegexError pointing at that part."""
    arg = exc.args[0] if exc.args else ""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    _, _, part = text.rpartition(": ")
    pos = max(pattern.find(part), 0) if part else 0
    return RegexError(text if len(text) <= 120 else text[:117] + "...", pos)
