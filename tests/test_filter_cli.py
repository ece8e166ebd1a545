"""``python -m pipeline filter`` against the fake Hub (in-process for speed; one real subprocess run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import cli
from pipeline.filter import sources
from tests.conftest import ROOT
from tests.test_filter_hub import AYA_CARD, demo_raw


@pytest.fixture()
def env(fake_hub, monkeypatch, tmp_path):
    sources.clear_cache()
    fake_hub.add_user("alice", "hf_alice")
    fake_hub.add_dataset(sources.AYA_ID, demo_raw(), card=AYA_CARD)
    monkeypatch.setenv("HF_TOKEN", "hf_alice")
    monkeypatch.chdir(tmp_path)
    yield fake_hub
    sources.clear_cache()


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["filter", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_filter_to_parquet_and_jsonl(env, capsys, tmp_path):
    code, out, err = run(capsys, "--language", "nl", "--min-response-chars", "50", "-o", "nl.parquet")
    assert code == 0, err
    table = pq.read_table(tmp_path / "nl.parquet")
    assert set(table["language_code"].to_pylist()) == {"nld"}
    assert min(len(r.strip()) for r in table["response"].to_pylist()) >= 50
    assert f"wrote {table.num_rows} rows" in out
    code, out, err = run(capsys, "-l", "Japanese", "--sample", "4", "--seed", "3", "-o", "ja.jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "ja.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4 and {r["language_code"] for r in rows} == {"jpn"}
    code, _, _ = run(capsys, "-l", "Japanese", "--sample", "4", "--seed", "3", "-o", "ja2.jsonl")
    assert (tmp_path / "ja2.jsonl").read_text(encoding="utf-8") == (tmp_path / "ja.jsonl").read_text(encoding="utf-8")


def test_default_output_name_and_dedup_flag(env, capsys, tmp_path):
    assert run(capsys, "-l", "German")[0] == 0
    with_dedup = pq.read_table(tmp_path / "aya-deu.parquet").num_rows
    assert run(capsys, "-l", "German", "--no-dedup", "-o", "all.parquet")[0] == 0
    assert pq.read_table(tmp_path / "all.parquet").num_rows == with_dedup + 1


def test_push(env, capsys):
    repo = f"alice/aya-hin-{uuid.uuid4().hex[:6]}"
    code, out, err = run(capsys, "-l", "hi", "--push", repo, "--private")
    assert code == 0, err
    assert f"/datasets/{repo}" in out
    assert env.repo(repo).private and env.read_table(repo).num_rows > 5
    assert "- hi" in env.read_text(repo, "README.md")
    code, _, err = run(capsys, "-l", "hi", "--push", repo)
    assert code == 1 and "already exists" in err and "--overwrite" in err
    code, _, err = run(capsys, "-l", "hi", "--sample", "2", "--push", repo, "--overwrite")
    assert code == 0, err
    assert env.read_table(repo).num_rows == 2


@pytest.mark.parametrize(
    "args,message",
    [
        (["-l", "Klingon"], "Klingon is not in this dataset"),
        (["-l", "Dutc"], "Did you mean: Dutch (nld)"),
        (["-l", "nl", "--min-prompt-chars", "100000"], "0 rows"),
        (["-l", "nl", "--annotation-type", "nonsense"], "unknown annotation type nonsense"),
        (["-l", "nl", "--push", "not a repo"], "not a valid repo name"),
        (["-l", "nl", "--push", "bob/x"], "cannot write to 'bob'"),
        (["-l", "nl", "-o", "x.csv"], "must end in .parquet or .jsonl"),
        (["--dataset", "nobody/nothing", "-l", "nl"], "was not found"),
        (["--dataset", sources.AYA_ID, "--prompt-col", "question", "-l", "nl"], "no column 'question' for the prompt"),
        ([], "choose a language with --language"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(env, capsys, tmp_path, args, message):
    code, out, err = run(capsys, *args)
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert not list(tmp_path.glob("*.parquet")) and not list(tmp_path.glob("*.jsonl"))


def test_list_languages_of_the_demo(env, capsys):
    code, out, err = run(capsys, "--demo", "--list-languages")
    assert code == 0
    assert "Plateau Malagasy" in out and "plt" in out and "11 languages" in out
    assert "demo data" in err
    # each language's coverage: the detector the routing table picked and its measured recall
    from pipeline import langcheck

    yoruba = next(line for line in out.splitlines() if " yor " in line)
    cov = langcheck.coverage("yor")
    assert yoruba.rstrip().endswith(f"{cov.label} ({cov.recall:.0%})")


def test_unreachable_hub_uses_demo_and_says_so(env, capsys, tmp_path):
    with env.unreachable():
        code, out, err = run(capsys, "-l", "nl", "-o", "x.parquet")
    assert code == 0
    assert "Could not reach the Hugging Face Hub" in err and "demo data" in err
    assert pq.read_table(tmp_path / "x.parquet").num_rows > 0


def test_real_subprocess(env, tmp_path):
    """The command as users run it: python -m pipeline filter."""
    environment = {**os.environ, "HF_ENDPOINT": env.url, "HF_TOKEN": "hf_alice", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "filter", "-l", "Yoruba", "-o", str(tmp_path / "yo.parquet")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert set(pq.read_table(Path(tmp_path / "yo.parquet"))["language_code"].to_pylist()) == {"yor"}
