"""`python -m pipeline export`: files in, files out, refusals, push to the fake Hub."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import export as ex
from pipeline.cli import main
from tests.test_export import ann_row, annotations, raw_row

ROWS = [
    raw_row("a", ["Amsterdam.", "Parijs."], [5, 1], prompt="Wat is de hoofdstad van Nederland?"),
    raw_row("b", ["x", "y", "z"], [2, 5, 1], prompt="Noem een letter."),
    raw_row("t", ["Ja.", "Nee."], [3, 3], prompt="Klopt dat?"),
    raw_row("e", ["Rood.", "Blauw."], [1, 4], prompt="Welke kleur?"),
]


@pytest.fixture()
def inputs(tmp_path):
    raw = tmp_path / "raw.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), raw)
    ann = tmp_path / "ann.parquet"
    pq.write_table(annotations([ann_row("a", [1.0, 5.0], 1, n=2)]), ann)
    return raw, ann


def test_export_to_jsonl_with_annotations_and_counts(inputs, tmp_path, capsys):
    raw, ann = inputs
    out = tmp_path / "out" / "dpo.jsonl"
    code = main(
        ["export", "--input", str(raw), "--annotations", str(ann), "--format", "conversational", "--output", str(out)]
    )
    assert code == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "e"]
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "Parijs."}]  # the annotators' choice
    assert rows[0]["preference_source"] == "human" and rows[1]["preference_source"] == "judge"
    assert all(ex.check_trl_example(r, "conversational") == [] for r in rows)
    printed = capsys.readouterr().out
    assert "Rows kept" in printed and "Tie (equal ratings, or annotators said tie)" in printed
    assert "judge vs annotators: agree on 0/1" in printed


def test_rule_flags_and_split(inputs, tmp_path):
    raw, _ = inputs
    out = tmp_path / "dpo.parquet"
    code = main(
        [
            "export",
            "--input",
            str(raw),
            "--keep-ties",
            "--all-pairs",
            "--test-size",
            "1",
            "--seed",
            "5",
            "--output",
            str(out),
        ]
    )
    assert code == 0 and not out.exists()
    train, test = pq.read_table(tmp_path / "dpo-train.parquet"), pq.read_table(tmp_path / "dpo-test.parquet")
    ids = train.column("id").to_pylist() + test.column("id").to_pylist()
    assert "t-0-1" in ids and len({i.split("-")[0] for i in test.column("id").to_pylist()}) == 1
    assert train.num_rows + test.num_rows == 1 + 3 + 1 + 1  # b has 3 pairs with --all-pairs


def test_every_row_dropped_exits_1_and_writes_nothing(inputs, tmp_path, capsys):
    raw, _ = inputs
    out = tmp_path / "dpo.parquet"
    code = main(["export", "--input", str(raw), "--min-margin", "5", "--output", str(out)])
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err
    assert err.startswith("error: Every row was dropped") and "rating margin below the minimum: 3" in err
    assert "tie: 1" in err and len(err.strip().splitlines()) == 1


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": ["1"], "prompt": ["p"]}), bad)
    assert main(["export", "--input", str(bad), "--output", str(tmp_path / "o.parquet")]) == 1
    assert "lacks the columns target_language, responses" in capsys.readouterr().err
    assert main(["export", "--input", str(bad), "--output", str(tmp_path / "o.csv")]) == 1
    assert "use a .parquet or .jsonl" in capsys.readouterr().err
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        "\n".join(json.dumps(r) for r in [ROWS[0], dict(ROWS[1], target_language="fra")]), encoding="utf-8"
    )
    assert main(["export", "--input", str(mixed), "--output", str(tmp_path / "o.parquet")]) == 1
    assert "mixes 2 target languages" in capsys.readouterr().err
    assert main(["export", "--input", str(mixed), "--language", "fra", "--output", str(tmp_path / "o.parquet")]) == 0
    assert pq.read_table(tmp_path / "o.parquet").column("id").to_pylist() == ["b"]


def test_meta_sidecar_and_card(inputs, tmp_path):
    raw, _ = inputs
    meta = {
        "settings": {
            "generators": [{"model": "org/gen"}],
            "judge": {"model": "org/judge-x"},
            "system_prompt": "Wees kort.",
        },
        "source": {"dataset": "CohereForAI/aya_dataset", "license": "apache-2.0", "language": "Dutch"},
    }
    raw.with_name(raw.name + ".meta.json").write_text(json.dumps(meta), encoding="utf-8")
    card = tmp_path / "README.md"
    assert main(["export", "--input", str(raw), "--output", str(tmp_path / "o.parquet"), "--card", str(card)]) == 0
    text = card.read_text(encoding="utf-8")
    assert "license: apache-2.0" in text and "`org/judge-x`" in text and "Dutch" in text and "Wees kort." in text


def test_pipeline_dpo_studio_json_beside_the_input_is_used(inputs, tmp_path):
    raw, _ = inputs
    (raw.parent / "dpo_studio.json").write_text(
        json.dumps({"models": ["org/gen-z"], "judge_model": "org/j", "language": "Dutch"}), encoding="utf-8"
    )
    card = tmp_path / "card.md"
    assert main(["export", "--input", str(raw), "--output", str(tmp_path / "o.parquet"), "--card", str(card)]) == 0
    assert "`org/gen-z`" in card.read_text(encoding="utf-8")


def test_push_to_the_fake_hub(inputs, tmp_path, fake_hub, monkeypatch):
    import datasets

    fake_hub.add_user("carla", "hf_carla_cli")
    monkeypatch.setenv("HF_TOKEN", "hf_carla_cli")
    raw, ann = inputs
    repo = f"carla/dpo-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "dpo.parquet"
    assert (
        main(
            [
                "export",
                "--input",
                str(raw),
                "--annotations",
                str(ann),
                "--format",
                "recipe",
                "--output",
                str(out),
                "--push",
                repo,
                "--private",
            ]
        )
        == 0
    )
    assert fake_hub.repo(repo).private
    back = datasets.load_dataset(repo, split="train", token="hf_carla_cli")
    assert back.to_list() == pq.read_table(out).to_pylist()
    assert "hf_carla_cli" not in fake_hub.read_text(repo, "README.md")


def test_push_target_refused_before_any_work(inputs, tmp_path, fake_hub, monkeypatch, capsys):
    fake_hub.add_user("carla", "hf_carla_cli")
    monkeypatch.setenv("HF_TOKEN", "hf_carla_cli")
    raw, _ = inputs
    out = tmp_path / "dpo.parquet"
    assert main(["export", "--input", str(raw), "--output", str(out), "--push", "someone-else/x"]) == 1
    assert "cannot write to 'someone-else'" in capsys.readouterr().err and not out.exists()
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    assert main(["export", "--input", str(raw), "--output", str(out), "--push", "carla/x"]) == 1
    assert "signed in" in capsys.readouterr().err and not out.exists()


def test_module_entry_point_help():
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "export", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "--min-margin" in done.stdout and "--push" in done.stdout
