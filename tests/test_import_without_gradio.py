"""All logic lives in ``pipeline``: it (and the CLI) must import and run with Gradio unavailable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

BLOCK_GRADIO = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockGradio(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "gradio" or name.startswith("gradio.") or name == "gradio_client" or name.startswith("gradio_client."):
                raise ImportError(f"gradio is blocked in this test (tried to import {name})")
            return None

    sys.meta_path.insert(0, BlockGradio())
    """
)


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_GRADIO + textwrap.dedent(code), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_blocker_works():
    proc = _run("import gradio")
    assert proc.returncode != 0 and "gradio is blocked" in proc.stderr


def test_pipeline_and_all_submodules_import_without_gradio():
    proc = _run(
        """
        import pkgutil, importlib, sys
        import pipeline
        names = [m.name for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.")
                 if m.name != "pipeline.__main__"]
        for name in names:
            importlib.import_module(name)
        assert "gradio" not in sys.modules
        print(len(names), "modules:", " ".join(sorted(names)))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "pipeline.filter.sources" in proc.stdout
        and "pipeline.core.hub" in proc.stdout
        and "pipeline.commands.filter" in proc.stdout
    )


def test_cli_runs_without_gradio(tmp_path):
    out = tmp_path / "nl.parquet"
    proc = _run(
        """
        import sys
        from pipeline.cli import main
        assert main(["filter", "--demo", "--language", "nl", "--sample", "3", "-o", sys.argv[1]]) == 0
        assert main(["filter", "--demo", "--list-languages"]) == 0
        assert "gradio" not in sys.modules
        """,
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and "Plateau Malagasy" in proc.stdout
