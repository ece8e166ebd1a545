"""The judge check section's handlers (ui/judge_check.py), driven directly: labelling a pilot run (labels in the
session and in the annotations Export reads), the estimate, a check against the error-injecting server, refusals,
and "Use this judge" setting the run's judge fields."""

from __future__ import annotations

import time
from types import SimpleNamespace

import gradio as gr
import pytest

from pipeline import export as ex
from pipeline import judge
from pipeline.core import tablefiles
from pipeline.core.schema import annotations_table
from pipeline.judge import labels as judge_labels
from tests.fixtures.faulty_server import FakeLLMServer
from tests.test_judge_check_cli import judge_responder
from tests.test_judgecheck import raw_table
from ui import judge_check as jc
from ui.backend_picker import BackendPicker
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
    assert "No labelled rows yet" in jc.estimate_check(session, values)
    _label(session, 3)
    session.filtered = SimpleNamespace(language_code="fra", language="French", rows=3)
    text = jc.estimate_check(session, values)
    assert "3 of the 3 labelled rows are in Dutch" in text.replace("\\", "")
    assert "run is in French" in text.replace("\\", "")
    status, timer = jc.start_check(session, {**values, "j1_model": ""}, None)
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
    assert "5 rows × 2 judge(s) × 2 orders: about 20 calls" in jc.estimate_check(session, values).replace("\\", "")
    assert server.chat_requests == 0  # the estimate makes no call
    status, _ = jc.start_check(session, values, None)
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

    with gr.Blocks():
        picker = BackendPicker.build("Judge model id")
    updates = jc.use_judge(session, {"choice": out["choice"]["value"]}, picker)
    assert updates[picker.model]["value"] == "good-judge" and updates[picker.base_url]["value"] == server.base_url
    assert updates[picker.kind]["value"] == "openai" and "good\\-judge" in updates["note"]
    assert session.judge_check.result.chosen == "good-judge"
    assert set(jc.poll_check(session)) == {"timer"}  # a late tick changes nothing
    assert session.judge_check.result.chosen == "good-judge"


def test_serverless_judges_need_sign_in_and_labels_save_for_the_cli(session):
    _label(session, 2)
    status, _ = jc.start_check(session, {"j1_kind": "serverless", "j1_model": "org/judge"}, None)
    assert "org/judge run(s) on serverless inference" in status.replace("\\", "")
    path = jc.labels_file(session)
    labels = judge_labels.labels_from_table(tablefiles.read_table(path))
    assert {lab.id for lab in labels} == set(session.judge_check.labels)
