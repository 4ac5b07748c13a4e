"""`KFLSyntaxError`: what is wrong with a query, where, and a caret line under the spot."""

from __future__ import annotations


def line_column(query: str, pos: int) -> tuple[int, int]:
    """1-based (line, column) of character offset `pos` in `query` (`pos` may be `len(query)`)."""
    pos = max(0, min(pos, len(query)))
    line = query.count("\n", 0, pos) + 1
    return line, pos - (query.rfind("\n", 0, pos) + 1) + 1


class KFLSyntaxError(ValueError):
    """A query that cannot be compiled. `str()` is `line:column: message`, the query line, a caret."""

    def __init__(self, message: str, query: str, pos: int) -> None:
        self.message = message
        self.query = query
        self.pos = max(0, min(pos, len(query)))
        self.line, self.column = line_column(query, self.pos)
        super().__init__(self.render())

    def render(self) -> str:
        text = self.query.split("\n")[self.line - 1] if self.query else ""
        lead = "".join(c if c == "\t" else " " for c in text[: self.column - 1])
        return f"{self.line}:{self.column}: {self.message}\n  {text}\n  {lead}^"

    def __str__(self) -> str:
        return self.render()

    def __reduce__(self):
        return (type(self), (self.message, self.query, self.pos))
