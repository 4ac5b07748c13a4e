"""Text fields that hold documents: JSON and XML (as is, or base64-encoded), both ways.

XML becomes a dict the way xmltodict makes it: the root element is the only key, repeated children
become lists, attributes are `@name`, text next to attributes or children is `#text`, an element with
neither is its text (None when empty). Such elements are `XmlNode`s so they compare by their text.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from typing import Any
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from .values import MISSING, XmlNode, text_form

TEXT = "text"
BASE64 = "base64"


def _candidates(text: str) -> list[tuple[bytes | str, str]]:
    """The text itself, then its base64 decoding (when it is base64)."""
    out: list[tuple[bytes | str, str]] = [(text, TEXT)]
    compact = "".join(text.split())
    if compact and len(compact) % 4 == 0:
        with contextlib.suppress(binascii.Error, ValueError):
            out.append((base64.b64decode(compact, validate=True), BASE64))
    return out


def load_json(value: Any) -> tuple[Any, str | None]:
    """(document, encoding) of a JSON text or base64 of one; (MISSING, None) if it is neither."""
    if type(value) is not str:
        return MISSING, None
    for data, encoding in _candidates(value):
        try:
            return json.loads(data), encoding
        except (ValueError, RecursionError):
            continue
    return MISSING, None


def dump_json(document: Any, encoding: str) -> str:
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode("ascii") if encoding == BASE64 else text


def load_xml(value: Any) -> tuple[Any, str | None]:
    """(document, encoding) of an XML text or base64 of one; (MISSING, None) if it is neither."""
    if type(value) is not str:
        return MISSING, None
    for data, encoding in _candidates(value):
        document = _parse_xml(data)
        if document is not MISSING:
            return document, encoding
    return MISSING, None


def dump_xml(document: Any, encoding: str) -> str:
    parts: list[str] = []
    if isinstance(document, dict):
        for name, content in document.items():
            _emit(parts, name, content)
    text = "".join(parts)
    return base64.b64encode(text.encode()).decode("ascii") if encoding == BASE64 else text


class _Builder:
    """expat callbacks building the xmltodict shape."""

    def __init__(self) -> None:
        self.stack: list[tuple[str, XmlNode, list[str]]] = []
        self.root: dict = {}

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.stack.append((name, XmlNode({f"@{k}": v for k, v in attrs.items()}), []))

    def end(self, name: str) -> None:
        name, node, text_parts = self.stack.pop()
        text = "".join(text_parts).strip() or None
        if node:
            if text is not None:
                node["#text"] = text
            value: Any = node
        else:
            value = text
        parent = self.stack[-1][1] if self.stack else self.root
        if name in parent:
            existing = parent[name]
            if isinstance(existing, list):
                existing.append(value)
            else:
                parent[name] = [existing, value]
        else:
            parent[name] = value

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1][2].append(text)


class _EntityDeclared(Exception):
    """A document that declares entities: refused (no entity expansion bombs, no external files)."""


def _refuse_entities(*args: Any) -> None:
    raise _EntityDeclared


def _parse_xml(data: bytes | str) -> Any:
    builder = _Builder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.EntityDeclHandler = _refuse_entities
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, ValueError, RecursionError, _EntityDeclared):
        return MISSING
    return builder.root or MISSING


def _emit(parts: list[str], name: str, content: Any) -> None:
    if isinstance(content, list):
        for element in content:
            _emit(parts, name, element)
        return
    if not isinstance(content, dict):
        text = text_form(content)
        parts.append(f"<{name}/>" if text is None else f"<{name}>{escape(text)}</{name}>")
        return
    attrs = "".join(
        f" {key[1:]}={quoteattr(text_form(value) or '')}"
        for key, value in content.items()
        if key.startswith("@")
    )
    parts.append(f"<{name}{attrs}>")
    text = text_form(content.get("#text"))
    if text is not None:
        parts.append(escape(text))
    for child, value in content.items():
        if not child.startswith(("@", "#")):
            _emit(parts, child, value)
    parts.append(f"</{name}>")
