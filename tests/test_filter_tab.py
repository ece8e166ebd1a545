"""The Filter tab's handlers, driven as Gradio calls them (with OAuth profile/token or None), against the fake Hub."""

from __future__ import annotations

import uuid

import gradio as gr
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.filter import filtered, sources
from tests.test_filter_hub import AYA_CARD, demo_raw
from ui import filter_link, sign_in
from ui import filter_tab as ft
from ui.session import Session


def profile(name: str) -> gr.OAuthProfile:
    return gr.OAuthProfile({"name": name, "preferred_username": name, "profile": "", "picture": ""})


def token(value: str) -> gr.OAuthToken:
    return gr.OAuthToken(token=value, scope="openid profile write-repos", expires_at=2_000_000_000)


@pytest.fixture()
def hubdata(fake_hub):
    sources.clear_cache()
    fake_hub.add_user("alice", "hf_alice", orgs=["langcommunity"])
    fake_hub.add_dataset(sources.AYA_ID, demo_raw(), card=AYA_CARD)
    yield fake_hub
    sources.clear_cache()


def load(session: Session, choice: str = ft.SRC_AYA, oauth=None, language: str | None = None, **hub_fields):
    fields = {
        "dataset_id": "",
        "split": "train",
        "config": "",
        "prompt_col": "prompt",
        "response_col": "response",
        "language_col": "",
        "all_rows_language": "",
    } | hub_fields
    out = ft.on_load(session, {"source": choice, **fields, "language": language}, oauth)
    keep = gr.update()
    return (
        session,
        *(out.get(k, keep) for k in ("load_status", "lang_table", "lang_plot", "language", "annotation_types")),
    )


def filt(session: Session, language, prof=None, repo_name="", **kw):
    v = {
        "annotation_types": [],
        "min_prompt": 0,
        "max_prompt": 0,
        "min_response": 0,
        "max_response": 0,
        "dedup": True,
        "sample": 0,
        "seed": 42,
    } | kw
    out = ft.on_filter(session, {"language": language, **v, "repo_name": repo_name}, prof)
    keep = gr.update()
    return (session, *(out.get(k, keep) for k in ("count", "preview", "repo_name", "push", "push_note")))


def push(session: Session, owner, repo_name, prof=None, tok=None, private=True, overwrite=False):
    values = {"owner": owner, "repo_name": repo_name, "private": private, "overwrite": overwrite}
    return ft.on_push(session, values, prof, tok)["push_status"]


def test_app_builds_with_the_filter_tab():
    import app

    demo = app.build_app()
    assert isinstance(demo, gr.Blocks)
    labels = {getattr(b, "label", None) for b in demo.blocks.values()}
    assert {"Language (required)", "Dataset name", "Preview (first 50 rows)"} <= labels


def test_load_aya_shows_languages_and_stores_nothing_per_user_but_a_reference(hubdata):
    s = Session()
    s, status, lt, plot, lang_update, ann_update = load(s)
    assert "Loaded:" in status and sources.AYA_ID.replace("_", "\\_") in status
    assert isinstance(lt, pd.DataFrame) and list(lt.columns) == [  # people's labels
        "Language",
        "Code",
        "Rows",
        "Prompt length (mean chars)",
        "Answer length (mean chars)",
    ]
    assert lt.iloc[0]["Code"] == "nld" and plot["rows"].sum() == lt["Rows"].sum()
    assert ("Dutch (nld) — 38 rows", "nld") in lang_update["choices"]
    assert ann_update["choices"] == ["original-annotations", "re-annotations"]
    assert s.filter_tab.source is sources.load_source(sources.SourceSpec.aya(), None)  # the shared copy


def test_filters_update_count_preview_and_session(hubdata):
    s = Session()
    s, *_ = load(s)
    s, count, preview, repo, btn, note = filt(s, "nld")
    assert "**37 rows** of Dutch" in count and "out of 38" in count
    assert isinstance(s.filtered, filtered.FilteredSet) and s.filtered.rows == 37
    assert list(preview.columns) == ["Prompt", "Answer", "Language", "Annotation type", "Id"] and len(preview) == 37
    assert btn["interactive"] is False and sign_in.needed() in note  # not signed in: push disabled, says why
    s, count, preview, repo, btn, note = filt(s, "Dutch", profile("alice"), min_response=150)
    assert s.filtered.rows < 37 and f"**{s.filtered.rows} rows**" in count
    assert repo["value"] == "aya-nld" and btn["interactive"] is True and note == ""
    s, count, _, repo, btn, note = filt(s, "nld", profile("alice"), repo_name="my-own-name", min_prompt=10_000)
    assert "**0 rows**" in count and "pushing is disabled" in count
    assert s.filtered is None and btn["interactive"] is False
    assert "value" not in repo  # the user's own name is kept (only the placeholder follows the data)


def test_unknown_language_and_bad_filters(hubdata):
    s = Session()
    s, *_ = load(s)
    s, count, *_ = filt(s, "Dutsh")
    assert "Did you mean: Dutch" in count and s.filtered is None
    s, count, *_ = filt(s, "nl", min_prompt=50, max_prompt=10)
    assert "is above the maximum" in count
    s, count, *_ = filt(s, None)
    assert "Choose a language" in count
    s2, count, *_ = filt(Session(), "nl")
    assert "Click **Load** above" in count and "is chosen" in count  # no data yet; the language is kept


def test_push_from_the_tab(hubdata):
    s = Session()
    s, *_ = load(s)
    s, *_ = filt(s, "fr", profile("alice"), sample=5)
    assert sign_in.needed() in push(s, "alice", "aya-fra", None, None)
    name = f"aya-fra-{uuid.uuid4().hex[:6]}"
    msg = push(s, "langcommunity", name, profile("alice"), token("hf_alice"))
    assert msg.startswith("**Pushed** 5 rows (private)"), msg
    assert hubdata.read_table(f"langcommunity/{name}").num_rows == 5
    again = push(s, "langcommunity", name, profile("alice"), token("hf_alice"))
    assert "Not pushed" in again and "already exists" in again and "overwrite" in again
    bad = push(s, "alice", "bad name!", profile("alice"), token("hf_alice"))
    assert "Not pushed" in bad and "not a valid repo name" in bad
    s.filtered = None
    assert "no rows to push" in push(s, "alice", "x", profile("alice"), token("hf_alice"))


def test_owner_choices_from_whoami(hubdata):
    owner, btn, note = ft.on_tab_select(Session(), {"owner": None}, profile("alice"), token("hf_alice")).values()
    assert owner["choices"] == ["alice", "langcommunity"] and owner["value"] == "alice"
    owner, btn, note = ft.on_tab_select(Session(), {"owner": None}, None, None).values()
    assert owner["choices"] == [] and btn["interactive"] is False and sign_in.needed() in note


def test_downloads(hubdata, tmp_path):
    s = Session()
    s, *_ = load(s, choice=ft.SRC_DEMO)
    files, status = ft.on_download(s).values()
    assert files is None and "Nothing to download" in status
    s, *_ = filt(s, "ja")
    files, status = ft.on_download(s).values()
    assert [f.rsplit(".", 1)[1] for f in files] == ["parquet", "jsonl", "md"]
    assert pq.read_table(files[0]).to_pylist() == s.filtered.table.to_pylist()
    assert "demo" in open(files[2], encoding="utf-8").read().lower()


def test_demo_source_and_hub_errors_in_the_tab(hubdata):
    s = Session()
    s, status, *_ = load(s, choice=ft.SRC_DEMO)
    assert "demo data" in status.lower() and "not for training" in status
    s, status, lt, *_ = load(s, choice=ft.SRC_HUB, dataset_id="nobody/nothing", language_col="lang")
    assert "Could not load the dataset" in status and "was not found" in status and lt == gr.update()
    s, status, *_ = load(s, choice=ft.SRC_HUB, dataset_id="")
    assert "Enter a dataset id" in status
    s, status, *_ = load(
        s, choice=ft.SRC_HUB, dataset_id=sources.AYA_ID, prompt_col="question", language_col="language"
    )
    assert "no column 'question' for the prompt" in status
    with hubdata.unreachable():
        s, status, *_ = load(s, choice=ft.SRC_AYA)
    assert "Could not reach the Hugging Face Hub" in status and "demo data" in status
    assert s.filter_tab.source.info.is_demo


def test_untrusted_text_is_escaped_in_status():
    src = sources.demo_source(note="<script>alert(1)</script> [x](javascript:alert(1))")
    status = ft._load_status(src)
    assert "<script>" not in status and "](javascript" not in status


def _event_form(demo: gr.Blocks, api_name: str):
    """The form of the event wired under ``api_name`` (its API takes the fields in the form's component order)."""
    return next(f.fn for f in demo.fns.values() if f.api_name == api_name).form


def test_launched_app_demo_flow(tmp_path):
    """The wiring as a browser uses it: load the demo data, filter, download, through a launched app."""
    import socket

    from gradio_client import Client

    import app

    demo = app.build_app()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, ssr_mode=False, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path))
        load_form, filter_form = (_event_form(demo, name) for name in ("on_load", "on_filter"))
        load_values = {
            "source": ft.SRC_DEMO,
            "dataset_id": "",
            "split": "train",
            "config": "",
            "prompt_col": "prompt",
            "response_col": "response",
            "language_col": "",
            "all_rows_language": "",
            "language": None,
        }
        status, table, plot, languages, ann, *_ = client.predict(*load_form.api_args(load_values), api_name="/on_load")
        assert "302 rows in 11 languages" in status
        assert ["Yoruba (yor) — 15 rows", "yor"] in languages["choices"]
        filter_values = {**ft.FILTER_DEFAULTS, "annotation_types": [], "language": "Yoruba"}
        out = client.predict(*filter_form.api_args(filter_values), api_name="/on_filter")
        assert "**14 rows** of Yoruba" in out[0]
        files, message = client.predict(api_name="/on_download")
        assert len(files) == 3 and "14 rows ready" in message
        assert pq.read_table(files[0]).num_rows == 14
    finally:
        demo.close()


def test_no_stale_state_files_cleared_source_follows_the_data_and_unknown_link_languages_said(hubdata):
    """Switching the language empties the download box (its files were the other language's); when Aya cannot be
    reached and the demo data comes instead, the Source radio says Demo; a link's language that the data lacks, or
    that is no language at all, gets a message instead of an empty box."""
    s = Session()
    load(s, choice=ft.SRC_DEMO)
    filt(s, "nld")
    assert "rows ready to download" in ft.on_download(s)["download_status"]
    out = ft.on_filter(s, {**ft.FILTER_DEFAULTS, "language": "yor"}, None)
    assert out["files"] is None and out["download_status"] == "" and "of Yoruba" in out["count"]
    with hubdata.unreachable():
        out = ft.on_load(Session(), {"source": ft.SRC_AYA})
    assert out["source"]["value"] == ft.SRC_DEMO and "demo data" in out["load_status"]
    assert "source" not in ft.on_load(Session(), {"source": ft.SRC_DEMO})  # nothing to correct

    class Link:
        def __init__(self, **query):
            self.query_params = query

    klingon = filter_link.on_link_open(Session(), Link(language="Klingon", source="demo"))
    assert "is not in the demo data" in klingon["load_status"] and "Klingon" in klingon["load_status"]
    nonsense = filter_link.on_link_open(Session(), Link(language="Xyzzyish", source="demo"))
    assert "not a language DPO Studio knows" in nonsense["load_status"]
    aya = filter_link.on_link_open(Session(), Link(language="Xyzzyish"))
    assert "not a language DPO Studio knows" in aya["load_status"] and "language" not in aya
