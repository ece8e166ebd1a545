"""Provenance end to end in the CLI: ``filter`` → ``generate`` (against the error-injecting OpenAI-compatible
server) → ``export``. The source the rows were filtered from travels in each file's schema metadata (Parquet, and
the JSON Lines sidecar) and is what every card names: the demo data as demo data, a Hub dataset by its id, and
"not recorded" for a file made elsewhere. Never the Aya dataset by default. No file holds a path of this machine.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline import cli
from pipeline.core import schema, tablefiles
from pipeline.filter import sources
from tests.fixtures.faulty_server import FakeLLMServer, Fault
from tests.test_generate_services import ultrafeedback_responder

AYA = sources.AYA_ID
SW_CARD = "---\nlicense: cc-by-4.0\n---\n# Swahili prompts (test)\n"
SW_ROWS = [{"question": f"Swali la {i}: habari gani?", "answer": f"Nzuri sana, asante ({i})."} for i in range(6)]


@pytest.fixture()
def hub_env(fake_hub, monkeypatch, tmp_path):
    sources.clear_cache()
    fake_hub.add_user("alice", "hf_alice_prov")
    monkeypatch.setenv("HF_TOKEN", "hf_alice_prov")
    monkeypatch.chdir(tmp_path)
    yield fake_hub
    sources.clear_cache()


@pytest.fixture(scope="module")
def llm():
    """The error-injecting server: every third call first fails with a 503 (retried), then answers."""
    calls = {"n": 0}

    def fault_for(request: dict):
        calls["n"] += 1
        return Fault.status(503) if calls["n"] % 3 == 0 else None

    with FakeLLMServer(responder=ultrafeedback_responder, fault_for=fault_for) as srv:
        yield srv


def _cli(capsys, *args: str) -> str:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, f"{args[0]} failed ({code}):\n{out}\n{err}"
    return out + err


def _generate_and_export(capsys, llm, filtered: Path, run: Path, *extra: str) -> tuple[str, str]:
    _cli(
        capsys,
        "generate",
        str(filtered),
        "--output",
        str(run),
        "--backend",
        "openai",
        "--base-url",
        llm.base_url,
        "--model",
        "gen-a",
        "--max-new-tokens",
        "32",
        *extra,
    )
    card = run / "export-card.md"
    _cli(
        capsys,
        "export",
        "--input",
        str(run / "raw.parquet"),
        "--output",
        str(run / "dpo.parquet"),
        "--card",
        str(card),
        "--keep-language-mismatch",
    )  # the stand-in model answers in Dutch whatever the language
    return (run / "README.md").read_text(encoding="utf-8"), card.read_text(encoding="utf-8")


def _no_local_path(folder: Path, *files: str) -> None:
    for name in files:
        text = (folder / name).read_text(encoding="utf-8")
        assert str(folder) not in text and str(folder.parent) not in text, f"{name} holds a local path"


def test_demo_data_is_named_as_demo_data_from_filter_to_the_export_card(hub_env, llm, capsys, tmp_path):
    _cli(capsys, "filter", "--demo", "--language", "nl", "--sample", "4", "--output", "nl.jsonl")
    side = json.loads(tablefiles.sidecar_path(tmp_path / "nl.jsonl").read_text(encoding="utf-8"))
    recorded = side["metadata"][schema.PROVENANCE_KEY.decode()]["json"]
    assert recorded["demo"] is True and recorded["language_code"] == "nld" and recorded["rows"] == 4
    assert "random sample of at most 4 rows (seed 42)" in recorded["filter_notes"]

    raw_card, export_card = _generate_and_export(capsys, llm, tmp_path / "nl.jsonl", tmp_path / "run")
    for card in (raw_card, export_card):
        assert AYA not in card and "demo data" in card and ("not Aya" in card or "not from Aya" in card)
        assert "- demo" in card  # tagged on the Hub as demo data
    assert "source_datasets" not in export_card
    meta = schema.RunMeta.from_json((tmp_path / "run" / "dpo_studio.json").read_text(encoding="utf-8"))
    assert meta.source.demo and meta.source.file == "nl.jsonl" and meta.language_code == "nld"
    raw = tablefiles.read_table(tmp_path / "run" / "raw.parquet")
    assert schema.provenance_of(raw) == meta.source and schema.run_meta_of(raw).fingerprint == meta.fingerprint
    exported = tablefiles.read_table(tmp_path / "run" / "dpo.parquet")
    assert exported.num_rows > 0 and schema.provenance_of(exported).demo
    _no_local_path(tmp_path / "run", "pipeline.py", "README.md", "dpo_studio.json", "export-card.md")


def test_a_hub_dataset_is_named_with_its_split_filters_and_licence(hub_env, llm, capsys, tmp_path):
    repo = f"alice/swahili-{uuid.uuid4().hex[:6]}"
    hub_env.add_dataset(repo, pa.Table.from_pylist(SW_ROWS), card=SW_CARD)
    _cli(
        capsys,
        "filter",
        "--dataset",
        repo,
        "--prompt-col",
        "question",
        "--response-col",
        "answer",
        "--language",
        "sw",
        "--min-response-chars",
        "5",
        "--output",
        "sw.parquet",
    )
    raw_card, export_card = _generate_and_export(capsys, llm, tmp_path / "sw.parquet", tmp_path / "run")
    for card in (raw_card, export_card):
        assert repo in card and AYA not in card and "cc-by-4.0" in card
    assert f"[`{repo}`](https://huggingface.co/datasets/{repo})" in export_card
    assert f"source_datasets:\n- {repo}" in export_card and "license: cc-by-4.0" in export_card
    assert "response length at least 5 characters" in export_card  # the filters travelled too
    source = schema.provenance_of(tablefiles.read_table(tmp_path / "run" / "dpo.parquet"))
    assert source.dataset == repo and source.split == "train" and source.columns["prompt"] == "question"
    script = (tmp_path / "run" / "pipeline.py").read_text(encoding="utf-8")
    assert "DATA = None" in script and "required=DATA is None" in script  # the local input is a --data argument
    _no_local_path(tmp_path / "run", "pipeline.py", "README.md", "dpo_studio.json", "export-card.md")


def test_a_file_made_elsewhere_says_its_source_was_not_recorded_unless_told(hub_env, llm, capsys, tmp_path):
    rows = [
        {"prompt": f"Vraag {i}?", "response": f"Antwoord {i}.", "language": "Dutch", "language_code": "nld"}
        for i in range(3)
    ]
    tablefiles.write_table(pa.Table.from_pylist(rows), tmp_path / "mine.parquet")  # no provenance in it
    raw_card, export_card = _generate_and_export(capsys, llm, tmp_path / "mine.parquet", tmp_path / "run")
    assert AYA not in raw_card and AYA not in export_card
    assert "source was not recorded" in raw_card and "source was not recorded" in export_card
    _, told = _generate_and_export(
        capsys,
        llm,
        tmp_path / "mine.parquet",
        tmp_path / "run2",
        "--source-dataset",
        "someone/dutch-qa",
        "--license",
        "mit",
    )
    assert "`someone/dutch-qa`" in told and "license: mit" in told


def test_a_filtered_set_pushed_to_the_hub_carries_its_provenance(hub_env, capsys):
    import io

    import pyarrow.parquet as pq

    from pipeline.core import hub

    repo = f"alice/demo-nld-{uuid.uuid4().hex[:6]}"
    _cli(capsys, "filter", "--demo", "--language", "nl", "--sample", "3", "--push", repo)
    blob = hub.download_file(repo, "data/train-00000-of-00001.parquet", "hf_alice_prov")
    source = schema.provenance_of(pq.read_table(io.BytesIO(blob)))
    assert source is not None and source.demo and source.language == "Dutch" and source.rows == 3
