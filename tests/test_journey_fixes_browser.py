"""The journey of issue 21, walked as a new user in a real browser (Playwright + Debian's chromium), at 1400 px and
at 390 px, asserting what is shown after each fix:

- the Playground's model on an OpenAI-compatible server goes to the Pipeline with its server, and the empty judge
  (the first generator) shows and uses that server; the estimate says where each model runs; a run starts without
  a sign-in error; a one-generator run has a leaderboard and keeps its rows and charts when resumed;
- the judge check's candidate judges start on the generators' server; after a check the verdict is said plainly
  (a judge at chance level gets a warning) before "Use this judge"; the labelling buttons are real buttons;
- labels whose answers changed in a new run are set aside, and Export says so and names who answered;
- the share link carries the server (never a key), and opening it fills the Playground and the Pipeline tab;
- switching the language empties the Filter's download box; a link's unknown language gets a message;
- Argilla without a server says it is optional and never asks for the key that is in the box;
- on a phone the first screen shows the tabs, not the intro, and the Filter preview keeps readable columns.

Screenshots of the fixed screens go to ``docs/`` (the README shows them).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fixtures import chromium
from tests.fixtures.faulty_server import FakeLLMServer
from tests.test_browser_journey import STEP_MS, Person, filter_demo, use_openai_column
from tests.test_judge_check_cli import judge_responder

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ROWS = 12
LABELS = 10
ACCORDION = "Judge check: compare judge models with people before the run"
CHART_BARS = """(id) => {
  const svg = document.querySelector('#' + id + ' .vega-embed svg');
  if (!svg) return 0;
  return [...svg.querySelectorAll('g.mark-rect path, g.mark-rect rect')]
    .filter(el => el.getBoundingClientRect().height > 1).length;
}"""


def responder(request: dict) -> str:
    """Generators answer with their model's name in the text (a new model: new answers); the judge rates answers
    that say "model" 5 and the human's 2."""
    user = request["messages"][-1]["content"]
    if "## Annotation" in user:
        return judge_responder(request)
    return f"Het model {request.get('model')} antwoordt: Amsterdam is de hoofdstad."


@pytest.fixture(scope="module")
def model_server():
    server = FakeLLMServer(responder=responder, latency=lambda: 0.01).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium.launch() as b:
        yield b


def _person(browser, url: str, name: str, width: int, height: int) -> Person:
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    person = Person(name, page)
    page.on("dialog", lambda d: (person.dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    person.wait_visible(page.get_by_role("tab", name="1. Filter"), "the app to load")
    return person


def _doc_shot(p: Person, name: str, full_page: bool = False) -> None:
    DOCS.mkdir(exist_ok=True)
    p.page.screenshot(path=str(DOCS / name), full_page=full_page)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _box(locator) -> dict:
    return locator.first.bounding_box() or {"width": 0, "height": 0, "x": 0, "y": 0}


# --- the steps --------------------------------------------------------------------------------------------------
def files_follow_the_language(p: Person) -> None:
    p.click(p.button("Prepare Parquet + JSON Lines"), "Prepare the download")
    p.wait_visible(p.text("rows ready to download"), "the Dutch files")
    p.choose("Language (required)", "Yoruba")
    p.wait_visible(p.text("of Yoruba"), "the Yoruba row count")
    p.wait_until(lambda: p.text("rows ready to download").count() == 0, "the Dutch files to leave the box", 20)
    assert p.page.get_by_text(re.compile(r"demo-nld\.")).filter(visible=True).count() == 0
    p.choose("Language (required)", "Dutch")
    p.wait_visible(p.text(f"{ROWS} rows", exact=True), "Dutch again")


def playground_hands_the_server_over(p: Person, server: FakeLLMServer) -> None:
    p.tab("2. Playground")
    use_openai_column(p, 0, "gen-a", server.base_url)
    option = p.field("Runs on", 0)
    box, text_width = _box(option), option.evaluate("el => el.scrollWidth")
    assert text_width <= box["width"] + 1, "the backend choice runs into its dropdown arrow"
    p.click(p.button("Use in pipeline"), "Use in pipeline")
    p.wait_visible(p.text("will use", exact=False), "the Playground to hand model A over")


def pipeline_runs_where_the_models_are(p: Person, server: FakeLLMServer) -> None:
    p.tab("3. Pipeline")
    p.wait_until(lambda: p.value("Base URL") == server.base_url, "the generator's server prefilled", 20)
    # the judge box is empty: the judge is the first generator, and it shows the generator's server
    assert p.value("Judge model id (empty: the first generator)") == ""
    assert "OpenAI-compatible server" in p.value("Runs on", 1)
    assert p.value("Base URL", 1) == server.base_url
    p.fill("Row limit (0 = all rows)", str(ROWS))
    p.click(p.button("Estimate"), "Estimate")
    p.wait_visible(p.text("Where the models run"), "the estimate's list of where each model runs")
    p.wait_visible(p.text("Judge: gen-a on", exact=False), "the judge's place in the estimate")
    p.click(p.button("Start / resume"), "Start / resume")
    p.wait_visible(p.text("are ready for", exact=False), "the run to finish", 90_000)
    assert p.text("serverless inference", exact=False).count() == 0, "the run asked for sign-in"
    p.wait_visible(p.text("Leaderboard (mean judge rating", exact=False), "the one-generator leaderboard")


def resume_keeps_the_results(p: Person) -> None:
    p.click(p.button("Start / resume"), "Start / resume on a finished run")
    p.wait_visible(p.text(f"All {ROWS} rows are already done", exact=False), "the estimate after resuming")
    p.wait_visible(p.text("are ready for", exact=False), "the resumed run to end")
    rows = p.page.locator("#pipeline-latest").get_by_text("Het model gen-a antwoordt", exact=False)
    p.wait_until(lambda: rows.count() >= 3, "the latest rows to stay on screen", 20)  # (the grid draws what fits)
    for chart in ("ratings-chart", "langs-chart"):
        p.page.locator(f"#{chart}").scroll_into_view_if_needed()
        p.wait_until(lambda c=chart: p.page.evaluate(CHART_BARS, c) > 0, f"the bars of {chart} to stay", 20)
    board = p.page.get_by_label("Leaderboard (mean judge rating", exact=False)
    assert board.get_by_text("12/12 (100%)").count() > 0, "the leaderboard's shares are not written with counts"
    p.shot("resumed")


def judge_check_gives_a_verdict(p: Person, server: FakeLLMServer) -> None:
    p.click(p.text(ACCORDION), "the judge check section")
    # candidate judges start on the generators' server: no URL to type again
    assert p.value("Base URL", 2) == server.base_url and "OpenAI-compatible" in p.value("Runs on", 2)
    p.fill("Rows to label (10-50)", str(LABELS))
    p.click(p.button("Label rows"), "Label rows")
    p.wait_visible(p.text(f"Row 1 of {LABELS}", exact=False), "the first row to label")
    for name in ("Tie", "Both bad", "← Previous", "Next →", "Save labels (for the command line)"):
        box = _box(p.button(name))
        assert box["height"] >= 40 and box["width"] >= 80, f"{name!r} is not a finger-sized button: {box}"
        border = p.button(name).first.evaluate("el => getComputedStyle(el).borderTopWidth")
        assert border not in ("0px", ""), f"{name!r} has no border: it looks like text"
    for n in range(LABELS):  # a person who answers A, B, A, B...: a judge cannot agree better than chance
        button = "A is better" if n % 2 == 0 else "B is better"
        p.click(p.button(button), button)
        p.wait_visible(p.text(f"{n + 1} labelled", exact=False), f"label {n + 1}")
    p.fill("Judge 1 model id", "good-judge")
    p.click(p.button("Run the check"), "Run the check")
    p.wait_visible(p.text("Done.", exact=False), "the check to finish", 60_000)
    p.wait_visible(p.text("Verdict", exact=True), "the verdict")
    note = p.page.locator("#judge-check-use")
    p.wait_until(lambda: note.inner_text().strip(), "the caution before 'Use this judge'", 20)
    text = note.inner_text()
    assert "Think twice" in text and "no better than chance" in text, text
    p.page.locator("#judge-check-status").scroll_into_view_if_needed()
    _doc_shot(p, "judge-check-verdict.png")


def new_answers_set_the_labels_aside(p: Person) -> None:
    """Another generator gives other answers for the same rows: the labels are set aside, never reused."""
    p.fill("Model id(s): one per line (several → a leaderboard)", "gen-b")
    p.click(p.button("Start / resume"), "Start / resume with another generator")
    p.wait_visible(p.text("gen-b answer", exact=True), "the new run's rows")
    progress = p.page.locator("#pipeline-progress")
    p.wait_until(lambda: "are ready for" in progress.inner_text(), "the new run to finish", 90)
    p.tab("5. Export")
    p.wait_visible(p.text(f"{LABELS} judge-check label(s) are set aside", exact=False), "the labels set aside")
    assert p.text("People answered", exact=False).count() == 0


def share_link_carries_the_server(p: Person, browser, server: FakeLLMServer) -> str:
    p.click(p.text("Share a link with your community"), "the share box")
    p.click(p.button("Make the link from my choices"), "Make the link")
    box = p.page.locator("#share-link textarea, #share-link input").first
    p.wait_until(lambda: "backend=" in box.input_value(), "the link", 20)
    link = box.input_value()
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query["backend"] == "openai" and query["base_url"] == server.base_url and query["model"] == "gen-a"
    p.wait_visible(p.text("No API key travels", exact=False), "the note on what the link carries")
    other = _person(browser, link, "link-opener", 1400, 1000)
    other.wait_visible(other.text("OpenAI-compatible server at", exact=False), "the banner naming the server")
    other.tab("3. Pipeline")
    other.wait_until(lambda: other.value("Base URL") == server.base_url, "the Pipeline tab filled from the link", 20)
    assert other.field("Model id(s)", exact=False).input_value() == "gen-a"
    other.page.context.close()
    return link


def argilla_without_a_server(p: Person) -> None:
    p.tab("4. Argilla")
    p.wait_visible(p.text("Argilla is optional", exact=False), "the note that Argilla is optional")
    p.fill("Argilla URL", f"http://127.0.0.1:{_closed_port()}")
    p.fill("API key", "argilla.apikey-typed")
    p.click(p.button("Connect"), "Connect")
    p.wait_visible(p.text("Not connected", exact=False), "the failed connect")
    p.click(p.button("Pull answers"), "Pull answers")
    p.wait_visible(p.text("Not pulled", exact=False), "the failed pull")
    assert p.text("No Argilla API key", exact=False).count() == 0, "asked for the key that is in the box"
    assert (
        p.page.get_by_label("Answers per record (first rows)").locator("tbody tr").filter(has_text="model").count() == 0
    )


def test_the_journey_at_1400_px(browser, app_server, model_server):
    p = _person(browser, app_server.url, "journey-1400", 1400, 1000)
    filter_demo(p, "Dutch", ROWS)
    files_follow_the_language(p)
    playground_hands_the_server_over(p, model_server)
    pipeline_runs_where_the_models_are(p, model_server)
    resume_keeps_the_results(p)
    judge_check_gives_a_verdict(p, model_server)
    new_answers_set_the_labels_aside(p)
    share_link_carries_the_server(p, browser, model_server)
    argilla_without_a_server(p)
    assert not p.dialogs


def test_a_phone_at_390_px(browser, app_server):
    p = _person(browser, app_server.url + "?language=nld&source=demo", "phone-390", 390, 844)
    tabs = _box(p.page.get_by_role("tab", name="1. Filter"))
    assert tabs["y"] < 844 * 0.6, f"the tabs start below the first screen's top part: {tabs}"
    assert p.page.locator("#intro-more").filter(visible=True).count() == 0  # the long intro waits for a wider screen
    p.wait_visible(p.text("of Dutch", exact=False), "the link's Dutch rows")
    cells = p.page.locator(".table-wrap .body-cell").filter(visible=True)
    p.wait_visible(cells, "the preview's cells")
    widths = [c["width"] for c in cells.evaluate_all("els => els.slice(0, 5).map(e => e.getBoundingClientRect())")]
    assert min(widths) >= 100, f"the preview's columns are crushed (one character per line): {widths}"
    _doc_shot(p, "phone.png")
    klingon = _person(browser, app_server.url + "?language=Klingon&source=demo", "klingon", 390, 844)
    klingon.wait_visible(klingon.text("is not in the demo data", exact=False), "the message for Klingon")
