"""The Export tab's handlers, driven as functions (the app builds; push goes to the fake Hub)."""

from __future__ import annotations

import uuid
from pathlib import Path

import gradio as gr
import pyarrow as pa
import pytest

from pipeline import export as ex
from pipeline.core.schema import RunMeta
from tests.test_export import ann_row, annotations, raw_row, table
from ui import export_tab as tab
from ui import export_view as view
from ui import sign_in
from ui.session import Session

EVIL = "<img src=x onerror=alert(1)><script>alert(2)</script>"
ROWS = [
    raw_row("a", ["Amsterdam.", "Parijs."], [5, 1], prompt="Wat is de hoofdstad van Nederland?"),
    raw_row("b", ["x", "y", "z"], [2, 5, 1], prompt=f"Noem een letter. {EVIL}"),
    raw_row("t", ["Ja.", "Nee."], [3, 3], prompt="Klopt dat?"),
    raw_row("e", [f"Rood. {EVIL}", "Blauw."], [4, 1], prompt="Welke kleur?"),
]
DEFAULTS = dict(tab.DEFAULTS)  # the form's values by name, as the tab starts


def _session() -> Session:
    s = Session()
    s.raw = pa.Table.from_pylist(ROWS)
    s.raw_meta = RunMeta.from_dict(
        {
            "source": {"dataset": "CohereForAI/aya_dataset", "license": "apache-2.0", "language": "Dutch"},
            "settings": {"generators": [{"model": "org/model-1"}], "judge": {"model": "org/judge"}},
        }
    )
    s.annotations = annotations([ann_row("a", [1.0, 5.0], 1), ann_row("b", [2.0, 4.0, 1.0], 1)])
    return s


def _values(source=tab.SRC_SESSION, rules=None, fmt="standard", test_size=0, language="nld", **more):
    """The form's values by name: the tab's defaults with these changes (``rules``: ExportRules fields)."""
    return {
        **DEFAULTS,
        "source": source,
        "language": language,
        "format": fmt,
        "test_size": test_size,
        "owner": "alice",
        "repo_name": "aya-dutch-dpo",
        **(rules or {}),
        **more,
    }


BUILD_OUTPUTS = (
    "status",
    "counts",
    "preview",
    "plot_rules",
    "plot_ratings",
    "plot_margins",
    "plot_agreement",
    "downloads",
)


def _build(session, source=tab.SRC_SESSION, rules=None, fmt="standard", test_size=0, language="nld"):
    out = tab.on_build(session, _values(source, rules, fmt, test_size, language))  # named outputs, in order
    return (session, *(out[k] for k in BUILD_OUTPUTS))


def _refresh(session, language=None, profile=None, token=None):
    values = {"source": tab.SRC_SESSION, "language": language, "owner": None, "repo_name": ""}
    return tuple(tab.on_refresh(session, values, profile, token).values())


def _plain(markdown: str) -> str:
    """What a reader sees: Markdown backslash escapes removed."""
    import re

    return re.sub(r"\\(.)", r"\1", markdown)


def _profile(name: str) -> gr.OAuthProfile:
    return gr.OAuthProfile({"name": name, "preferred_username": name, "profile": "", "picture": ""})


def _token(token: str) -> gr.OAuthToken:
    return gr.OAuthToken(token=token, scope="openid profile write-repos", expires_at=0)


def test_app_builds_with_the_export_tab():
    import app

    demo = app.build_app()
    assert isinstance(demo, gr.Blocks)


def test_build_fills_numbers_preview_and_downloads():
    session = _session()
    out = _build(session)
    returned, status, counts, preview, rules_df, ratings_df, margins_df, agreement_upd, files = out
    assert returned is session and isinstance(session.export, ex.ExportResult)
    assert "**3 pairs** from 3 of 4 rows" in status and "Tie (equal ratings, or annotators said tie): 1" in status
    assert "Preferences from people: 2; from the judge: 1" in status
    assert "Judge versus annotators on 2 rows" in status
    assert ["Rows kept", 3] in counts
    assert [r[0] for r in preview] == ["a", "b", "e"]
    assert preview[1][1] == f"Noem een letter. {EVIL}"  # untrusted text goes to the grid as text, unchanged
    assert dict(zip(rules_df["rule"], rules_df["rows"]))["tie"] == 1
    assert set(ratings_df["response"]) == {"chosen", "rejected"} and margins_df["pairs"].sum() == 3
    assert agreement_upd["visible"] is True and agreement_upd["value"]["rows"].sum() == 2
    names = sorted(Path(f).name for f in files)
    assert names == ["README.md", "aya-dutch-dpo.jsonl", "aya-dutch-dpo.parquet"]
    parquet = next(f for f in files if f.endswith(".parquet"))
    assert ex.read_table(parquet).to_pylist() == session.export.table.to_pylist()
    card = Path(next(f for f in files if f.endswith("README.md"))).read_text(encoding="utf-8")
    assert 'load_dataset("alice/aya-dutch-dpo")' in card and "- argilla" in card


def test_judge_only_source_ignores_annotations_and_split_files():
    session = _session()
    out = _build(session, source=tab.SRC_JUDGE, fmt="conversational", test_size=1)
    assert "Preferences from people: 0; from the judge: 3" in out[1]
    assert sorted(Path(f).name for f in out[-1]) == [
        "README.md",
        "aya-dutch-dpo-test.jsonl",
        "aya-dutch-dpo-test.parquet",
        "aya-dutch-dpo-train.jsonl",
        "aya-dutch-dpo-train.parquet",
    ]
    assert out[7]["visible"] is False  # no agreement plot without human answers


def test_every_row_dropped_is_explained():
    session = _session()
    out = _build(session, rules={"preference_source": "judge", "min_margin": 4.5})
    assert _plain(out[1]).startswith("**Nothing to export.** Every row was dropped (4 in the input)")
    assert "rating margin below the minimum: 3" in out[1] and out[-1] is None and session.export is None


def test_no_input_and_mixed_languages():
    empty = Session()
    summary = _refresh(empty)[0]
    assert "no raw results in this session yet" in summary
    assert "no raw results" in _build(empty)[1]
    mixed = _session()
    mixed.raw = pa.Table.from_pylist([*ROWS, raw_row("f", ["Oui.", "Non."], [5, 1], target="fra")])
    summary, lang, *_ = _refresh(mixed)
    assert "mixes languages" in summary and lang["value"] is None
    assert lang["choices"] == [("Dutch (nld)", "nld"), ("French (fra)", "fra")]  # named, not bare codes
    assert "mixes 2 target languages" in _build(mixed, language=None)[1]
    assert "**1 pairs**" in _build(mixed, language="fra")[1]


def test_untrusted_codes_are_escaped_in_markdown():
    session = _session()
    session.raw = pa.Table.from_pylist([raw_row("x", ["a", "b"], [5, 1], target=EVIL)])
    summary = _refresh(session)[0]
    assert "<img" not in summary and "<script" not in summary and "&lt;img" in summary


def test_refresh_signed_out_disables_push():
    out = _refresh(_session())
    summary, lang, owner, name, push_btn, note, hub_row = out
    assert "4 rows" in summary and "People answered 2 rows" in summary
    assert lang["value"] == "nld" and name["value"] == "aya-dutch-dpo"
    assert push_btn["interactive"] is False and note == sign_in.needed() and hub_row["visible"] is False
    assert tab.on_push(_session(), _values(repo_name="x"), None, None)["push_status"] == sign_in.needed()


@pytest.fixture()
def hub(fake_hub):
    fake_hub.add_user("alice", "hf_alice_tab", orgs={"team": "write", "readers": "read"})
    fake_hub.add_user("bob", "hf_bob_tab")
    return fake_hub


def test_refresh_signed_in_offers_writable_owners(hub):
    out = _refresh(_session(), None, _profile("alice"), _token("hf_alice_tab"))
    owner, push_btn, note = out[2], out[4], out[5]
    assert owner["choices"] == ["alice", "team"] and owner["value"] == "alice"
    assert push_btn["interactive"] is True and note == ""


def test_push_then_load_back(hub):
    import datasets

    session = _session()
    name = f"aya-dutch-dpo-{uuid.uuid4().hex[:6]}"
    values = _values(fmt="recipe", test_size=1, include_system=True, repo_name=name)
    msg = tab.on_push(session, values, _profile("alice"), _token("hf_alice_tab"))["push_status"]
    assert msg.startswith("**Pushed** 3 pairs (private)")
    loaded = datasets.load_dataset(f"alice/{name}", token="hf_alice_tab")
    for split, split_table in session.export.splits.items():
        assert loaded[split].to_list() == split_table.to_pylist()
    assert hub.repo(f"alice/{name}").private


def test_push_to_a_target_the_user_cannot_write_is_refused_before_work(hub):
    session = _session()
    before = len(hub.requests)
    for owner in ("bob", "readers"):
        msg = tab.on_push(session, _values(owner=owner, repo_name="x"), _profile("alice"), _token("hf_alice_tab"))[
            "push_status"
        ]
        assert msg.startswith("**Not pushed.**") and "cannot write" in msg
    assert session.export is None  # nothing was built
    assert not any(m == "POST" for m, _, _ in hub.requests[before:])


def test_load_raw_dataset_from_the_hub(hub):
    repo = f"alice/raw-{uuid.uuid4().hex[:6]}"
    hub.add_dataset(repo, pa.Table.from_pylist(ROWS), private=True)
    session = Session()
    hub_values = {"hub_id": repo, "hub_split": "train"}
    loaded = tab.on_load_hub(session, hub_values, _profile("alice"), _token("hf_alice_tab"))
    summary, lang = loaded["summary"], loaded["language"]
    assert session.export_tab.hub is not None and "4 rows" in summary and lang["value"] == "nld"
    out = _build(session, source=tab.SRC_HUB)
    assert "**3 pairs**" in out[1]
    # bob cannot see alice's private dataset
    summary = tab.on_load_hub(Session(), hub_values, _profile("bob"), _token("hf_bob_tab"))["summary"]
    assert summary.startswith("**Could not load it.**")


def test_export_frames_numbers():
    rows = [raw_row("a", ["x", "y"], [5, 1]), raw_row("b", ["x2", "y2"], [4, 3]), raw_row("t", ["p", "q"], [2, 2])]
    result = ex.build_export(table(rows))
    frames = view.export_frames(result)
    rules = dict(zip(frames["rules"]["rule"], frames["rules"]["rows"]))
    assert rules == {"kept": 2, "tie": 1}  # rules that dropped nothing are left out of the plot
    ratings = {(r, w): n for r, n, w in frames["ratings"].itertuples(index=False)}
    assert ratings == {("5", "chosen"): 1, ("4", "chosen"): 1, ("1", "rejected"): 1, ("3", "rejected"): 1}
    assert dict(zip(frames["margins"]["margin"], frames["margins"]["pairs"])) == {"1": 1, "4": 1}
    assert frames["agreement"].empty


def test_every_rule_has_a_box_and_every_default_lives_once():
    import app

    app.build_app()  # builds every tab, this one included
    assert set(tab.RULE_FIELDS) <= set(tab.FIELDS)  # each ExportRules field is a value of the form
    request = tab.ExportRequest.from_values({})  # nothing given: the defaults, as the rules declare them
    assert request.rules == ex.ExportRules() and request.fmt == ex.FORMAT_STANDARD and request.test_size is None
    changed = tab.ExportRequest.from_values({"min_chosen_rating": 4, "test_size": 3, "keep_ties": True})
    assert changed.rules.min_chosen_rating == 4.0 and changed.rules.keep_ties and changed.test_size == 3


def test_no_function_of_the_tab_takes_more_than_eight_parameters():
    import ast

    for path in [Path(tab.__file__)]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                n = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
                assert n <= 8, f"{path.name}:{node.lineno} {node.name}() takes {n} parameters"


def test_launched_app_loads_from_the_hub_and_builds(hub, tmp_path):
    """The wiring as a browser uses it: the Hub load and the build events get their values by name."""
    import socket

    from gradio_client import Client

    repo = f"alice/raw-{uuid.uuid4().hex[:6]}"
    hub.add_dataset(repo, pa.Table.from_pylist(ROWS))  # public: no sign-in needed to load it
    with gr.Blocks() as demo:
        session = gr.State(Session())
        with gr.Tab("Export") as export:
            c = tab.build_tab(session, export)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, ssr_mode=False, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path))
        forms = c["forms"]
        summary, lang = client.predict(
            *forms["load_hub"].api_args({"hub_id": repo, "hub_split": "train"}), api_name="/export_load_hub"
        )
        assert "4 rows" in summary and lang["value"] == "nld"
        values = _values(source=tab.SRC_HUB, fmt="conversational", language=None, owner=None)  # no choices yet
        out = client.predict(*forms["build"].api_args(values), api_name="/export_build")
        status, counts, preview = out[0], out[1], out[2]
        assert ["Rows kept", 3] in counts["data"]
        assert "**3 pairs** from 3 of 4 rows" in status and "format **conversational**" in status
        assert [r[0] for r in preview["data"]] == ["a", "b", "e"]
    finally:
        demo.close()


def test_export_charts_have_no_na_bar_and_say_what_they_leave_out():
    """Pairs decided by people who did not rate have no ratings: they are counted in the status, not drawn as an
    "n/a" bar; the rating and margin axes are numbers in order."""
    rows = [
        raw_row("a", ["x", "y"], [5, 1]),
        raw_row("b", ["x2", "y2"], [4, 3]),
        raw_row("c", ["p", "q"], [None, None]),
    ]
    result = ex.build_export(table(rows), annotations([ann_row("c", [None, None], 1)]))
    frames = view.export_frames(result)
    assert "n/a" not in set(frames["ratings"]["rating"]) and "n/a" not in set(frames["margins"]["margin"])
    assert list(frames["margins"]["margin"]) == sorted(frames["margins"]["margin"], key=float)
    assert view.unrated_pairs(result) == 1 and result.num_rows == 3
    assert "1 pair(s) decided by people without ratings" in view._status_md(result)
