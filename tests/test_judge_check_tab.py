"""The judge check section's handlers (ui/judge_check.py), driven directly: labelling a pilot run (labels in the
session and in the annotations Export reads), the estimate, a check against the error-injecting server, refusals,
and "Use this judge" setting the run's judge fields."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pyarrow as pa
import pytest

from pipeline import export as ex
from pipeline import judge
from pipeline.core import tablefiles
from pipeline.core.schema import annotations_table
from pipeline.judge import labels as judge_labels
from pipeline.judge import report as judge_report
from tests.fixtures.faulty_server import FakeLLMServer
from tests.test_judge_check_cli import judge_responder
from tests.test_judgecheck import raw_table
from ui import judge_check as jc
from ui.session import Session


@pytest.fixture
def session() -> Session:
    s = Session()
    s.raw = raw_table(30)
    s.filtered = SimpleNamespace(language_code="nld", language="Dutch", rows=30)
    return s


@pytest.fixture
def server():
    judge.STRUCTURED.forget()
    with FakeLLMServer(responder=judge_responder, models=("good-judge",)) as srv:
        yield srv
    judge.STRUCTURED.forget()


def _model_choice(session: Session) -> str:
    """The answer people give here: the model's (raw index 1), wherever it is shown."""
    task = session.judge_check.tasks[session.judge_check.position]
    return judge_labels.CHOICE_A if task.shown[0] == 1 else judge_labels.CHOICE_B


def _label(session: Session, n: int) -> None:
    jc.load_tasks(session, {"rows": 20})
    for _ in range(n):
        jc.answer(session, _model_choice(session))


def test_labelling_shows_answers_without_sources_and_feeds_export(session):
    view = jc.load_tasks(session, {"rows": 12})
    assert len(session.judge_check.tasks) == 12 and "Row **1 of 12**" in view["position"]
    task = session.judge_check.tasks[0]
    assert (view["prompt"], view["answer_a"], view["answer_b"]) == (task.prompt, *task.answers)
    assert "human" not in " ".join(str(v) for v in view.values()).lower()  # sources hidden
    view = jc.answer(session, judge_labels.CHOICE_BAD)
    assert "Row **2 of 12**" in view["position"] and "1 labelled" in view["tally"]
    for _ in range(3):
        jc.answer(session, _model_choice(session))
    view = jc.move(session, -4)
    assert "your answer: **both bad**" in view["position"]
    jc.answer(session, judge_labels.CHOICE_TIE)  # people change their mind
    labels = session.judge_check.labels
    assert len(labels) == 4 and labels[task.id].choice == judge_labels.CHOICE_TIE
    rows = {r["id"]: r for r in session.annotations.to_pylist()}
    assert set(rows) == set(labels) and rows[task.id]["human_preference"] == -1
    sel = ex.select_pairs(session.raw, session.annotations, ex.ExportRules())
    human_pairs = [p for p in sel.pairs if p.preference_source == "human"]
    assert len(human_pairs) == 3 and all(p.chosen.startswith("model0") for p in human_pairs)


def test_labels_join_annotations_pulled_from_argilla(session):
    ids = session.raw.column("id").to_pylist()
    session.annotations = annotations_table([{"id": i, "n_annotators": 2, "human_preference": 0} for i in ids[:5]])
    _label(session, 6)
    rows = {r["id"]: r for r in session.annotations.to_pylist()}
    assert all(rows[i]["n_annotators"] == 2 for i in ids[:5])  # Argilla's people are kept
    assert len(rows) == 5 + len(set(session.judge_check.labels) - set(ids[:5]))


def test_no_pilot_run_no_labels_and_another_language_say_what_to_do(session):
    empty = Session()
    assert jc.load_tasks(empty, {"rows": 20})["position"] == jc.NO_PILOT
    values = {"j1_kind": "openai", "j1_model": "m", "j1_base_url": "http://127.0.0.1:9/v1"}
    assert "No labelled rows yet" in jc.estimate_check(session, values)["estimate"]
    _label(session, 3)
    session.filtered = SimpleNamespace(language_code="fra", language="French", rows=3)
    text = jc.estimate_check(session, values)["estimate"]
    assert "3 of the 3 labelled rows are in Dutch" in text.replace("\\", "")
    assert "run is in French" in text.replace("\\", "")
    status = jc.start_check(session, {**values, "j1_model": ""})["status"]
    assert "at least one judge" in status


def test_a_check_in_the_app_and_use_this_judge(session, server):
    _label(session, 5)
    values = {
        "j1_kind": "openai",
        "j1_model": "good-judge",
        "j1_base_url": server.base_url,
        "j2_kind": "openai",
        "j2_model": "no-such-judge",
        "j2_base_url": server.base_url,
        "j3_kind": "serverless",
        "j3_model": "",
        "source": judge_labels.SOURCE_LABELS,
    }
    assert "5 rows × 2 judge(s) × 2 orders: about 20 calls" in jc.estimate_check(session, values)["estimate"].replace(
        "\\", ""
    )
    assert server.chat_requests == 0  # the estimate makes no call
    status = jc.start_check(session, values)["status"]
    assert "Checking 2 judge(s) on 5 rows" in status
    deadline = time.monotonic() + 30
    out = jc.poll_check(session)
    while "table" not in out and time.monotonic() < deadline:
        time.sleep(0.1)
        out = jc.poll_check(session)
    table = out["table"]
    assert list(table["parse rate"]) == ["5/5 (100%)", "n/a"] and table["agreement"][0] == "5/5 (100%)"
    assert "Stopped after 0 of 5 rows" in table["note"][1]
    assert [c[0] for c in out["choice"]["choices"]] == [f"good-judge ({server.base_url})"]
    assert session.judge_check.result.judges[0].agree == 5

    # the verdict is said plainly, before "Use this judge"
    assert "**Verdict**" in out["status"] and "no\\-such\\-judge stopped before judging a row" in out["status"]
    assert out["note"] == jc.on_choice(session, {"choice": out["choice"]["value"]})["note"]
    updates = jc.use_judge(session, {"choice": out["choice"]["value"]})
    assert updates["judge_model"]["value"] == "good-judge" and updates["judge_base_url"]["value"] == server.base_url
    assert updates["judge_kind"]["value"] == "openai" and "good\\-judge" in updates["note"]
    assert session.judge_check.result.chosen == "good-judge"
    assert set(jc.poll_check(session)) == {"timer"}  # a late tick changes nothing
    assert session.judge_check.result.chosen == "good-judge"


def test_serverless_judges_need_sign_in_and_labels_save_for_the_cli(session):
    _label(session, 2)
    status = jc.start_check(session, {"j1_kind": "serverless", "j1_model": "org/judge"})["status"]
    assert "candidate judge org/judge runs on serverless inference" in status.replace("\\", "")
    path = jc.labels_file(session)
    labels = judge_labels.labels_from_table(tablefiles.read_table(path))
    assert {lab.id for lab in labels} == set(session.judge_check.labels)


def test_a_label_is_never_reused_for_answers_whose_text_changed(session):
    """12 rows labelled on a one-generator pilot; a re-run with two generators gives the same ids other answers:
    the labels are set aside (counted), not attached to answers nobody saw; Export names the panel as the source."""
    from ui import export_tab

    _label(session, 12)
    assert session.annotations.num_rows == 12 and session.judge_check.set_aside == 0
    feedback = export_tab.human_feedback(session)
    assert (feedback.panel_rows, feedback.panel_people, feedback.argilla_rows) == (12, 1, 0)
    # the re-run: the same prompts and ids, new model answers (a real model's answers change between runs)
    rerun = raw_table(30, models=2)
    responses = [[r[0], *(f"{a} (new run)" for a in r[1:])] for r in rerun.column("responses").to_pylist()]
    rerun = rerun.set_column(
        rerun.column_names.index("responses"), rerun.schema.field("responses"), pa.array([responses][0])
    )
    assert rerun.column("id").to_pylist() == session.raw.column("id").to_pylist()
    session.raw = rerun
    jc.sync_labels(session)
    assert session.judge_check.set_aside == 12 and session.annotations.num_rows == 0
    sel = ex.select_pairs(session.raw, session.annotations, ex.ExportRules())
    assert not [p for p in sel.pairs if p.preference_source == "human"]  # the judge decides every pair
    assert "12 label(s) set aside" in jc.panel_view(session)["tally"]
    summary = export_tab._summary_md(session, export_tab.SRC_SESSION)
    assert "answered" not in summary and "No annotators' answers yet" in summary
    assert "12 judge-check label(s) are set aside" in summary
    # labelling the new answers uses them again
    _label(session, 3)
    assert session.annotations.num_rows == 3 and session.judge_check.set_aside == 12
    summary = export_tab._summary_md(session, export_tab.SRC_SESSION)
    assert "People answered 3 rows (3 rows labelled by 1 person in DPO Studio" in summary.replace("\\", "")
    assert "12 judge-check label(s) are set aside" in summary


def test_the_verdict_says_when_a_judge_is_no_better_than_chance_or_worse_than_another():
    from pipeline.core.schema import JudgeCheck, JudgeScore

    chance = JudgeScore(
        "chance", "openai", rows=20, parsed=20, flips=11, flip_rows=15, compared=20, agree=9, kappa=-0.03
    )
    good = JudgeScore("good", "openai", rows=20, parsed=20, flips=1, flip_rows=20, compared=20, agree=17, kappa=0.7)
    fair = JudgeScore("fair", "openai", rows=20, parsed=20, flips=2, flip_rows=20, compared=20, agree=15, kappa=0.45)
    check = JudgeCheck(20, judge_labels.SOURCE_LABELS, "nld", "pairwise", "overall-rating", (chance, good, fair))
    v_chance, v_good, v_fair = judge_report.verdicts(check)
    assert not v_chance.ok and "no better than chance (kappa -0.03" in v_chance.text
    assert "11/15 (73%) rows (position bias)" in v_chance.text
    assert v_good.ok and "beyond chance (kappa 0.70" in v_good.text
    assert not v_fair.ok and "worse than good (kappa 0.45 against 0.70)" in v_fair.text
    session = Session()
    session.judge_check.result = check
    assert "Think twice" in jc.on_choice(session, {"choice": "0"})["note"]
    assert jc.on_choice(session, {"choice": "1"})["note"].startswith("✅")
    note = jc.use_judge(session, {"choice": "0"})["note"]
    assert note.startswith("⚠️") and "no better than chance" in note


def test_candidate_judges_start_where_the_generators_run():
    values = {"kind": "openai", "base_url": "http://h:1/v1", "provider": "auto", "j1_model": "", "j2_model": "mine"}
    out = jc.candidates_follow(values)
    assert out["j1_kind"]["value"] == "openai" and out["j1_base_url"]["value"] == "http://h:1/v1"
    assert out["j3_base_url"]["visible"] is True and "j2_kind" not in out  # a typed judge stays where it is
