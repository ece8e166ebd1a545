"""The layering of the code: ``ui`` → ``pipeline``, never the other way, and no import cycles among the modules of
``pipeline`` or ``ui`` (module-level imports; imports inside functions are deliberate late loads and not counted)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _top_level_imports(path: Path, known: set[str]) -> set[str]:
    """Modules of ``known`` that ``path`` imports at module level (``if TYPE_CHECKING:`` blocks excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if isinstance(node, (ast.Import, ast.ImportFrom, ast.If, ast.Try)) else []:
            if isinstance(sub, ast.Import):
                names.update(a.name for a in sub.names)
            elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                names.add(sub.module)
                names.update(f"{sub.module}.{a.name}" for a in sub.names)
    return {n for n in names if n in known}


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in ("pipeline", "ui") for p in (ROOT / pkg).rglob("*.py")]
    known = {_module_name(p) for p in files}
    return {_module_name(p): _top_level_imports(p, known) - {_module_name(p)} for p in files}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_pipeline_never_imports_ui():
    graph = _graph()
    offenders = {
        m: sorted(d for d in deps if d.startswith("ui")) for m, deps in graph.items() if m.startswith("pipeline")
    }
    assert not {m: d for m, d in offenders.items() if d}


def test_no_import_cycles():
    graph = _graph()
    assert len(graph) > 40  # the walk found the modules
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
