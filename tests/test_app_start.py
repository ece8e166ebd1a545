"""The app starts on a fresh machine: no HF token, no Hub, and says plainly what needs sign-in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core import hub

ROOT = Path(__file__).resolve().parent.parent


def test_no_token_means_no_sign_in_with_a_reason(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "")
    monkeypatch.setattr(hub, "local_token", lambda: None)
    ok, why = hub.local_login_check()
    assert not ok and "HF_TOKEN" in why


def test_token_the_hub_does_not_know_means_no_sign_in(fake_hub, monkeypatch):
    monkeypatch.setattr(hub, "local_token", lambda: "hf_not_a_known_token")
    ok, why = hub.local_login_check()
    assert not ok and "did not recognise" in why


def test_known_token_turns_local_sign_in_on(fake_hub, monkeypatch):
    fake_hub.add_user("starter", token="hf_starter_token")
    monkeypatch.setattr(hub, "local_token", lambda: "hf_starter_token")
    assert hub.local_login_check() == (True, "")


def test_app_builds_without_token_or_network_and_says_what_needs_sign_in(tmp_path):
    """A fresh process, no token, the Hub unreachable: the app builds and its page says sign-in is off and why."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_TOKEN", "HUGGING_FACE"))}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT="http://127.0.0.1:9", GRADIO_TEMP_DIR=str(tmp_path / "g"))
    code = (
        "import app\n"
        "ok, note = app.login_available()\n"
        "assert not ok, note\n"
        "demo = app.build_app(show_login=ok, login_note=note)\n"
        "import json; print(json.dumps(demo.config, default=str))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    page = out.stdout
    assert "Sign-in is off here" in page and "HF_TOKEN" in page
    for tab in ("1. Filter", "2. Playground", "3. Pipeline", "4. Argilla", "5. Export"):
        assert tab in page


@pytest.mark.parametrize("space", [True, False])
def test_login_button_only_where_sign_in_can_work(space, monkeypatch):
    import app

    monkeypatch.setattr(hub, "local_token", lambda: None)
    if space:
        monkeypatch.setenv("SYSTEM", "spaces")
    else:
        monkeypatch.delenv("SYSTEM", raising=False)
    assert app.login_available()[0] is space
