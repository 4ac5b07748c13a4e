"""Script env: `--env KEY=VALUE` and `--env-file FILE` (.env, JSON or YAML), as docs/scripts.md says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
RESERVED = frozenset(
    [
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "import",
        "in",
        "instanceof",
        "new",
        "null",
        "return",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
        "let",
        "static",
        "implements",
        "interface",
        "package",
        "private",
        "protected",
        "public",
        "await",
        "arguments",
        "eval",
        "undefined",
        "NaN",
        "Infinity",
        "globalThis",
    ]
)


class EnvError(ValueError):
    """An env option or file that cannot be read; the message names it."""


def parse_assignment(text: str) -> tuple[str, str]:
    """`KEY=VALUE` → (KEY, VALUE); the value may be empty, the key may not."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise EnvError(f"--env {text!r}: expected KEY=VALUE")
    return key.strip(), value


def _dotenv(text: str, name: str) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise EnvError(f"{name}:{number}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def load_env_file(path: Path) -> dict[str, Any]:
    """Read a .env, JSON or YAML file into a mapping; values keep their JSON/YAML types."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EnvError(f"--env-file {path}: {exc.strerror or exc}") from exc
    suffix = path.suffix.lower()
    import yaml  # here, not at start-up: most runs read no YAML

    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            return _dotenv(text, str(path))
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise EnvError(f"--env-file {path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise EnvError(f"--env-file {path}: expected a mapping of KEY: value at the top level")
    return {str(k): v for k, v in data.items()}


def build_env(files: list[str] | None, assignments: list[str] | None) -> dict[str, Any]:
    """Env files in order, then `--env` assignments (later wins)."""
    env: dict[str, Any] = {}
    for f in files or []:
        env.update(load_env_file(Path(f)))
    for a in assignments or []:
        key, value = parse_assignment(a)
        env[key] = value
    return env


def global_names(env: dict[str, Any]) -> list[str]:
    """The env keys that can also be bare globals (identifier-safe, not reserved words)."""
    return [k for k in env if IDENTIFIER.match(k) and k not in RESERVED]
