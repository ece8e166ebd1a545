"""An Argilla Space in one call (``pipeline.argilla.space``), against the fake Hub's Spaces API and the real local
Argilla: a Space made from Argilla's template runs on the local server, so the test connects and sends records with
the owner credentials the workflow generated. Every failure the issue names has its message checked here; the
secrets appear in no request path, no repo file and no ``repr``.
"""

from __future__ import annotations

import secrets

import pyarrow as pa
import pytest

from pipeline import argilla as aio
from pipeline.argilla import space
from pipeline.core import schema


def _user(fake_hub, name: str, orgs: dict[str, str] | None = None, *, read_only: bool = False) -> str:
    token = f"hf_space_{name}_" + secrets.token_hex(8)
    fake_hub.add_user(name, token, orgs or {}, read_only=read_only)
    return token


def _raw(n: int = 3) -> pa.Table:
    rows = [
        {
            "id": f"s{i}", "prompt": f"Vraag {i}?", "system_prompt": "", "target_language": "nld",
            "responses": [f"H{i}", f"M{i}"], "response_sources": ["human", "org/gen"], "ratings": [4, 3],
            "rationales": [None, None], "detected_languages": ["nld", "nld"], "language_confidences": [0.9, 0.9],
            "language_match": [True, True], "judge_model": "org/judge", "aspect": "overall-rating",
            "status": schema.STATUS_OK, "error": "",
        }
        for i in range(n)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows)


@pytest.fixture
def fast_spaces(fake_hub):
    spaces = fake_hub.app.spaces
    before = spaces.build_seconds
    spaces.build_seconds = 0.3
    yield spaces
    spaces.build_seconds = before


@pytest.mark.argilla
def test_one_name_one_click_gives_a_running_argilla_space_we_can_send_to(fake_hub, fast_spaces, argilla_stack):
    fast_spaces.serve_argilla(argilla_stack.url, argilla_stack.create_owner)
    token = _user(fake_hub, "sena")
    creds = space.new_credentials("sena")
    assert creds.password not in repr(creds) and creds.api_key not in repr(creds)

    first = space.create_space(token, space.default_space_id("sena"), creds, storage=True)
    assert first.space_id == "sena/argilla" and not first.reused
    assert first.building, first.stage
    seen: list[str] = []
    final = space.follow(token, "sena/argilla", poll_s=0.2, timeout_s=120, on_update=lambda s: seen.append(s.stage))
    assert final.running and final.url == argilla_stack.url and final.storage
    assert "BUILDING" in seen and seen[-1] == "RUNNING"

    made = fast_spaces.space("sena/argilla")
    assert made.template == space.TEMPLATE_ID and made.sdk == "docker"
    assert made.variables["USERNAME"]["value"] == "sena"
    assert made.volumes == [{"type": "bucket", "source": "sena/argilla-data", "mountPath": "/data"}]
    assert fast_spaces.buckets["sena/argilla-data"]["private"] is True

    with aio.connect(final.url, creds.api_key) as conn:
        assert (conn.username, conn.role) == ("sena", "owner")
        result = aio.push(conn, _raw(), "space-sena", "argilla")
    assert result.added == 3

    # No secret in the Space's repo, in any request path, or in what the Hub shows of the Space.
    files = b"".join(fake_hub.files("sena/argilla", repo_type="space").values())
    paths = " ".join(p for _, p, _ in fake_hub.requests)
    for secret in (creds.password, creds.api_key):
        assert secret.encode() not in files and secret not in paths
    import huggingface_hub

    info = huggingface_hub.HfApi().space_info("sena/argilla", token=token)
    assert creds.api_key not in repr(info.__dict__)

    # Re-running with the same name (here pasted as the Space's page) reuses it: no second create, secrets untouched.
    creates = sum(1 for m, p, _ in fake_hub.requests if m == "POST" and p == "/api/repos/create")
    again = space.create_space(token, "https://huggingface.co/spaces/sena/argilla", space.new_credentials("sena"))
    assert again.reused and again.running
    assert sum(1 for m, p, _ in fake_hub.requests if m == "POST" and p == "/api/repos/create") == creates
    assert fast_spaces.space("sena/argilla").secrets["API_KEY"] == creds.api_key


def test_a_name_taken_by_another_space_is_refused_and_left_alone(fake_hub, fast_spaces):
    token = _user(fake_hub, "taro")
    fake_hub.add_repo("taro/argilla", {"README.md": "---\nsdk: gradio\n---\nmy app\n"}, repo_type="space")
    with pytest.raises(space.SpaceError) as err:
        space.create_space(token, "taro/argilla", space.new_credentials("taro"))
    assert err.value.kind == "taken"
    assert "is taken by a Space that is not an Argilla Space" in err.value.message
    assert "choose another name" in err.value.message
    assert fake_hub.read_text("taro/argilla", "README.md", repo_type="space").endswith("my app\n")


def test_no_write_access_to_the_org(fake_hub, fast_spaces):
    token = _user(fake_hub, "ines", {"readers-club": "read"})
    with pytest.raises(space.SpaceError) as err:
        space.create_space(token, "readers-club/argilla", space.new_credentials("ines"))
    assert err.value.kind == "no_access"
    assert "no write access to 'readers-club'" in err.value.message and "'ines/…'" in err.value.message
    assert not fake_hub.exists("readers-club/argilla", repo_type="space")


def test_a_token_without_the_scope(fake_hub, fast_spaces):
    token = _user(fake_hub, "rui", read_only=True)
    with pytest.raises(space.SpaceError) as err:
        space.create_space(token, "rui/argilla", space.new_credentials("rui"))
    assert err.value.kind == "scope"
    assert "sign in again" in err.value.message and "manage repos" in err.value.message


def test_an_oauth_token_without_manage_repos_is_refused_by_the_hub(fake_hub, fast_spaces):
    from tests.fixtures.fakehub_spaces import Grant

    _user(fake_hub, "lea")
    oauth = "hf_oauth_lea_" + secrets.token_hex(8)
    fake_hub.add_user("lea", oauth)  # a write token, issued by sign-in without 'manage-repos':
    fake_hub.app.oidc.tokens[oauth] = Grant("lea", ["openid", "profile", "write-repos"], "app", "", None)
    with pytest.raises(space.SpaceError) as err:
        space.create_space(oauth, "lea/argilla", space.new_credentials("lea"))
    assert err.value.kind == "scope" and "'manage repos' permission" in err.value.message
    assert not fake_hub.exists("lea/argilla", repo_type="space")


def test_a_build_error_shows_the_last_log_lines_and_what_to_do(fake_hub, fast_spaces):
    token = _user(fake_hub, "omar")
    fast_spaces.fail_build("omar/argilla", ["ERROR: failed to solve: process did not complete", "exit code: 137"])
    space.create_space(token, "omar/argilla", space.new_credentials("omar"))
    with pytest.raises(space.SpaceError) as err:
        space.follow(token, "omar/argilla", poll_s=0.2, timeout_s=60)
    assert err.value.kind == "build"
    assert "failed to build (BUILD_ERROR)" in err.value.message and "Factory rebuild" in err.value.message
    assert err.value.logs[-2:] == ["ERROR: failed to solve: process did not complete", "exit code: 137"]


def test_a_space_stuck_sleeping(fake_hub, fast_spaces):
    token = _user(fake_hub, "noor")
    fast_spaces.stay_asleep("noor/argilla")
    space.create_space(token, "noor/argilla", space.new_credentials("noor"))
    with pytest.raises(space.SpaceError) as err:
        space.follow(token, "noor/argilla", poll_s=0.2, timeout_s=2)
    assert err.value.kind == "sleeping"
    assert "did not wake up" in err.value.message and "Restart this Space" in err.value.message
    assert ("POST", "/api/spaces/noor/argilla/restart", "noor") in fake_hub.requests  # it tried to wake it once


def test_a_bad_name_is_refused_before_any_hub_call(fake_hub, fast_spaces):
    token = _user(fake_hub, "ada")
    before = len(fake_hub.requests)
    with pytest.raises(space.SpaceError) as err:
        space.create_space(token, "ada/no spaces allowed", space.new_credentials("ada"))
    assert err.value.kind == "invalid" and "Space name" in err.value.message
    assert len(fake_hub.requests) == before


@pytest.mark.argilla
def test_cli_create_space_prints_the_credentials_once_and_connects(
    fake_hub, fast_spaces, argilla_stack, monkeypatch, capsys
):
    from pipeline import cli

    fast_spaces.serve_argilla(argilla_stack.url, argilla_stack.create_owner)
    token = _user(fake_hub, "kemal")
    monkeypatch.setenv("HF_TOKEN", token)
    assert cli.main(["argilla", "create-space", "--timeout", "120"]) == 0
    out, err = capsys.readouterr()
    assert "Created kemal/argilla" in err and "Connected to" in err and "as kemal (owner)" in err
    key = next(line.split()[-1] for line in out.splitlines() if line.startswith("Owner API key:"))
    assert out.count(key) == 1 and key not in err
    assert fast_spaces.space("kemal/argilla").secrets["API_KEY"] == key
    # Again: reused, and no credentials printed (they were shown once).
    assert cli.main(["argilla", "create-space", "--name", "kemal/argilla", "--no-wait"]) == 0
    out, _ = capsys.readouterr()
    assert "already existed and was reused" in out and "Owner API key" not in out


def test_tab_handler_names_the_failure_and_shows_the_last_log_lines(fake_hub, fast_spaces):
    import gradio as gr

    from ui import argilla_space
    from ui.session import Session

    session = Session()
    outputs = list(argilla_space.on_create_space(session, {"space_name": "argilla"}))
    assert (
        "Sign in with Hugging Face first" in outputs[-1]["space_status"]
    )  # not signed in: nothing was asked of the Hub

    token = _user(fake_hub, "ugo")
    fast_spaces.fail_build("ugo/argilla", ["npm ERR! code ELIFECYCLE", "The command returned a non-zero code: 1"])
    profile = gr.OAuthProfile({"preferred_username": "ugo", "name": "Ugo", "picture": "", "profile": ""})
    oauth = gr.OAuthToken(token=token, scope="openid profile manage-repos write-repos", expires_at=0)
    outputs = list(argilla_space.on_create_space(session, {"space_name": ""}, oauth, profile))
    assert "Created the Space" in outputs[0]["space_status"] and "building" in outputs[0]["space_status"]
    status, logs = outputs[-1]["space_status"], outputs[-1]["logs"]
    assert status.startswith("**The Argilla Space is not ready.**") and "Factory rebuild" in status
    assert logs["visible"] is True and logs["value"].endswith("The command returned a non-zero code: 1")
    assert session.argilla_tab.space_id == "ugo/argilla" and session.argilla_key == ""  # not connected
