"""A signed-in user goes from the Argilla tab to "connected to my new Argilla Space" with one name and one click, in
a real browser (Playwright + Debian's chromium), against the fake Hub's Spaces API and the real local Argilla (a
Space made from Argilla's template runs on it; see ``tests/fixtures/fakehub_spaces.py``).

The owner password and API key are shown once, with copy buttons, then hidden for good; they appear in no log line,
no file the app wrote, no repo on the fake Hub and no page once hidden.
"""

from __future__ import annotations

import time

import pytest

from tests.fixtures import chromium
from tests.fixtures.app_server import MOCK_OAUTH_TOKEN, OWNER

pytestmark = [pytest.mark.browser, pytest.mark.argilla]

SPACE = f"{OWNER}/argilla-community"


@pytest.fixture
def page():
    with chromium.launch() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(30_000)
        yield context.new_page()


def _visible(page, text: str):
    return page.get_by_text(text, exact=False).filter(visible=True).first


def test_one_name_one_click_connects_to_a_new_argilla_space(page, app_server, fake_hub, argilla_stack):
    spaces = fake_hub.app.spaces
    spaces.build_seconds = 2.0
    spaces.serve_argilla(argilla_stack.url, argilla_stack.create_owner)
    app_server.register_users()
    page.goto(app_server.url)
    page.get_by_role("button", name="Sign in with Hugging Face").click()
    page.get_by_role("button", name=f"Logout ({OWNER})").wait_for()
    page.get_by_role("tab", name="4. Argilla").click()
    page.get_by_text("Create an Argilla Space (one click)").click()
    name_box = page.get_by_label("Space name")
    name_box.wait_for()
    deadline = time.monotonic() + 15
    while name_box.input_value() != f"{OWNER}/argilla" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert name_box.input_value() == f"{OWNER}/argilla"  # the default, filled in for the signed-in user
    name_box.fill(SPACE)

    page.get_by_role("button", name="Create an Argilla Space", exact=True).click()
    _visible(page, "is building").wait_for(timeout=30_000)  # progress with the elapsed time
    _visible(page, "Connected to your new Argilla Space").wait_for(timeout=120_000)
    _visible(page, f"as {OWNER} (owner)").wait_for()
    made = spaces.space(SPACE)
    assert made is not None and made.template == "argilla/argilla-template-space"
    key_box = page.locator("#space-key").locator("textarea, input").first
    password_box = page.locator("#space-password").locator("textarea, input").first
    assert key_box.input_value() == made.secrets["API_KEY"]
    assert password_box.input_value() == made.secrets["PASSWORD"]
    assert page.get_by_label("Argilla URL").input_value() == argilla_stack.url
    # The workspace list came from the new Space's Argilla: the next step (send) is ready.
    assert page.get_by_label("Workspace").input_value() == argilla_stack.workspace

    page.get_by_role("button", name="I saved them: hide").click()
    key_box.wait_for(state="hidden")
    html = page.content()
    log = app_server.log_text()
    hub_files = b"".join(
        b"".join(fake_hub.files(repo_id, repo_type).values()) for repo_type, repo_id in list(fake_hub.state.repos)
    )
    for secret in (made.secrets["API_KEY"], made.secrets["PASSWORD"]):
        assert secret not in html and secret not in log
        assert secret.encode() not in hub_files
        assert not app_server.files_containing({"secret": secret})
    # The Space was created with the signed-in user's token, never the machine's.
    creates = [c for c in app_server.hub_calls if c[:2] == ("POST", "/api/repos/create")]
    assert creates and all(name == "ayla-oauth" for _, _, name in creates), creates
    assert MOCK_OAUTH_TOKEN not in html
