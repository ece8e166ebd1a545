"""The docstring examples of the data contracts and the export's data-format functions run, and say what they
show (TRL's ``data_utils.py`` style): a public function of these modules without an example fails here."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

MODULES = (
    "pipeline.core.schema",
    "pipeline.export.rules",
    "pipeline.export.pairs",
    "pipeline.export.formats",
    "pipeline.export.build",
    "pipeline.export.card",
    "pipeline.export.hub_io",
    "pipeline.train.trl_script",
    "pipeline.train.settings",
    "pipeline.train.estimate",
)
# The data-format functions: each shows an example of its input and output.
WITH_EXAMPLES = {
    "pipeline.export.formats": (
        "format_pair",
        "is_conversational",
        "extract_prompt",
        "check_trl_example",
        "output_schema",
        "pairs_to_table",
    ),
    "pipeline.export.pairs": ("select_pairs",),
    "pipeline.export.build": ("build_export", "split_pairs"),
    "pipeline.export.hub_io": ("default_repo_name",),
    "pipeline.core.schema": ("with_provenance",),
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} fail: run pytest --doctest-modules"
    assert result.attempted > 0 or name not in WITH_EXAMPLES


@pytest.mark.parametrize("name", sorted(WITH_EXAMPLES))
def test_each_data_format_function_has_an_example(name):
    module = importlib.import_module(name)
    for fn in WITH_EXAMPLES[name]:
        assert ">>> " in (inspect.getdoc(getattr(module, fn)) or ""), f"{name}.{fn} has no docstring example"
