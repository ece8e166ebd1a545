"""The export pushed to the local fake Hub loads back with ``datasets.load_dataset``; Hub inputs and refusals."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest

from pipeline import export as ex
from tests.test_export import META, ann_row, annotations, raw_row

ROWS = [
    raw_row("a", ["Amsterdam.", "Parijs."], [5, 1], prompt="Wat is de hoofdstad van Nederland?"),
    raw_row("b", ["x", "y", "z"], [2, 5, 1], prompt="Noem een letter."),
    raw_row("c", ["Eén.", "Twee."], [4, 2], prompt="Hoeveel?"),
    raw_row("d", ["Ja.", "Nee."], [3, 3], prompt="Klopt dat?"),
    raw_row("e", ["Rood.", "Blauw."], [1, 4], prompt="Welke kleur?"),
]


@pytest.fixture()
def hub(fake_hub):
    fake_hub.add_user("alice", "hf_alice_export", orgs={"team": "write", "readers": "read"})
    fake_hub.add_user("bob", "hf_bob_export")
    return fake_hub


def _name() -> str:
    return f"dpo-nld-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("fmt", ex.FORMATS)
def test_push_and_load_back_identical_rows(hub, fmt):
    import datasets

    result = ex.build_export(
        pa.Table.from_pylist(ROWS),
        annotations([ann_row("c", [2.0, 4.5], 1)]),
        fmt=fmt,
        test_size=1,
        seed=3,
        include_system=True,
    )
    repo = f"alice/{_name()}"
    url = ex.push_export(result, repo, "hf_alice_export", private=True, meta=META)
    assert url.endswith(f"/datasets/{repo}")
    assert hub.repo(repo).private
    loaded = datasets.load_dataset(repo, token="hf_alice_export")
    assert set(loaded) == {"train", "test"}
    for split, table in result.splits.items():
        assert loaded[split].to_list() == table.to_pylist()
        for row in loaded[split].to_list():
            assert ex.check_trl_example(row, fmt) == []
    card = hub.read_text(repo, "README.md")
    assert card.startswith("---\n")
    for needle in (
        "language:\n- nl",
        "- dpo",
        "- orpo",
        "- distilabel",
        "- argilla",
        "- dutch",
        "license: apache-2.0",
        "CohereForAI/aya_dataset",
        "text-generation",
        f'load_dataset("{repo}")',
        "DPOTrainer",
    ):
        assert needle in card, needle
    assert "hf_alice_export" not in card


def test_push_refused_before_any_upload_where_the_user_cannot_write(hub):
    from pipeline.core.hub import HubError

    result = ex.build_export(pa.Table.from_pylist(ROWS))
    before = len(hub.requests)
    for repo in (f"bob/{_name()}", f"readers/{_name()}"):
        with pytest.raises(HubError, match="cannot write"):
            ex.push_export(result, repo, "hf_alice_export")
    assert not any(m == "POST" for m, _, _ in hub.requests[before:])
    with pytest.raises(HubError, match="signed in"):
        ex.push_export(result, f"alice/{_name()}", None)
    # an organisation where alice writes is fine
    repo = f"team/{_name()}"
    ex.push_export(result, repo, "hf_alice_export", private=False)
    assert hub.exists(repo) and not hub.repo(repo).private


def test_existing_repo_needs_overwrite(hub):
    from pipeline.core.hub import HubError

    result = ex.build_export(pa.Table.from_pylist(ROWS))
    repo = f"alice/{_name()}"
    ex.push_export(result, repo, "hf_alice_export")
    with pytest.raises(HubError, match="already exists"):
        ex.push_export(result, repo, "hf_alice_export")
    ex.push_export(result, repo, "hf_alice_export", overwrite=True)


def test_load_raw_from_hub(hub):
    repo = f"alice/raw-{_name()}"
    card = "---\nlicense: apache-2.0\nsource_datasets:\n- CohereForAI/aya_dataset\n---\n# raw\n"
    merged = [
        dict(
            r,
            n_annotators=0,
            human_ratings=[None] * len(r["responses"]),
            human_preference=None,
            agreement=None,
            improved_response=None,
        )
        for r in ROWS
    ]
    merged[0].update(n_annotators=2, human_ratings=[1.0, 5.0], human_preference=1, agreement=1.0)
    hub.add_dataset(repo, pa.Table.from_pylist(merged), card=card)
    raw, ann, meta = ex.load_raw_from_hub(repo, "hf_alice_export")
    assert raw.num_rows == 5 and "human_ratings" not in raw.column_names
    assert ann is not None and ann.num_rows == 5
    assert meta.source.dataset == "CohereForAI/aya_dataset" and meta.source.license == "apache-2.0"
    assert meta.judge_model == "org/judge"
    result = ex.build_export(raw, ann)
    first = next(p for p in result.pairs if p.id == "a")
    assert first.preference_source == "human" and first.chosen == "Parijs."


def test_hub_dataset_with_missing_columns_is_named(hub):
    repo = f"alice/other-{_name()}"
    hub.add_dataset(repo, pa.table({"id": ["1"], "prompt": ["p"], "responses": [["a", "b"]]}))
    with pytest.raises(ex.ExportError) as err:
        ex.load_raw_from_hub(repo, "hf_alice_export")
    assert "target_language, response_sources, ratings, language_match, status" in str(err.value)


def test_load_raw_from_hub_reads_the_pipelines_dpo_studio_json(hub):
    import json

    repo = f"alice/raw-{_name()}"
    meta = {
        "models": ["org/gen"],
        "judge_model": "org/judge-y",
        "system_prompt": "Kort.",
        "source": {"dataset": "CohereForAI/aya_dataset", "split": "train", "license": "apache-2.0"},
        "license": "apache-2.0",
        "language": "Dutch",
        "language_code": "nld",
    }
    hub.add_dataset(repo, pa.Table.from_pylist(ROWS), files={"dpo_studio.json": json.dumps(meta)})
    raw, ann, got = ex.load_raw_from_hub(repo, "hf_alice_export")
    assert ann is None and got.raw_dataset == repo and got.judge_model == "org/judge-y"
    result = ex.build_export(raw)
    assert ex.default_repo_name(result.target_language, got) == "aya-dutch-dpo"
    body = ex.card_body(result, got, "alice/aya-dutch-dpo")
    assert "`org/gen`" in body and "`org/judge-y`" in body and "Kort." in body and "apache-2.0" in body
