"""The layering of the code, as the README's layout promises, checked on every import: module level, inside
functions and in ``if TYPE_CHECKING:`` blocks alike (a late or type-only import is still a dependency).

- ``ui`` → ``pipeline``, never the other way; ``pipeline`` never imports Gradio.
- Inside ``pipeline`` the layers are ``core`` < ``inference`` < ``langcheck`` < ``judge`` < the step packages
  (``filter``, ``playground``, ``generate``, ``argilla``, ``export``, ``train``) < ``workflow`` and ``links`` <
  ``commands``/``cli``.
  A module imports only its own layer or lower ones, and a step package never imports another step's package.
- No import cycles among the modules of ``pipeline`` and ``ui``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

SHARED = ("core", "inference", "langcheck", "judge")  # the order is the layering: each may import those before it
STEPS = ("filter", "playground", "generate", "argilla", "export", "train")
TOP = ("workflow", "links", "commands", "cli", "__main__")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every module of ``known`` (or ``gradio``) that ``path`` imports, wherever the import statement stands.
    ``from package import name`` counts as an import of ``package.name`` when that is a module, else of ``package``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in known else node.module)
    return {n for n in names if n in known or n.split(".")[0] == "gradio"}


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in ("pipeline", "ui") for p in (ROOT / pkg).rglob("*.py")]
    known = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, known) - {_module_name(p)} for p in files}


def _part(module: str) -> str:
    """The layer part of a ``pipeline`` module: ``pipeline.generate.executor`` -> ``generate``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _allowed(src: str, dst: str) -> bool:
    """Whether ``pipeline`` module ``src`` may import ``pipeline`` module ``dst``."""
    a, b = _part(src), _part(dst)
    if a == b or b == "":
        return a == b or dst == "pipeline"  # the package's own modules; ``pipeline/__init__`` has no code
    if a in SHARED:
        return b in SHARED and SHARED.index(b) < SHARED.index(a)
    if a in STEPS:
        return b in SHARED
    if a == "workflow":
        return b in SHARED or b in STEPS
    if a in TOP:
        return True
    return False


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{src} -> {dst}"
        for src, deps in graph.items()
        if src.startswith("pipeline")
        for dst in deps
        if dst.startswith("pipeline") and not _allowed(src, dst)
    )


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


def test_pipeline_never_imports_ui_or_gradio():
    graph = _graph()
    offenders = {
        m: sorted(d for d in deps if d.split(".")[0] in ("ui", "gradio"))
        for m, deps in graph.items()
        if m.startswith("pipeline")
    }
    assert not {m: d for m, d in offenders.items() if d}


def test_every_module_sits_in_a_known_layer():
    graph = _graph()
    parts = {_part(m) for m in graph if m.startswith("pipeline.")}
    assert parts <= set(SHARED + STEPS + TOP), sorted(parts - set(SHARED + STEPS + TOP))


def test_no_upward_or_sideways_imports():
    graph = _graph()
    assert len(graph) > 40  # the walk found the modules
    assert _upward(graph) == []


def test_no_import_cycles():
    graph = _graph()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_late_and_type_only_imports_count(tmp_path):
    """The walk sees an import inside a function and in a ``TYPE_CHECKING`` block (the blind spot that once hid the
    ``checkpoint`` <-> ``settings`` cycle)."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pipeline.generate.settings import RunSettings\n"
        "def late():\n    from pipeline.argilla import push\n"
    )
    path = tmp_path / "mod.py"
    path.write_text(source)
    found = _imports(path, {"pipeline.generate.settings", "pipeline.argilla", "pipeline.argilla.push"})
    assert found == {"pipeline.generate.settings", "pipeline.argilla.push"}


@pytest.mark.parametrize(
    ("src", "dst", "ok"),
    [
        ("pipeline.export.rules", "pipeline.judge.report", True),
        ("pipeline.export.rules", "pipeline.generate.results", False),  # a step never imports another step
        ("pipeline.judge.check", "pipeline.argilla", False),  # a shared package never imports a step
        ("pipeline.core.hub", "pipeline.inference", False),  # core is the bottom layer
        ("pipeline.inference.ratecontrol", "pipeline.core.netguard", True),
        ("pipeline.workflow", "pipeline.generate.executor", True),
        ("pipeline.commands.filter", "pipeline.workflow", True),
        ("pipeline.generate.executor", "pipeline.workflow", False),
    ],
)
def test_the_layer_rule(src, dst, ok):
    assert _allowed(src, dst) is ok


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
