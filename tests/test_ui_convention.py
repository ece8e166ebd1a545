"""The one UI convention (issue 17), checked on the source of every tab: events are wired to module-level handlers
through ``ui.forms.wire`` (no handler closures or lambdas in ``build`` functions), nothing reads Gradio's private
attributes, no function takes more than 8 parameters, and handlers return named outputs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UI_FILES = sorted((ROOT / "ui").glob("*.py")) + [ROOT / "app.py"]
EVENTS = {"click", "change", "select", "tick", "submit", "load", "input", "then"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_no_handler_closures_and_no_direct_event_wiring(path):
    for node in ast.walk(_tree(path)):
        if not isinstance(node, ast.FunctionDef) or node.name not in {"build", "build_tab", "_wire", "build_app"}:
            continue
        nested = [n.name for n in ast.walk(node) if isinstance(n, ast.FunctionDef | ast.Lambda) and n is not node]
        assert not nested, f"{path.name}:{node.name} defines handlers inside: {nested}"
        for call in ast.walk(node):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in EVENTS:
                # a trigger called directly (btn.click(fn, ...)) instead of through wire(); only the Stop button's
                # cancel (no handler at all) may do that
                first = call.args[0] if call.args else None
                assert isinstance(first, ast.Constant) and first.value is None, (
                    f"{path.name}:{call.lineno} wires {call.func.attr} directly: use ui.forms.wire"
                )


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_no_private_gradio_attributes_and_at_most_eight_parameters(path):
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Attribute):
            assert node.attr != "_id", f"{path.name}:{node.lineno} relies on Gradio's private _id"
            private_of_gradio = isinstance(node.value, ast.Name) and node.value.id in {"gr", "gradio"}
            assert not (private_of_gradio and node.attr.startswith("_")), f"{path.name}:{node.lineno}: gr.{node.attr}"
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            count = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
            assert count <= 8, f"{path.name}:{node.name} takes {count} parameters"


def test_the_adapter_maps_named_outputs_and_refuses_unknown_names():
    """Gradio's keyword inputs in, the handler's named outputs out as ``{component: value}``; a name the event
    does not show is a wiring mistake, said at once."""
    import inspect

    import gradio as gr

    from ui import forms

    def handler(session, values):
        return {"out": f"{values['a']}-{session['n']}"}

    def wrong(session, values):
        return {"nope": 1}

    with gr.Blocks():
        out = gr.Textbox()
    adapter = forms._adapter(handler, {"out": out}, True, False)
    assert adapter(session={"n": 2}, a="x") == {out: "x-2"}
    assert "oauth_token" in inspect.signature(adapter).parameters  # sign-in asked once, for every handler
    with pytest.raises(KeyError, match="nope"):
        forms._adapter(wrong, {"out": out}, True, False)(session={"n": 1}, a="x")
    with pytest.raises(ValueError, match="reserved"):
        forms.Form(session=out)
