"""The judge (pipeline/judge.py): structured verdicts and their validation, one retry, order randomisation, both
orders and flips, pairwise mode, falling back to text; what the run, export, results and cards make of it.

Pure tests use scripted chat functions; the fall-back and dialect tests use the error-injecting server
(``tests/fixtures/faulty_server.py``); the SmolLM2 tests run structured output for real on llama.cpp."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pyarrow as pa
import pytest

from pipeline import judge
from pipeline.core import schema
from pipeline.export import ExportRules, select_pairs
from pipeline.generate import Checkpoint, RunSettings, run_async
from pipeline.inference import AsyncChat, Backend, ChatResult, GenParams, RetryPolicy
from pipeline.judge import report
from tests.fixtures.faulty_server import FakeLLMServer
from tests.pipeline_helpers import is_judge, judge_answer, make_rows

PARAMS = GenParams(max_new_tokens=200, temperature=0.1, top_p=1.0, seed=3)
FAST_RETRY = RetryPolicy(max_attempts=2, max_total_s=10, base_backoff_s=0.01, max_backoff_s=0.05)


def backend(name: str = "judge-model") -> Backend:
    return Backend("openai", name, "http://127.0.0.1:9/v1")


class Scripted:
    """A judge chat function: ``reply(messages, params) -> text``; records (messages, params) per call."""

    def __init__(self, reply):
        self.reply = reply
        self.calls: list[tuple[list[dict], GenParams]] = []

    async def __call__(self, b: Backend, messages: list[dict], params: GenParams) -> ChatResult:
        self.calls.append((messages, params))
        return ChatResult(self.reply(messages, params), "stop", 50, 20, 0.0)


def shown_texts(messages: list[dict]) -> list[str]:
    annotation = messages[-1]["content"].split("## Annotation", 1)[-1]
    return [line.split("> ", 1)[1] for line in annotation.splitlines() if line.startswith("<text ")]


def first_shown_wins(messages: list[dict], params: GenParams) -> str:
    """A judge with a pure position bias: the first text shown gets 5, the others 1 (or A always wins)."""
    if "[The Start of Assistant A's Answer]" in messages[-1]["content"]:
        return json.dumps({"reason": "A came first", "winner": "A"})
    n = len(shown_texts(messages))
    return json.dumps({"ratings": [{"rating": 5 if i == 0 else 1, "rationale": "first"} for i in range(n)]})


def by_content(messages: list[dict], params: GenParams) -> str:
    return judge_answer(messages, structured=params.response_format is not None)


def run(coro):
    return asyncio.run(coro)


def judge_row(chat, texts=("human answer", "model-b says: hi"), *, state=None, **kwargs):
    row_id = kwargs.pop("row_id", "r1")
    return run(
        judge.judge_row(
            chat,
            backend(),
            PARAMS,
            prompt="hi",
            texts=list(texts),
            row_id=row_id,
            structured=state or judge.StructuredState(),
            **kwargs,
        )
    )


# --- order ----------------------------------------------------------------------------------------------------
def test_presentation_order_is_a_seeded_permutation_that_varies_by_row():
    assert judge.presentation_order("abc", 3) == judge.presentation_order("abc", 3)
    assert sorted(judge.presentation_order("abc", 5)) == [0, 1, 2, 3, 4]
    firsts = Counter(judge.presentation_order(f"row-{i}", 2)[0] for i in range(400))
    assert 140 <= firsts[0] <= 260 and firsts[0] + firsts[1] == 400  # the human answer is first about half the time
    assert judge.policy_orders("abc", 3, "both") == [
        judge.presentation_order("abc", 3),
        judge.presentation_order("abc", 3)[::-1],
    ]
    with pytest.raises(ValueError, match="order"):
        judge.policy_orders("abc", 2, "sometimes")


def test_texts_are_shown_in_the_recorded_order_and_ratings_map_back_to_the_sources():
    chat = Scripted(by_content)
    texts = ["human answer", "model-a says: x", "model-b says: y"]
    verdict = judge_row(chat, texts, row_id="row-7")
    ((messages, params),) = chat.calls
    order = judge.presentation_order("row-7", 3)
    assert verdict.orders == [order] and shown_texts(messages) == [texts[i] for i in order]
    assert verdict.ratings == [2.0, 3.0, 4.0] and verdict.rationales == ["rated 2.", "rated 3.", "rated 4."]
    assert verdict.inconsistent is None and verdict.structured and verdict.ok
    assert json.loads(params.response_format.schema_json)["properties"]["ratings"]["minItems"] == 3


# --- both orders, flips ---------------------------------------------------------------------------------------
def test_both_orders_average_and_a_position_biased_judge_is_inconsistent():
    biased = judge_row(Scripted(first_shown_wins), order="both")
    assert biased.ok and biased.inconsistent is True and biased.ratings == [3.0, 3.0]
    assert biased.orders[1] == biased.orders[0][::-1]
    fair = judge_row(Scripted(by_content), order="both")
    assert fair.ok and fair.inconsistent is False and fair.ratings == [2.0, 4.0]
    assert judge.flip_rate([biased.inconsistent, fair.inconsistent, None]) == 0.5
    assert judge.flip_rate([None, None]) is None


def test_aggregation_helpers():
    assert judge.mean_ratings([[5.0, 1.0], [2.0, 4.0]]) == [3.5, 2.5]
    assert judge.mean_ratings([[5.0, None], [2.0, 4.0]]) == [3.5, None]
    assert judge.preferred([3.0, 5.0, 1.0]) == 1 and judge.preferred([5.0, 5.0, 1.0]) is None
    assert judge.is_flip([[5.0, 1.0], [5.0, 2.0]]) is False
    assert judge.is_flip([[5.0, 1.0], [3.0, 3.0]]) is True  # a preference that becomes a tie changed
    assert judge.is_flip([[5.0, 1.0]]) is None


# --- validation, retry ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ('{"ratings": [{"rating": 7, "rationale": "x"}, {"rating": 2, "rationale": "y"}]}', "rating of text 1 is 7"),
        ('{"ratings": [{"rating": 4, "rationale": "x"}]}', "a rating for each of the 2 texts, got 1"),
        ('{"ratings": [{"rating": 4, "rationale": "x"}, {"rationale": "y"}]}', "text 2 has no rating"),
        ('{"ratings": [{"rating": "4", "rationale": "x"}, {"rating": 2}]}', "rating of text 1 is '4'"),
        ('{"ratings": [{"rating": 4, "rationale": "x"}, {"rating": 2, "rat', "not valid JSON"),
        ('{"verdict": "good"}', 'a "ratings" list'),
        ("", "empty reply"),
    ],
)
def test_structured_ratings_are_validated_with_a_reason(reply, why):
    verdict = judge.parse_structured_ratings(reply, 2)
    assert not verdict.parsed and verdict.ratings == [None, None]
    assert why in verdict.error and "judge output unparseable" in verdict.error


def test_structured_ratings_accept_a_fenced_object():
    reply = '```json\n{"ratings": [{"rating": 4, "rationale": "ok"}, {"rating": 1, "rationale": ""}]}\n```'
    verdict = judge.parse_structured_ratings(reply, 2)
    assert verdict.parsed and verdict.ratings == [4, 1] and verdict.rationales == ["ok", None]


def test_an_unparseable_structured_reply_is_asked_once_more_then_kept_raw():
    bad = '{"ratings": [{"rating": 7, "rationale": "seven"}, {"rating": 2, "rationale": "y"}]}'
    good = json.dumps({"ratings": [{"rating": 4, "rationale": "a"}, {"rating": 2, "rationale": "b"}]})
    replies = iter([bad, good])
    chat = Scripted(lambda m, p: next(replies))
    verdict = judge_row(chat, order="random")
    assert verdict.ok and sorted(verdict.ratings) == [2.0, 4.0] and len(chat.calls) == 2
    assert [p.seed for _, p in chat.calls] == [3, 4]  # the retry does not repeat the same sampling
    always_bad = Scripted(lambda m, p: bad)
    verdict = judge_row(always_bad)
    assert verdict.status == schema.STATUS_JUDGE_UNPARSEABLE and len(always_bad.calls) == 2
    assert verdict.ratings == [None, None] and "after a retry" in verdict.error and "seven" in verdict.error
    assert verdict.structured  # the backend does speak JSON: no fall-back for a bad verdict


def test_a_reply_cut_off_is_retried_with_a_larger_budget():
    calls = []

    async def chat(b, messages, params):
        calls.append(params.max_new_tokens)
        if len(calls) == 1:
            return ChatResult('{"ratings": [{"rating": 4, "rationale": "aaaa', "length", 50, 200, 0.0)
        return ChatResult(json.dumps({"ratings": [{"rating": 4, "rationale": "a"}] * 2}), "stop", 50, 20, 0.0)

    assert judge_row(chat).ok and calls == [200, 400]


def test_replies_that_ignore_the_schema_switch_the_backend_to_text_for_good():
    state = judge.StructuredState()
    text_judge = Scripted(lambda m, p: judge_answer(m, structured=False))  # a server that ignores response_format
    first = judge_row(text_judge, state=state)
    assert first.ok and not first.structured and first.ratings == [2.0, 4.0]
    assert "ignore the JSON schema" in state.notice(backend()) and len(text_judge.calls) == 1
    second = judge_row(text_judge, state=state, row_id="r2")
    assert second.ok and text_judge.calls[-1][1].response_format is None  # no more structured requests
    assert "Rating:" in text_judge.calls[-1][0][-1]["content"] and "JSON" not in text_judge.calls[-1][0][-1]["content"]
    assert judge.StructuredState().notice(backend()) == ""  # another state (another process) is not affected


def test_text_only_state_never_asks_for_json():
    chat = Scripted(by_content)
    verdict = judge_row(chat, state=judge.StructuredState(enabled=False))
    assert verdict.ok and not verdict.structured and chat.calls[0][1].response_format is None


# --- pairwise -------------------------------------------------------------------------------------------------
def test_pairwise_compares_the_human_answer_with_each_model_answer():
    chat = Scripted(by_content)
    texts = ["human answer", "model-a says: x", "model-b says: y"]
    verdict = judge_row(chat, texts, mode="pairwise", order="both")
    assert verdict.ok and len(chat.calls) == 4 and verdict.inconsistent is False
    assert verdict.winners == ["model", "model"] and verdict.ratings == [1.0, 5.0, 5.0]
    assert sorted(map(sorted, verdict.orders)) == [[0, 1], [0, 1], [0, 2], [0, 2]]
    biased = judge_row(Scripted(first_shown_wins), mode="pairwise", order="both")
    assert biased.inconsistent is True and biased.winners == ["tie"] and biased.ratings == [3.0, 3.0]


@pytest.mark.parametrize(
    ("reply", "winner"),
    [
        ("A is clearly better. [[A]]", "A"),
        ("Both fine [[C]]", "tie"),
        ("[[tie]]", "tie"),
        ("[[A]] or [[B]]", None),
        ("B, I think.", None),
    ],
)
def test_pairwise_text_verdicts(reply, winner):
    verdict = judge.parse_text_pair(reply)
    assert verdict.winner == winner and verdict.parsed == (winner is not None)


def test_pairwise_structured_winner_must_be_a_b_or_tie():
    assert judge.parse_structured_pair('{"reason": "r", "winner": "B"}').winner == "B"
    bad = judge.parse_structured_pair('{"reason": "r", "winner": "C"}')
    assert not bad.parsed and "must be one of A, B, tie" in bad.error


# --- export, results, cards -----------------------------------------------------------------------------------
def _raw_row(i: int, ratings, mode=None, inconsistent=None, sources=("human", "m1")) -> dict:
    n = len(ratings)
    return {
        "id": f"r{i}",
        "prompt": f"p{i}",
        "system_prompt": "",
        "target_language": "nld",
        "responses": [f"answer {i}.{k}" for k in range(n)],
        "response_sources": list(sources),
        "ratings": ratings,
        "rationales": [None] * n,
        "detected_languages": ["nld"] * n,
        "language_confidences": [0.9] * n,
        "language_match": [True] * n,
        "judge_model": "j",
        "aspect": "overall-rating",
        "status": "ok",
        "error": "",
        "judge_mode": mode,
        "judge_orders": [[0, 1], [1, 0]] if inconsistent is not None else None,
        "judge_inconsistent": inconsistent,
        "judge_structured": True,
        "judge_winners": None,
    }


def test_export_turns_pairwise_verdicts_into_pairs_and_drops_inconsistent_rows():
    raw = pa.Table.from_pylist(
        [
            _raw_row(1, [1.0, 5.0], "pairwise"),  # the model won
            _raw_row(2, [5.0, 1.0], "pairwise", True),  # flipped between the orders
            _raw_row(3, [3.0, 3.0], "pairwise", False),  # a tie
            _raw_row(4, [3.0, 5.0, 1.0], "pairwise", None, ("human", "m1", "m2")),  # m1 beat the human, m2 lost
            _raw_row(5, [4.5, 2.5], "ratings", False),
        ],
        schema=schema.raw_schema(),
    )
    sel = select_pairs(raw)
    got = {p.source_id: (p.chosen_model, p.rejected_model) for p in sel.pairs}
    assert got == {"r1": ("m1", "human"), "r4": ("m1", "human"), "r5": ("human", "m1")}
    assert sel.counts["inconsistent"] == 1 and sel.counts["tie"] == 1
    every = select_pairs(raw, rules=ExportRules(pairing="all_pairs", drop_inconsistent=False))
    assert {(p.source_id, p.chosen_model, p.rejected_model) for p in every.pairs if p.source_id == "r4"} == {
        ("r4", "m1", "human"),
        ("r4", "human", "m2"),
    }  # never m1 against m2: they were not compared
    assert any(p.source_id == "r2" for p in every.pairs)


def test_older_raw_tables_without_judge_columns_still_conform_and_export():
    old = [{k: v for k, v in _raw_row(1, [2, 4]).items() if k not in schema.JUDGE_COLUMNS}]
    types = [f for f in schema.raw_schema() if f.name not in schema.JUDGE_COLUMNS]
    table = pa.Table.from_pylist(
        old,
        schema=pa.schema(types).set(
            [f.name for f in types].index("ratings"), pa.field("ratings", pa.list_(pa.int64()))
        ),
    )
    conformed = schema.conform_raw(table)
    assert conformed.column_names == list(schema.RAW_COLUMNS)
    assert conformed.column("ratings").to_pylist() == [[2.0, 4.0]]
    assert conformed.column("judge_mode").to_pylist() == [None]
    assert [p.chosen_model for p in select_pairs(table).pairs] == ["m1"]
    assert report.judge_stats(table).order == "fixed"


def test_judge_stats_leaderboard_and_card_lines():
    rows = [
        _raw_row(1, [1.0, 5.0], "ratings", True),
        _raw_row(2, [4.0, 2.0], "ratings", False),
        {
            **_raw_row(3, [None, None], "ratings", None),
            "status": schema.STATUS_JUDGE_UNPARSEABLE,
            "judge_structured": False,
            "judge_orders": [[1, 0], [0, 1]],
        },
    ]
    raw = pa.Table.from_pylist(rows, schema=schema.raw_schema())
    stats = report.judge_stats(raw)
    counted = (stats.judged, stats.parsed, stats.structured, stats.text, stats.both_orders, stats.flips)
    assert counted == (3, 2, 2, 1, 2, 1)
    assert stats.order == "both" and stats.flip_rate == 0.5
    board = report.judge_leaderboard(raw).to_dict("records")
    assert board == [
        {
            "judge_model": "j",
            "mode": "ratings",
            "order": "both",
            "judged": 3,
            "parse_rate": 0.667,
            "structured_share": 0.667,
            "both_orders": 2,
            "flip_rate": 0.5,
        }
    ]
    check = schema.JudgeCheck(
        rows=12,
        source="labels",
        language="nld",
        mode="ratings",
        aspect="overall-rating",
        judges=(schema.JudgeScore(model="j", backend="openai", rows=12, parsed=12, compared=10, agree=8, kappa=0.6),),
        chosen="j",
    )
    text = "\n".join(report.judge_card_lines(stats, structured_asked=True, check=check, judge_model="j"))
    for part in (
        "Judge mode: ratings",
        "structured output for 2 of 3",
        "both orders",
        "Parse rate: 67%",
        "Flip rate: 50%",
        "agreed with the people on 80% (8 of 10), Cohen's kappa 0.60",
    ):
        assert part in text


# --- the run, against the error-injecting server --------------------------------------------------------------
def _judge_text_responder(request: dict) -> str:
    messages = request["messages"]
    if is_judge(messages):
        return judge_answer(messages, structured="response_format" in request)
    return f"model-b says: {messages[-1]['content']}"


def test_a_backend_that_answers_422_to_response_format_falls_back_and_the_run_finishes(tmp_path):
    rows = make_rows(6)
    with FakeLLMServer(responder=_judge_text_responder, reject_response_format=422) as srv:
        b = Backend("openai", "model-b", srv.base_url)
        settings = RunSettings(generators=(b,), judge=b, concurrency=1, judge_order="both")
        handle = asyncio.run(run_async(rows, settings, Checkpoint(tmp_path / "c.jsonl"), retry=FAST_RETRY, detect=None))
        sent = [r.json for r in srv.requests if r.path.endswith("/chat/completions") and is_judge(r.json["messages"])]
    snap = handle.snapshot()
    assert snap.state == "done", snap.message
    table = handle.table().to_pylist()
    assert [r["status"] for r in table] == ["ok"] * 6
    assert all(r["judge_structured"] is False and r["ratings"] == [2.0, 4.0] for r in table)
    assert all(r["judge_inconsistent"] is False for r in table) and snap.judged_both == 6 and snap.flip_rate == 0
    assert any("refused structured output (422)" in n for n in snap.notices)
    formats = [sorted(r["response_format"]) if "response_format" in r else None for r in sent]
    assert formats[0] == ["schema", "type"] and ["type", "value"] in formats  # llama.cpp's form, then the next one
    first_text = formats.index(None)
    assert all(f is None for f in formats[first_text:])  # once it fell back, it never asked for JSON again
    assert first_text <= 8  # only calls already in flight (<= 4 here) were refused, each dialect at most once each


def test_the_next_dialect_is_tried_before_giving_up(faulty_server):
    faulty_server.responder = _judge_text_responder
    seen = []

    def fault_for(request):
        fmt = request.get("response_format")
        seen.append(fmt)
        if fmt is not None and "schema" in fmt:  # refuse llama.cpp's form, accept the next one
            from tests.fixtures.faulty_server import Fault

            return Fault.status(422, message="unknown field schema")
        return None

    faulty_server.fault_for = fault_for
    b = Backend("openai", "dialect-test", faulty_server.base_url)

    async def go():
        async with AsyncChat(b, None, retry=FAST_RETRY) as chat:
            return await judge.judge_row(
                lambda bk, m, p: chat(m, p),
                b,
                PARAMS,
                prompt="hi",
                texts=["human answer", "model-b says: hi"],
                row_id="r",
                structured=judge.StructuredState(),
            )

    verdict = asyncio.run(go())
    assert verdict.ok and verdict.structured
    assert "schema" in seen[0] and seen[1] == {"type": "json_object", "value": seen[0]["schema"]}


def test_a_fixed_reply_with_a_rating_of_7_is_unparseable_not_scored(tmp_path):
    reply = {"ratings": [{"rating": 7, "rationale": "great"}, {"rating": 2, "rationale": "meh"}]}
    with FakeLLMServer(reply_json=reply) as srv:
        b = Backend("openai", "fixed-json", srv.base_url)
        settings = RunSettings(generators=(b,), judge=b, concurrency=1)
        handle = asyncio.run(
            run_async(make_rows(2), settings, Checkpoint(tmp_path / "c.jsonl"), retry=FAST_RETRY, detect=None)
        )
    rows = handle.table().to_pylist()
    assert [r["status"] for r in rows] == [schema.STATUS_JUDGE_UNPARSEABLE] * 2
    assert all(r["ratings"] == [None, None] and "rating of text 1 is 7" in r["error"] for r in rows)
    assert all(r["judge_structured"] is True for r in rows)  # JSON came back: no fall-back to text


# --- SmolLM2 on llama.cpp: structured output for real -----------------------------------------------------------
DUTCH = (
    "Wat is de hoofdstad van Nederland?",
    ["De hoofdstad van Nederland is Amsterdam.", "Ik hou van fietsen in de regen."],
)


def _real(server, **kwargs):
    b = server.backend()
    params = GenParams(max_new_tokens=judge.default_max_new_tokens(2), temperature=0.1, top_p=1.0, seed=0)

    async def go():
        async with AsyncChat(b, None, timeout=300) as chat:
            return await judge.judge_row(
                lambda bk, m, p: chat(m, p),
                b,
                params,
                prompt=DUTCH[0],
                texts=DUTCH[1],
                row_id="nld-1",
                structured=judge.StructuredState(),
                **kwargs,
            )

    return asyncio.run(go())


def test_smollm2_gives_a_structured_rating_verdict(llm_server):
    verdict = _real(llm_server, order="both")
    assert verdict.status == schema.STATUS_OK, verdict.error
    assert verdict.structured and all(1 <= r <= 5 for r in verdict.ratings)
    # judged in both orders: the verdict says whether the preference flipped (a bool; None would mean judged once)
    assert isinstance(verdict.inconsistent, bool), verdict.inconsistent
    assert sorted(tuple(o) for o in verdict.orders) == [(0, 1), (1, 0)], verdict.orders
    assert all(isinstance(r, str) and r.strip() for r in verdict.rationales)


def test_smollm2_gives_a_structured_pairwise_verdict(llm_server):
    verdict = _real(llm_server, mode="pairwise")
    assert verdict.status == schema.STATUS_OK, verdict.error
    assert verdict.structured and verdict.winners[0] in ("human", "model", "tie")
    assert sorted(verdict.ratings) in ([1.0, 5.0], [3.0, 3.0])


def test_cli_generate_pairwise_in_both_orders(tmp_path, capsys):
    import pyarrow.parquet as pq

    from pipeline.cli import main

    pq.write_table(make_rows(3), tmp_path / "in.parquet")
    with FakeLLMServer(responder=_judge_text_responder) as srv:
        code = main(
            [
                "generate",
                str(tmp_path / "in.parquet"),
                "--output",
                str(tmp_path / "run"),
                "--base-url",
                srv.base_url,
                "--model",
                "model-b",
                "--judge-mode",
                "pairwise",
                "--judge-order",
                "both",
            ]
        )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "6 judge calls" in err and "Judge flip rate: 0% (0 of 3 rows" in err
    rows = pq.read_table(tmp_path / "run" / "raw.parquet").to_pylist()
    assert all(
        r["judge_mode"] == "pairwise"
        and r["judge_winners"] == ["model"]
        and r["ratings"] == [1.0, 5.0]
        and r["judge_inconsistent"] is False
        and r["judge_structured"]
        for r in rows
    )
    card = (tmp_path / "run" / "README.md").read_text()
    assert "Judge mode: pairwise" in card and "Flip rate: 0%" in card and "Parse rate: 100%" in card
    script = (tmp_path / "run" / "pipeline.py").read_text()
    assert "pairwise" in script.split('"""')[1]  # the script says it rates with UltraFeedback instead
