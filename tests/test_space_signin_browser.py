"""Real "Sign in with Hugging Face", as a Space runs it, in a real browser: the app is started with a Space's
environment and signs people in through Gradio's own OAuth code against the fake Hub's OpenID provider (discovery,
consent page, code exchange, signed id token; see ``tests/fixtures/space_app.py``). No mock sign-in.

- sofia clicks the button, signs in and consents on the Hub's page (which lists the README's scopes), comes back
  with her name shown, and pushes a filtered set into her namespace with *her* OAuth token (never the Space owner's
  ``HF_TOKEN``, a canary); she signs out and the button is back.
- tomas, in another browser context, signs in and sees nothing of hers.
- tomas's access token expires while he is signed in: a push says to sign in again and makes nothing on the Hub;
  his filtered rows stay, and he can still download them; after signing in again the push works.
"""

from __future__ import annotations

import pytest

from tests.fixtures import chromium
from tests.fixtures.app_server import OWNER, OWNER_TOKEN
from tests.fixtures.space_app import SCOPES, SpaceApp

pytestmark = [pytest.mark.browser]

STEP_MS = 30_000
PASSWORDS = {"sofia": "sofia-pass-" + "x" * 8, "tomas": "tomas-pass-" + "y" * 8}


@pytest.fixture(scope="module")
def browser():
    with chromium.launch() as b:
        yield b


@pytest.fixture(scope="module")
def people(fake_hub):
    for name, password in PASSWORDS.items():
        fake_hub.add_user(name, f"hf_personal_{name}_" + "z" * 12)  # a personal token the app never sees
        fake_hub.app.oidc.set_password(name, password)
    return PASSWORDS


def _page(browser, space: SpaceApp):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, ignore_https_errors=True)
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    page.goto(space.url)
    page.get_by_role("tab", name="1. Filter").wait_for()
    return page


def _sign_in(page, name: str, *, consent_check: bool = False) -> None:
    page.get_by_role("button", name="Sign in with Hugging Face").click()
    page.wait_for_url("**/oauth/authorize**")
    if consent_check:  # the Hub's consent page lists exactly what the app asks for
        shown = page.locator("#scopes li").all_inner_texts()
        assert shown == SCOPES, shown
    page.locator("#username").fill(name)
    page.locator("#password").fill(PASSWORDS[name])
    page.locator("#authorize").click()
    page.get_by_role("button", name=f"Logout ({name})").wait_for()


def _filter_demo(page, language: str = "Dutch", sample: int = 5) -> None:
    page.get_by_role("tab", name="1. Filter").click()
    page.get_by_label("Demo data (bundled, no network)").check()
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text("Now choose a language").first.wait_for()
    page.get_by_label("Language (required)").click()
    page.get_by_role("option", name=language).first.click()
    page.get_by_text(f"of {language}").first.wait_for()
    box = page.get_by_label("Random sample of at most N rows (0 = all)")
    box.fill(str(sample))
    box.press("Tab")
    page.get_by_text(f"{sample} rows", exact=True).first.wait_for()


def _push(page, name: str) -> None:
    box = page.get_by_label("Dataset name", exact=True)
    box.fill(name)
    box.press("Tab")
    page.get_by_role("button", name="Push to the Hub").click()


def test_real_sign_in_two_people_push_sign_out_and_expiry(browser, space_app, people, fake_hub):
    hub_requests_before = len(fake_hub.requests)
    sofia = _page(browser, space_app)
    _sign_in(sofia, "sofia", consent_check=True)
    [sofia_token] = fake_hub.app.oidc.issued("sofia")
    _filter_demo(sofia)
    _push(sofia, "nld-signin")
    sofia.get_by_text("Pushed", exact=True).first.wait_for()
    assert fake_hub.exists("sofia/nld-signin")
    assert fake_hub.read_table("sofia/nld-signin").num_rows == 5
    # Every Hub write since start was sofia's, none the Space owner's (OWNER_TOKEN belongs to ayla in the fake Hub).
    writes = [r for r in fake_hub.requests[hub_requests_before:] if r[0] not in ("GET", "HEAD") and "/api/" in r[1]]
    assert writes and {user for _, _, user in writes} == {"sofia"}, writes
    assert OWNER not in {user for _, _, user in fake_hub.requests[hub_requests_before:]}
    html = sofia.content()
    assert sofia_token not in html and OWNER_TOKEN not in html
    sofia.get_by_role("button", name="Logout (sofia)").click()
    sofia.get_by_role("button", name="Sign in with Hugging Face").wait_for()

    tomas = _page(browser, space_app)
    _sign_in(tomas, "tomas")
    tomas.get_by_role("tab", name="1. Filter").click()
    assert tomas.get_by_text("Now choose a language").count() == 0  # no data loaded: nothing of sofia's
    assert "sofia" not in tomas.content() and "nld-signin" not in tomas.content()

    _filter_demo(tomas, sample=4)
    assert fake_hub.app.oidc.expire_tokens("tomas") == 1
    _push(tomas, "nld-expired")
    tomas.get_by_text("sign in again").first.wait_for()
    assert not fake_hub.exists("tomas/nld-expired")
    assert tomas.get_by_text("4 rows", exact=True).count() > 0  # the filtered rows are still there...
    tomas.get_by_role("button", name="Prepare Parquet + JSON Lines").click()  # ...and can be downloaded
    link = tomas.locator("tr").filter(has_text=".parquet").filter(visible=True).locator("a")
    with tomas.expect_download() as info:
        link.first.click()
    import pyarrow.parquet as pq

    assert pq.read_table(info.value.path()).num_rows == 4
    # Signing in again (a new page load, as on a Space) gives a fresh token; the same push then works.
    tomas.get_by_role("button", name="Logout (tomas)").click()
    _sign_in(tomas, "tomas")
    _filter_demo(tomas, sample=4)
    _push(tomas, "nld-expired")
    tomas.get_by_text("Pushed", exact=True).first.wait_for()
    assert fake_hub.read_table("tomas/nld-expired").num_rows == 4

    log = space_app.log_text()
    for token in [OWNER_TOKEN, sofia_token, *fake_hub.app.oidc.issued("tomas")]:
        assert token not in log
