"""The judge check in a real browser (Playwright + Debian's chromium): a small pilot run, people label it in the
panel (two answers in a random order, sources hidden, answers with HTML payloads shown as text), two candidate judges
are checked side by side (one does not exist: it stops with a message, the other is scored), "Use this judge" sets
the run's judge, and the labels reach the Export tab as people's answers.

The models are the error-injecting OpenAI-compatible server (tests/fixtures/faulty_server.py) in the test process:
its generator answers carry an ``<img onerror>`` payload, its judge prefers answers that say "model".
"""

from __future__ import annotations

import re

import pytest

from tests.fixtures import chromium
from tests.fixtures.faulty_server import FakeLLMServer
from tests.test_browser_journey import STEP_MS, Person, filter_demo
from tests.test_judge_check_cli import judge_responder

pytestmark = [pytest.mark.browser]

ROWS = 12
LABELS = 10
ANSWER = "Het model zegt: <img src=x onerror=\"window.__xss='judge-check';alert('jc')\"> klaar."
ACCORDION = "Judge check: compare judge models with people before the run"


def responder(request: dict) -> str:
    user = request["messages"][-1]["content"]
    return judge_responder(request) if "## Annotation" in user else ANSWER


@pytest.fixture(scope="module")
def model_server():
    server = FakeLLMServer(responder=responder, models=("gen-model", "pilot-judge", "good-judge")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def person(app_server):
    with chromium.launch() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(STEP_MS)
        page = context.new_page()
        who = Person("judge-check", page)
        page.on("dialog", lambda d: (who.dialogs.append(d.message), d.dismiss()))
        page.goto(app_server.url)
        who.wait_visible(page.get_by_role("tab", name="1. Filter"), "the app to load")
        yield who


def pilot_run(p: Person, server: FakeLLMServer) -> None:
    p.tab("3. Pipeline")
    p.choose("Runs on", "OpenAI-compatible server", 0)
    p.fill("Model id(s): one per line (several → a leaderboard)", "gen-model")
    p.fill("Base URL", server.base_url, 0)
    p.choose("Runs on", "OpenAI-compatible server", 1)
    p.fill("Judge model id (empty: the first generator)", "pilot-judge")
    p.fill("Base URL", server.base_url, 1)
    p.fill("Row limit (0 = all rows)", str(ROWS))
    p.click(p.button("Start / resume"), "Start / resume")
    p.wait_visible(p.text("are ready for", exact=False), "the pilot run to finish", 120_000)


def label_rows(p: Person) -> dict[str, int]:
    p.click(p.text(ACCORDION), "the judge check section")
    p.fill("Rows to label (10-50)", str(LABELS))
    p.click(p.button("Label rows"), "Label rows")
    p.wait_visible(p.text(f"Row 1 of {LABELS}", exact=False), "the first row to label")
    given = {"A": 0, "B": 0, "tie": 0, "both bad": 0}
    for n in range(LABELS):
        a, b = p.value("Answer A"), p.value("Answer B")
        assert a and b and a != b, (a, b)
        assert ANSWER in (a, b), "the model's answer (with its payload) is not shown as text"
        assert p.page.locator('img[src="x"]').count() == 0, "an answer's <img> became an element"
        if n == 0:
            p.shot("judge-check-labelling")
        choice = "tie" if n == 3 else "both bad" if n == 6 else ("A" if a == ANSWER else "B")
        given[choice] += 1
        button = {"A": "A is better", "B": "B is better", "tie": "Tie", "both bad": "Both bad"}[choice]
        p.click(p.button(button), button)
        p.wait_visible(p.text(f"{n + 1} labelled", exact=False), f"label {n + 1} to be counted")
    assert given["A"] and given["B"], f"the answers were always shown in the same order: {given}"
    return given


def save_labels(p: Person, tmp_path) -> list:
    """The labels download (for `python -m pipeline judge-check --labels`) holds every label."""
    from pipeline.core import tablefiles
    from pipeline.judge import labels as judge_labels

    p.click(p.button("Save labels (for the command line)"), "Save labels")
    link = p.page.locator('a[download="labels.jsonl"]').filter(visible=True)
    p.wait_visible(link, "the labels file")
    with p.page.expect_download(timeout=STEP_MS) as info:
        link.first.click()
    path = tmp_path / "labels.jsonl"
    info.value.save_as(path)
    return judge_labels.labels_from_table(tablefiles.read_table(path))


def check_judges(p: Person, server: FakeLLMServer, usable: int) -> None:
    p.choose("Runs on", "OpenAI-compatible server", 2)
    p.fill("Judge 1 model id", "good-judge")
    p.fill("Base URL", server.base_url, 2)
    p.choose("Runs on", "OpenAI-compatible server", 3)
    p.fill("Judge 2 model id", "no-such-judge")
    p.fill("Base URL", server.base_url, 3)
    before = server.chat_requests
    p.click(p.button("Estimate the check"), "Estimate the check")
    p.wait_visible(
        p.text(f"{usable} rows × 2 judge(s) × 2 orders: about {usable * 4} calls", exact=False), "the check's estimate"
    )
    assert server.chat_requests == before, "the estimate made calls"
    p.click(p.button("Run the check"), "Run the check")
    p.wait_visible(p.text("Done.", exact=False), "the check to finish", 60_000)
    good = p.page.get_by_role("row").filter(has_text="good-judge (").filter(visible=True)
    missing = p.page.get_by_role("row").filter(has_text="no-such-judge (").filter(visible=True)
    p.wait_visible(good, "good-judge's row in the side-by-side table")
    text = good.first.inner_text()
    assert re.search(rf"{usable}/{usable} \(100%\)", text), text  # it parses every row
    assert "structured" in text, text
    text = missing.first.inner_text()
    assert "Stopped after 0 of" in text and "does not exist" in text, text
    p.shot("judge-check-table")


def test_label_a_pilot_run_check_two_judges_and_use_one(person, app_server, model_server, tmp_path):
    p = person
    filter_demo(p, "Dutch", ROWS)
    pilot_run(p, model_server)
    given = label_rows(p)
    saved = save_labels(p, tmp_path)
    assert len(saved) == LABELS and sum(1 for lab in saved if lab.choice == "both bad") == given["both bad"]
    usable = LABELS - given["both bad"]
    check_judges(p, model_server, usable)

    assert p.field("Judge model id (empty: the first generator)").input_value() == "pilot-judge"
    p.click(p.button("Use this judge"), "Use this judge")
    p.wait_until(
        lambda: p.field("Judge model id (empty: the first generator)").input_value() == "good-judge",
        "the run's judge to become good-judge",
        20,
    )
    p.wait_visible(p.text("The run's judge is now", exact=False), "the note about the chosen judge")

    p.tab("5. Export")
    p.wait_visible(p.text(f"People answered {usable} rows", exact=False), "the labels in the Export tab")
    p.shot("judge-check-export")
    assert p.xss_flag() is None and not p.dialogs, "a payload ran"
