"""Pure parts of the pipeline step: the UltraFeedback judge's prompt and parsing, leaderboard and plot data, the
raw card and the generated pipeline.py, and the `generate` CLI's configuration handling."""

from __future__ import annotations

import ast
import logging

import pyarrow as pa
import pytest

from pipeline import judge
from pipeline.core import schema
from pipeline.generate import RunSettings, raw_schema, recipe, results
from pipeline.generate import card as raw_card
from pipeline.generate import meta as run_meta
from pipeline.inference import Backend
from tests.pipeline_helpers import judge_reply

# --- judge ----------------------------------------------------------------------------------------------------


def test_judge_prompt_is_distilabels_ultrafeedback_with_texts_in_order():
    messages = judge.judge_messages("Wat is 2+2?", ["vier", "4, natuurlijk", "een auto"])
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "3 text outputs" in messages[0]["content"]
    annotation = messages[1]["content"].split("## Annotation")[1]
    assert "Instruction: Wat is 2+2?" in annotation
    assert (
        annotation.index("<text 1> vier")
        < annotation.index("<text 2> 4, natuurlijk")
        < annotation.index("<text 3> een auto")
    )
    assert "human" not in messages[1]["content"].lower()  # the prompt does not say which text is human
    honesty = judge.judge_messages("q", ["a", "b"], "honesty")
    assert honesty[1]["content"] != messages[1]["content"]
    with pytest.raises(ValueError, match="aspect"):
        judge.judge_messages("q", ["a"], "beauty")


@pytest.mark.parametrize(
    ("reply", "ratings"),
    [
        (judge_reply(2, [5, 1]), [5, 1]),
        ("Here you go.\n\n" + judge_reply(2, [3, 4]) + "\n\nHope this helps!", [3, 4]),  # preamble/closing ignored
        (
            "#### Output for Text 1\nRating: 4 (very good)\nRationale: fine.\n\n#### Output for Text 2\nRating: 2\n"
            "Rationale: meh.",
            [4, 2],
        ),
    ],
)
def test_parse_accepts_one_rating_per_text(reply, ratings):
    verdict = judge.parse_judgement(reply, 2)
    assert verdict.parsed and verdict.ratings == ratings and all(verdict.rationales)


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("", "empty reply"),
        ("Both are great answers, I would rate them highly.", "expected 2"),
        (judge_reply(3), "expected 2"),
        ("Rating: 7\nRationale: x\n\nRating: 2\nRationale: y", "integers from 1 to 5"),
        ("Rating: excellent\nRationale: x\n\nRating: 2\nRationale: y", "parser failed"),
        ("Rating: N/A\nRationale: x\n\nRating: 2\nRationale: y", "integers from 1 to 5"),
    ],
)
def test_parse_rejects_what_is_not_a_full_rating(reply, why):
    verdict = judge.parse_judgement(reply, 2)
    assert not verdict.parsed and verdict.ratings == [None, None]
    assert why in verdict.error and "judge output unparseable" in verdict.error
    if reply:
        assert reply[:20] in verdict.error  # the raw reply is kept for people to read


def test_parse_helpfulness_aspect_combines_rationales():
    reply = (
        "#### Output for Text 1\nType: 1, 2\nRationale: clear\nRating: 4\nRationale: correct\n\n"
        "#### Output for Text 2\nType: None\nRationale: vague\nRating: 2\nRationale: wrong"
    )
    verdict = judge.parse_judgement(reply, 2, "helpfulness")
    assert verdict.parsed and verdict.ratings == [4, 2] and verdict.rationales == ["clear\ncorrect", "vague\nwrong"]


# --- leaderboard and plots ------------------------------------------------------------------------------------


def _raw(rows: list[dict]) -> pa.Table:
    base = {
        "id": "x",
        "prompt": "p",
        "system_prompt": "",
        "target_language": "nld",
        "rationales": None,
        "detected_languages": None,
        "language_confidences": None,
        "judge_model": "j",
        "aspect": "overall-rating",
        "status": "ok",
        "error": "",
    }
    full = []
    for i, r in enumerate(rows):
        n = len(r["response_sources"])
        rec = {**base, "id": f"id{i}", **r}
        rec["rationales"] = rec["rationales"] or [None] * n
        rec["detected_languages"] = rec["detected_languages"] or [None] * n
        rec["language_confidences"] = rec["language_confidences"] or [None] * n
        full.append(rec)
    return pa.Table.from_pylist(full, schema=raw_schema())


def test_leaderboard_per_source_with_human_first():
    raw = _raw(
        [
            {
                "responses": ["h1", "a1", "b1"],
                "response_sources": ["human", "m/a", "m/b"],
                "ratings": [4, 5, 2],
                "language_match": [True, True, False],
            },
            {
                "responses": ["h2", "a2", "b2"],
                "response_sources": ["human", "m/a", "m/b"],
                "ratings": [5, 3, 5],
                "language_match": [True, None, True],
            },
            {
                "responses": ["h3", "", "b3"],
                "response_sources": ["human", "m/a", "m/b"],
                "ratings": [None, None, None],
                "language_match": [True, None, False],
                "status": "generation_failed",
                "error": "m/a: boom",
            },
        ]
    )
    board = results.leaderboard(raw).set_index("source")
    assert list(board.index) == ["human", "m/a", "m/b"]
    assert board.loc["human", "mean_rating"] == 4.5 and board.loc["m/a", "mean_rating"] == 4.0
    assert board.loc["m/b", "mean_rating"] == 3.5
    assert board.loc["m/a", "responses"] == 2 and board.loc["m/a", "rated"] == 2  # the failed one is not counted
    assert board.loc["human", "best_rated_share"] == 0.5 and board.loc["m/b", "best_rated_share"] == 0.5
    assert board.loc["m/a", "best_rated_share"] == 0.5
    assert set(board["judged_rows"]) == {2}  # the denominator the UI shows beside each share ("1/2 (50%)")
    assert board.loc["human", "language_match_rate"] == 1.0
    assert board.loc["m/b", "language_match_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert board.loc["m/a", "language_checked"] == 1
    dist = results.rating_distribution(raw)
    assert len(dist) == 15 and dist.query("source == 'm/b' and rating == '5'")["count"].item() == 1
    assert results.counts_by_status(raw) == {"ok": 2, "generation_failed": 1, "judge_failed": 0, "judge_unparseable": 0}
    assert results.leaderboard(raw.slice(0, 0)).empty


# --- card and pipeline.py -------------------------------------------------------------------------------------


def _settings(system_prompt: str = "Antwoord in het Nederlands.") -> RunSettings:
    return RunSettings(
        generators=(
            Backend("serverless", "org/gen", provider="together"),
            Backend("openai", "local-model", "http://user:secret@127.0.0.1:8000/v1?key=abc"),
        ),
        judge=Backend("endpoint", "org/judge", "https://xyz.endpoints.huggingface.cloud"),
        system_prompt=system_prompt,
        max_new_tokens=300,
    )


def test_card_and_script_carry_the_settings_but_no_secrets():
    hostile = 'Say """hi""" \'\'\' {language} ``` <script>alert(1)</script>\nimport os; os.system("x")'
    meta = run_meta.build_raw_meta(
        _settings(hostile),
        None,
        source=schema.Provenance(dataset="CohereForAI/aya_dataset", split="train", license="apache-2.0"),
        language="Dutch",
        language_code="nld",
    )
    card = raw_card.render_raw_card(meta)
    script = recipe.render_pipeline_script(meta, data="alice/aya-dutch-dpo-raw")
    for text in (card, script, meta.to_json()):
        assert "secret" not in text and "key=abc" not in text  # credentials in URLs are stripped
    assert "language:\n- nl" in card and "license: apache-2.0" in card
    assert "`org/gen`, `local-model`" in card and "`org/judge`" in card
    assert "````text\n" + hostile + "\n````" in card  # fenced so it stays text
    tree = ast.parse(script)  # valid Python whatever the system prompt says
    consts = {
        n.targets[0].id: ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) and n.targets[0].id.isupper()
    }
    assert consts["SYSTEM_PROMPT"] == hostile
    assert consts["DATA"] == "alice/aya-dutch-dpo-raw" and consts["TARGET_LANGUAGE"] == "nl"
    assert consts["GENERATORS"][0] == {"kind": "serverless", "model": "org/gen", "base_url": "", "provider": "together"}
    assert consts["GENERATORS"][1]["base_url"] == "http://127.0.0.1:8000/v1"
    assert consts["JUDGE"]["kind"] == "endpoint" and consts["GENERATION_KWARGS"]["max_new_tokens"] == 300
    assert "os.environ" in script and "HF_TOKEN" in script and "GroupColumns" in script and "UltraFeedback" in script


# --- CLI configuration ----------------------------------------------------------------------------------------


def test_cli_config_file_and_bad_input(tmp_path, capsys):
    import pyarrow.parquet as pq

    from pipeline import cli
    from tests.fixtures.faulty_server import FakeLLMServer
    from tests.pipeline_helpers import make_rows
    from tests.test_generate_services import ultrafeedback_responder

    pq.write_table(make_rows(6), tmp_path / "in.parquet")
    assert (
        cli.main(
            [
                "generate",
                str(tmp_path / "missing.parquet"),
                "-o",
                str(tmp_path / "o"),
                "--model",
                "m",
                "--base-url",
                "http://127.0.0.1:9/v1",
            ]
        )
        == 2
    )
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["generate", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "o"), "--model", "org/m"]) == 2
    assert "HF_TOKEN" in capsys.readouterr().err  # serverless without a token: say what to do
    (tmp_path / "bad.yaml").write_text("modle: x\n")
    assert cli.main(["generate", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "unknown setting(s) modle" in capsys.readouterr().err
    with FakeLLMServer(responder=ultrafeedback_responder) as srv:
        (tmp_path / "run.yaml").write_text(
            f"input: {tmp_path / 'in.parquet'}\noutput: {tmp_path / 'out'}\n"
            f"generators:\n  - {{model: gen-a, backend: openai, base_url: '{srv.base_url}'}}\n"
            f"  - {{model: gen-b, backend: openai, base_url: '{srv.base_url}'}}\n"
            f"judge: {{model: judge, backend: openai, base_url: '{srv.base_url}'}}\n"
            "system_prompt: Antwoord in het Nederlands.\nmax_rows: 4\nconcurrency: 3\n"
        )
        assert cli.main(["generate", "--config", str(tmp_path / "run.yaml"), "--dry-run"]) == 0
        assert "4 of 4 rows to run: about 12 calls" in capsys.readouterr().err
        assert cli.main(["generate", "--config", str(tmp_path / "run.yaml")]) == 0
        err = capsys.readouterr().err
        assert "Done: 4 of 4 rows ok" in err
        # flags override the file: a larger row limit resumes and only runs the new rows
        before = srv.chat_requests
        assert cli.main(["generate", "--config", str(tmp_path / "run.yaml"), "--max-rows", "6"]) == 0
        assert srv.chat_requests - before == 2 * 3
    table = pq.read_table(tmp_path / "out" / "raw.parquet")
    assert table.num_rows == 6 and table.column_names == list(schema.RAW_COLUMNS)
    assert table.column("response_sources").to_pylist()[0] == ["human", "gen-a", "gen-b"]
    meta = schema.RunMeta.from_json((tmp_path / "out" / "dpo_studio.json").read_text())
    assert meta.counts["ok"] == 6 and meta.models == ["gen-a", "gen-b"]


def test_logs_never_carry_credentials(tmp_path, caplog):
    import asyncio

    from pipeline.generate import Checkpoint, run_async
    from tests.fixtures.faulty_server import FakeLLMServer, Fault
    from tests.pipeline_helpers import make_rows
    from tests.test_generate_services import FAST_RETRY, ultrafeedback_responder

    canary = "sk-CANARY-in-the-logs-0042"
    caplog.set_level(logging.DEBUG)
    faults = iter([Fault.status(503), Fault.status(401, message=f"bad key {canary}")] + [None] * 100)
    with FakeLLMServer(responder=ultrafeedback_responder, fault_for=lambda r: next(faults)) as srv:
        backend = Backend("openai", "m", srv.base_url)
        settings = RunSettings(generators=(backend,), judge=backend, concurrency=1)
        handle = asyncio.run(
            run_async(
                make_rows(4),
                settings,
                Checkpoint(tmp_path / "c.jsonl"),
                retry=FAST_RETRY,
                detect=None,
                api_keys={srv.base_url: canary},
            )
        )
        assert srv.requests[0].headers.get("authorization") == f"Bearer {canary}"  # the key was used...
    snap = handle.snapshot()
    assert snap.state == "paused"  # 401: paused, with the reason
    assert canary not in snap.message and "***" in snap.message
    assert canary not in caplog.text  # ...and never logged
    for path in tmp_path.iterdir():
        assert canary not in path.read_text()
