"""A community link, in a real browser: opening ``?language=…`` pre-selects the language in the Filter tab, and
"Share a link" builds a link from the session's choices (language and source; model and system prompt once chosen in
the Playground) that does the same for the next person, and says what it does not carry.

``tests/test_ui_browser.py`` opens a full link (language, model, system prompt, source) in a fresh page."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fixtures import chromium

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def page():
    with chromium.launch() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(30_000)
        yield context.new_page()


def load_demo(page) -> None:
    page.get_by_label("Demo data (bundled, no network)").check()
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text("Now choose a language").first.wait_for()


def test_link_preselects_language_and_share_builds_the_same_link(page, app_server):
    page.goto(app_server.url + "?language=nld")
    page.get_by_role("tab", name="1. Filter").wait_for()
    load_demo(page)
    # The link's language is chosen as soon as the data is there: the row count of Dutch shows.
    page.get_by_text("of Dutch").first.wait_for()

    page.get_by_text("Share a link with your community").click()
    page.get_by_role("button", name="Make the link from my choices").click()
    box = page.locator("#share-link textarea, #share-link input").first
    page.wait_for_function("el => el.value.includes('language=')", arg=box.element_handle(), timeout=30_000)
    link = box.input_value()
    assert link.startswith(app_server.url.rstrip("/") + "/")
    # no model chosen in the Playground yet: the link has the language and the data's source, and a note says why
    assert parse_qs(urlsplit(link).query) == {"language": ["nld"], "source": ["demo"]}
    note = page.locator("#share-link-note")
    note.get_by_text("does not carry a model", exact=False).wait_for()
    assert "Use in pipeline" in note.inner_text()

    # The next person opens it and gets the demo data filtered to Dutch without a click.
    page.goto(link)
    page.get_by_role("tab", name="1. Filter").wait_for()
    page.get_by_text("of Dutch").first.wait_for()
    assert page.get_by_label("Demo data (bundled, no network)").is_checked()


def test_without_a_link_no_language_is_chosen(page, app_server):
    page.goto(app_server.url)
    page.get_by_role("tab", name="1. Filter").wait_for()
    load_demo(page)
    page.get_by_text("Choose a language").first.wait_for()
    assert page.get_by_text("of Dutch").count() == 0
