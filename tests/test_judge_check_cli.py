"""`python -m pipeline judge-check`: labels or an Argilla pull in, the side-by-side table and JSON out; the estimate;
bad input (no labelled rows, another language, a judge that does not exist, a server that rejects the schema);
credentials routed like `generate`. Against the error-injecting OpenAI-compatible server, and the local SmolLM2."""

from __future__ import annotations

import json
import re

import pytest

from pipeline import judge
from pipeline.cli import main
from pipeline.core import tablefiles
from pipeline.core.schema import annotations_table
from pipeline.judge import labels as judge_labels
from pipeline.judge.labels import CHOICE_A, CHOICE_B, CHOICE_BAD, CHOICE_TIE
from tests.fixtures.faulty_server import FakeLLMServer
from tests.test_judgecheck import judge_reply_text, raw_table

API_KEY = "sk-judge-check-" + "k3y" * 5
HF_TOKEN = "hf_judgecheck" + "T0k" * 8


def judge_responder(request: dict) -> str:
    """A judge that rates answers containing 'model' 5 and the others 2, as JSON when asked for a schema."""
    user = request["messages"][-1]["content"].split("## Annotation", 1)[-1]
    texts = re.findall(r"^<text \d+> (.*)$", user, flags=re.M)
    ratings = [5 if "model" in t else 2 for t in texts]
    if request.get("response_format") is not None:
        return json.dumps({"ratings": [{"rating": r, "rationale": "fine"} for r in ratings]})
    return judge_reply_text(ratings)


@pytest.fixture
def judge_server():
    judge.STRUCTURED.forget()
    with FakeLLMServer(responder=judge_responder, models=("good-judge", "other-judge")) as server:
        yield server
    judge.STRUCTURED.forget()


def _auth(request) -> str | None:
    return next((v for k, v in request.headers.items() if k.lower() == "authorization"), None)


def _labels_file(tmp_path, choices, language="nld"):
    raw = raw_table(12, language=language)
    tasks = judge_labels.label_tasks(raw, 10)
    labels = [t.label(c) for t, c in zip(tasks, choices)]
    path = tmp_path / "labels.jsonl"
    tablefiles.write_table(judge_labels.labels_table(labels), path)
    return path, labels


def _prefer_model(labels_tasks):
    """The choice that picks the model answer (index 1) of each task."""
    return [CHOICE_A if t.shown[0] == 1 else CHOICE_B for t in labels_tasks]


def test_labels_two_judges_one_missing_table_and_json(tmp_path, judge_server, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    tasks = judge_labels.label_tasks(raw_table(12), 10)
    choices = _prefer_model(tasks[:6]) + [CHOICE_TIE, CHOICE_BAD]
    path, _ = _labels_file(tmp_path, choices)
    out = tmp_path / "check.json"
    code = main(
        [
            "judge-check",
            "--labels",
            str(path),
            "--language",
            "nld",
            "--judge",
            "good-judge",
            "--judge",
            "no-such-judge",
            "--judge-base-url",
            judge_server.base_url,
            "--output",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1, captured.err  # a judge stopped: the exit code says so, the other judge's figures are there
    assert "Estimate: 7 rows × 2 judge(s) × 2 orders: about 28 calls" in captured.err
    assert re.search(r"good-judge .*7/7 \(100%\)\s+0/7 \(0%\)\s+6/7 \(86%\)", captured.out), captured.out
    assert re.search(r"no-such-judge .*n/a.*stopped: see below", captured.out), captured.out
    assert "error: judge no-such-judge: Stopped after 0 of 7 rows" in captured.err and "does not exist" in captured.err
    data = json.loads(out.read_text(encoding="utf-8"))
    good, missing = data["check"]["judges"]
    assert (good["parsed"], good["agree"], good["compared"], good["structured"]) == (7, 6, 7, True)
    assert missing["rows"] == 0 and "pick another judge" in missing["error"]
    assert data["check"]["source"] == "labels" and data["check"]["language"] == "nld"
    assert len([r for r in data["rows"] if r["model"] == "good-judge"]) == 7
    # credentials: the OpenAI-compatible server got its API key, never the HF token
    chats = [r for r in judge_server.requests if r.path.endswith("/chat/completions")]
    assert chats and all(_auth(r) == f"Bearer {API_KEY}" for r in chats)
    assert not any(HF_TOKEN in json.dumps(r.headers) + json.dumps(r.json) for r in judge_server.requests)
    assert HF_TOKEN not in out.read_text(encoding="utf-8") and API_KEY not in captured.out + captured.err


def test_a_server_that_rejects_the_schema_falls_back_to_text_and_finishes(tmp_path, judge_server, capsys):
    judge_server.reject_response_format = 422
    tasks = judge_labels.label_tasks(raw_table(12), 10)
    path, _ = _labels_file(tmp_path, _prefer_model(tasks[:4]))
    code = main(
        [
            "judge-check",
            "--labels",
            str(path),
            "--judge",
            "other-judge",
            "--judge-backend",
            "openai",
            "--judge-base-url",
            judge_server.base_url,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert re.search(r"other-judge .*4/4 \(100%\).*text \(fallback\)", captured.out), captured.out
    assert any(r.json.get("response_format") for r in judge_server.requests if isinstance(r.json, dict))
    assert any("response_format" not in r.json for r in judge_server.requests if isinstance(r.json, dict))


def test_argilla_pull_input_and_dry_run_makes_no_call(tmp_path, judge_server, capsys):
    raw = raw_table(5)
    ids = raw.column("id").to_pylist()
    raw_path = tablefiles.write_table(raw, tmp_path / "raw.parquet")
    ann = annotations_table([{"id": i, "n_annotators": 2, "human_preference": 1, "agreement": 1.0} for i in ids[:3]])
    ann_path = tablefiles.write_table(ann, tmp_path / "annotations.parquet")
    args = [
        "judge-check",
        "--raw",
        str(raw_path),
        "--annotations",
        str(ann_path),
        "--judge",
        "good-judge",
        "--judge-base-url",
        judge_server.base_url,
    ]
    assert main([*args, "--dry-run"]) == 0
    assert "3 rows × 1 judge(s) × 2 orders: about 6 calls" in capsys.readouterr().err
    assert judge_server.chat_requests == 0
    assert main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"good-judge .*3/3 \(100%\)\s+0/3 \(0%\)\s+3/3 \(100%\)", out), out
    assert judge_server.chat_requests == 6


def test_bad_input_gets_a_message_that_says_what_to_do(tmp_path, judge_server, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    only_bad, _ = _labels_file(tmp_path, [CHOICE_BAD, CHOICE_BAD])
    base = ["--judge", "good-judge", "--judge-base-url", judge_server.base_url]
    assert main(["judge-check", "--labels", str(only_bad), *base]) == 2
    assert "No labelled rows yet: label 10-50 rows of a pilot run" in capsys.readouterr().err

    french, _ = _labels_file(tmp_path, [CHOICE_A, CHOICE_B], language="fra")
    assert main(["judge-check", "--labels", str(french), "--language", "nld", *base]) == 2
    err = capsys.readouterr().err
    assert "2 of the 2 labelled rows are in French (fra), but the run is in Dutch (nld)" in err

    assert main(["judge-check", "--labels", str(french), "--judge", "org/judge"]) == 2
    assert (
        "candidate judge org/judge runs on serverless inference" in capsys.readouterr().err
    )  # no HF_TOKEN: refused early

    assert main(["judge-check", "--labels", str(french), *base, "--judge", "b", "--judge", "c", "--judge", "d"]) == 2
    assert "At most 3 judges" in capsys.readouterr().err
    assert main(["judge-check", "--labels", str(tmp_path / "nope.jsonl"), *base]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["judge-check", *base]) == 2
    assert "--raw raw.parquet --annotations annotations.parquet" in capsys.readouterr().err
    assert judge_server.chat_requests == 0


@pytest.mark.llm
def test_smollm2_judges_labelled_rows_with_structured_output(tmp_path, llm_server, capsys):
    """The real local model, structured output for real: every row judged in both orders, figures consistent."""
    judge.STRUCTURED.forget()
    tasks = judge_labels.label_tasks(raw_table(12), 10)
    path, _ = _labels_file(tmp_path, _prefer_model(tasks[:3]))
    out = tmp_path / "check.json"
    code = main(
        [
            "judge-check",
            "--labels",
            str(path),
            "--judge",
            llm_server.model,
            "--judge-base-url",
            llm_server.base_url,
            "--judge-max-new-tokens",
            "160",
            "--output",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (score,) = json.loads(out.read_text(encoding="utf-8"))["check"]["judges"]
    assert score["rows"] == 3 and score["error"] == ""
    assert 0 <= score["parsed"] <= 3 and score["compared"] == score["parsed"]
    assert score["structured"] is True, captured.err  # llama.cpp takes the schema: no fallback to text
    assert score["tokens_per_row"] > 0 and score["mean_latency_s"] > 0
    assert llm_server.model in captured.out


def test_generate_records_the_judge_check_on_the_card(tmp_path, judge_server, monkeypatch, capsys):
    """judge-check --output, then generate --judge-check with the checked judge: the raw card states the check's
    agreement figures (a check of another judge is not claimed for this run)."""
    import pyarrow.parquet as pq

    from tests.pipeline_helpers import make_rows

    monkeypatch.delenv("HF_TOKEN", raising=False)
    tasks = judge_labels.label_tasks(raw_table(12), 10)
    path, _ = _labels_file(tmp_path, _prefer_model(tasks[:6]))
    check = tmp_path / "check.json"
    assert (
        main(
            [
                "judge-check",
                "--labels",
                str(path),
                "--judge",
                "good-judge",
                "--judge-base-url",
                judge_server.base_url,
                "--output",
                str(check),
            ]
        )
        == 0
    )
    source = tmp_path / "filtered.parquet"
    pq.write_table(make_rows(3), source)
    base = [
        "generate",
        str(source),
        "--base-url",
        judge_server.base_url,
        "--model",
        "good-judge",
        "--judge-check",
        str(check),
        "--no-hedge",
    ]
    assert main([*base, "-o", str(tmp_path / "run")]) in (0, 1)
    card = (tmp_path / "run" / "README.md").read_text(encoding="utf-8")
    assert "Judge check before the run (6 rows" in card and "`good-judge` agreed with the people on 100%" in card
    # the check scored good-judge only: a run judged by other-judge does not carry it
    assert main([*base, "--judge-model", "other-judge", "-o", str(tmp_path / "run2")]) in (0, 1)
    assert "Judge check before the run" not in (tmp_path / "run2" / "README.md").read_text(encoding="utf-8")
    # a file that is not a check is refused with a message that says how to make one
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    assert main([*base, "--judge-check", str(bad), "-o", str(tmp_path / "run3")]) == 2
    assert "python -m pipeline judge-check" in capsys.readouterr().err
