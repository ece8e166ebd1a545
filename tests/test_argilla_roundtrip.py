"""The Argilla round trip against a real local Argilla 2.8 (fixture ``argilla_stack``): send a hand-built raw table,
answer as two annotators, pull, and check every aggregated figure against values computed by hand; sending twice,
bad URLs/keys/workspaces/datasets, the CLI and the tab's handlers.

The raw rows (index 0 of ``responses`` is the human answer) and the annotators' answers, in raw indices:

====  =========  =============  ======================================  =====================================
id    responses  judge ratings  ann_a                                   ann_b
====  =========  =============  ======================================  =====================================
r1    H, M       5, 2           rates 5, 2; best 0                      rates 4, 3; best 0; rewrite "Better H1"
r2    H, A, B    3, 5, 4        rates 2, 4, 5; best 2; rewrite "B2!"    rates 3, 5, 3; best 1
r3    H, M       4, 4           rates 3, 4; tie                         -
r4    H, M       (judge failed) rates 1, 5; best 1                      discards
r5    H, M       2, 4           -                                       -
r6    H, M       5, 3           -                                       rates 2, 4; best 1
r7    H only     -              (not sent: generation failed)
====  =========  =============  ======================================  =====================================
"""

from __future__ import annotations

import http.server
import socket
import threading
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import argilla as aio
from pipeline.core import schema

pytestmark = pytest.mark.argilla

DATASET = "roundtrip-dutch"


def raw_row(rid: str, responses: list, ratings: list, status: str = schema.STATUS_OK) -> dict:
    n = len(responses)
    return {
        "id": rid, "prompt": f"Vraag {rid}?", "system_prompt": "", "target_language": "nld", "responses": responses,
        "response_sources": ["human"] + ["org/gen-a", "org/gen-b"][: n - 1], "ratings": ratings,
        "rationales": [None] * n, "detected_languages": ["nld"] * (n - 1) + ["eng"],
        "language_confidences": [0.95] * n, "language_match": [True] * (n - 1) + [False],
        "judge_model": "org/judge", "aspect": "overall-rating", "status": status, "error": "",
    }  # fmt: skip


ROWS = [
    raw_row("r1", ["H1", "M1"], [5, 2]),
    raw_row("r2", ["H2", "A2", "B2"], [3, 5, 4]),
    raw_row("r3", ["H3", "M3"], [4, 4]),
    raw_row("r4", ["H4", "M4"], [None, None], schema.STATUS_JUDGE_UNPARSEABLE),
    raw_row("r5", ["H5", "M5"], [2, 4]),
    raw_row("r6", ["H6", "M6"], [5, 3]),
    raw_row("r7", ["H7"], [None], schema.STATUS_GENERATION_FAILED),
]

# username -> record -> (ratings by raw index, preference as raw index or -1, rewrite) ; "discard" = discarded
ANSWERS = {
    "ann_a": {
        "r1": ({0: 5, 1: 2}, 0, None),
        "r2": ({0: 2, 1: 4, 2: 5}, 2, "B2!"),
        "r3": ({0: 3, 1: 4}, -1, None),
        "r4": ({0: 1, 1: 5}, 1, None),
    },
    "ann_b": {
        "r1": ({0: 4, 1: 3}, 0, "Better H1"),
        "r2": ({0: 3, 1: 5, 2: 3}, 1, None),
        "r4": "discard",
        "r6": ({0: 2, 1: 4}, 1, None),
    },
}

# Hand-computed aggregation (see the module docstring of pipeline.judge.agreement for the rules).
EXPECTED = {
    "r1": {"n_annotators": 2, "human_ratings": [4.5, 2.5], "human_preference": 0, "agreement": 1.0,
           "improved_response": "Better H1", "judge_ratings": [5.0, 2.0], "judge_preference": 0, "n_discarded": 0},
    # 1:1 split between raw 2 and raw 1; mean ratings 2.5, 4.5, 4.0 prefer raw 1; ann_a rewrote raw 2: not used
    "r2": {"n_annotators": 2, "human_ratings": [2.5, 4.5, 4.0], "human_preference": 1, "agreement": 0.5,
           "improved_response": None, "judge_ratings": [3.0, 5.0, 4.0], "judge_preference": 1, "n_discarded": 0},
    "r3": {"n_annotators": 1, "human_ratings": [3.0, 4.0], "human_preference": -1, "agreement": 1.0,
           "improved_response": None, "judge_ratings": [4.0, 4.0], "judge_preference": -1, "n_discarded": 0},
    "r4": {"n_annotators": 1, "human_ratings": [1.0, 5.0], "human_preference": 1, "agreement": 1.0,
           "improved_response": None, "judge_ratings": [None, None], "judge_preference": None, "n_discarded": 1},
    "r6": {"n_annotators": 1, "human_ratings": [2.0, 4.0], "human_preference": 1, "agreement": 1.0,
           "improved_response": None, "judge_ratings": [5.0, 3.0], "judge_preference": 0, "n_discarded": 0},
}  # fmt: skip
# (judge, human) pairs: r1 (0, 0), r2 (1, 1), r3 (-1, -1), r6 (0, 1); r4 has no judge preference.
# p_o = 3/4; judge {0: 2, 1: 1, -1: 1}, humans {0: 1, 1: 2, -1: 1}; p_e = (2*1 + 1*2 + 1*1) / 16 = 5/16
KAPPA = (3 / 4 - 5 / 16) / (1 - 5 / 16)  # = 7/11
# |judge - human| over responses rated by both: r1 .5 .5, r2 .5 .5 0, r3 1 0, r6 3 1 -> 7 over 9
MEAN_ABS_DIFF = 7 / 9


def slot_answers(stack, dataset: str, answers: dict, workspace: str | None = None) -> None:
    """Translate raw-index answers to what an annotator sees (response_k), using the record's own metadata as
    Argilla stores it, and store them as each annotator's submitted (or discarded) response."""
    client = stack.owner_client()
    ds = client.datasets(name=dataset, workspace=workspace or stack.workspace)
    slots = {}
    for record in ds.records(with_responses=False):
        meta = dict(record.metadata)
        slots[record.id] = {meta[f"source_index_{k}"]: k for k in range(1, 5) if f"source_index_{k}" in meta}
    stored: dict[str, dict] = {}
    for user, per_record in answers.items():
        for rid, answer in per_record.items():
            if answer == "discard":
                stored.setdefault(user, {})[rid] = {"status": "discarded", "values": {}}
                continue
            ratings, pref, rewrite = answer
            values = {f"rating_{slots[rid][i]}": v for i, v in ratings.items()}
            values["preference"] = "tie" if pref == -1 else f"response_{slots[rid][pref]}"
            if rewrite:
                values["improved_response"] = rewrite
            stored.setdefault(user, {})[rid] = {"status": "submitted", "values": values}
    stack.submit(dataset, stored, workspace)


@pytest.fixture(scope="module")
def sent(argilla_stack):
    """Two annotators, the raw table sent (workspace left to its default: the owner has one), answers stored."""
    for user in ANSWERS:
        argilla_stack.create_annotator(user)
    with aio.connect(argilla_stack.url, argilla_stack.api_key) as conn:
        result = aio.push(conn, pa.Table.from_pylist(ROWS), DATASET, None, seed=3, language="Dutch")
    slot_answers(argilla_stack, DATASET, ANSWERS)
    return SimpleNamespace(stack=argilla_stack, result=result)


def owner(stack) -> aio.Connection:
    return aio.connect(stack.url, stack.api_key)


def pulled_by_id(result: aio.PullResult) -> dict:
    return {r["id"]: {k: v for k, v in r.items() if k != "id"} for r in result.table.to_pylist()}


def test_push_builds_the_documented_dataset(sent):
    result = sent.result
    assert result.created and result.workspace == "argilla" and result.dataset == DATASET
    assert (result.added, result.already_there, result.total, result.n_slots) == (6, 0, 6, 3)
    assert result.skipped == {aio.SKIP_FEW_RESPONSES: 1}
    assert result.url.startswith(sent.stack.url + "/dataset/")
    ds = sent.stack.owner_client().datasets(name=DATASET, workspace="argilla")
    assert [f.name for f in ds.settings.fields] == ["prompt", "response_1", "response_2", "response_3"]
    assert {q.name for q in ds.settings.questions} == {
        "rating_1", "rating_2", "rating_3", "preference", "improved_response"}  # fmt: skip
    hidden = {m.name for m in ds.settings.metadata if not m.visible_for_annotators}
    assert hidden == {"source_index_1", "source_index_2", "source_index_3", "raw_responses", "order_seed"}
    # the rows are Dutch (nld): the guidelines are the Dutch template's
    assert "Nederlands" in ds.settings.guidelines and "org/judge" in ds.settings.guidelines
    raw = {r["id"]: r for r in ROWS}
    records = {r.id: r for r in ds.records(with_suggestions=True, with_responses=False)}
    assert set(records) == {"r1", "r2", "r3", "r4", "r5", "r6"}
    orders = []
    for rid, record in records.items():
        meta = dict(record.metadata)
        order = [meta[f"source_index_{k}"] for k in range(1, 4) if f"source_index_{k}" in meta]
        orders.append(order)
        assert sorted(order) == list(range(len(raw[rid]["responses"])))
        assert record.fields["prompt"] == raw[rid]["prompt"]
        suggestions = {s.question_name: (s.value, s.agent) for s in record.suggestions}
        for k, index in enumerate(order, start=1):
            assert record.fields[f"response_{k}"] == raw[rid]["responses"][index]
            assert meta[f"language_{k}"] == raw[rid]["detected_languages"][index]
            judge = raw[rid]["ratings"][index]
            if judge is None:
                assert f"rating_{k}" not in suggestions and f"judge_rating_{k}" not in meta
            else:
                assert suggestions[f"rating_{k}"] == (judge, "org/judge") and meta[f"judge_rating_{k}"] == judge
        assert meta["order_seed"] == 3 and meta["generator_model"]
    assert any(order[0] != 0 for order in orders)  # the human answer is not always first
    r2 = dict(records["r2"].metadata)
    assert r2["rating_margin"] == 1 and r2["all_in_language"] == "no" and r2["n_responses"] == 3


def test_pull_aggregates_match_hand_computed_values(sent):
    with owner(sent.stack) as conn:
        result = aio.pull(conn, DATASET)
    got = pulled_by_id(result)
    assert set(got) == set(EXPECTED)  # r5 (nobody answered) is not a row; r7 was never sent
    for rid, expected in EXPECTED.items():
        assert got[rid] == expected, rid  # every figure is exact in binary floating point
    assert result.progress == {"total": 6, "annotated": 5, "pending": 1, "share": 5 / 6, "completed": 5}
    ag = result.judge_agreement
    assert (ag["rows"], ag["agree"]) == (4, 3) and ag["share"] == pytest.approx(0.75)
    assert ag["kappa"] == pytest.approx(KAPPA) and ag["kappa"] == pytest.approx(7 / 11)
    assert ag["outcomes"]["judge disagrees"] == 1
    assert result.rating_difference == {"responses": 9, "mean_abs_diff": pytest.approx(MEAN_ABS_DIFF)}
    assert result.annotator_agreement == {"records": 2, "mean": pytest.approx(0.75), "unanimous": 1}
    assert result.annotators == {
        "ann_a": {"submitted": 4, "draft": 0, "discarded": 0},
        "ann_b": {"submitted": 3, "draft": 0, "discarded": 1},
    }
    assert result.discarded_only == 0 and result.foreign == 0
    assert "5 of 6 records" in result.summary()
    assert "3 of 4 records (75%)" in result.agreement_summary() and "0.64" in result.agreement_summary()


def test_progress_shows_answers_per_record_and_annotator_and_agreement_so_far(sent):
    """The Argilla tab's progress view, by hand: submitted answers per record r1 2, r2 2, r3 1, r4 1 (+1 discard),
    r5 0, r6 1; ann_a 4 submitted, ann_b 3 submitted + 1 discarded; agreement r1 1.0, r2 0.5 -> 75% over 2."""
    with owner(sent.stack) as conn:
        found = {p.dataset: p for p in aio.workspace_progress(conn, "argilla")}
    progress = found[DATASET]
    assert progress.records == 6
    assert (progress.answered[0], progress.answered[1], progress.answered[2]) == (1, 3, 2)
    assert progress.annotators["ann_a"] == {"submitted": 4}
    assert progress.annotators["ann_b"] == {"submitted": 3, "discarded": 1}
    assert progress.agreement == pytest.approx(0.75) and progress.agreement_records == 2
    assert progress.last_activity and progress.last_activity[:2] == "20"
    row = progress.row()
    assert (row["no answer"], row["1 answer"], row["2+ answers"], row["answers"]) == (1, 3, 2, 7)
    assert row["agreement so far"] == "75% (2)"


def test_progress_handler_needs_a_connection_then_shows_the_tables(sent, monkeypatch):
    from ui import argilla_progress as tab
    from ui.session import Session

    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    session = Session()
    text, datasets, people = tab.on_progress(session, {"url": "", "workspace": None}).values()
    assert text.startswith("Connect to Argilla") and datasets.empty and people.empty  # no call without a key
    session.argilla_url, session.argilla_key = sent.stack.url, sent.stack.api_key
    text, datasets, people = tab.on_progress(session, {"url": "", "workspace": "argilla"}).values()
    assert "answer(s) so far" in text
    row = datasets[datasets.iloc[:, 0] == DATASET].iloc[0].tolist()
    assert row[1:6] == [6, 1, 3, 2, 7] and row[7] == "75% (2)"
    mine = people[people.iloc[:, 1] == DATASET]
    assert sorted(mine.iloc[:, [0, 2, 3]].values.tolist()) == [["ann_a", 4, 0], ["ann_b", 3, 1]]


def test_sending_twice_adds_nothing_and_keeps_answers(sent):
    with owner(sent.stack) as conn:
        before = pulled_by_id(aio.pull(conn, DATASET))
        again = aio.push(conn, ROWS, DATASET, "argilla", seed=99)  # another seed must not reshuffle sent records
        assert (again.created, again.added, again.already_there, again.total) == (False, 0, 6, 6)
        new_row = raw_row("r8", ["H8", "M8"], [1, 5])
        more = aio.push(conn, [*ROWS, new_row], DATASET, "argilla")
        assert (more.added, more.already_there, more.total) == (1, 6, 7)
        after = aio.pull(conn, DATASET)
    assert pulled_by_id(after) == before
    assert after.progress["total"] == 7 and after.progress["annotated"] == 5
    ds = sent.stack.owner_client().datasets(name=DATASET, workspace="argilla")
    assert sorted(r.id for r in ds.records(with_responses=False)) == ["r1", "r2", "r3", "r4", "r5", "r6", "r8"]


def test_keep_order_option_and_task_distribution(sent):
    rows = [raw_row(f"k{i}", ["H", "M"], [3, 4]) for i in range(6)]
    with owner(sent.stack) as conn:
        aio.push(conn, rows, "fixed-order", "argilla", keep_order=True, min_submitted=2, suggestions=False)
    ds = sent.stack.owner_client().datasets(name="fixed-order", workspace="argilla")
    assert ds.settings.distribution.min_submitted == 2
    for record in ds.records(with_suggestions=True):
        meta = dict(record.metadata)
        assert (meta["source_index_1"], meta["source_index_2"]) == (0, 1)
        assert record.fields["response_1"] == "H" and not list(record.suggestions)
    slot_answers(sent.stack, "fixed-order", {"ann_a": {"k0": ({0: 4, 1: 2}, 0, None)}})
    with owner(sent.stack) as conn:
        result = aio.pull(conn, "fixed-order", "argilla")
    # one answer of the two needed: annotated but not complete
    assert result.progress["annotated"] == 1 and result.progress["completed"] == 0
    assert pulled_by_id(result)["k0"]["human_preference"] == 0


def _hanging_server() -> tuple[socket.socket, int]:
    """A socket that accepts connections (the kernel's backlog) and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s, s.getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NotArgilla(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html>hello</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.timeout(120)
def test_connection_errors_are_clear_and_bounded(argilla_stack):
    with pytest.raises(aio.ArgillaIOError, match="refused the API key") as wrong_key:
        aio.connect(argilla_stack.url, "not-the-key-123")
    assert "not-the-key-123" not in str(wrong_key.value)
    with pytest.raises(aio.ArgillaIOError, match="could not be reached"):
        aio.connect(f"http://127.0.0.1:{_closed_port()}", "k")
    hang, port = _hanging_server()
    try:
        with pytest.raises(aio.ArgillaIOError, match="did not answer"):
            aio.connect(f"http://127.0.0.1:{port}", "k")
    finally:
        hang.close()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotArgilla)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(aio.ArgillaIOError, match="not an Argilla 2.x server"):
            aio.connect(f"http://127.0.0.1:{server.server_port}", "k")
    finally:
        server.shutdown()


def test_bad_input_messages_and_nothing_lost(sent):
    stack = sent.stack
    import argilla as rg

    with owner(stack) as conn:
        before = pulled_by_id(aio.pull(conn, DATASET, "argilla"))
        with pytest.raises(aio.ArgillaIOError, match="Workspace 'nope' not found.*Available: argilla"):
            aio.push(conn, ROWS, DATASET, "nope")
        with pytest.raises(aio.ArgillaIOError, match="not found in workspace"):
            aio.pull(conn, "no-such-dataset", "argilla")
        with pytest.raises(aio.ArgillaIOError, match="nothing to send"):
            aio.push(conn, pa.Table.from_pylist([]), DATASET, "argilla")
        with pytest.raises(aio.ArgillaIOError, match="None of the 1 rows"):
            aio.push(conn, [ROWS[-1]], DATASET, "argilla")
        # a dataset made by someone else, with other settings
        settings = rg.Settings(
            fields=[rg.TextField(name="text", client=conn.client)],
            questions=[rg.LabelQuestion(name="label", labels=["a", "b"], client=conn.client)],
        )
        rg.Dataset(name="someone-elses", workspace="argilla", settings=settings, client=conn.client).create()
        with pytest.raises(aio.ArgillaIOError, match="already exists .* with other settings.*never deletes"):
            aio.push(conn, ROWS, "someone-elses", "argilla")
        with pytest.raises(aio.ArgillaIOError, match="not made by DPO Studio"):
            aio.pull(conn, "someone-elses", "argilla")
        # a DPO Studio dataset with room for 2 responses cannot take a 3-response row
        aio.push(conn, [ROWS[0]], "two-slots", "argilla")
        with pytest.raises(aio.ArgillaIOError, match="room for 2 responses"):
            aio.push(conn, ROWS, "two-slots", "argilla")
        assert stack.owner_client().datasets(name="someone-elses", workspace="argilla") is not None
        after = pulled_by_id(aio.pull(conn, DATASET, "argilla"))
    assert after == before
    # an annotator's key: connects, but may not create datasets nor read everyone's answers
    with aio.connect(stack.url, stack.create_annotator("ann_a")) as annotator:
        assert annotator.role == "annotator" and not annotator.can_see_all_answers
        with pytest.raises(aio.ArgillaIOError, match="owner or admin"):
            aio.pull(annotator, DATASET, "argilla")
        with pytest.raises(aio.ArgillaIOError, match="owner or admin"):
            aio.push(annotator, ROWS, "by-annotator", "argilla")
    # a user in no workspace; then several workspaces and none chosen
    with aio.connect(stack.url, stack.create_annotator("lonely-admin", workspace="lonely", role="admin")) as admin:
        assert aio.list_workspaces(admin) == ["lonely"]
    with owner(stack) as conn:
        assert "lonely" in aio.list_workspaces(conn)
        with pytest.raises(aio.ArgillaIOError, match="Choose a workspace: .*argilla.*lonely"):
            aio.push(conn, ROWS, DATASET, None)


def test_cli_push_and_pull(sent, tmp_path, monkeypatch, capsys):
    from pipeline.cli import main
    from pipeline.commands.argilla import write_table

    stack = sent.stack
    raw_file = tmp_path / "raw.jsonl"
    write_table(pa.Table.from_pylist(ROWS), raw_file)
    out = tmp_path / "out" / "annotations.parquet"
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    monkeypatch.setenv("ARGILLA_API_URL", stack.url)
    monkeypatch.setenv("TQDM_DISABLE", "1")  # the CLI sets it for its process; keep it out of this one
    assert main(["argilla", "pull", "--dataset", DATASET, "--workspace", "argilla", "--output", str(out)]) == 1
    assert "No Argilla API key" in capsys.readouterr().err and not out.exists()
    monkeypatch.setenv("ARGILLA_API_KEY", stack.api_key)
    code = main(["argilla", "push", "--input", str(raw_file), "--dataset", "cli-set", "--workspace", "argilla",
                 "--keep-order", "--annotators-per-record", "2"])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "6 new record(s)" in printed.out and "generation failed" in printed.out
    assert stack.api_key not in printed.out + printed.err
    slot_answers(stack, "cli-set", {"ann_a": {"r1": ({0: 4, 1: 1}, 0, "Beter")}})
    assert main(["argilla", "pull", "--dataset", "cli-set", "--workspace", "argilla", "--output", str(out)]) == 0
    assert "1 of 6 records" in capsys.readouterr().out
    table = pq.read_table(out)
    assert table.column_names == [*schema.ANNOTATION_COLUMNS, *aio.EXTRA_ANNOTATION_COLUMNS]
    assert table.to_pylist() == [{
        "id": "r1", "n_annotators": 1, "human_ratings": [4.0, 1.0], "human_preference": 0, "agreement": 1.0,
        "improved_response": "Beter", "judge_ratings": [5.0, 2.0], "judge_preference": 0, "n_discarded": 0,
    }]  # fmt: skip
    # bad input: a clear one-line error, non-zero exit
    assert main(["argilla", "push", "--input", str(tmp_path / "missing.parquet"), "--dataset", "x"]) == 1
    assert "cannot read" in capsys.readouterr().err
    monkeypatch.setenv("ARGILLA_API_URL", f"http://127.0.0.1:{_closed_port()}")
    assert main(["argilla", "push", "--input", str(raw_file), "--dataset", "x"]) == 1
    assert "could not be reached" in capsys.readouterr().err


def by_name(frame, names):
    """A table as the tab shows it (people's column labels) with the data's column names back, for reading."""
    from ui.common import column_label

    assert list(frame.columns) == [column_label(n) for n in names]
    return frame.rename(columns={column_label(n): n for n in names})


def test_tab_handlers(sent, monkeypatch):
    import gradio as gr

    import app
    from ui import argilla_tab as tab
    from ui.session import Session

    stack = sent.stack
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    demo = app.build_app()
    assert demo is not None
    session = Session()
    profile = gr.OAuthProfile({"preferred_username": "alice", "name": "Alice", "picture": "", "profile": ""})

    out = tab.on_select(session, {"dataset": "", "guidelines": ""}, profile)
    info, name, guidelines = out["send_info"], out["dataset"], out["guidelines"]
    assert "Nothing to send yet" in info and name == "dpo-alice"
    send = {
        "url": stack.url,
        "workspace": "argilla",
        "keep_order": False,
        "suggestions": True,
        "seed": 0,
        "min_submitted": 1,
    }
    status = tab.on_send(session, {**send, "dataset": "ui-set", "guidelines": ""})["send_status"]
    assert "Nothing to send yet" in status

    session.raw = pa.Table.from_pylist(ROWS)
    session.raw_meta = schema.RunMeta.from_dict(
        {"language": "Dutch", "language_code": "nld", "judge_model": "org/judge"}
    )
    out = tab.on_select(session, {"dataset": "", "guidelines": ""}, profile)
    info, name, guidelines = out["send_info"], out["dataset"], out["guidelines"]
    assert "6 of 7 rows are ready" in info and "3 responses" in info
    assert name == "dpo-dutch-alice" and "Nederlands" in guidelines and "org/judge" in guidelines

    # a wrong key: not kept; the right one: kept for the session, the box emptied, never shown back
    msg = tab.on_connect(session, {"url": stack.url, "key": "wrong-key-xyz", "workspace": None})["conn_status"]
    assert "Not connected" in msg and "refused" in msg and session.argilla_key == ""
    out = tab.on_connect(session, {"url": stack.url, "key": stack.api_key, "workspace": None})
    key_box, msg, workspaces = out["key"], out["conn_status"], out["workspace"]
    assert "Connected" in msg and session.argilla_key == stack.api_key and session.argilla_url == stack.url
    assert key_box["value"] == "" and stack.api_key not in str(key_box) + msg + str(workspaces)
    assert workspaces["value"] in workspaces["choices"] and "argilla" in workspaces["choices"]
    out = tab.on_select(session, {"dataset": name, "guidelines": guidelines}, profile)
    key_box, url_box = out["key"], out["url"]
    assert "value" not in key_box and "set for this session" in key_box["placeholder"]
    assert url_box["value"] == stack.url

    assert tab.share_message(session, "https://x.hf.space/?language=nld", True).startswith("Send the pairs")
    status = tab.on_send(session, {**send, "dataset": name, "guidelines": guidelines + "\nOUR NOTE"})["send_status"]
    assert status.startswith("**Sent.**") and "6 new record" in status and stack.api_key not in status
    message = tab.share_message(session, "https://x.hf.space/?language=nld", True)
    assert "https://x.hf.space/?language=nld" in message and session.argilla_tab.url in message
    assert message.rstrip().endswith("OUR NOTE") and stack.api_key not in message  # the guidelines as sent
    assert tab.share_message(session, "https://x.hf.space/", False) == ""
    status = tab.on_send(session, {**send, "dataset": name, "guidelines": guidelines})["send_status"]
    assert "0 new record" in status and "6 already there" in status

    pull = {"url": stack.url, "workspace": "argilla", "dataset": name}
    status, agreement_md, annotators, table = tab.on_pull(session, pull).values()
    assert "0 of 6 records" in status and "No answers yet" in status and session.annotations.num_rows == 0
    slot_answers(stack, name, ANSWERS)
    status, agreement_md, annotators, table = tab.on_pull(session, pull).values()
    assert "5 of 6 records" in status and "3 of 4 records" in agreement_md
    # the tables show people's headers ("Annotator", "Human preference"): read them by the data's names
    annotators, table = by_name(annotators, tab.ANNOTATOR_COLUMNS), by_name(table, tab.ANNOTATION_PREVIEW_COLUMNS)
    assert session.annotations.num_rows == 5 and set(annotators["annotator"]) == {"ann_a", "ann_b"}
    by_id = {r["id"]: r for r in table.to_dict("records")}
    assert by_id["r1"]["human preference"] == "human" and by_id["r1"]["prompt"] == "Vraag r1?"
    assert by_id["r3"]["judge preference"] == "tie" and by_id["r2"]["human ratings"] == "2.5, 4.5, 4"

    key_box, msg = tab.on_forget(session).values()
    assert session.argilla_key == "" and "forgotten" in msg
    status = tab.on_pull(session, pull)["pull_status"]
    assert "Not pulled" in status and "No Argilla API key" in status
    assert session.annotations.num_rows == 5  # what was pulled before is kept


def test_a_pull_keeps_the_judge_check_labels(sent, monkeypatch):
    """People labelled the pilot run in the judge check (those labels are annotation rows for Export), then pull
    Argilla's answers: Argilla's rows win for the ids they answered, the labels stay for the others (r5)."""
    from pipeline import export as ex
    from pipeline.judge import labels as judge_labels
    from ui import argilla_tab as tab
    from ui import judge_check
    from ui.session import Session

    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    stack = sent.stack
    session = Session(raw=pa.Table.from_pylist(ROWS), argilla_key=stack.api_key)
    judge_check.load_tasks(session, {"rows": judge_labels.MIN_LABEL_ROWS})
    for _ in session.judge_check.tasks:
        judge_check.answer(session, judge_labels.CHOICE_A)
    labels = session.judge_check.labels
    assert set(labels) == {"r1", "r2", "r3", "r4", "r5", "r6"} and session.annotations.num_rows == 6

    status = tab.on_pull(session, {"url": stack.url, "workspace": stack.workspace, "dataset": DATASET})["pull_status"]
    assert "**Pulled.**" in status and "1 row(s) you labelled in the judge check" in status
    rows = {r["id"]: r for r in session.annotations.to_pylist()}
    assert set(rows) == {"r1", "r2", "r3", "r4", "r5", "r6"} and session.judge_check.label_ids == {"r5"}
    assert rows["r1"]["n_annotators"] == EXPECTED["r1"]["n_annotators"] == 2  # Argilla's two people, not the label
    assert rows["r5"]["n_annotators"] == 1 and rows["r5"]["human_preference"] == labels["r5"].preference
    pairs = {p.source_id: p for p in ex.select_pairs(session.raw, session.annotations, ex.ExportRules()).pairs}
    assert pairs["r5"].preference_source == "human"  # the label still decides r5 in Export

    # labelling again after the pull replaces only the label's own row (Argilla's rows stay)
    judge_check.load_tasks(session, {"rows": judge_labels.MIN_LABEL_ROWS})
    session.judge_check.position = next(i for i, t in enumerate(session.judge_check.tasks) if t.id == "r5")
    judge_check.answer(session, judge_labels.CHOICE_TIE)
    rows = {r["id"]: r for r in session.annotations.to_pylist()}
    assert len(rows) == 6 and rows["r5"]["human_preference"] == -1 and rows["r1"]["n_annotators"] == 2
