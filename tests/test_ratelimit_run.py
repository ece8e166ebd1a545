"""Runs against a provider's limits, with the error-injecting server (tests/fixtures/faulty_server.py): its rate
limit mid-run, two users with their own limits at once, out-of-credit pauses and resume, the failure summary at
the end of a run and the CLI's exit code."""

from __future__ import annotations

import asyncio

import pyarrow.parquet as pq

from pipeline import cli
from pipeline.generate import Checkpoint, RunSettings, results, run_async
from pipeline.generate.executor import start_run
from pipeline.inference import Backend, RetryPolicy, ratecontrol
from tests.fixtures.faulty_server import FakeLLMServer, Fault
from tests.pipeline_helpers import is_judge, judge_answer, make_rows

FAST = RetryPolicy(max_attempts=3, max_total_s=30, base_backoff_s=0.01, max_backoff_s=0.05)


def responder(request: dict) -> str:
    messages = request["messages"]
    if is_judge(messages):
        return judge_answer(messages, structured="response_format" in request)
    return f"Antwoord van {request.get('model')}: {messages[-1]['content']}"


def settings_for(server: FakeLLMServer, **changes) -> RunSettings:
    backend = Backend("openai", "fake-model", server.base_url)
    return RunSettings(generators=(backend,), judge=backend, **changes)


def test_a_rate_limit_mid_run_costs_no_rows_and_few_refusals(tmp_path):
    ratecontrol.set_adaptive(True)
    rows = make_rows(60)
    with FakeLLMServer(responder=responder, latency=0.1, rate_limit=40) as server:
        handle = asyncio.run(
            run_async(
                rows, settings_for(server, concurrency=32), Checkpoint(tmp_path / "c.jsonl"), retry=FAST, detect=None
            )
        )
        refused, requests = server.rate_limited, server.chat_requests
    snap = handle.snapshot()
    assert snap.state == "done", snap.message
    assert snap.counts["ok"] == 60 and snap.failures == 0  # a 429 is a wait, never a failed row
    assert refused > 0  # the limit was met (32 in flight at 0.1 s is 320 calls/s against 40)
    assert refused / requests < 0.3  # the controller cut the concurrency instead of knocking 32 times at once
    assert snap.calls.refused == refused  # the run reports what the provider refused
    assert snap.calls.concurrency == 32


def test_two_users_at_once_only_the_throttled_one_waits(tmp_path):
    """Per-key buckets on the server; per-key controllers in the app: a's 429s never slow b."""
    with FakeLLMServer(responder=responder, latency=0.2, rate_limit=10) as server:
        settings_a = settings_for(server, concurrency=16)
        settings_b = settings_for(server, concurrency=1)
        url = server.base_url
        a = start_run(
            make_rows(20, prefix="a"),
            settings_a,
            Checkpoint(tmp_path / "a.jsonl"),
            api_keys={url: "key-of-a"},
            retry=FAST,
            detect=None,
        )
        b = start_run(
            make_rows(5, prefix="b"),
            settings_b,
            Checkpoint(tmp_path / "b.jsonl"),
            api_keys={url: "key-of-b"},
            retry=FAST,
            detect=None,
        )
        b_throttled = []
        while b.running or a.running:
            b_throttled.append(b.snapshot().calls.throttled)
            a.wait(0.02)
        assert a.snapshot().state == "done" and b.snapshot().state == "done"
        assert server.refused_for("key-of-a") > 0  # a went over its limit...
        assert server.refused_for("key-of-b") == 0  # ...b never did,
        assert b.snapshot().calls.refused == 0 and not any(b_throttled)  # and was never held back for a's sake
        assert server.served_for("key-of-b") == 10
    assert a.snapshot().counts["ok"] == 20 and b.snapshot().counts["ok"] == 5


def test_out_of_credit_pauses_and_a_resume_finishes(tmp_path):
    rows = make_rows(10)
    ckpt = Checkpoint(tmp_path / "c.jsonl")
    with FakeLLMServer(responder=responder, credits=8) as server:
        settings = settings_for(server, concurrency=2)
        paused = asyncio.run(run_async(rows, settings, ckpt, retry=FAST, detect=None))
        snap = paused.snapshot()
        assert snap.state == "paused"
        assert "out of credits" in snap.message and "402" in snap.message
        assert "add credits" in snap.message.lower() and "resume" in snap.message
        assert 0 < snap.counts["ok"] < 10  # the rows finished before the credits ran out are kept
        refused = server.chat_requests - server.served_for(None)
        assert 1 <= refused <= 4  # the run stopped calling: only calls already under way were refused too

        server.add_credits(100)  # the user topped up
        resumed = asyncio.run(run_async(rows, settings, ckpt, retry=FAST, detect=None))
    assert resumed.snapshot().state == "done"
    assert results.counts_by_status(resumed.table())["ok"] == 10


def test_waiting_longer_than_the_users_limit_pauses_the_run(tmp_path):
    with FakeLLMServer(responder=responder, rate_limit=0.01, rate_burst=1, rate_retry_after=2) as server:
        settings = settings_for(server, concurrency=2, max_wait_s=3)
        handle = asyncio.run(run_async(make_rows(4), settings, Checkpoint(tmp_path / "c.jsonl"), detect=None))
    snap = handle.snapshot()
    assert snap.state == "paused"
    assert "rate limited (429)" in snap.message and "limit of 3.0 s" in snap.message
    assert "Resume the run later" in snap.message
    assert snap.counts["ok"] <= 1  # only the call the bucket's one token let through


def test_all_rows_failing_are_summarised_and_the_cli_exits_non_zero(tmp_path, capsys):
    source = tmp_path / "in.parquet"
    pq.write_table(make_rows(3), source)
    refuse = Fault.status(400, message="max_tokens must be at most 8")
    with FakeLLMServer(responder=responder, fault_for=lambda request: refuse) as server:
        code = cli.main(
            [
                "generate",
                str(source),
                "-o",
                str(tmp_path / "out"),
                "--base-url",
                server.base_url,
                "--model",
                "fake-model",
                "--concurrency",
                "2",
            ]
        )
    err = capsys.readouterr().err
    assert code != 0  # no row finished ok
    assert "0 of 3 rows ok" in err
    assert "3 × generation failed" in err and "rejected the request (400)" in err
    assert err.count("fake-model on") >= 1 and "fake-model: fake-model" not in err  # each model named once
    groups = results.failure_reasons(pq.read_table(tmp_path / "out" / "raw.parquet"))
    assert [(g.status, g.rows) for g in groups] == [("generation_failed", 3)]


def test_the_pipeline_tab_shows_live_calls_and_why_rows_failed():
    from pipeline.generate.results import FailureGroup
    from pipeline.generate.runhandle import CallStats, Progress
    from ui.pipeline_tab import progress_markdown

    base = dict(
        message="",
        total=10,
        done=4,
        counts={"ok": 4},
        finished_this_run=4,
        elapsed_s=2.0,
        rows_per_s=2.0,
        eta_s=3.0,
        tokens_used=100,
    )
    calls = CallStats(
        in_flight=6, allowed=6, concurrency=64, calls_per_s=19.5, throttled=True, waiting_s=3.2, refused=12
    )
    running = progress_markdown(Progress(state="running", calls=calls, **base))
    assert "6 calls in flight" in running and "6 of 64 allowed now" in running and "19.5 calls/s" in running
    assert "throttled by the provider, waiting 3 s" in running
    groups = (FailureGroup("generation_failed", "m on http://x/v1: cannot connect to http://x/v1", 2),)
    done = progress_markdown(
        Progress(
            state="done",
            calls=calls,
            failure_groups=groups,
            **{**base, "counts": {"ok": 8, "generation_failed": 2}, "done": 10},
        )
    )
    assert "Failed rows by reason" in done and "2 × generation failed" in done and "cannot connect" in done
    assert "calls in flight" not in done  # live numbers only while it runs
