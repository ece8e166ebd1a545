"""The whole journey in a real browser (Playwright + Debian's chromium, headless), as people would use the app.

Two people use the app at the same time, each in their own browser context:

- **ayla** signs in by clicking "Sign in with Hugging Face" (Gradio's local mock OAuth, answered by the fake Hub),
  filters the demo data to Dutch, compares two local SmolLM2 servers in the Playground, runs a 5-row pipeline
  (SmolLM2 as generator and judge), sends the rows to the local Argilla, where an annotator's answers are submitted
  through the Argilla SDK, pulls them back, exports (the owner choices are her account and the organisation where she
  can write, not the one where she only reads) and pushes to her namespace on the fake Hub; the test loads that
  dataset back with ``datasets.load_dataset`` and compares it with the export the tab offered for download.
- **bruno** is signed in with a minted session cookie (see ``tests/fixtures/app_server.py``). While ayla's pipeline
  runs he loads his own *private* Hub dataset whose row carries ``<img onerror>`` and ``<script>`` payloads, gets a
  model answer with the same kind of payload from a fake OpenAI-compatible server, and pushes his filtered set. The
  payloads must show as literal text and never run; he must see none of ayla's data, and she none of his.

Afterwards the canary checks search the app's log, every page's HTML, every file the app wrote and everything on the
fake Hub for the test's recognisable tokens, and check that every Hub write carried the writing user's own token
(never the Space owner's ``HF_TOKEN``). Screenshots of every tab go to ``test-output/browser/``.

Every wait is bounded; a failed wait saves a screenshot and says what it was waiting for.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.core.schema import STATUS_GENERATION_FAILED, STATUSES
from tests.conftest import OUTPUT_DIR
from tests.fixtures import chromium
from tests.fixtures.app_server import CANARIES, MOCK_OAUTH_TOKEN, OWNER, SECOND, SECOND_TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.llm, pytest.mark.argilla]

SHOTS = OUTPUT_DIR / "browser"
STEP_MS = 30_000  # an ordinary click's result
LLM_MS = 120_000  # two SmolLM2 answers on a busy 2-core machine
PIPELINE_S = 420  # 5 rows, generator + judge on SmolLM2
MAX_TOKENS = 48

# Untrusted text that would run if it were ever rendered as HTML. Each sets a window flag and opens a dialog.
ROW_PROMPT = "Wat betekent <img src=x onerror=\"window.__xss='row';alert('row')\"> in HTML?"
ROW_RESPONSE = "Het is een plaatje. <script>window.__xss='row-script';alert('row-script')</script> Klaar."
MODEL_ANSWER = (
    "Mijn antwoord: <img src=x onerror=\"window.__xss='model';alert('model')\"> en "
    "<script>window.__xss='model-script'</script> einde."
)
COLUMN_PAYLOAD = "<img src=x onerror=\"window.__xss='column';alert('column')\">note"  # a column's *name*
BRUNO_DATASET = f"{SECOND}/xss-rows"


# --- one person in one browser context ------------------------------------------------------------------------------
@dataclass
class Person:
    name: str
    page: object
    html: list[str] = field(default_factory=list)  # every page's HTML at each screenshot (for the canary check)
    dialogs: list[str] = field(default_factory=list)
    shots: int = 0
    last_answers: dict | None = None

    def shot(self, label: str) -> Path:
        self.shots += 1
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{self.name}-{self.shots:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.html.append(self.page.content())
        return path

    def fail(self, what: str, exc: BaseException | None = None) -> None:
        path = self.shot("FAILED-" + re.sub(r"\W+", "-", what)[:40])
        detail = f" ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})" if exc else ""
        pytest.fail(f"[{self.name}] {what}{detail}. Screenshot: {path}", pytrace=False)

    def wait_visible(self, locator, what: str, timeout: int = STEP_MS) -> None:
        try:
            locator.first.wait_for(state="visible", timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - Playwright's TimeoutError; re-raised as a clear failure
            self.fail(f"waited {timeout // 1000} s for {what}", exc)

    def wait_until(self, predicate, what: str, timeout_s: float, every: float = 0.5):
        """Poll ``predicate()`` until it returns something truthy (returned), or fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except Exception as exc:  # noqa: BLE001 - a detached element while Gradio re-renders: try again
                last = exc
            if last and not isinstance(last, Exception):
                return last
            time.sleep(every)
        self.fail(f"waited {timeout_s:.0f} s for {what} (last: {str(last)[:200]!r})")

    def click(self, locator, what: str, timeout: int = STEP_MS) -> None:
        self.wait_visible(locator, what, timeout)
        try:
            locator.first.click(timeout=timeout)
        except Exception as exc:  # noqa: BLE001
            self.fail(f"could not click {what}", exc)

    # Gradio widgets ------------------------------------------------------------------------------------------------
    def tab(self, label: str) -> None:
        self.click(self.page.get_by_role("tab", name=label), f"tab {label!r}")
        self.wait_visible(self.page.get_by_role("tab", name=label, selected=True), f"tab {label!r} to open")

    def button(self, name: str, exact: bool = True):
        return self.page.get_by_role("button", name=name, exact=exact).filter(visible=True)

    def field(self, label: str, nth: int = 0, exact: bool = True):
        return self.page.get_by_label(label, exact=exact).filter(visible=True).nth(nth)

    def text(self, text: str, exact: bool = False):
        return self.page.get_by_text(text, exact=exact).filter(visible=True)

    def choose(self, label: str, option: str, nth: int = 0) -> None:
        """Pick ``option`` (substring of its text) in a dropdown."""
        self.click(self.field(label, nth), f"dropdown {label!r}")
        self.click(self.page.get_by_role("option", name=option).filter(visible=True), f"option {option!r} in {label!r}")

    def type_choice(self, label: str, value: str, nth: int = 0) -> None:
        """Type a custom value into a dropdown that accepts one (e.g. a model id; ``label`` is a prefix)."""
        box = self.field(label, nth, exact=False)
        self.click(box, f"dropdown {label!r} #{nth}")
        box.fill(value)
        # Leave with Tab: Enter would pick the first suggestion that contains the typed text (Gradio's dropdown),
        # e.g. "x" becomes "CohereLabs/aya-expanse-32b"; blurring keeps the custom value.
        box.press("Tab")

    def fill(self, label: str, value: str, nth: int = 0, exact: bool = True) -> None:
        box = self.field(label, nth, exact)
        self.wait_visible(box, f"the box {label!r} #{nth}")
        box.fill(str(value))
        box.press("Tab")

    def value(self, label: str, nth: int = 0) -> str:
        return self.field(label, nth).input_value()

    def xss_flag(self):
        return self.page.evaluate("window.__xss === undefined ? null : String(window.__xss)")


@pytest.fixture(scope="module")
def browser():
    for old in SHOTS.glob("*.png"):  # screenshots of an earlier run would mix with this one's
        old.unlink()
    with chromium.launch() as b:
        yield b


def _person(browser, app_server, name: str, cookie: dict | None = None) -> Person:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(STEP_MS)
    if cookie:
        context.add_cookies([cookie])
    page = context.new_page()
    person = Person(name, page)
    page.on("dialog", lambda d: (person.dialogs.append(d.message), d.dismiss()))
    page.goto(app_server.url)
    person.wait_visible(page.get_by_role("tab", name="1. Filter"), "the app to load")
    return person


@pytest.fixture(scope="module")
def ayla(browser, app_server) -> Person:
    """Signs in through the LoginButton (Gradio's mock OAuth against the fake Hub)."""
    app_server.register_users()
    person = _person(browser, app_server, OWNER)
    person.click(person.button("Sign in with Hugging Face", exact=False), "the sign-in button")
    person.wait_visible(person.button(f"Logout ({OWNER})", exact=False), "the sign-in redirect to come back signed in")
    return person


@pytest.fixture(scope="module")
def bruno(browser, app_server) -> Person:
    """Signed in as a second user by a minted session cookie, with his own (canary) token."""
    app_server.register_users()
    person = _person(browser, app_server, SECOND, app_server.session_cookie(SECOND, SECOND_TOKEN, "Bruno Tester"))
    person.wait_visible(person.button(f"Logout ({SECOND})", exact=False), "the minted session to show bruno signed in")
    return person


@pytest.fixture(scope="module")
def payload_server():
    """A fake OpenAI-compatible server whose every answer carries an HTML/script payload."""
    from tests.fixtures.faulty_server import FakeLLMServer

    server = FakeLLMServer(responder=lambda req: MODEL_ANSWER, token_delay=0.005).start()
    try:
        yield server
    finally:
        server.stop()


# --- steps --------------------------------------------------------------------------------------------------------
def filter_demo(p: Person, language: str, sample: int) -> None:
    p.tab("1. Filter")
    p.page.get_by_label("Demo data (bundled, no network)").check()
    p.click(p.button("Load"), "Load")
    p.wait_visible(p.text("Now choose a language"), "the demo data to load")
    p.choose("Language (required)", language)
    p.wait_visible(p.text(f"of {language}"), f"the {language} row count")
    p.fill("Random sample of at most N rows (0 = all)", str(sample))
    p.wait_visible(p.text(f"{sample} rows", exact=True), f"the count to show {sample} rows after sampling")


def use_openai_column(p: Person, nth: int, model: str, base_url: str) -> None:
    p.choose("Runs on", "OpenAI-compatible server", nth)
    p.type_choice("Model id", model, nth)
    p.fill("Base URL", base_url, nth)


def set_max_tokens(p: Person, n: int) -> None:
    if not p.page.get_by_label("number input for Max new tokens").filter(visible=True).count():
        p.text("Generation settings").first.click()
    box = p.page.get_by_label("number input for Max new tokens").filter(visible=True).first
    box.fill(str(n))
    box.press("Enter")


def answers_done(p: Person, letters: str) -> dict[str, str] | None:
    """The answers once every column in ``letters`` has its final stats line (speed, or a warning) and the texts
    stayed the same for one more poll (the last streamed update has been drawn)."""
    answers = {x: p.value(f"Answer {x}") for x in letters}
    final = p.page.get_by_text(re.compile(r"tokens/s|⚠️")).filter(visible=True).count()
    previous, p.last_answers = getattr(p, "last_answers", None), answers
    return answers if all(answers.values()) and final >= len(letters) and answers == previous else None


# --- the journey --------------------------------------------------------------------------------------------------
def bruno_loads_payload_rows(bruno: Person, fake_hub) -> None:
    fake_hub.add_dataset(
        BRUNO_DATASET,
        [
            {"prompt": ROW_PROMPT, "response": ROW_RESPONSE, COLUMN_PAYLOAD: "x"},
            {"prompt": "Hoe laat is het?", "response": "Het is drie uur.", COLUMN_PAYLOAD: "y"},
        ],
        private=True,
    )
    bruno.tab("1. Filter")
    bruno.page.get_by_label("Another dataset on the Hub").check()
    bruno.fill("Dataset id", BRUNO_DATASET)
    bruno.fill("…or the language of all rows", "Dutch")
    # a wrong column first: the message lists the dataset's columns, one of whose *names* is a payload
    bruno.fill("Response column", "answer")
    bruno.click(bruno.button("Load"), "Load")
    bruno.wait_visible(bruno.text("Could not load the dataset"), "the wrong-column message")
    toast = bruno.page.get_by_test_id("toast-body").filter(has_text="Its columns are")
    bruno.wait_visible(toast, "the wrong-column warning (toast)")
    bruno.wait_visible(toast.get_by_text(COLUMN_PAYLOAD), "the column name shown as literal text in the warning")
    assert bruno.page.locator('img[src="x"]').count() == 0, "a column name became an <img> element in a warning"
    bruno.shot("filter-wrong-column")
    # his private dataset (only his token can read it): the payload row is shown as text
    bruno.fill("Response column", "response")
    bruno.click(bruno.button("Load"), "Load")
    bruno.wait_visible(bruno.text("Now choose a language"), "bruno's private dataset to load")
    bruno.choose("Language (required)", "Dutch")
    bruno.wait_visible(bruno.text("2 rows", exact=True), "bruno's 2 rows")
    bruno.wait_visible(bruno.text("<img src=x onerror="), "the <img> payload shown as literal text in the preview")
    bruno.wait_visible(bruno.text("<script>window.__xss"), "the <script> payload shown as literal text")
    assert bruno.page.locator('img[src="x"]').count() == 0, "the row's <img> became an element"
    bruno.shot("filter-payload")


def bruno_gets_a_payload_answer(bruno: Person, payload_server) -> None:
    bruno.tab("2. Playground")
    use_openai_column(bruno, 0, "payload-model", payload_server.base_url)
    bruno.fill("Prompt", ROW_PROMPT)
    bruno.click(bruno.button("Generate"), "Generate")
    answers = bruno.wait_until(lambda: answers_done(bruno, "A"), "bruno's payload answer", 60)
    assert answers["A"] == MODEL_ANSWER
    bruno.shot("playground-payload")
    # the requests to that server carried no Hub token (an OpenAI-compatible server gets only its own key)
    for req in payload_server.requests:
        sent = json.dumps(req.headers) + json.dumps(req.json)
        leaked = [name for name, tok in CANARIES.items() if tok in sent]
        assert not leaked, f"{leaked} sent to an OpenAI-compatible server"


def bruno_pushes_his_rows(bruno: Person, fake_hub) -> None:
    bruno.tab("1. Filter")
    bruno.fill("Dataset name", "xss-rows-nld")
    bruno.click(bruno.button("Push to the Hub"), "bruno's push button")
    bruno.wait_visible(bruno.text("Pushed", exact=True), "bruno's push to finish")
    assert fake_hub.exists(f"{SECOND}/xss-rows-nld")
    pushed = fake_hub.read_table(f"{SECOND}/xss-rows-nld").to_pylist()
    assert ROW_PROMPT in {r["prompt"] for r in pushed}


def bruno_sees_nothing_of_aylas(bruno: Person, llm_servers) -> None:
    """The tabs after his Filter/Playground show nothing: ayla's run, Argilla data and export are hers only."""
    bruno.tab("3. Pipeline")
    bruno.wait_visible(bruno.text(f"from {BRUNO_DATASET}", exact=False), "bruno's own data as the Pipeline input")
    assert bruno.text("state:").count() == 0, "bruno's Pipeline tab shows a run (ayla's?)"
    html = bruno.page.content()
    assert not [srv.base_url for srv in llm_servers if srv.base_url in html], "ayla's model servers show for bruno"
    bruno.shot("pipeline-empty")
    bruno.tab("4. Argilla")
    bruno.wait_visible(bruno.text("Nothing to send yet"), "bruno's Argilla tab to say there is nothing to send")
    bruno.shot("argilla-empty")
    bruno.tab("5. Export")
    bruno.wait_visible(bruno.text("No input yet"), "bruno's Export tab to say there is no input")
    bruno.shot("export-empty")


def ayla_compares_two_models(ayla: Person, llm_servers) -> dict[str, str]:
    ayla.tab("2. Playground")
    for nth, server in enumerate(llm_servers[:2]):
        use_openai_column(ayla, nth, server.model, server.base_url)
    set_max_tokens(ayla, MAX_TOKENS)
    ayla.click(ayla.button("Random prompt from the data", exact=False), "Random prompt")
    ayla.wait_until(lambda: ayla.value("Prompt"), "a prompt sampled from ayla's data", 20)
    ayla.click(ayla.button("Generate"), "Generate")
    return ayla.wait_until(lambda: answers_done(ayla, "AB"), "both SmolLM2 answers", LLM_MS / 1000)


def ayla_runs_the_pipeline(ayla: Person, llm_servers) -> None:
    """Model A from the Playground generates; the second SmolLM2 server judges; 5 rows, short answers."""
    ayla.click(ayla.button("Use in pipeline"), "Use in pipeline")
    ayla.wait_visible(ayla.text("will use", exact=False), "the Playground to hand model A to the Pipeline")
    ayla.tab("3. Pipeline")
    ayla.wait_until(lambda: ayla.value("Base URL") == llm_servers[0].base_url, "the Playground's model A prefilled", 20)
    assert ayla.field("Model id(s)", exact=False).input_value() == llm_servers[0].model
    judge = llm_servers[1]
    ayla.choose("Runs on", "OpenAI-compatible server", 1)
    ayla.fill("Judge model id (empty: the first generator)", judge.model)
    ayla.fill("Base URL", judge.base_url, 1)
    ayla.fill("Row limit (0 = all rows)", "5")
    ayla.fill("Max new tokens per answer", str(MAX_TOKENS))
    ayla.click(ayla.button("Start / resume"), "Start / resume")
    ayla.wait_visible(ayla.text("state:", exact=False), "the run to start")


def ayla_waits_for_the_pipeline(ayla: Person) -> int:
    """Wait for the run to finish; every row shows an explicit status. Returns how many rows can go to Argilla."""
    ayla.tab("3. Pipeline")
    ayla.wait_visible(ayla.text("are ready for", exact=False), "the 5-row pipeline to finish", PIPELINE_S * 1000)
    ayla.wait_visible(ayla.text("5 / 5 rows", exact=True), "5 of 5 rows done")
    shown = {s: ayla.text(s, exact=True).count() for s in STATUSES}
    assert sum(shown.values()) >= 5, f"the latest-rows table does not show a status per row: {shown}"
    ayla.shot("pipeline")
    return 5 - shown.get(STATUS_GENERATION_FAILED, 0)


def ayla_validates_in_argilla(ayla: Person, argilla_stack, n: int) -> str:
    """Send to the local Argilla, let an annotator answer every record (through the SDK), pull the answers."""
    ayla.tab("4. Argilla")
    ayla.wait_visible(ayla.text(f"{n} of 5 rows are ready to send", exact=False), f"the {n} sendable rows")
    ayla.fill("Argilla URL", argilla_stack.url)
    ayla.fill("API key", argilla_stack.api_key)
    ayla.click(ayla.button("Connect"), "Connect")
    ayla.wait_visible(ayla.text("Connected", exact=True), "the connection to the local Argilla")
    assert argilla_stack.api_key not in ayla.page.content(), "the Argilla key is shown back in the page"
    ayla.fill("Dataset name in Argilla", "journey-dutch")
    ayla.click(ayla.button("Send to Argilla"), "Send to Argilla")
    ayla.wait_visible(ayla.text("Sent.", exact=True), "the records to reach Argilla", 90_000)
    ayla.shot("argilla-sent")

    argilla_stack.create_annotator("annie")
    dataset = argilla_stack.owner_client().datasets(name="journey-dutch", workspace=argilla_stack.workspace)
    assert dataset is not None, "the Argilla tab said Sent but there is no dataset"
    records = list(dataset.records())
    assert len(records) == n, f"{len(records)} records in Argilla, expected {n}"
    answers = {
        r.id: {"status": "submitted", "values": {"rating_1": 4, "rating_2": 2, "preference": "response_1"}}
        for r in records
    }
    argilla_stack.submit("journey-dutch", {"annie": answers})

    ayla.click(ayla.button("Pull answers"), "Pull answers")
    ayla.wait_visible(ayla.text("Pulled.", exact=True), "the answers to come back", 90_000)
    ayla.wait_visible(
        ayla.text(f"{n} of {n} records have at least one submitted answer", exact=False), f"all {n} answered records"
    )
    ayla.wait_visible(ayla.text("annie", exact=True), "annie in the annotators table")
    ayla.shot("argilla-pulled")
    return "journey-dutch"


def ayla_exports_and_pushes(ayla: Person, tmp_path: Path, n: int) -> tuple[str, Path, int]:
    ayla.tab("5. Export")
    ayla.wait_visible(ayla.text(f"People answered {n} rows", exact=False), "the Export tab to see the answers")
    ayla.click(ayla.button("Build the dataset"), "Build the dataset")
    # one pair per answered row, minus what the default rules drop (e.g. a chosen SmolLM2 answer in English)
    summary = ayla.page.get_by_text(re.compile(rf"^\d+ pairs from \d+ of {n} rows")).filter(visible=True)
    ayla.wait_visible(summary, f"the export of the {n} answered rows")
    pairs = int(summary.first.inner_text().split()[0])
    dropped = n - pairs
    assert pairs >= 1, "no pair survived the default rules"
    if dropped:
        ayla.wait_visible(ayla.text(f": {dropped}.", exact=False), f"the {dropped} dropped row(s) to be counted")
    # download the Parquet file the tab offers, as a person would
    link = ayla.page.locator("tr").filter(has_text=".parquet").filter(visible=True).locator("a")
    ayla.wait_visible(link, "the Parquet download")
    with ayla.page.expect_download(timeout=STEP_MS) as info:
        link.first.click()
    local = tmp_path / info.value.suggested_filename
    info.value.save_as(local)
    # she may push to her account or to an organisation where she can write, not to one where she only reads
    ayla.click(ayla.field("Owner (you or an organisation where you can write)"), "the Owner dropdown")
    offered = ayla.wait_until(
        lambda: [
            o.inner_text().strip().split("\n")[-1]
            for o in ayla.page.get_by_role("option").filter(visible=True).all()  # "✓\nayla" when chosen
        ],
        "the Owner choices",
        10,
    )
    assert OWNER in offered and "aya-community" in offered and "observers" not in offered, offered
    ayla.page.keyboard.press("Escape")
    assert ayla.value("Owner (you or an organisation where you can write)") == OWNER
    ayla.fill("Dataset name", "journey-dpo")
    ayla.click(ayla.button("Push to the Hub"), "the Export push button")
    ayla.wait_visible(ayla.text("Pushed", exact=True), "the export push to finish", 60_000)
    ayla.shot("export-pushed")
    return f"{OWNER}/journey-dpo", local, pairs


def test_journey_two_people_at_once(
    ayla, bruno, app_server, fake_hub, llm_servers, argilla_stack, payload_server, tmp_path
):
    """ayla does the whole journey while bruno works at the same time; see the module docstring."""
    import pyarrow.parquet as pq
    from datasets import load_dataset

    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    filter_demo(ayla, "Dutch", 5)
    ayla.shot("filter")
    lap("ayla filter")

    bruno_loads_payload_rows(bruno, fake_hub)
    ayla.tab("1. Filter")  # bruno's load did not touch her session
    ayla.wait_visible(ayla.text("5 rows", exact=True), "ayla's own 5-row count after bruno loaded his dataset")
    assert ayla.text("2 rows", exact=True).count() == 0 and ayla.text(ROW_PROMPT).count() == 0
    lap("bruno filter")

    ayla_answers = ayla_compares_two_models(ayla, llm_servers)
    ayla.shot("playground")
    lap("ayla playground")
    ayla_runs_the_pipeline(ayla, llm_servers)

    # while ayla's pipeline runs, bruno works: payload answer, push, empty tabs
    bruno_gets_a_payload_answer(bruno, payload_server)
    assert MODEL_ANSWER not in ayla_answers.values(), "bruno's answer reached ayla's Playground"
    assert bruno.value("Answer B") == "", "bruno's unused column B shows something (ayla's answer?)"
    assert all(a not in bruno.value("Answer A") for a in ayla_answers.values())
    bruno_pushes_his_rows(bruno, fake_hub)
    bruno_sees_nothing_of_aylas(bruno, llm_servers)
    lap("bruno playground+push+empty tabs (during ayla's run)")

    sendable = ayla_waits_for_the_pipeline(ayla)
    lap("ayla pipeline (rest)")
    ayla_validates_in_argilla(ayla, argilla_stack, sendable)
    lap("ayla argilla")
    repo_id, downloaded, pairs = ayla_exports_and_pushes(ayla, tmp_path, sendable)
    lap("ayla export")
    (SHOTS / "timings.json").write_text(json.dumps(timings, indent=1))

    # the pushed dataset loads back with datasets and equals what the tab offered for download
    pushed = load_dataset(repo_id, split="train", token=MOCK_OAUTH_TOKEN)
    local = pq.read_table(downloaded).to_pylist()
    assert len(pushed) == len(local) == pairs
    assert {"prompt", "chosen", "rejected"} <= set(pushed.column_names)
    key = lambda r: r["prompt"]  # noqa: E731
    assert sorted(pushed.to_list(), key=key) == sorted(local, key=key)
    assert fake_hub.repo(repo_id).private, "the export was pushed public although 'Private' was ticked"

    # nothing of bruno's reached ayla, nothing ran anywhere
    for html in ayla.html + [ayla.page.content()]:
        assert "xss-rows" not in html and "__xss" not in html
    for person in (ayla, bruno):
        assert person.xss_flag() is None and not person.dialogs, f"script ran for {person.name}: {person.dialogs}"
    # bruno's session still has only his own data
    bruno.tab("1. Filter")
    bruno.wait_visible(bruno.text("2 rows", exact=True), "bruno's own 2-row count at the end")


# --- canary checks (after the journey: same module, same app) ------------------------------------------------------
def test_tokens_never_leak(ayla, bruno, app_server, fake_hub, argilla_stack):
    """The recognisable tokens (the Space owner's HF_TOKEN, bruno's OAuth token, ayla's mock OAuth token) and the
    Argilla key ayla typed appear in no log line, no page, no file the app wrote, no card, no pushed file and no
    Argilla record."""
    secrets = {**CANARIES, "Argilla key": argilla_stack.api_key}

    def _leaks(text: str) -> list[str]:
        return [name for name, token in secrets.items() if token in text]

    log = app_server.log_text()
    assert "whoami-v2" in log, "the app's log is empty: the canary check would prove nothing"
    leaked_lines = [f"{_leaks(line)}: {line[:160]}" for line in log.splitlines() if _leaks(line)]
    assert not leaked_lines, "tokens in the app's log:\n" + "\n".join(leaked_lines)

    for person in (ayla, bruno):
        pages = list(person.html)
        for label in ("1. Filter", "2. Playground", "3. Pipeline", "4. Argilla", "5. Export"):
            person.tab(label)
            pages.append(person.page.content())
        for html in pages:
            assert not _leaks(html), f"{_leaks(html)} in a page {person.name} saw"
        storage = person.page.evaluate("JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
        assert not _leaks(storage), (
            f"{_leaks(storage)} kept in {person.name}'s browser storage: Gradio's run history saves every event's "
            "inputs (password boxes too) in localStorage unless app.main() launches with run_history=False"
        )
        assert person.xss_flag() is None and not person.dialogs, f"script ran for {person.name}"

    written = [p for p in app_server.root.rglob("*") if p.is_file() and p != app_server.log_path]
    assert any(p.suffix == ".jsonl" for p in (app_server.root / "data").rglob("*")), "no pipeline checkpoint written"
    assert any(p.suffix == ".parquet" for p in written), "no export/download file written"
    assert not app_server.files_containing(secrets), app_server.files_containing(secrets)

    dataset = argilla_stack.owner_client().datasets(name="journey-dutch", workspace=argilla_stack.workspace)
    assert dataset is not None, "the journey's Argilla dataset is missing"
    sent = json.dumps([r.to_dict() for r in dataset.records(with_suggestions=True, with_responses=True)], default=str)
    sent += json.dumps(dataset.settings.serialize(), default=str)
    assert "response_1" in sent and not _leaks(sent), _leaks(sent)

    with fake_hub.state.lock:
        repos = list(fake_hub.state.repos.values())
    ours = [r for r in repos if r.namespace in (OWNER, SECOND)]
    assert any(r.repo_id == f"{SECOND}/xss-rows-nld" for r in ours), "nothing was pushed: the Hub check proves nothing"
    for repo in ours:
        for commit in repo.commits.values():
            assert not _leaks(commit.title + commit.message), f"token in a commit message of {repo.repo_id}"
            for path, blob in commit.files.items():
                assert not _leaks(blob.data.decode("utf-8", "replace")), f"token in {repo.repo_id}/{path}"


def test_user_writes_carry_the_users_own_token(ayla, bruno, app_server):
    """The Space owner's HF_TOKEN only identifies the machine at start-up (Gradio's mock sign-in); every Hub write
    made for a person carries that person's token."""
    owner_calls = app_server.hub_calls_with("owner-hf-token")
    assert owner_calls and {(m, p) for m, p, _ in owner_calls} == {("GET", "/api/whoami-v2")}, owner_calls
    # LFS uploads go to the storage URLs the (authenticated) batch call handed out, without a token, as on the Hub
    writes = [w for w in app_server.hub_writes() if not w[1].startswith("/__lfs/")]
    assert writes, "no Hub writes were made: nothing to check"
    for method, path, token in writes:
        assert token in ("ayla-oauth", "bruno-oauth"), f"{method} {path} carried {token}"
        if f"/{SECOND}/" in path or path.startswith(f"/{SECOND}/"):
            assert token == "bruno-oauth", f"{method} {path} (bruno's repo) carried {token}"
        if f"/{OWNER}/" in path or path.startswith(f"/{OWNER}/"):
            assert token == "ayla-oauth", f"{method} {path} (ayla's repo) carried {token}"
    assert any(t == "bruno-oauth" for *_, t in writes)
    reads = [(m, p, t) for m, p, t in app_server.hub_calls if BRUNO_DATASET in p]
    assert reads and all(t == "bruno-oauth" for *_, t in reads), reads
