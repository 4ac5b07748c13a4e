"""What the runtime reads from a script's text before running it: its title and its string literals."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from capture.dissect import BODY_FIELDS

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


@dataclass
class ScriptSource:
    """A script file as read at one moment."""

    path: Path
    text: str
    title: str = ""
    literals: list[str] = field(default_factory=list)
    lean: bool = False
    bodies: bool = True
    fields: frozenset[str] | None = None
    go_names: bool = False  # the text reads capitalised members (Kubeshark's Go-style item names)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @classmethod
    def read(cls, path: Path) -> ScriptSource:
        text = path.read_text(encoding="utf-8", errors="replace")
        return cls.parse(path, text)

    @classmethod
    def parse(cls, path: Path, text: str) -> ScriptSource:
        comments, literals = scan(text)
        title = _title(comments) or path.name
        return cls(
            path=path,
            text=text,
            title=title,
            literals=literals,
            lean=item_only_forwarded(text),
            bodies=may_read_bodies(text),
            fields=named_fields(text, literals),
            go_names=any(n[:1].isupper() for n in _MEMBER.findall(_blank_strings_and_comments(text))),
        )


def _title(comments: list[str]) -> str:
    """The first line of the first comment with text, trimmed (a long header comment is not a title)."""
    for comment in comments:
        for line in comment.splitlines():
            if line.strip():
                return line.strip()
    return ""


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 >= len(body):
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and body[i + 2 : i + 3] == "{":
            end = body.find("}", i + 3)
            out.append(chr(int(body[i + 3 : end], 16)) if end > 0 else "")
            i = end + 1 if end > 0 else len(body)
        elif nxt in "ux":
            width = 4 if nxt == "u" else 2
            digits = body[i + 2 : i + 2 + width]
            try:
                out.append(chr(int(digits, 16)))
            except ValueError:
                out.append(digits)
            i += 2 + width
        elif nxt == "\n":
            i += 2
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


def scan(text: str) -> tuple[list[str], list[str]]:
    """Comments (text without the markers) and string literals (unescaped), in source order.

    A small tokenizer: it knows strings, template literals without substitutions, comments and,
    approximately, regular-expression literals (a `/` after an operator or at the start).
    """
    comments: list[str] = []
    literals: list[str] = []
    i, n = 0, len(text)
    last = ""  # last significant character, to tell a regex from a division
    while i < n:
        ch = text[i]
        if ch == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            comments.append(text[i + 2 : end])
            i = end
        elif ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end
            body = text[i + 2 : end]
            comments.append("\n".join(ln.strip().lstrip("*").strip() for ln in body.splitlines()).strip())
            i = end + 2
        elif ch in "'\"`":
            j = i + 1
            has_subst = False
            while j < n and text[j] != ch:
                if text[j] == "\\":
                    j += 1
                elif ch != "`" and text[j] == "\n":
                    break
                elif ch == "`" and text.startswith("${", j):
                    has_subst = True
                j += 1
            if not has_subst:
                literals.append(_unescape(text[i + 1 : j]))
            i = j + 1
            last = "a"
        elif ch == "/" and (last == "" or last in "(,=:[!&|?{};+-*%<>~^"):
            j = i + 1
            in_class = False
            while j < n and text[j] != "\n":
                if text[j] == "\\":
                    j += 1
                elif text[j] == "[":
                    in_class = True
                elif text[j] == "]":
                    in_class = False
                elif text[j] == "/" and not in_class:
                    break
                j += 1
            i = j + 1
            last = "a"
        else:
            if not ch.isspace():
                last = ch
            i += 1
    return comments, literals


def js_string(value: str) -> str:
    """`value` as a JavaScript string literal."""
    return json.dumps(value, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


_HOOK = re.compile(r"function\s+onItemCaptured\s*\(\s*([A-Za-z_$][\w$]*)\s*\)\s*\{")
_FORWARD = (
    r"wrapper\s*\.\s*kflPcapS3\s*\(\s*{p}\s*,",
    r"kfl\s*\.\s*match\s*\(\s*(?:[\w$.]+|\"[^\"\\\\]*\"|'[^'\\\\]*'|\[\s*\d+\s*\])+\s*,\s*{p}\s*\)",
)


def _blank_strings_and_comments(text: str) -> str:
    """`text` with the inside of strings and comments replaced by spaces (same length)."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
        elif ch in "'\"`":
            end = i + 1
            while end < n and text[end] != ch:
                end += 2 if text[end] == "\\" else 1
            end = min(end + 1, n)
            for k in range(i + 1, end - 1):
                out[k] = " "
            i = end
            continue
        else:
            i += 1
            continue
        for k in range(i, end):
            out[k] = " "
        i = end
    return "".join(out)


def item_only_forwarded(text: str) -> bool:
    """True when the script's only use of its items is to hand them to wrapper.kflPcapS3 or
    kfl.match (the seed script's shape): then its batches need not carry the items' text.

    Conservative: one `function onItemCaptured(x) {...}` declaration, no other mention of the name
    onItemCaptured, and every use of `x` in its body is `wrapper.kflPcapS3(x, ...)` or
    `kfl.match(<simple query expression>, x)`. The runtime re-checks at each batch that these
    functions are still the ones it saw, and falls back to full batches if an item is read anyway.
    """
    code = _blank_strings_and_comments(text)
    if len(re.findall(r"(?<![\w$])onItemCaptured(?![\w$])", code)) != 1 or "arguments" in code:
        return False
    m = _HOOK.search(code)
    if m is None:
        return False
    depth, i = 0, m.end() - 1
    while i < len(code):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                break
        i += 1
    body = code[m.end() : i]
    param = re.escape(m.group(1))
    uses = len(re.findall(rf"(?<![\w$.]){param}(?![\w$])", body))
    forwarded = sum(len(re.findall(p.format(p=param), body)) for p in _FORWARD)
    return uses > 0 and uses == forwarded


# Text that may reach message bodies (the body fields of the dissectors, `BODY_FIELDS`, e.g.
# response.content.text) or read an item as a whole. A script without any of it gets items without
# their bodies (most of an item's bytes).
_BODY_HINTS = ("stringify", "Object", "Reflect", " in ", "...", "eval", "Function", "structuredClone",
               "buildHAR")


def may_read_bodies(text: str) -> bool:
    """False when the script's text does not name a message body nor read items whole.

    Not a proof: `data.response[k]` with `k` built at run time could still reach a body. Reading a
    left-out body in the hook makes the runtime resend that batch with bodies (and keep sending
    them); only an item kept past its batch and read that way later finds its body missing (an
    error, see docs/scripts.md).
    """
    code = _blank_strings_and_comments(text)
    lower = text.lower()  # Go-style names (`data.Response.Content`) read the same fields
    return any(h in code for h in _BODY_HINTS) or any(f.lower() in lower for _, f in BODY_FIELDS)


_WHOLE_ITEM_HINTS = ("stringify", "Object.", "Reflect.", "...", "eval", "Function", "structuredClone",
                     "buildHAR")
_MEMBER = re.compile(r"\.\s*([A-Za-z_$][\w$]*)")


def named_fields(text: str, literals: list[str]) -> frozenset[str] | None:
    """The names the script's text uses as properties (`x.name`) or strings: items sent to it can be
    cut down to those top-level fields. None when the text suggests it reads items whole
    (JSON.stringify, Object.*, spread, eval): then items are sent complete. Reading a field that was
    cut away makes the runtime resend the batch complete (see docs/scripts.md)."""
    code = _blank_strings_and_comments(text)
    if any(h in code for h in _WHOLE_ITEM_HINTS):
        return None
    names = set(_MEMBER.findall(code))
    for name in [n for n in names if n[:1].isupper()]:  # Go-style aliases read the JSON-named fields
        names.update(json_names(name))
    return frozenset(names) | frozenset(lit for lit in literals if len(lit) < 64)


def json_names(go_name: str) -> tuple[str, str]:
    """The JSON names a Go-style capitalised field name stands for (the prelude tries them in this
    order): `StatusText` -> `statusText`, `IP` -> `ip`."""
    return go_name[:1].lower() + go_name[1:], go_name.lower()
