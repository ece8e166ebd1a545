"""The backend kind table (pipeline/inference/kinds.py): one spec per kind answers everything that differs by kind,
and no code outside it (but the generated distilabel script of pipeline/generate/recipe.py) compares kind names."""

from __future__ import annotations

import re

import pytest

from pipeline import cli, inference
from pipeline.inference import BACKEND_KINDS, KINDS, Backend, ResponseFormat, response_format_payload
from tests.conftest import ROOT

_KIND = r"""["'](?:serverless|endpoint|openai)["']"""
# A comparison with a kind's name, either side, or membership in a literal collection that names a kind.
LEFTOVER = re.compile(rf"(?:==|!=)\s*{_KIND}|{_KIND}\s*(?:==|!=)|\bin\s*[(\[{{][^)\]}}]*{_KIND}|choices=\(\s*{_KIND}")
ALLOWED = {"pipeline/inference/kinds.py", "pipeline/generate/recipe.py"}  # the table; generated code


def _leftovers() -> list[str]:
    found = []
    for folder in ("pipeline", "ui"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ALLOWED:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if LEFTOVER.search(line):
                    found.append(f"{rel}:{number}: {line.strip()}")
    for extra in ("app.py",):
        for number, line in enumerate((ROOT / extra).read_text(encoding="utf-8").splitlines(), 1):
            if LEFTOVER.search(line):
                found.append(f"{extra}:{number}: {line.strip()}")
    return found


def test_no_kind_is_compared_by_name_outside_the_table():
    assert _leftovers() == []


@pytest.mark.parametrize(
    ("line", "caught"),
    [
        ('if backend.kind == "serverless":', True),
        ("visible=kind != 'openai'", True),
        ('if "endpoint" == kind:', True),
        ('if self.kind in ("endpoint", "openai"):', True),
        ('choices=("serverless", "endpoint", "openai"),', True),
        ("if backend.spec.needs_url:", False),
        ('if error.kind == "overloaded":', False),
        ('Backend("openai", "m", url)', False),
    ],
)
def test_the_leftover_check_catches_each_form(line, caught):
    assert bool(LEFTOVER.search(line)) is caught


def test_one_spec_per_kind_and_the_kind_names_come_from_it():
    assert BACKEND_KINDS == tuple(KINDS) == ("serverless", "endpoint", "openai")
    for name, spec in KINDS.items():
        assert spec.name == name
        backend = Backend(name, "m", "" if not spec.needs_url else "http://127.0.0.1:9/v1")  # type: ignore[arg-type]
        assert backend.spec is spec
        assert spec.dialects and spec.default_limit > 0 and spec.label
    # the credential rules of the README: the HF token only to HF's kinds, an API key only to its own server
    assert [k for k, s in KINDS.items() if s.sends_hf_token] == ["serverless", "endpoint"]
    assert [k for k, s in KINDS.items() if s.takes_api_key] == ["openai"]
    with pytest.raises(ValueError, match="pick one of serverless, endpoint, openai"):
        inference.kind_spec("ollama")


def test_each_kind_asks_for_structured_output_in_its_own_dialect():
    fmt = ResponseFormat.of("verdict", {"type": "object"})
    url = "http://127.0.0.1:9/v1"
    assert response_format_payload(Backend("endpoint", "", url), fmt) == {"type": "json", "value": {"type": "object"}}
    assert response_format_payload(Backend("openai", "m", url), fmt) == {
        "type": "json_object",
        "schema": {"type": "object"},
    }
    assert response_format_payload(Backend("serverless", "org/m"), fmt)["type"] == "json_schema"


def test_the_cli_offers_the_tables_kinds(capsys):
    with pytest.raises(SystemExit):
        cli.main(["generate", "in.parquet", "-o", "out", "--backend", "ollama"])
    err = capsys.readouterr().err
    assert "invalid choice: 'ollama'" in err and "'serverless', 'endpoint', 'openai'" in err
