"""Playground logic (pipeline.playground.compare) and the tab's handlers, against the fault-injecting server."""

from __future__ import annotations

import csv
import random

import pyarrow as pa
import pytest

from pipeline.inference import Backend, GenParams, RetryPolicy, build_messages
from pipeline.playground import compare
from pipeline.playground.compare import ColumnRequest, record_vote, run_columns, tally
from tests.fixtures.faulty_server import FakeLLMServer, Fault
from ui import playground_tab as tab
from ui.session import ModelChoice, Session

DUTCH = "Amsterdam is de hoofdstad van Nederland en er wonen ongeveer negenhonderdduizend mensen in de stad."
ONE_TRY = RetryPolicy(max_attempts=1)


def filtered_table(n: int = 5) -> pa.Table:
    return pa.table(
        {
            "id": [f"id{i}" for i in range(n)],
            "prompt": [f"Vraag {i}?" for i in range(n)],
            "response": [f"Antwoord {i}." for i in range(n)],
            "language": ["Dutch"] * n,
            "language_code": ["nld"] * n,
            "annotation_type": ["original-annotations"] * n,
            "user_id": ["u"] * n,
        }
    )


class FakeFiltered:  # the shape of pipeline.filter.filtered.FilteredSet the tab relies on
    def __init__(self, table):
        self.table = table


# --- data ----------------------------------------------------------------------------------------------------
def test_target_language_and_sampling_from_the_filtered_set():
    filtered = FakeFiltered(filtered_table())
    assert compare.target_language(filtered) == ("Dutch", "nld")
    assert compare.target_language(None) == ("", "")
    rows = {compare.sample_row(filtered, random.Random(seed))["id"] for seed in range(30)}
    assert len(rows) > 1  # random rows, not always the first
    row = compare.sample_row(filtered, random.Random(1))
    assert row["prompt"].startswith("Vraag") and row["response"].startswith("Antwoord")
    assert compare.sample_row(FakeFiltered(filtered_table(0))) is None


def test_make_backend_and_seed_parsing():
    assert compare.make_backend("serverless", "  ") is None
    assert compare.make_backend("serverless", "org/m", "http://ignored", "together") == Backend(
        "serverless", "org/m", "", "together"
    )
    assert compare.make_backend("openai", "m", " http://h:1/v1 ").base_url == "http://h:1/v1"
    assert compare.make_backend("endpoint", "", "https://x.endpoints.huggingface.cloud").kind == "endpoint"
    assert compare.parse_seed("") is None and compare.parse_seed(None) is None
    assert compare.parse_seed(42.0) == 42 and compare.parse_seed("x") is None and compare.parse_seed(-1) is None


# --- votes ---------------------------------------------------------------------------------------------------
def _vote(votes, vote, a="model-a", b="model-b", c=""):
    return record_vote(
        votes,
        vote,
        prompt="p",
        system_prompt="s",
        labels={"A": a, "B": b, "C": c},
        responses={"A": "ra", "B": "rb", "C": "rc" if c else ""},
        target_code="nld",
    )


def test_votes_and_tally():
    votes: list[dict] = []
    _vote(votes, "A better")
    _vote(votes, "A better")
    _vote(votes, "B better")
    _vote(votes, "Tie")
    _vote(votes, "All bad", c="model-c")
    assert len(votes) == 5 and votes[0]["winner"] == "model-a" and votes[3]["winner"] == ""
    table = tally(votes).set_index("model")
    assert table.loc["model-a", ["shown", "wins", "ties", "all_bad", "losses"]].tolist() == [5, 2, 1, 1, 1]
    assert table.loc["model-b", ["shown", "wins", "ties", "all_bad", "losses"]].tolist() == [5, 1, 1, 1, 2]
    assert table.loc["model-c", ["shown", "all_bad"]].tolist() == [1, 1]
    assert table.loc["model-a", "win_rate"] == 0.4
    assert tally(votes)["model"].iloc[0] == "model-a"  # best first
    assert list(tally([]).columns) == list(compare.TALLY_COLUMNS)


def test_bad_votes_are_refused_with_a_reason():
    votes: list[dict] = []
    with pytest.raises(ValueError, match="Pick a vote"):
        _vote(votes, "")
    with pytest.raises(ValueError, match="Column C has no answer"):
        _vote(votes, "C better")
    with pytest.raises(ValueError, match="Generate answers first"):
        record_vote(votes, "Tie", prompt="p", system_prompt="", labels={}, responses={})
    with pytest.raises(ValueError, match="at least two"):
        _vote(votes, "Tie", b="")
    assert votes == []


def test_one_vote_per_generation():
    votes: list[dict] = []
    record_vote(
        votes,
        "A better",
        prompt="p",
        system_prompt="",
        labels={"A": "a", "B": "b"},
        responses={"A": "x", "B": "y"},
        run_id="run1",
    )
    record_vote(
        votes,
        "B better",
        prompt="p",
        system_prompt="",
        labels={"A": "a", "B": "b"},
        responses={"A": "x", "B": "y"},
        run_id="run1",
    )
    record_vote(
        votes,
        "Tie",
        prompt="p",
        system_prompt="",
        labels={"A": "a", "B": "b"},
        responses={"A": "x", "B": "y"},
        run_id="run2",
    )
    assert [v["vote"] for v in votes] == ["B better", "Tie"]


def test_votes_csv_round_trip(tmp_path):
    votes: list[dict] = []
    _vote(votes, "B better")
    votes[0]["prompt"] = 'multi\nline, "quoted" <script>x</script>'
    path = compare.write_votes_csv(votes, tmp_path)
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    assert rows[0]["vote"] == "B better" and rows[0]["winner"] == "model-b"
    assert rows[0]["prompt"] == votes[0]["prompt"]
    assert list(rows[0]) == list(compare.VOTE_FIELDS)


def test_model_choice_carries_no_secret():
    choice = compare.model_choice(Backend("openai", "m", "http://127.0.0.1:1/v1"), "Antwoord in het Nederlands.")
    assert choice == ModelChoice("m", "openai", "http://127.0.0.1:1/v1", "auto", "Antwoord in het Nederlands.")


# --- side-by-side streaming ------------------------------------------------------------------------------------
def test_columns_stream_side_by_side_and_a_failure_stays_in_its_column():
    with FakeLLMServer(responder=lambda r: DUTCH, token_delay=0.005) as good, FakeLLMServer() as bad:
        bad.add_faults(Fault.status(404))
        requests = [
            ColumnRequest("A", Backend("openai", "m-a", good.base_url)),
            ColumnRequest("B", Backend("openai", "missing-model", bad.base_url)),
            ColumnRequest("C", Backend("openai", "m-c", good.base_url)),
        ]
        snapshots = list(run_columns(requests, build_messages("Vraag?"), GenParams(), "nld", retry=ONE_TRY))
    a, b, c = snapshots[-1]
    assert a.status == "done" and a.text == DUTCH and c.status == "done" and c.text == DUTCH
    assert a.check.match is True and a.ttft_s is not None and a.tokens_per_s is not None
    assert b.status == "error" and b.error_kind == "not_found" and "missing-model" in b.error
    assert "✅ Dutch (nld)" in compare.stats_line(a, "nld")
    assert "first token" in compare.stats_line(a, "nld")
    assert compare.stats_line(b, "nld").startswith("⚠️")
    assert any(s[0].status == "streaming" for s in snapshots)  # text arrived progressively


def test_closing_the_columns_ends_a_column_waiting_out_a_retry_after():
    """A provider asks a column to wait 6 s (429, Retry-After); the user leaves (the iterator is closed): the column's
    worker stops waiting at once and sends nothing more."""
    import threading

    with FakeLLMServer() as server:
        server.add_faults(Fault.status(429, retry_after=6))
        requests = [ColumnRequest("A", Backend("openai", "m", server.base_url))]
        columns = run_columns(requests, build_messages("Vraag?"), GenParams(), "nld")
        next(columns)
        while server.chat_requests == 0:
            threading.Event().wait(0.01)
        worker = next(t for t in threading.enumerate() if t.name == "playground-A")
        columns.close()
        worker.join(timeout=30)
        assert not worker.is_alive() and server.chat_requests == 1


def test_broken_stream_keeps_partial_text_and_unused_columns_stay_idle():
    with FakeLLMServer(responder=lambda r: DUTCH) as server:
        server.add_faults(Fault.broken_stream(4))
        requests = [
            ColumnRequest("A", Backend("openai", "m", server.base_url)),
            ColumnRequest("B", None),
            ColumnRequest("C", None),
        ]
        final = list(run_columns(requests, build_messages("Vraag?"), GenParams(), "nld", retry=ONE_TRY))[-1]
    assert final[0].status == "error" and final[0].error_kind == "connection"
    assert DUTCH.startswith(final[0].text) and final[0].text
    assert final[1].status == "idle" and compare.stats_line(final[1], "nld").startswith("Not used")


def test_language_badges():
    from pipeline.langcheck import LanguageCheck

    assert compare.language_badge(LanguageCheck("eng", 0.91, False), "nld") == "❌ English (eng) 91%, not Dutch"
    assert (
        compare.language_badge(LanguageCheck("eng", 0.91, False, "heliport"), "yor")
        == "❌ English (eng) 91%, not Yoruba · heliport"
    )
    unchecked = LanguageCheck(None, None, None, "script", "no detector knows Wolof; script check only")
    assert (
        compare.language_badge(unchecked, "wol") == "➖ Wolof: not checked (no detector knows Wolof; script check only)"
    )
    wrong_script = LanguageCheck(None, None, False, "script", "written in Latin script; expected Ethiopic")
    assert compare.language_badge(wrong_script, "amh") == "❌ not Amharic: written in Latin script; expected Ethiopic"
    assert "no target language" in compare.language_badge(None, "")


# --- the tab's handlers ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    import app

    return app.build_app()


def event(demo, api_name):
    """The wired event with this API name (its adapter carries the form API callers fill in)."""
    return next(f.fn for f in demo.fns.values() if f.api_name == api_name)


def column_args(*columns) -> dict:
    """The three columns' backend fields by name (``a_kind``, ``a_model``, ...), empty columns filled in."""
    out = {}
    for letter, col in zip("abc", columns + (("serverless", "", "", "auto", ""),) * (3 - len(columns))):
        out.update(
            zip(
                (f"{letter}_kind", f"{letter}_model", f"{letter}_base_url", f"{letter}_provider", f"{letter}_api_key"),
                col,
            )
        )
    return out


def prompt_args(
    prompt: str,
    system: str = "",
    target: str = "nld",
    max_new: int = 64,
    temperature: float = 0.7,
    top_p: float = 0.9,
    seed=None,
) -> dict:
    return {
        "prompt": prompt,
        "system_prompt": system,
        "target": target,
        "max_new_tokens": max_new,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
    }


def test_tab_generate_vote_and_use_in_pipeline(demo):
    save_vote = tab.save_vote
    session = Session(filtered=FakeFiltered(filtered_table()))
    with FakeLLMServer(responder=lambda r: DUTCH) as server:
        cols = column_args(
            ("openai", "local-a", server.base_url, "auto", ""),
            ("serverless", "Qwen/Qwen2.5-72B-Instruct", "", "auto", ""),
            ("openai", "local-c", server.base_url, "auto", "sk-typed"),
        )
        updates = list(
            tab.generate_answers(
                {**prompt_args("Wat is de hoofdstad?", "Antwoord altijd in het {language}."), **cols}, oauth_token=None
            )
        )
        sent = [r.json for r in server.requests]
        headers = [r.headers for r in server.requests]
    final = updates[-1]
    texts, stats, run = [final[k] for k in tab.ANSWER_KEYS], [final[k] for k in tab.STATS_KEYS], final["run"]
    assert updates[0]["vote"] == {"__type__": "update", "value": None}  # a new Generate clears the last vote
    assert texts[0] == DUTCH and texts[2] == DUTCH and texts[1] == ""
    assert "sign in" in stats[1].lower()  # serverless without sign-in: said in its column...
    assert "Dutch" in stats[0] and "first token" in stats[0]  # ...while the others went on
    assert sent[0]["messages"][0] == {"role": "system", "content": "Antwoord altijd in het Dutch."}
    assert {h.get("authorization") for h in headers} == {None, "Bearer sk-typed"}
    assert run["labels"]["A"].startswith("local-a") and run["responses"]["C"] == DUTCH

    assert save_vote(session, {"vote": "B better", "run": run}) == {}  # B has no answer: refused
    assert session.votes == []
    save_vote(session, {"vote": "C better", "run": run})
    out = save_vote(session, {"vote": "A better", "run": run})  # changes the vote on the same answers
    status, table, download = out["vote_status"], out["tally"], out["download"]
    assert "1 vote" in status and len(session.votes) == 1 and session.votes[0]["winner"].startswith("local-a")
    assert table["Wins"].sum() == 1  # the tab shows people's column labels
    assert "1/1 (100%)" in list(table["Win rate"])  # a share with its count, not a bare 1
    assert download["visible"] is True and download["value"].endswith(".csv")
    assert "sk-typed" not in open(download["value"], encoding="utf-8").read()

    message = tab.use_choice(
        session, {"chosen": "C", "system_prompt": "Antwoord altijd in het {language}.", "target": "nld", **cols}
    )["use_status"]
    assert session.model_choice == ModelChoice(
        "local-c", "openai", server.base_url, "auto", "Antwoord altijd in het Dutch."
    )
    assert "API key again" in message and "sk-typed" not in message


def test_tab_sample_and_empty_prompt(demo):
    session = Session(filtered=FakeFiltered(filtered_table()))
    out = tab.sample(session)
    prompt, human = out["prompt"], out["human"]
    assert prompt.startswith("Vraag") and human.startswith("Antwoord")
    assert (
        list(
            tab.generate_answers(
                {**prompt_args("  "), **column_args(("openai", "m", "http://127.0.0.1:9/v1", "auto", ""))}
            )
        )
        == []
    )


class FakeRequest:
    def __init__(self, **query):
        self.query_params = query


def test_tab_refresh_reads_the_data_language_and_a_community_link_once(demo):
    session = Session()
    link = FakeRequest(
        language="swh",
        model="CohereLabs/aya-expanse-8b",
        system_prompt="Jibu kwa Kiswahili.",
        backend="openai",
        base_url="https://gpu.example.org/v1",
    )
    out = tab.on_select(session, {"target": ""}, link)
    assert out["target"]["value"] == "swh" and "Swahili" in out["target_note"]
    assert out["a_model"]["value"] == "CohereLabs/aya-expanse-8b" and out["system_prompt"]["value"] == (
        "Jibu kwa Kiswahili."
    )
    # where the link's model runs comes with it: column A is set to that server
    assert out["a_kind"]["value"] == "openai" and out["a_base_url"]["value"] == "https://gpu.example.org/v1"
    assert "No filtered data" in out["data_note"]
    # the link applies once; loaded data decides the language from then on
    session.filtered = FakeFiltered(filtered_table(3))
    out = tab.on_select(session, {"target": "swh"}, link)
    assert out["target"]["value"] == "nld" and "3 prompts" in out["data_note"]
    assert "a_model" not in out and "system_prompt" not in out
    assert out["template"]["choices"][0] == "Nederlands (recept)"


def test_tab_refresh_marks_unsupported_languages(demo, monkeypatch):
    monkeypatch.setenv("DPO_STUDIO_LID_MODEL", "off")  # no Hub model: Wolof gets the script check only
    session = Session(
        filtered=FakeFiltered(
            filtered_table(2)
            .set_column(4, "language_code", pa.array(["wol", "wol"]))
            .set_column(3, "language", pa.array(["Wolof", "Wolof"]))
        )
    )
    out = tab.on_select(session, {"target": ""}, None)
    assert (
        out["target"]["value"] == "wol" and "not checked" in out["target_note"] and "script only" in out["target_note"]
    )
    session.filtered = FakeFiltered(
        filtered_table(2)
        .set_column(4, "language_code", pa.array(["yor", "yor"]))
        .set_column(3, "language", pa.array(["Yoruba", "Yoruba"]))
    )
    out = tab.on_select(session, {"target": ""}, None)
    note = out["target_note"]
    assert out["target"]["value"] == "yor" and "checked by heliport" in note and "not checked" not in note


def test_generate_streams_through_a_running_app(demo):
    """The real Gradio server: OAuth token injected as None (not signed in), outputs streamed to a client."""
    from gradio_client import Client

    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        with FakeLLMServer(responder=lambda r: DUTCH, token_delay=0.01) as server:
            form = event(demo, "generate").form  # the API takes the form's fields in the form's order
            values = {
                **prompt_args("Wat is de hoofdstad?", "Antwoord in het {language}."),
                **column_args(
                    ("openai", "m", server.base_url, "auto", ""),
                    ("serverless", "Qwen/Qwen2.5-72B-Instruct", "", "auto", ""),
                ),
            }
            job = Client(demo.local_url, verbose=False).submit(*form.api_args(values), api_name="/generate")
            final = job.result(timeout=60)
            streamed = job.outputs()
    finally:
        demo.close()
    assert final[0] == DUTCH and final[1] == ""
    assert "Dutch" in final[3] and "sign in" in final[4]
    assert len(streamed) > 2  # several updates, not one answer at the end
