"""The packages depend one way (docs/architecture.md): runtime → wrappers → capture, kfl, and inside
runtime cli → engine → v8 → helpers. Every import of every module — also those inside functions and
under TYPE_CHECKING — is checked, and module-level imports form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("capture", "kfl", "wrappers", "runtime")

# a module may import its own wing and the wings of lower rank
RANK = {
    "capture": 0,
    "kfl": 0,
    "wrappers": 1,
    "runtime.helpers": 2,
    "runtime.v8": 3,
    "runtime.engine": 4,
    "runtime.demo": 5,
    "runtime.cli": 6,
    "runtime": 7,  # the package itself: runtime/__init__.py (lazy exports) and __main__.py
}
APART = {frozenset(("capture", "kfl"))}  # same rank, and they know nothing of each other


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _wing(module: str) -> str:
    return max((w for w in RANK if module == w or module.startswith(w + ".")), key=len)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) of every import of the project's packages."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] in PACKAGES:
                found.append((name, node.lineno, id(node) in top))
    return found


def _modules() -> dict[str, Path]:
    return {_module(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def test_no_module_imports_a_higher_wing() -> None:
    bad = []
    for module, path in _modules().items():
        mine = _wing(module)
        for name, line, _top in _imports(path):
            theirs = _wing(name)
            if theirs == mine:
                continue
            if RANK[theirs] > RANK[mine] or frozenset((mine, theirs)) in APART:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {mine} imports {name} ({theirs})")
    assert not bad, "\n".join(bad)


def test_module_level_imports_have_no_cycle() -> None:
    modules = _modules()
    graph = {m: {n for n, _line, top in _imports(p) if top and n in modules and n != m}
             for m, p in modules.items()}
    # a package's __init__ importing its own submodules is how public surfaces are made, not a cycle
    for m, deps in graph.items():
        graph[m] = {d for d in deps if not d.startswith(m + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(" → ".join(stack[stack.index(d) :] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(cycles)


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The walker itself: an upward import in a module is reported with its line."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from runtime.engine.pipeline import Pipeline\n    return Pipeline\n")
    assert _imports(probe) == [("runtime.engine.pipeline", 2, False),
                               ("runtime.engine.pipeline.Pipeline", 2, False)]
    assert RANK[_wing("runtime.engine.pipeline")] > RANK[_wing("runtime.v8.host")]
