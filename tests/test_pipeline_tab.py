"""The Pipeline tab's handlers, driven directly: prefill, estimate, start/poll to the end, refusals, push."""

from __future__ import annotations

import time

import gradio as gr
import pytest

from pipeline.core import schema
from pipeline.filter import filtered, sources
from tests.fixtures.faulty_server import FakeLLMServer
from tests.test_generate_services import ultrafeedback_responder
from ui import pipeline_tab as tab
from ui import sign_in
from ui.session import ModelChoice, Session


def _profile(name: str) -> gr.OAuthProfile:
    return gr.OAuthProfile({"name": name, "preferred_username": name, "profile": "", "picture": ""})


def _token(value: str) -> gr.OAuthToken:
    return gr.OAuthToken(token=value, scope="openid profile write-repos", expires_at=2_000_000_000)


@pytest.fixture()
def session() -> Session:
    s = Session()
    s.filtered = filtered.filter_source(sources.demo_source(), filtered.FilterSpec(language="nld"))
    return s


def _fields(base_url: str, models: str = "fake-a\nfake-b", kind: str = "openai", rows: int = 12, **kw) -> dict:
    """The tab's settings fields, by name, as Gradio hands them to the handlers."""
    values = dict(
        kind=kind,
        models=models,
        provider="auto",
        base_url=base_url,
        judge_kind=kind,
        judge_model="judge",
        judge_provider="auto",
        judge_base_url=base_url,
        aspect="overall-rating",
        system_prompt="Antwoord in het Nederlands.",
        max_rows=rows,
        max_new_tokens=128,
        max_tokens=0,
        concurrency=4,
        temperature=0.7,
        top_p=0.95,
    )
    values.update(kw)
    return values


def _run(fields: dict, restart: bool = False, hub: bool = False, every: int = 100, repo: str = "", **kw) -> dict:
    """The settings fields plus the run options (``tab.RUN_OPTIONS``)."""
    return {**fields, "restart": restart, "hub_checkpoints": hub, "checkpoint_every": every, "repo": repo, **kw}


def _start(session: Session, values: dict, **auth) -> tuple:
    """tab.start's named outputs as (progress text, timer)."""
    out = tab.start(session, values, **auth)
    return out["progress"], out["timer"]


def _run_to_end(session: Session, timeout: float = 60) -> tab.RunView:
    deadline = time.monotonic() + timeout
    tab.poll(session)
    while session.run.running and time.monotonic() < deadline:
        time.sleep(0.1)
        tab.poll(session)
    tab.poll(session)  # what people see at the end (the results load into the session)
    return tab.run_view(session)


def test_app_builds_with_the_tab():
    import app

    assert isinstance(app.build_app(), gr.Blocks)


def test_prefill_from_the_playground_choice(session):
    session.model_choice = ModelChoice(
        model="org/chosen",
        backend="openai",
        base_url="http://127.0.0.1:1/v1",
        system_prompt="Antwoord altijd in het Nederlands.",
    )
    out = tab.on_select(session, {"models": "", "system_prompt": "", "repo": ""}, profile=_profile("alice"))
    assert out["kind"]["value"] == "openai" and out["models"]["value"] == "org/chosen"
    url, key = out["base_url"], out["api_key"]
    assert url["value"] == "http://127.0.0.1:1/v1" and url["visible"] is True and key["visible"] is True
    assert out["system_prompt"]["value"] == "Antwoord altijd in het Nederlands."
    assert out["repo"]["value"] == "alice/aya-dutch-dpo-raw"
    assert "Dutch" in out["data_note"] and f"{session.filtered.rows} Dutch rows" in out["data_note"]
    # a second visit keeps what the user typed since
    again = tab.on_select(
        session, {"models": "something else", "system_prompt": "typed", "repo": "alice/x"}, profile=_profile("alice")
    )
    assert "models" not in again and "system_prompt" not in again and "repo" not in again


def test_start_poll_and_results_in_session(session):
    with FakeLLMServer(responder=ultrafeedback_responder, latency=lambda: 0.01) as srv:
        fields = _fields(srv.base_url)
        assert "12 of 12 rows to run" in tab.estimate(session, fields)["estimate"]
        text, timer = _start(session, _run(fields, False, True, 100, ""))
        assert "Not signed in" in text  # Hub checkpoints need sign-in; the run goes on locally
        # a second run in the same session while one is going is refused
        again, _ = _start(session, _run(fields, False, False, 100, ""))
        assert "state:" in again  # shows the running run, starts nothing new
        view = _run_to_end(session)
        progress, latest, ratings, board = view.progress, view.latest, view.ratings, view.board
    assert "12 / 12 rows" in progress and "ready for" in progress
    assert session.raw.column_names == list(schema.RAW_COLUMNS) and session.raw.num_rows == 12
    assert session.raw.column("response_sources").to_pylist()[0] == ["human", "fake-a", "fake-b"]
    meta = session.raw_meta
    assert meta.models == ["fake-a", "fake-b"] and meta.judge_model == "judge"
    assert meta.language == "Dutch" and meta.counts["ok"] == 12 and meta.system_prompt
    assert meta.source.demo and schema.provenance_of(session.raw) == meta.source  # the Filter's provenance
    assert set(ratings["source"]) == {"human", "fake-a", "fake-b"}
    assert board is not None and list(board["source"]) == ["human", "fake-a", "fake-b"]
    assert list(latest.columns)[:2] == ["status", "prompt"]
    # the estimate now knows those rows are done
    assert "All 12 rows are already done" in tab.estimate(session, fields)["estimate"]


def test_refusals_say_what_to_do(session):
    empty = Session()
    text, _ = _start(empty, _run(_fields("http://127.0.0.1:9/v1"), False, False, 100, ""))
    assert "Filter" in text
    text, _ = _start(session, _run(_fields("", kind="serverless", models="org/m"), False, False, 100, ""))
    assert tab._safe(sign_in.how()) in text and session.run is None
    text, _ = _start(session, _run(_fields("not a url"), False, False, 100, ""))
    assert "is not a URL" in text
    text, _ = _start(session, _run(_fields("http://127.0.0.1:9/v1", models=" \n "), False, False, 100, ""))
    assert "at least one generator" in text
    assert (
        tab._safe(sign_in.needed())
        in tab.push(session, {"repo": "alice/x", "private": True, "overwrite": False})["push"]
    )
    assert tab.cancel(session)["progress"] == "Nothing is running."


def test_cancel_keeps_rows_and_push_to_fake_hub(session, fake_hub):
    fake_hub.add_user("tabuser", "hf_tabuser_write")
    with FakeLLMServer(responder=ultrafeedback_responder, latency=lambda: 0.2) as srv:
        fields = _fields(srv.base_url, models="fake-a", rows=0, concurrency=2)
        tab.start(
            session,
            _run(fields, False, True, 10, "tabuser/aya-dutch-dpo-raw"),
            oauth_token=_token("hf_tabuser_write"),
            profile=_profile("tabuser"),
        )
        deadline = time.monotonic() + 30
        while session.run.snapshot().done < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        text = tab.cancel(session)["progress"]
        assert "cancelled" in text
        _run_to_end(session)
    kept = session.raw.num_rows
    assert 3 <= kept < session.filtered.rows and set(session.raw.column("status").to_pylist()) == {"ok"}
    # the Hub checkpoint holds the finished rows (private); the final push replaces it
    assert fake_hub.exists("tabuser/aya-dutch-dpo-raw")
    msg = tab.push(
        session,
        {"repo": "tabuser/aya-dutch-dpo-raw", "private": True, "overwrite": False},
        oauth_token=_token("hf_tabuser_write"),
        profile=_profile("tabuser"),
    )["push"]
    assert f"Pushed **{kept:,} rows**" in msg
    import datasets

    ds = datasets.load_dataset(
        "tabuser/aya-dutch-dpo-raw", split="train", token="hf_tabuser_write", download_mode="force_redownload"
    )
    assert ds.num_rows == kept


def test_hub_checkpoint_is_restored_after_a_restart(session, fake_hub, monkeypatch, tmp_path):
    """A Space restart loses the local disk: the next run restores the finished rows from the Hub checkpoint."""
    fake_hub.add_user("restarter", "hf_restarter_write")
    monkeypatch.setenv("DPO_STUDIO_DATA_DIR", str(tmp_path / "disk-1"))
    repo = "restarter/aya-dutch-dpo-raw"
    with FakeLLMServer(responder=ultrafeedback_responder, latency=lambda: 0.01) as srv:
        fields = _fields(srv.base_url, models="fake-a", rows=8)
        tab.start(
            session,
            _run(fields, False, True, 10, repo),
            oauth_token=_token("hf_restarter_write"),
            profile=_profile("restarter"),
        )
        _run_to_end(session)
        assert session.raw.num_rows == 8
        monkeypatch.setenv("DPO_STUDIO_DATA_DIR", str(tmp_path / "disk-2"))  # a new machine: empty disk
        fresh = Session(filtered=session.filtered)
        before = srv.chat_requests
        text, _ = _start(
            fresh,
            _run(_fields(srv.base_url, models="fake-a", rows=10), False, True, 10, repo),
            oauth_token=_token("hf_restarter_write"),
            profile=_profile("restarter"),
        )
        assert "Restored 8 finished rows" in text
        assert (
            "Restored 8 finished rows" in tab.poll(fresh)["progress"]
        )  # still shown on the next tick, not overwritten
        _run_to_end(fresh)
        assert srv.chat_requests - before == 2 * 2  # only the 2 new rows were run
    assert fresh.raw.num_rows == 10 and set(fresh.raw.column("status").to_pylist()) == {"ok"}
    # someone else's dataset of that name is never overwritten by checkpoints
    fake_hub.add_user("other", "hf_other_write")
    import pyarrow as pa

    from pipeline.core import hub

    hub.push_dataset(pa.table({"x": [1]}), "other/aya-dutch-dpo-raw", "hf_other_write", private=False, card="hi")
    other = Session(filtered=session.filtered)
    text, _ = _start(
        other,
        _run(_fields("http://127.0.0.1:9/v1", models="fake-a", rows=8), False, True, 10, "other/aya-dutch-dpo-raw"),
        oauth_token=_token("hf_other_write"),
        profile=_profile("other"),
    )
    assert "is not a checkpoint of this run" in text and other.run is None


@pytest.mark.parametrize("hedge", [True, False])
def test_backup_requests_follow_the_checkbox(session, hedge):
    """The last call of the run straggles: with the box ticked it gets a backup request, unticked it never does."""
    import threading

    lock, count = threading.Lock(), [0]

    def latency() -> float:
        with lock:
            count[0] += 1
            return 3.0 if count[0] == 36 else 0.01  # 12 rows x (2 generations + 1 judge) = 36 calls

    with FakeLLMServer(responder=ultrafeedback_responder, latency=latency) as srv:
        tab.start(session, _run(_fields(srv.base_url), True, False, 100, "", hedge=hedge))  # start over: all 36 calls
        _run_to_end(session)
    snap = session.run.snapshot()
    assert snap.counts.get("ok") == 12 and count[0] >= 36
    assert (snap.hedged_calls > 0) is hedge


def test_people_who_are_not_signed_in_never_share_a_run(session):
    """Two anonymous sessions with the same data and settings get separate checkpoints; a signed-in user keeps the
    same one across sessions (so a run resumes after a reload)."""
    other = Session()
    other.filtered = session.filtered
    settings = tab.make_settings(_fields("http://127.0.0.1:9/v1"))
    mine = tab.checkpoint_for(session.filtered, settings, tab.run_owner(session, None)).path
    theirs = tab.checkpoint_for(other.filtered, settings, tab.run_owner(other, None)).path
    assert mine != theirs
    assert tab.checkpoint_for(session.filtered, settings, tab.run_owner(session, None)).path == mine  # stable
    alice = _profile("alice")
    assert (
        tab.checkpoint_for(session.filtered, settings, tab.run_owner(session, alice)).path
        == tab.checkpoint_for(other.filtered, settings, tab.run_owner(other, alice)).path
    )


def test_judge_mode_and_order_fields_reach_the_run_settings_and_the_estimate(session):
    fields = _fields("http://127.0.0.1:9/v1", models="fake-a", rows=6)
    settings = tab.make_settings({**fields, "judge_mode": "pairwise", "judge_order": "both", "judge_structured": False})
    assert (settings.judge_mode, settings.judge_order, settings.judge_structured) == ("pairwise", "both", False)
    once = tab.estimate(session, {**fields, "judge_order": "random"})["estimate"].replace(
        "\\", ""
    )  # Markdown-escaped text
    both = tab.estimate(session, {**fields, "judge_order": "both"})["estimate"].replace("\\", "")
    assert "6 generations + 6 judge calls" in once and "6 generations + 12 judge calls" in both
    assert "Unknown judge mode" in tab.estimate(session, {**fields, "judge_mode": "vibes"})["estimate"]


def test_both_orders_show_the_flip_rate_and_notices_live_and_the_waiting_limit_is_a_field(session):
    with FakeLLMServer(responder=ultrafeedback_responder, latency=lambda: 0.01) as srv:
        fields = _fields(srv.base_url, models="fake-a", rows=4, judge_order="both", max_wait_s=30)
        assert tab.make_settings(fields).max_wait_s == 30
        tab.start(session, _run(fields, restart=True))
        progress = _run_to_end(session).progress
    snap = session.run.snapshot()
    assert snap.judged_both == 4 and "Judge flip rate" in progress and f"of {snap.judged_both} rows" in progress
    assert all(tab._safe(notice) in progress for notice in snap.notices)
    assert "wait" in tab.estimate(session, {**fields, "max_wait_s": 0})["estimate"].lower()  # refused with a reason


def test_an_empty_judge_is_the_first_generator_where_it_runs_and_messages_name_the_role(session):
    """The judge box is empty and its "Runs on" still says serverless: the judge is the first generator on the
    generator's server, not serverless; the estimate lists where each model runs; a refusal names the role."""
    fields = _fields("http://127.0.0.1:9/v1", models="model-a", judge_model="", judge_base_url="", kind="openai")
    settings = tab.make_settings({**fields, "judge_kind": "serverless", "judge_base_url": ""})
    assert (settings.judge.kind, settings.judge.model, settings.judge.base_url) == (
        "openai",
        "model-a",
        "http://127.0.0.1:9/v1",
    )
    shown = tab.estimate(session, {**fields, "judge_kind": "serverless"})["estimate"]
    assert "Where the models run" in shown
    for role in ("Generator", "Judge"):
        assert tab._safe(f"{role}: model-a on http://127.0.0.1:9/v1") in shown
    # a judge that really is serverless, without sign-in: the refusal says it is the judge
    text, _ = _start(session, _run({**fields, "judge_kind": "serverless", "judge_model": "org/judge"}))
    assert "The judge org/judge runs on serverless inference" in text.replace("\\", "")
    assert "generator" not in text.split("runs on")[0]
    # Estimate after fixing the judge replaces the refusal that Start left under the buttons
    again = tab.estimate(session, {**fields, "judge_kind": "openai"})
    assert again["progress"] == "" and "Judge: model-a" in again["estimate"].replace("\\", "")


def test_the_empty_judge_follows_the_generator_backend_on_screen(session):
    follow = tab.judge_follows({"kind": "openai", "base_url": "http://h:1/v1", "provider": "auto", "judge_model": ""})
    assert follow["judge_kind"]["value"] == "openai" and follow["judge_base_url"]["value"] == "http://h:1/v1"
    assert follow["judge_base_url"]["visible"] is True
    assert tab.judge_follows({"kind": "openai", "base_url": "http://h:1/v1", "judge_model": "org/own-judge"}) == {}
    # "Use in pipeline" on a server: the judge fields show that server too
    session.model_choice = ModelChoice(model="model-a", backend="openai", base_url="http://h:2/v1")
    out = tab.on_select(session, {"models": "", "system_prompt": "", "repo": "", "judge_model": ""})
    assert out["judge_kind"]["value"] == "openai" and out["judge_base_url"]["value"] == "http://h:2/v1"


def test_resuming_a_finished_run_keeps_showing_its_results(session):
    """Start / resume on a finished run runs nothing: the latest rows, both charts and the leaderboards stay."""
    with FakeLLMServer(responder=ultrafeedback_responder, latency=lambda: 0.01) as srv:
        fields = _fields(srv.base_url, models="fake-a", rows=6)
        _start(session, _run(fields, restart=True))
        first = _run_to_end(session)
        assert len(first.latest) == 6
        text, _ = _start(session, _run(fields))  # everything is done already
        shown = tab.poll(session)  # the first tick, while or after the empty run
        view = _run_to_end(session)
    assert "All 6 rows are already done" in tab.estimate(session, fields)["estimate"]
    assert len(view.latest) == 6 and set(view.latest["status"]) == {"ok"}
    assert set(view.ratings["source"]) == {"human", "fake-a"} and view.ratings["count"].sum() > 0
    assert set(view.langs["source"]) == {"human", "fake-a"}
    assert view.board is not None and list(view.board["source"]) == ["human", "fake-a"]  # one generator: a board
    assert "latest" in shown and len(shown["latest"]["value"]) == 6  # the table people see is not emptied
    final = tab.poll(session)
    assert final["leaderboard"]["visible"] is True and len(final["latest"]["value"]) == 6


def test_runs_on_info_names_each_kind_apart():
    """The "Runs on" info line spells out the long kind labels the dropdown shortens, one clause each."""
    from pipeline import inference
    from ui.backend_picker import KIND_CHOICES, KIND_INFO

    shortened = [spec.label for name, spec in inference.KINDS.items() if dict(KIND_CHOICES).get(spec.label) != name]
    assert shortened and KIND_INFO.split("; ") == shortened
    assert all(len(label) <= 32 for label, _ in KIND_CHOICES)
