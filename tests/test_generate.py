"""The generation executor with a mock chat function: statuses, ordering, exactly-once, resume, cancel, stops."""

from __future__ import annotations

import asyncio
import json
import time

import pyarrow as pa
import pytest

from pipeline import judge
from pipeline.core import schema
from pipeline.generate import Checkpoint, RunError, RunSettings, plan_run, run_async, start_run
from pipeline.inference import Backend, InferenceError
from tests.pipeline_helpers import MockChat, fake_detect, make_rows

GEN_A = Backend("openai", "model-a", "http://127.0.0.1:9/v1")
GEN_B = Backend("openai", "model-b", "http://127.0.0.1:9/v1")
JUDGE = Backend("openai", "judge-model", "http://127.0.0.1:9/v1")


def settings(**kw) -> RunSettings:
    base = dict(generators=(GEN_A,), judge=JUDGE, system_prompt="Answer in Dutch.", concurrency=4)
    base.update(kw)
    return RunSettings(**base)


def run(rows, s, ckpt, chat, **kw):
    return asyncio.run(run_async(rows, s, ckpt, chat_fn=chat, detect=fake_detect, **kw))


def test_all_rows_once_in_input_order_with_judge_after_generations(tmp_path):
    rows = make_rows(30)
    chat = MockChat(delay=0.01)
    s = settings(generators=(GEN_A, GEN_B), concurrency=4)
    # no backup requests: on a loaded machine a 10 ms call may be a straggler, and this test counts calls
    handle = run(rows, s, Checkpoint(tmp_path / "c.jsonl"), chat, hedge=False)
    snap = handle.snapshot()
    assert snap.state == "done", snap.message
    table = handle.table()
    assert table.column_names == list(schema.RAW_COLUMNS)
    assert table.column("id").to_pylist() == rows.column("id").to_pylist()
    recs = table.to_pylist()
    for src, rec in zip(rows.to_pylist(), recs):
        assert rec["status"] == "ok" and rec["error"] == ""
        assert rec["responses"][0] == src["response"]
        assert rec["response_sources"] == ["human", "model-a", "model-b"]
        assert rec["responses"][1:] == [f"model-a says: {src['prompt']}", f"model-b says: {src['prompt']}"]
        assert rec["ratings"] == [2, 3, 4]
        assert rec["rationales"] == ["rated 2.", "rated 3.", "rated 4."]  # aligned with the sources
        assert rec["judge_orders"] == [judge.presentation_order(rec["id"], 3)]  # the order shown, recorded
        assert rec["language_match"] == [True, True, True]
        assert rec["detected_languages"] == ["nld"] * 3
        assert rec["system_prompt"] == "Answer in Dutch." and rec["target_language"] == "nld"
        assert rec["judge_model"] == "judge-model" and rec["aspect"] == "overall-rating"
    # each row's judge call starts only after both of its generations ended
    for src in rows.to_pylist():
        p = src["prompt"]
        judge_start = chat.events.index(("start", "judge", p))
        assert chat.events.index(("end", "model-a", p)) < judge_start
        assert chat.events.index(("end", "model-b", p)) < judge_start
    # one bounded limit across generation and judging, and it is used
    assert chat.max_in_flight == 4
    assert len(chat.calls) == 30 * 3
    # no batch barrier: some judge call started before the last row's generations started
    first_judge = next(i for i, e in enumerate(chat.events) if e[0] == "start" and e[1] == "judge")
    last_gen = max(i for i, e in enumerate(chat.events) if e[0] == "start" and e[1] != "judge")
    assert first_judge < last_gen
    assert snap.done == 30 and snap.counts["ok"] == 30


def test_statuses_and_reasons(tmp_path):
    prompts = ["fine", "EMPTY one", "TOOLONG one", "JUDGEFAIL one", "GARBAGE one"]
    rows = pa.Table.from_pylist(
        [
            {
                "id": schema.row_id(p, "h"),
                "prompt": p,
                "response": "h",
                "language": "Dutch",
                "language_code": "nld",
                "annotation_type": "",
                "user_id": "",
            }
            for p in prompts
        ]
    )
    handle = run(rows, settings(), Checkpoint(tmp_path / "c.jsonl"), MockChat())
    by_prompt = {r["prompt"]: r for r in handle.table().to_pylist()}
    assert by_prompt["fine"]["status"] == "ok"
    empty = by_prompt["EMPTY one"]
    assert empty["status"] == "generation_failed" and "empty response" in empty["error"]
    assert empty["responses"] == ["h", ""] and empty["ratings"] == [None, None]
    assert empty["detected_languages"][0] == "nld" and empty["detected_languages"][1] is None
    too_long = by_prompt["TOOLONG one"]
    assert too_long["status"] == "generation_failed" and "context window" in too_long["error"]
    judge_failed = by_prompt["JUDGEFAIL one"]
    assert judge_failed["status"] == "judge_failed" and "judge-model" in judge_failed["error"]
    assert judge_failed["responses"][1] == "model-a says: JUDGEFAIL one"
    garbage = by_prompt["GARBAGE one"]
    assert garbage["status"] == "judge_unparseable"
    assert "Both texts are lovely" in garbage["error"]  # the raw judge reply is kept
    assert garbage["ratings"] == [None, None]
    snap = handle.snapshot()
    assert snap.counts == {"ok": 1, "generation_failed": 2, "judge_failed": 1, "judge_unparseable": 1}
    assert snap.state == "done" and "4 failed" in snap.message


def test_resume_runs_only_missing_and_failed_rows_and_rejudges_cheaply(tmp_path):
    rows = make_rows(12)
    ckpt = Checkpoint(tmp_path / "c.jsonl")
    s = settings(generators=(GEN_A, GEN_B))
    # first run: only the first 8 rows (row limit); model-b fails on row 1, the judge fails on row 2
    first = MockChat(
        fail=lambda b, m, judge: (
            (_ for _ in ()).throw(InferenceError("boom", kind="server", status=500))
            if (b.model == "model-b" and "prompt 1" == m[-1]["content"])
            or (judge and "Instruction: prompt 2\n" in m[-1]["content"].split("## Annotation")[-1])
            else None
        )
    )
    h1 = run(rows, RunSettings(**{**s.__dict__, "max_rows": 8}), ckpt, first)
    assert h1.snapshot().counts == {"ok": 6, "generation_failed": 1, "judge_failed": 1, "judge_unparseable": 0}
    plan = plan_run(rows, s, ckpt.statuses())
    assert (plan.total, plan.already_ok, plan.to_run, plan.retried) == (12, 6, 6, 2)

    second = MockChat()
    h2 = run(rows, s, ckpt, second)
    assert h2.snapshot().state == "done"
    called = {(model, prompt, judge) for model, prompt, judge in second.calls}
    ok_before = {f"prompt {i}" for i in (0, 3, 4, 5, 6, 7)}
    assert not {c for c in called if c[1] in ok_before}  # ok rows never re-run
    # row 1: only the failed generator is asked again; row 2: only re-judged
    assert {c for c in called if c[1] == "prompt 1"} == {
        ("model-b", "prompt 1", False),
        ("judge-model", "prompt 1", True),
    }
    assert {c for c in called if c[1] == "prompt 2"} == {("judge-model", "prompt 2", True)}
    assert len(second.calls) == 2 + 1 + 4 * 3
    table = h2.table()
    assert table.column("id").to_pylist() == rows.column("id").to_pylist()  # every id exactly once, input order
    assert set(table.column("status").to_pylist()) == {"ok"}
    lines = ckpt.path.read_text().splitlines()
    assert len(lines) == 14  # superseded lines stay in the append-only file...
    ckpt.compact()
    assert len(ckpt.path.read_text().splitlines()) == 12  # ...until compacted


def test_cancel_stops_quickly_and_keeps_finished_rows(tmp_path):
    rows = make_rows(200)
    ckpt = Checkpoint(tmp_path / "c.jsonl")
    chat = MockChat(delay=0.05)
    handle = start_run(rows, settings(concurrency=4), ckpt, chat_fn=chat, detect=fake_detect)
    deadline = time.monotonic() + 20
    while handle.snapshot().done < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    handle.cancel()
    assert handle.wait(5), "cancel did not stop the run"
    snap = handle.snapshot()
    assert snap.state == "cancelled" and "kept" in snap.message
    kept = handle.table()
    assert 10 <= kept.num_rows < 200
    assert set(kept.column("status").to_pylist()) == {"ok"}
    assert len(set(kept.column("id").to_pylist())) == kept.num_rows
    # resume finishes the rest; every id once
    h2 = start_run(rows, settings(concurrency=8), ckpt, chat_fn=MockChat(), detect=fake_detect)
    assert h2.wait(30)
    assert h2.snapshot().state == "done"
    final = h2.table()
    assert final.column("id").to_pylist() == rows.column("id").to_pylist()


def _raise_after(n_ok: int, error: InferenceError, *, model: str | None = None):
    seen = {"n": 0}

    def fail(backend, messages, judge):
        if model is not None and backend.model != model:
            return None
        seen["n"] += 1
        if seen["n"] > n_ok:
            raise error
        return None

    return fail


def test_auth_error_pauses_with_finished_rows_kept(tmp_path):
    rows = make_rows(60)
    ckpt = Checkpoint(tmp_path / "c.jsonl")
    expired = InferenceError("not authorized (401). Your sign-in may have expired", kind="auth", status=401)
    chat = MockChat(fail=_raise_after(20, expired))
    handle = run(rows, settings(concurrency=2), ckpt, chat)
    snap = handle.snapshot()
    assert snap.state == "paused"
    assert "sign in again" in snap.message and "401" in snap.message
    kept = handle.table()
    assert 1 <= kept.num_rows < 60
    assert set(kept.column("status").to_pylist()) == {"ok"}  # rows hit by the 401 are not recorded as failures
    assert len(chat.calls) <= 20 + 2 * 2 + 2  # stopped at once (calls already in flight aside), not after every row
    h2 = run(rows, settings(concurrency=2), ckpt, MockChat())
    assert h2.snapshot().state == "done"
    assert h2.table().column("id").to_pylist() == rows.column("id").to_pylist()


def test_model_not_found_stops_early(tmp_path):
    rows = make_rows(100)
    missing = InferenceError("not found (404). Check the model name", kind="not_found", status=404)
    chat = MockChat(fail=_raise_after(0, missing, model="model-b"))
    handle = run(rows, settings(generators=(GEN_A, GEN_B), concurrency=4), Checkpoint(tmp_path / "c.jsonl"), chat)
    snap = handle.snapshot()
    assert snap.state == "stopped"
    assert "'model-b' was not found" in snap.message
    assert len(chat.calls) <= 10
    assert handle.table().num_rows == 0


def test_many_failures_in_a_row_stop_the_run(tmp_path):
    rows = make_rows(200)
    down = InferenceError("server error (500)", kind="server", status=500, retryable=True)
    chat = MockChat(fail=_raise_after(0, down))
    handle = run(rows, settings(concurrency=2), Checkpoint(tmp_path / "c.jsonl"), chat)
    snap = handle.snapshot()
    assert snap.state == "stopped" and "in a row failed" in snap.message and "server error" in snap.message
    assert snap.counts["generation_failed"] < 20


def test_token_budget_stops_the_run(tmp_path):
    rows = make_rows(50)
    # each row: generation 10+5 tokens, judge 100+40 tokens -> 155 tokens per row
    handle = run(rows, settings(concurrency=1, max_tokens=155 * 5), Checkpoint(tmp_path / "c.jsonl"), MockChat())
    snap = handle.snapshot()
    assert snap.state == "stopped" and "token budget" in snap.message
    assert 5 <= snap.done <= 7


def test_refusals(tmp_path):
    ckpt = Checkpoint(tmp_path / "c.jsonl")
    with pytest.raises(RunError, match="no rows"):
        run(make_rows(0), settings(), ckpt, MockChat())
    run(make_rows(3), settings(), ckpt, MockChat())
    with pytest.raises(RunError, match="other settings"):
        run(make_rows(3), settings(system_prompt="Something else"), ckpt, MockChat())
    with pytest.raises(RunError, match="at least one generator"):
        settings(generators=())
    with pytest.raises(RunError, match="twice"):
        settings(generators=(GEN_A, GEN_A))
    with pytest.raises(RunError, match="aspect"):
        settings(aspect="beauty")
    # a second run on the same results while one is going is refused
    slow = MockChat(delay=0.2)
    h = start_run(
        make_rows(20, prefix="other"), settings(), Checkpoint(tmp_path / "d.jsonl"), chat_fn=slow, detect=fake_detect
    )
    try:
        with pytest.raises(RunError, match="already"):
            start_run(
                make_rows(20, prefix="other"),
                settings(),
                Checkpoint(tmp_path / "d.jsonl"),
                chat_fn=MockChat(),
                detect=fake_detect,
            )
    finally:
        h.cancel()
        assert h.wait(5)


def test_credentials_go_to_the_right_backend_and_are_never_written(tmp_path):
    hf_token, api_key = "hf_CANARYtoken1234567890", "sk-CANARYkey0987654321"
    rows = make_rows(6)
    ckpt = Checkpoint(tmp_path / "c.jsonl")
    serverless_judge = Backend("serverless", "org/judge-model")

    def leaky(backend, messages, judge):
        if "prompt 3" in messages[-1]["content"] and not judge:
            raise InferenceError(f"server echoed Bearer {api_key}", kind="server", status=500)
        if "Instruction: prompt 4\n" in messages[-1]["content"].split("## Annotation")[-1]:
            raise InferenceError(f"router echoed {hf_token}", kind="server", status=500)
        return None

    seen: list[tuple[str, str | None]] = []

    async def chat(backend, messages, params, key):
        seen.append((backend.kind, key))
        return await MockChat(fail=leaky)(backend, messages, params, key)

    handle = run(
        rows, settings(judge=serverless_judge), ckpt, chat, token=hf_token, api_keys={GEN_A.base_url + "/": api_key}
    )
    # the HF token only goes to the HF backend, the server's key only to that server
    assert {k for kind, k in seen if kind == "openai"} == {api_key}
    assert {k for kind, k in seen if kind == "serverless"} == {hf_token}
    counts = handle.snapshot().counts
    assert counts["generation_failed"] == 1 and counts["judge_failed"] == 1
    errors = " ".join(handle.table().column("error").to_pylist())
    assert "***" in errors
    for path in tmp_path.iterdir():  # nothing on disk
        text = path.read_text()
        assert hf_token not in text and api_key not in text, path
    shown = json.dumps(handle.latest_rows()) + repr(handle.__dict__) + handle.snapshot().message
    assert hf_token not in shown and api_key not in shown


def test_default_data_dir_prefers_the_setting_then_space_storage(tmp_path, monkeypatch):
    from pipeline.generate import checkpoint as g

    monkeypatch.setenv("DPO_STUDIO_DATA_DIR", str(tmp_path / "set"))
    assert g.default_data_dir() == tmp_path / "set"
    monkeypatch.delenv("DPO_STUDIO_DATA_DIR")
    storage = tmp_path / "data"
    storage.mkdir()
    monkeypatch.setattr(g, "SPACE_PERSISTENT_DIR", storage)
    monkeypatch.setenv("SYSTEM", "spaces")
    assert g.default_data_dir() == storage / "dpo-studio"
    monkeypatch.delenv("SYSTEM")  # not a Space: never write to /data
    assert g.default_data_dir() == g.Path.home() / ".cache" / "dpo-studio" / "data"
