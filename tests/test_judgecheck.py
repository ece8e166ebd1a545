"""The judge check's workflow (pipeline/judgecheck.py): labelling queue, labels as annotations (and Export using
them), rows from an Argilla pull, bad input, the estimate, the figures, and a whole check with scripted judges
(the real ``pipeline.judge.judge_row`` with a chat function that answers like a judge would)."""

from __future__ import annotations

import asyncio
import json
import re

import pyarrow as pa
import pytest

from pipeline import export as ex
from pipeline import judge
from pipeline.core import schema
from pipeline.core.schema import annotations_table
from pipeline.inference import Backend, ChatResult, http_error
from pipeline.judge import agreement
from pipeline.judge import check as judgecheck
from pipeline.judge import labels as judge_labels
from pipeline.judge import report as judge_report
from pipeline.judge.check import RowOutcome
from pipeline.judge.labels import CHOICE_A, CHOICE_B, CHOICE_BAD, CHOICE_TIE, CheckItem, JudgeCheckError

OK, BAD = schema.STATUS_OK, schema.STATUS_JUDGE_UNPARSEABLE


def raw_table(n: int, *, language: str = "nld", blank_model_at: tuple[int, ...] = (), models: int = 1) -> pa.Table:
    rows = []
    for i in range(n):
        prompt, human = f"vraag {i}", f"mens antwoord {i}"
        responses = [human, *(f"model{m} antwoord {i}" for m in range(models))]
        if i in blank_model_at:
            responses[1:] = [""] * models
        n_resp = len(responses)
        rows.append(
            {
                "id": schema.row_id(prompt, human),
                "prompt": prompt,
                "system_prompt": "",
                "target_language": language,
                "responses": responses,
                "response_sources": ["human", *(f"org/m{m}" for m in range(models))],
                "ratings": [4, 2, *([3] * (models - 1))][:n_resp],
                "rationales": [None] * n_resp,
                "detected_languages": [language] * n_resp,
                "language_confidences": [0.9] * n_resp,
                "language_match": [True] * n_resp,
                "judge_model": "j",
                "aspect": "overall-rating",
                "status": OK,
                "error": "",
            }
        )
    return pa.Table.from_pylist(rows, schema=schema.raw_schema())


# --- labelling queue ------------------------------------------------------------------------------------------
def test_label_tasks_sample_rows_with_two_answers_in_a_random_order_the_same_each_time():
    raw = raw_table(60, blank_model_at=(3, 7))
    tasks = judge_labels.label_tasks(raw, 50, seed="s")
    assert len(tasks) == 50
    assert tasks == judge_labels.label_tasks(raw, 50, seed="s")  # deterministic
    ids_blank = {raw.column("id")[3].as_py(), raw.column("id")[7].as_py()}
    assert not ids_blank & {t.id for t in tasks}  # a failed generation cannot be labelled
    rows = {r["id"]: r for r in raw.to_pylist()}
    for t in tasks:
        assert sorted(t.shown) == [0, 1]
        assert t.answers == tuple(rows[t.id]["responses"][i] for i in t.shown)
        assert t.prompt == rows[t.id]["prompt"] and t.language == "nld" and t.n_responses == 2
    firsts = {t.shown[0] for t in tasks}
    assert firsts == {0, 1}  # the human answer is sometimes A, sometimes B


def test_label_tasks_clamp_to_10_50_and_pick_one_model_answer_among_several():
    raw = raw_table(80, models=3)
    assert len(judge_labels.label_tasks(raw, 5)) == judge_labels.MIN_LABEL_ROWS
    assert len(judge_labels.label_tasks(raw, 500)) == judge_labels.MAX_LABEL_ROWS
    tasks = judge_labels.label_tasks(raw, 50)
    assert all(0 in t.shown for t in tasks)
    assert {i for t in tasks for i in t.shown} == {0, 1, 2, 3}  # each generator gets its turn
    assert judge_labels.label_tasks(raw, 50, seed="other") != tasks


def test_label_tasks_without_a_pilot_run_say_what_to_do():
    with pytest.raises(JudgeCheckError, match="run the pipeline on a few rows"):
        judge_labels.label_tasks(None)
    with pytest.raises(JudgeCheckError, match="lacks the column"):
        judge_labels.label_tasks(pa.table({"id": ["a"]}))


# --- labels as annotations, for Export --------------------------------------------------------------------------
def _labels(raw: pa.Table, choices: list[str]) -> list[judge_labels.Label]:
    tasks = judge_labels.label_tasks(raw, 10)
    return [t.label(c) for t, c in zip(tasks, choices)]


def test_labels_become_annotation_rows():
    raw = raw_table(10)
    labels = _labels(raw, [CHOICE_A, CHOICE_B, CHOICE_TIE, CHOICE_BAD])
    table = judge_labels.labels_to_annotations(labels)
    assert set(schema.ANNOTATION_COLUMNS) <= set(table.column_names)
    rows = {r["id"]: r for r in table.to_pylist()}
    a, b, tie, bad = labels
    assert rows[a.id]["human_preference"] == a.shown[0] and rows[a.id]["n_annotators"] == 1
    assert rows[b.id]["human_preference"] == b.shown[1]
    assert rows[tie.id]["human_preference"] == -1 and rows[tie.id]["agreement"] == 1.0
    assert rows[bad.id]["human_preference"] is None
    assert (rows[bad.id]["n_annotators"], rows[bad.id]["n_discarded"]) == (0, 1)
    assert all(len(r["human_ratings"]) == 2 for r in rows.values())
    with pytest.raises(JudgeCheckError, match="choose one of"):
        judge_labels.label_tasks(raw, 10)[0].label("C")


def test_export_uses_the_labels_and_drops_both_bad_rows():
    raw = raw_table(10)
    tasks = judge_labels.label_tasks(raw, 10)
    # people prefer the model answer (the judge's ratings, 4 vs 2, say the human one)
    labels = [t.label(CHOICE_A if t.shown[0] == 1 else CHOICE_B) for t in tasks[:3]] + [tasks[3].label(CHOICE_BAD)]
    annotations = judge_labels.labels_to_annotations(labels)
    sel = ex.select_pairs(raw, annotations, ex.ExportRules())
    by_id = {p.source_id: p for p in sel.pairs}
    for lab in labels[:3]:
        pair = by_id[lab.id]
        assert pair.preference_source == "human" and pair.chosen.startswith("model0")
    assert labels[3].id not in by_id
    assert sel.counts["discarded"] == 1


def test_merge_keeps_argilla_rows_and_replaces_earlier_labels():
    raw = raw_table(10)
    tasks = judge_labels.label_tasks(raw, 10)
    argilla = annotations_table(
        [
            {
                "id": tasks[0].id,
                "n_annotators": 3,
                "human_ratings": [4.0, 2.0],
                "human_preference": 0,
                "agreement": 1.0,
                "n_discarded": 0,
            }
        ]
    )
    first = judge_labels.labels_to_annotations([tasks[0].label(CHOICE_B), tasks[1].label(CHOICE_A)])
    merged, added = judge_labels.merge_annotations(argilla, first)
    rows = {r["id"]: r for r in merged.to_pylist()}
    assert rows[tasks[0].id]["n_annotators"] == 3  # Argilla's three people win over one label
    assert added == {tasks[1].id}
    relabel = judge_labels.labels_to_annotations([tasks[1].label(CHOICE_TIE)])
    merged2, added2 = judge_labels.merge_annotations(merged, relabel, replace_ids=added)
    rows2 = {r["id"]: r for r in merged2.to_pylist()}
    assert merged2.num_rows == 2 and rows2[tasks[1].id]["human_preference"] == -1 and added2 == {tasks[1].id}


def test_labels_file_round_trip_and_a_broken_row(tmp_path):
    from pipeline.core import tablefiles

    raw = raw_table(10)
    labels = _labels(raw, [CHOICE_A, CHOICE_TIE, CHOICE_BAD])
    path = tablefiles.write_table(judge_labels.labels_table(labels), tmp_path / "labels.jsonl")
    assert judge_labels.labels_from_table(tablefiles.read_table(path)) == labels
    broken = judge_labels.labels_table(labels).to_pylist()
    broken[1]["choice"] = "maybe"
    with pytest.raises(JudgeCheckError, match="row 2: not a label"):
        judge_labels.labels_from_table(pa.Table.from_pylist(broken), "labels.jsonl")


# --- rows with a people's preference ------------------------------------------------------------------------------
def test_items_from_labels_leave_out_both_bad_and_keep_raw_indices():
    raw = raw_table(10)
    labels = _labels(raw, [CHOICE_A, CHOICE_B, CHOICE_TIE, CHOICE_BAD])
    items = judge_labels.items_from_labels(labels)
    assert [i.id for i in items] == [lab.id for lab in labels[:3]]
    for item, lab in zip(items, labels):
        assert item.indices == (0, 1) and item.human == lab.preference
        assert item.texts == tuple(dict(zip(lab.shown, lab.answers))[k] for k in (0, 1))


def test_items_from_an_argilla_pull():
    raw = raw_table(4, models=2, blank_model_at=(3,))
    ids = raw.column("id").to_pylist()
    ann = annotations_table(
        [
            {"id": ids[0], "n_annotators": 2, "human_ratings": [None] * 3, "human_preference": 2, "n_discarded": 0},
            {"id": ids[1], "n_annotators": 1, "human_ratings": [2.0, 5.0, 3.0], "human_preference": None},  # ratings
            {"id": ids[2], "n_annotators": 1, "human_preference": 1, "n_discarded": 2},  # discarded by more people
            {"id": ids[3], "n_annotators": 1, "human_preference": 0},  # only the human answer is left
            {"id": "not-in-raw", "n_annotators": 1, "human_preference": 0},
        ]
    )
    items = judge_labels.items_from_annotations(raw, ann)
    assert [(i.id, i.human, i.indices) for i in items] == [(ids[0], 2, (0, 1, 2)), (ids[1], 1, (0, 1, 2))]
    assert items[0].language == "nld"
    with pytest.raises(JudgeCheckError, match="None of the 1 annotation rows matches"):
        judge_labels.items_from_annotations(raw, annotations_table([{"id": "x", "human_preference": 0}]))
    with pytest.raises(JudgeCheckError, match="argilla pull"):
        judge_labels.items_from_annotations(raw, None)


def test_no_labelled_rows_and_rows_of_another_language_are_refused_with_what_to_do():
    with pytest.raises(JudgeCheckError, match="No labelled rows yet: label 10-50 rows"):
        judge_labels.check_items([], "nld")
    with pytest.raises(JudgeCheckError, match="pull the Argilla answers"):
        judge_labels.check_items([], "nld", source=judge_labels.SOURCE_ANNOTATIONS)
    dutch = [CheckItem(f"d{i}", "p", ("a", "b"), (0, 1), 0, "nld") for i in range(3)]
    french = [CheckItem("f", "p", ("a", "b"), (0, 1), 0, "fra")]
    judge_labels.check_items(dutch, "nld")
    with pytest.raises(JudgeCheckError) as err:
        judge_labels.check_items(dutch + french, "nld")
    assert "1 of the 4 labelled rows are in French (fra)" in str(err.value)
    assert "run is in Dutch (nld)" in str(err.value) and "label rows of a pilot run in that language" in str(err.value)
    with pytest.raises(JudgeCheckError, match="mix 2 languages"):
        judge_labels.check_items(dutch + french, "")


# --- settings and estimate ----------------------------------------------------------------------------------------
def _openai(model: str, url: str = "http://127.0.0.1:9/v1") -> Backend:
    return Backend("openai", model, url)


def test_settings_refuse_more_than_three_judges_twice_the_same_or_a_bad_url():
    with pytest.raises(JudgeCheckError, match="at least one judge"):
        judgecheck.CheckSettings(judges=())
    with pytest.raises(JudgeCheckError, match="At most 3 judges"):
        judgecheck.CheckSettings(judges=tuple(_openai(f"m{i}") for i in range(4)))
    with pytest.raises(JudgeCheckError, match="listed twice"):
        judgecheck.CheckSettings(judges=(_openai("m"), _openai("m")))
    with pytest.raises(JudgeCheckError, match="is not a URL"):
        judgecheck.judges_from([{"model": "m", "kind": "openai", "base_url": "localhost"}])
    assert judgecheck.judges_from([{"model": ""}, {"model": "m", "base_url": "http://x:1/v1"}])[0].kind == "openai"
    settings = judgecheck.CheckSettings(judges=(Backend("serverless", "org/m"), _openai("n")))
    with pytest.raises(JudgeCheckError, match="org/m run.*set HF_TOKEN"):
        settings.require_sign_in(None, "set HF_TOKEN")
    settings.require_sign_in("hf_x", "set HF_TOKEN")


def test_plan_counts_both_orders_for_every_judge():
    items = [CheckItem(f"r{i}", "vraag " * 10, ("a " * 30, "b " * 60), (0, 1), 0, "nld") for i in range(7)]
    one = judgecheck.plan_check(items, judgecheck.CheckSettings(judges=(_openai("a"),)))
    three = judgecheck.plan_check(items, judgecheck.CheckSettings(judges=(_openai("a"), _openai("b"), _openai("c"))))
    assert (one.calls, three.calls) == (14, 42)
    assert three.est_tokens == 3 * one.est_tokens
    longer = [CheckItem(i.id, i.prompt * 5, i.texts, i.indices, 0) for i in items]
    assert judgecheck.plan_check(longer, judgecheck.CheckSettings(judges=(_openai("a"),))).est_tokens > one.est_tokens
    assert "7 rows × 3 judge(s) × 2 orders: about 42 calls" in three.summary()


# --- the figures ----------------------------------------------------------------------------------------------------
def test_score_counts_parse_flip_agreement_and_kappa():
    backend = _openai("j")
    outs = [
        RowOutcome("j", "1", OK, human=0, judge=0, inconsistent=False, structured=True, tokens=100, latency_s=1.0),
        RowOutcome("j", "2", OK, human=1, judge=1, inconsistent=True, structured=True, tokens=200, latency_s=2.0),
        RowOutcome("j", "3", OK, human=1, judge=0, inconsistent=False, structured=True, tokens=300, latency_s=3.0),
        RowOutcome("j", "4", OK, human=-1, judge=0, inconsistent=False, structured=True, tokens=400, latency_s=2.0),
        RowOutcome("j", "5", BAD, human=0, structured=True, tokens=500, latency_s=2.0),
        RowOutcome("j", "6", schema.STATUS_JUDGE_FAILED, human=0, error="timeout", latency_s=60.0),
        RowOutcome("j", "7", judgecheck.NOT_RUN, human=0),
    ]
    s = judgecheck.score_judge(backend, outs)
    assert (s.rows, s.parsed, s.parse_rate) == (6, 4, 4 / 6)
    assert (s.flips, s.flip_rows, s.flip_rate) == (1, 4, 0.25)
    assert (s.compared, s.agree, s.agreement) == (4, 2, 0.5)
    # kappa by hand: judge labels 0,1,0,0; people 0,1,1,-1 -> p_o = 2/4, p_e = (3*1 + 1*2 + 0*1)/16 = 5/16
    assert s.kappa == pytest.approx((0.5 - 5 / 16) / (1 - 5 / 16))
    assert s.kappa == agreement.cohens_kappa([(0, 0), (1, 1), (0, 1), (0, -1)])
    assert s.mean_latency_s == pytest.approx(2.0) and s.tokens_per_row == pytest.approx(300)  # answered rows only
    assert s.structured is True and s.base_url == "http://127.0.0.1:9/v1" and s.provider == ""
    check = schema.JudgeCheck(
        rows=7, source="labels", language="nld", mode="ratings", aspect="overall-rating", judges=(s,)
    )
    assert schema.JudgeCheck.from_dict(json.loads(json.dumps(check.to_dict()))) == check
    row = judge_report.score_rows(check)[0]
    assert (row["parse rate"], row["flip rate"], row["agreement"]) == ("4/6 (67%)", "1/4 (25%)", "2/4 (50%)")
    assert "2 unparseable or failed row(s)" in row["note"]
    assert "j agrees with people on 2/4 (50%)" in judge_report.summary_line(check)


def test_score_of_a_judge_that_never_answered():
    s = judgecheck.score_judge(
        Backend("serverless", "org/x"),
        [RowOutcome("org/x", "1", judgecheck.NOT_RUN, 0)],
        "Stopped after 0 of 1 rows: not found",
    )
    assert (s.rows, s.parse_rate, s.flip_rate, s.agreement, s.kappa, s.mean_latency_s) == (
        0,
        None,
        None,
        None,
        None,
        None,
    )
    assert s.provider == "auto" and s.error.startswith("Stopped")
    assert judge_report.score_rows(schema.JudgeCheck(1, "labels", "", "ratings", "a", (s,)))[0]["parse rate"] == "n/a"


# --- a whole check, with scripted judges --------------------------------------------------------------------------
def _texts_shown(messages: list[dict]) -> list[str]:
    user = messages[-1]["content"].split("## Annotation", 1)[-1]
    return re.findall(r"^<text \d+> (.*)$", user, flags=re.M)


def _reply(ratings: list[int], structured: bool) -> str:
    if structured:
        return json.dumps({"ratings": [{"rating": r, "rationale": "ok"} for r in ratings]})
    return judge_reply_text(ratings)


def judge_reply_text(ratings: list[int]) -> str:
    return "\n\n".join(f"#### Output for Text {i + 1}\nRating: {r}\nRationale: ok." for i, r in enumerate(ratings))


class ScriptedJudges:
    """Judges by model id: ``fair`` likes answers with GOOD; ``first`` likes whatever is shown first; ``missing``
    does not exist (404); ``babbler`` answers prose. Records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    async def __call__(self, backend: Backend, messages: list[dict], params) -> ChatResult:
        structured = params.response_format is not None
        self.calls.append((backend.model, structured))
        await asyncio.sleep(0)
        texts = _texts_shown(messages)
        if backend.model == "missing":
            raise http_error(404, backend, "The model `missing` does not exist")
        if backend.model == "babbler":
            text = "Both answers are lovely."
        elif backend.model == "fair":
            text = _reply([5 if "GOOD" in t else 2 for t in texts], structured)
        else:
            text = _reply([5] + [1] * (len(texts) - 1), structured)
        return ChatResult(text, "stop", 50, 10, 0.0)


@pytest.fixture
def fresh_structured_state():
    judge.STRUCTURED.forget()
    yield
    judge.STRUCTURED.forget()


def _good_items() -> list[CheckItem]:
    items = []
    for i in range(5):
        texts = (f"GOOD {i}", f"meh {i}") if i % 2 else (f"meh {i}", f"GOOD {i}")
        items.append(CheckItem(f"r{i}", f"vraag {i}", texts, (0, 1), 0 if i % 2 else 1, "nld"))
    items.append(CheckItem("tie", "vraag t", ("GOOD a", "GOOD b"), (0, 1), -1, "nld"))
    return items


def test_a_check_side_by_side(fresh_structured_state):
    items = _good_items()
    chat = ScriptedJudges()
    judges = tuple(_openai(m) for m in ("fair", "first", "missing"))
    report = asyncio.run(
        judgecheck.run_check(items, judgecheck.CheckSettings(judges=judges), chat=chat, language="nld")
    )
    fair, first, missing = report.check.judges
    assert (fair.parsed, fair.rows, fair.flips, fair.agree, fair.compared, fair.kappa) == (6, 6, 0, 6, 6, 1.0)
    assert fair.structured is True and fair.tokens_per_row == pytest.approx(120)  # 2 calls × (50 + 10)
    # a pure position bias: every row flips; averaged over both orders it is a tie everywhere
    assert (first.flips, first.flip_rows) == (6, 6)
    assert (first.agree, first.compared) == (1, 6) and first.kappa == pytest.approx(0.0)
    assert missing.rows == 0 and "Stopped after 0 of 6 rows" in missing.error and "does not exist" in missing.error
    assert "pick another judge" in missing.error
    stopped_at = judgecheck.DEFAULT_CONCURRENCY * judgecheck.ORDERS  # rows in flight, both orders each
    assert sum(1 for m, _ in chat.calls if m == "missing") <= stopped_at  # it stopped at once
    assert sum(1 for m, _ in chat.calls if m == "fair") == 12  # both orders, every row
    assert report.check.language == "nld" and report.check.rows == 6 and not report.cancelled
    assert len([r for r in report.rows if r.model == "fair"]) == 6
    assert json.loads(json.dumps(report.to_dict()))["check"]["judges"][0]["agreement"] == 1.0


def test_a_judge_that_ignores_the_schema_is_unparseable_not_scored(fresh_structured_state):
    chat = ScriptedJudges()
    report = asyncio.run(
        judgecheck.run_check(_good_items(), judgecheck.CheckSettings(judges=(_openai("babbler"),)), chat=chat)
    )
    (s,) = report.check.judges
    assert (s.rows, s.parsed, s.compared, s.agreement) == (6, 0, 0, None)
    assert s.structured is False  # it fell back to the text format, and that did not parse either
    assert any(r.status == BAD and "unparseable" in r.error for r in report.rows)


def test_cancel_keeps_the_rows_judged(fresh_structured_state):
    items = _good_items()
    progress = judgecheck.CheckHandle(["fair"], len(items))

    class CancelAfterTwo(ScriptedJudges):
        async def __call__(self, backend, messages, params):
            if len(self.calls) >= 4:
                progress.cancel()
            return await super().__call__(backend, messages, params)

    settings = judgecheck.CheckSettings(judges=(_openai("fair"),), concurrency=1)
    report = asyncio.run(judgecheck.run_check(items, settings, chat=CancelAfterTwo(), handle=progress))
    (s,) = report.check.judges
    assert report.cancelled and 2 <= s.rows < len(items) and s.parsed == s.rows
    assert "cancelling" in progress.line()


def test_start_check_runs_in_a_thread_and_refuses_bad_input_before_starting(fresh_structured_state):
    settings = judgecheck.CheckSettings(judges=(_openai("fair"),))
    with pytest.raises(JudgeCheckError, match="No labelled rows"):
        judgecheck.start_check([], settings)
    handle = judgecheck.start_check(_good_items(), settings, chat=ScriptedJudges(), language="nld")
    assert handle.wait(30)
    assert handle.error == "" and handle.report.check.judges[0].agree == 6


def test_the_check_a_run_records_is_the_one_that_scored_its_judge(tmp_path):
    scored = judgecheck.score_judge(_openai("fair"), [RowOutcome("fair", "1", OK, 0, 0, False, True, 10, 1.0)])
    stopped = judgecheck.score_judge(_openai("gone"), [], "Stopped after 0 of 1 rows")
    check = schema.JudgeCheck(1, "labels", "nld", "ratings", "overall-rating", (scored, stopped))
    assert judgecheck.for_run(check, _openai("fair")).chosen == "fair"
    assert judgecheck.for_run(check, _openai("gone")) is None  # it never judged a row
    assert judgecheck.for_run(check, Backend("serverless", "fair")) is None  # another backend
    assert judgecheck.for_run(None, _openai("fair")) is None
    path = tmp_path / "check.json"
    path.write_text(json.dumps(judgecheck.CheckReport(check).to_dict()), encoding="utf-8")
    assert judgecheck.read_check(str(path)) == check
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(JudgeCheckError, match="--output check.json"):
        judgecheck.read_check(str(path))


def test_a_label_belongs_to_the_texts_people_saw_never_to_a_row_id_alone():
    raw = raw_table(12)
    labels = [t.label(CHOICE_A) for t in judge_labels.label_tasks(raw, 10)]
    kept, set_aside = judge_labels.current_labels(labels, raw)
    assert kept == labels and set_aside == 0
    # the same ids and prompts, one model answer changed by one character: that label is set aside
    responses = raw.column("responses").to_pylist()
    changed_id = labels[0].id
    row = raw.column("id").to_pylist().index(changed_id)
    responses[row] = [responses[row][0], responses[row][1] + "!"]
    rerun = raw.set_column(raw.column_names.index("responses"), raw.schema.field("responses"), pa.array(responses))
    kept, set_aside = judge_labels.current_labels(labels, rerun)
    assert set_aside == 1 and [lab.id for lab in kept] == [lab.id for lab in labels[1:]]
    # a swap of the two answers is another text at each position too
    swapped = [lab for lab in labels if lab.id == labels[1].id][0]
    flipped = judge_labels.Label(
        swapped.id, swapped.prompt, swapped.shown, swapped.answers[::-1], CHOICE_A, swapped.language, 2
    )
    assert judge_labels.current_labels([flipped], raw) == ([], 1)
    # rows gone from the table: set aside too; no table: nothing to compare (all returned)
    assert judge_labels.current_labels(labels, raw.slice(0, 0)) == ([], len(labels))
    assert judge_labels.current_labels(labels, None) == (labels, 0)
