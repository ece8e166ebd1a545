"""What people see, in a real browser (Playwright + Debian's chromium, 1400 px wide), against the real app:

- the Pipeline's ratings chart, after a run with two generator models (the error-injecting OpenAI-compatible server
  as generators and judge), has visible, coloured bars for every source, side by side, and a legend entry for each;
  before a run both charts say what will appear there (no stray "0.000000" tick, no "-" legend entry);
- table headers are never broken inside a word (Filter, Pipeline, Argilla, Export tables);
- the Argilla "Not connected" message shows its example URL with no stray characters;
- a community link opened in a fresh page lands ready: the demo data loaded and filtered to the link's language,
  the language named, the model and system prompt set in the Playground, and a banner that says so.

A screenshot of the finished run goes to ``test-output/browser/ui-pipeline.png`` (the README's Pipeline picture).
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from tests.conftest import OUTPUT_DIR
from tests.fixtures import chromium

pytestmark = [pytest.mark.browser]

SHOTS = OUTPUT_DIR / "browser"
STEP_MS = 30_000

# Every visible table header: is any word broken over two lines (its client rectangles sit at two heights), or is
# the header wider than its cell (cut off: words are never broken, so a too-narrow column hides the end)?
BROKEN_HEADER_WORDS = """() => {
  const broken = [];
  for (const th of document.querySelectorAll('th')) {
    if (!th.offsetParent || !th.innerText.trim()) continue;
    const box = th.querySelector('.header-content') || th;
    if (box.scrollWidth > box.clientWidth + 1) broken.push('cut off: ' + th.innerText.trim());
    const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
    let node;
    while ((node = walker.nextNode())) {
      const re = /\\S+/g;
      let m;
      while ((m = re.exec(node.data))) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) broken.push(th.innerText.trim());
      }
    }
  }
  return broken;
}"""

# The marks of a Vega chart drawn as SVG inside the element with this id: bars (fill, x, width, height) and the
# legend's labels and symbol colours.
CHART_MARKS = """(id) => {
  const root = document.getElementById(id);
  if (!root) return null;
  const svg = root.querySelector('.vega-embed svg');
  if (!svg) return null;
  const bars = [...svg.querySelectorAll('g.mark-rect path, g.mark-rect rect')].map(el => {
    const box = el.getBoundingClientRect();
    return {fill: el.getAttribute('fill') || getComputedStyle(el).fill, x: box.x, width: box.width, height: box.height};
  });
  const legend = svg.querySelector('g.role-legend, .role-legend');
  const labels = legend ? [...legend.querySelectorAll('g.role-legend-label text, .role-legend-label text')]
    .map(t => t.textContent) : [];
  const symbols = legend ? [...legend.querySelectorAll('g.role-legend-symbol path, .role-legend-symbol path')]
    .map(p => p.getAttribute('fill') || getComputedStyle(p).fill) : [];
  const texts = [...svg.querySelectorAll('text')].map(t => t.textContent);
  return {bars, labels, symbols, texts};
}"""


@pytest.fixture(scope="module")
def browser():
    with chromium.launch() as b:
        yield b


@pytest.fixture
def page(browser, app_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        yield page
    finally:
        assert not dialogs, f"a dialog opened (script ran?): {dialogs}"
        context.close()


@pytest.fixture(scope="module")
def model_server():
    """Generators echo the prompt; the judge rates the human answer 2 and every model answer 3."""
    from tests.fixtures.faulty_server import FakeLLMServer
    from tests.test_generate_services import ultrafeedback_responder

    with FakeLLMServer(responder=ultrafeedback_responder, latency=lambda: 0.02) as server:
        yield server


def visible(page, locator):
    return locator.filter(visible=True).first


def open_app(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="1. Filter").wait_for()


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.get_by_role("tab", name=name, selected=True).wait_for()


def field(page, label: str, nth: int = 0, exact: bool = True):
    return page.get_by_label(label, exact=exact).filter(visible=True).nth(nth)


def fill(page, label: str, value: str, nth: int = 0, exact: bool = True) -> None:
    box = field(page, label, nth, exact)
    box.fill(value)
    box.press("Tab")


def choose(page, label: str, option: str, nth: int = 0) -> None:
    field(page, label, nth).click()
    visible(page, page.get_by_role("option", name=option)).click()


def load_demo(page, language: str = "Dutch") -> None:
    tab(page, "1. Filter")
    page.get_by_label("Demo data (bundled, no network)").check()
    page.get_by_role("button", name="Load", exact=True).click()
    visible(page, page.get_by_text("Now choose a language")).wait_for()
    choose(page, "Language (required)", language)
    visible(page, page.get_by_text(f"of {language}")).wait_for()


def broken_headers(page) -> list[str]:
    return page.evaluate(BROKEN_HEADER_WORDS)


def chart(page, elem_id: str) -> dict:
    page.wait_for_function(f"() => !!document.querySelector('#{elem_id} .vega-embed svg text')", timeout=STEP_MS)
    return page.evaluate(CHART_MARKS, elem_id)


def coloured(fill: str | None) -> bool:
    return bool(fill) and fill not in ("none", "transparent") and not fill.startswith("rgba(0, 0, 0, 0")


# --- tests ----------------------------------------------------------------------------------------------------------
def test_charts_say_what_will_appear_before_a_run(page, app_server):
    open_app(page, app_server.url)
    tab(page, "3. Pipeline")
    for elem_id, words in (("ratings-chart", "ratings"), ("langs-chart", "target language")):
        marks = chart(page, elem_id)
        text = " ".join(marks["texts"])
        assert "appear" in text and "here" in text and words in text, f"{elem_id}: {marks['texts']}"
        assert not marks["bars"] and not marks["labels"], f"{elem_id} draws marks without data: {marks}"
        assert "0.000000" not in text and "-" not in marks["texts"]


def test_two_generators_draw_coloured_grouped_bars_and_a_legend_entry_each(page, app_server, model_server):
    open_app(page, app_server.url)
    load_demo(page)
    tab(page, "3. Pipeline")
    choose(page, "Runs on", "OpenAI-compatible server", 0)
    fill(page, "Model id(s): one per line (several → a leaderboard)", "fake-a\nfake-b")
    fill(page, "Base URL", model_server.base_url, 0)
    choose(page, "Runs on", "OpenAI-compatible server", 1)
    fill(page, "Judge model id (empty: the first generator)", "judge")
    fill(page, "Base URL", model_server.base_url, 1)
    fill(page, "Row limit (0 = all rows)", "6")
    fill(page, "Max new tokens per answer", "32")
    page.get_by_role("button", name="Start / resume").click()
    visible(page, page.get_by_text("are ready for", exact=False)).wait_for(timeout=180_000)

    sources = {"human", "fake-a", "fake-b"}
    page.wait_for_function(
        "() => document.querySelectorAll('#ratings-chart svg .role-legend-label text').length >= 3", timeout=STEP_MS
    )
    marks = chart(page, "ratings-chart")
    assert set(marks["labels"]) == sources, f"legend entries: {marks['labels']}"
    assert len(marks["symbols"]) == 3 and all(coloured(f) for f in marks["symbols"]), marks["symbols"]
    assert len(set(marks["symbols"])) == 3, f"two sources share a colour: {marks['symbols']}"
    drawn = [b for b in marks["bars"] if b["height"] > 0.5 and b["width"] > 0.5]
    assert drawn and all(coloured(b["fill"]) for b in drawn), f"bars without colour: {drawn}"
    assert {b["fill"] for b in drawn} == set(marks["symbols"]), "not every source has visible bars"
    # side by side, not stacked: no two bars share their horizontal position
    lefts = sorted(round(b["x"]) for b in drawn)
    assert len(lefts) == len(set(lefts)), f"bars stand on top of each other (stacked): {drawn}"

    langs = chart(page, "langs-chart")
    assert set(langs["labels"]) == sources and all(coloured(b["fill"]) for b in langs["bars"])
    assert not broken_headers(page), broken_headers(page)
    # the picture for the README: the finished run, its latest rows and both charts
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 1250})
    page.get_by_text("Limits and settings").first.click()  # fold the settings
    for close in page.get_by_test_id("toast-close").all():  # the "Started" notice
        close.click()
    page.locator("#pipeline-progress").evaluate("e => { e.scrollIntoView({block: 'start'}); window.scrollBy(0, -16); }")
    page.wait_for_timeout(1500)  # the charts redraw at the new size
    page.screenshot(path=str(SHOTS / "ui-pipeline.png"))


def test_table_headers_are_not_broken_inside_a_word(page, app_server):
    open_app(page, app_server.url)
    load_demo(page)
    page.get_by_text("Languages in the dataset").click()
    page.get_by_role("columnheader", name="Answer length (mean chars)").first.wait_for()
    assert not broken_headers(page), broken_headers(page)
    headers = [h.strip() for h in page.locator("th").filter(visible=True).all_inner_texts() if h.strip()]
    assert "Answer length (mean chars)" in headers and "Annotation type" in headers
    assert not any("_" in h for h in headers), f"raw column names as headers: {headers}"
    for name in ("2. Playground", "3. Pipeline", "4. Argilla", "5. Export"):
        tab(page, name)
        page.wait_for_timeout(500)
        assert not broken_headers(page), (name, broken_headers(page))


def test_argilla_message_shows_its_example_url_without_stray_characters(page, app_server):
    open_app(page, app_server.url)
    tab(page, "4. Argilla")
    fill(page, "Argilla URL", "")
    page.get_by_role("button", name="Connect", exact=True).click()
    message = page.locator("#argilla-status")
    message.get_by_text("No Argilla URL", exact=False).wait_for()
    text = message.inner_text()
    assert "(like https://owner-name.hf.space), or set the ARGILLA_API_URL" in text, text
    assert "\\" not in text and "&#" not in text and "&amp;" not in text, text
    assert "this Space" not in text, "the app runs locally here, not on a Space"
    hrefs = message.locator("a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
    assert not [h for h in hrefs if h and "\\" in h], hrefs


def test_a_shared_link_lands_ready_in_a_fresh_page(page, app_server):
    system_prompt = "Antwoord altijd in het Nederlands, kort en duidelijk."
    query = urlencode(
        {"language": "nld", "model": "org/shared-model", "system_prompt": system_prompt, "source": "demo"}
    )
    open_app(page, f"{app_server.url}/?{query}")
    banner = page.locator("#link-banner")
    banner.get_by_text("Opened from a shared link", exact=False).wait_for()
    assert "Dutch (nld)" in banner.inner_text() and "org/shared-model" in banner.inner_text()
    # the demo data is loaded and filtered to Dutch without a click; the language is named, not a bare code
    visible(page, page.get_by_text("of Dutch", exact=False)).wait_for()
    assert "Dutch (nld)" in field(page, "Language (required)").input_value()
    assert page.get_by_label("Demo data (bundled, no network)").is_checked()
    tab(page, "2. Playground")
    page.wait_for_function(
        "() => [...document.querySelectorAll('input')].some(i => i.value === 'org/shared-model')", timeout=STEP_MS
    )
    assert field(page, "Model id", 0, exact=False).input_value() == "org/shared-model"
    page.wait_for_function(
        "(text) => [...document.querySelectorAll('textarea')].some(t => t.value === text)",
        arg=system_prompt,
        timeout=STEP_MS,
    )  # the Playground's system prompt
    assert "Dutch (nld)" in field(page, "Target language", exact=False).input_value()
    assert visible(page, page.get_by_text(re.compile(r"\d+ prompts in your filtered data"))).is_visible()


def test_a_link_to_aya_is_one_click_away_with_the_language_named(page, app_server):
    open_app(page, f"{app_server.url}/?language=nld&source=aya")
    visible(page, page.get_by_text("Opened from a shared link", exact=False)).wait_for()
    assert page.get_by_label("Aya (CohereForAI/aya_dataset)").is_checked()
    visible(page, page.get_by_text("Click Load above", exact=False)).wait_for()
    assert field(page, "Language (required)").input_value() == "Dutch (nld)"
    assert page.get_by_text("Load a dataset first").count() == 0
