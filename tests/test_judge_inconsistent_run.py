"""Rows a biased judge marks inconsistent, through a real run into the raw table and on to the export.

The error-injecting OpenAI-compatible server (``tests/fixtures/faulty_server.FakeLLMServer``) answers as a judge
with a position bias on some rows: on an odd-numbered prompt the answer shown first gets two extra points, so
judging in both orders (``judge_order="both"``) makes its preference flip; on an even-numbered prompt it rates by
content only (human answer 2, model answer 3) and stays consistent. The run goes through the real executor
(``pipeline.generate.run_async``, real HTTP, structured output); the raw table is written and read back as a file,
and the export drops the inconsistent rows by default, or keeps them when asked.
"""

from __future__ import annotations

import asyncio
import json
import re

from pipeline.core import schema, tablefiles
from pipeline.export import ExportRules, build_export
from pipeline.generate import Checkpoint, RunSettings, run_async
from pipeline.inference import Backend
from tests.fixtures.faulty_server import FakeLLMServer, request_schema
from tests.pipeline_helpers import content_rating, is_judge, judge_prompt, make_rows, user_text

ROWS = 8
FIRST_PLACE_BONUS = 2


def biased_judge(request: dict) -> str:
    """Generations: "Antwoord van <model>: <prompt>". Judge calls: JSON ratings in the order the texts are shown;
    odd-numbered prompts give the first text shown a bonus (position bias)."""
    messages = request["messages"]
    if not is_judge(messages):
        return f"Antwoord van {request.get('model')}: {messages[-1]['content']}"
    assert request_schema(request) is not None, "the judge did not ask for structured output"
    annotation = user_text(messages).split("## Annotation", 1)[1]
    texts = re.findall(r"^<text \d+> (.*)$", annotation, flags=re.M)
    biased = int(judge_prompt(messages).split()[-1]) % 2 == 1
    ratings = [
        min(5, content_rating(text) + (FIRST_PLACE_BONUS if biased and shown == 0 else 0))
        for shown, text in enumerate(texts)
    ]
    return json.dumps({"ratings": [{"rating": r, "rationale": f"rated {r}."} for r in ratings]})


def test_a_biased_judge_marks_rows_inconsistent_and_the_export_drops_them(tmp_path):
    rows = make_rows(ROWS)
    with FakeLLMServer(responder=biased_judge) as srv:
        backend = Backend("openai", "fake-model", srv.base_url)
        settings = RunSettings(generators=(backend,), judge=backend, judge_order="both", concurrency=4)
        handle = asyncio.run(run_async(rows, settings, Checkpoint(tmp_path / "run.jsonl"), detect=None))
        judge_calls = sum(1 for r in srv.requests if isinstance(r.json, dict) and is_judge(r.json["messages"]))
    assert handle.snapshot().state == "done", handle.snapshot().message
    assert judge_calls == 2 * ROWS, "the judge was not asked in both orders"

    tablefiles.write_table(handle.table(), tmp_path / "raw.parquet")
    raw = tablefiles.read_table(tmp_path / "raw.parquet")
    by_prompt = {row["prompt"]: row for row in raw.to_pylist()}
    odd = {f"prompt {i}" for i in range(ROWS) if i % 2 == 1}
    for prompt, row in by_prompt.items():
        assert row["status"] == schema.STATUS_OK, row["error"]
        assert row["judge_inconsistent"] is (prompt in odd), (prompt, row["judge_inconsistent"], row["ratings"])
    # the biased rows' ratings are the mean over both orders: human (2 + 4) / 2, model (5 + 3) / 2
    assert by_prompt["prompt 1"]["ratings"] == [3.0, 4.0]
    assert by_prompt["prompt 0"]["ratings"] == [2.0, 3.0]

    dropped = build_export(raw, rules=ExportRules())
    assert dropped.counts.get("inconsistent") == len(odd)
    assert {pair.prompt for pair in dropped.pairs} == set(by_prompt) - odd

    kept = build_export(raw, rules=ExportRules(drop_inconsistent=False))
    assert not kept.counts.get("inconsistent")
    assert {pair.prompt for pair in kept.pairs} == set(by_prompt)
    flagged = {row["prompt"] for row in raw.to_pylist() if row["judge_inconsistent"]}
    assert flagged == odd  # the raw table keeps the flag for every kept inconsistent pair
    for pair in kept.pairs:
        assert pair.chosen.startswith("Antwoord van fake-model") and pair.margin == 1.0
