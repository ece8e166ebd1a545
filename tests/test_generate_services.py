"""The generation pipeline against real local services: the fault-injecting server, a killed-and-resumed CLI run,
the real llama.cpp server (SmolLM2 as generator and judge), the generated distilabel pipeline.py, and the fake Hub."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.core import schema
from pipeline.generate import Checkpoint, RunSettings, publish, recipe, run_async
from pipeline.generate import meta as run_meta
from pipeline.inference import Backend, RetryPolicy
from tests.fixtures.faulty_server import FakeLLMServer, Fault
from tests.pipeline_helpers import is_judge, judge_answer, make_rows

ROOT = Path(__file__).resolve().parent.parent
FAST_RETRY = RetryPolicy(max_attempts=4, max_total_s=10, base_backoff_s=0.01, max_backoff_s=0.05)


def ultrafeedback_responder(request: dict) -> str:
    """Generations echo the prompt; judge calls get a well-formed UltraFeedback reply for every text."""
    messages = request["messages"]
    if is_judge(messages):  # rates by content (human 2, model 3), in JSON when asked for structured output
        return judge_answer(messages, structured="response_format" in request)
    return f"Antwoord van {request.get('model')}: {messages[-1]['content']}"


def _prompt_of(request: dict) -> str:
    return request["messages"][-1]["content"]


def test_faulty_server_transient_errors_are_retried_and_hard_ones_reported(tmp_path):
    attempts: dict[str, int] = {}
    transient = [Fault.status(503), Fault.status(429, retry_after=0.05), Fault.malformed_json(), None]

    def fault_for(request: dict):
        text = _prompt_of(request)
        if "prompt 3" == text:
            return Fault.status(500, message="the GPU caught fire")  # every attempt fails
        if "prompt 5" == text:
            return Fault.status(400, message="Requested tokens exceed context window of 2048")
        attempts[text] = attempts.get(text, 0) + 1
        number = int(text.split()[-1]) if text.startswith("prompt ") else 0
        if attempts[text] <= 2:  # transient: the first one or two attempts of most calls fail, then they go through
            return transient[(number + attempts[text]) % len(transient)]
        return None

    rows = make_rows(20)
    with FakeLLMServer(responder=ultrafeedback_responder, fault_for=fault_for) as srv:
        backend = Backend("openai", "fake-model", srv.base_url)
        settings = RunSettings(generators=(backend,), judge=backend, concurrency=4)
        handle = asyncio.run(run_async(rows, settings, Checkpoint(tmp_path / "c.jsonl"), retry=FAST_RETRY, detect=None))
        calls = srv.chat_requests
    snap = handle.snapshot()
    assert snap.state == "done", snap.message
    by_prompt = {r["prompt"]: r for r in handle.table().to_pylist()}
    assert len(by_prompt) == 20
    assert by_prompt["prompt 3"]["status"] == "generation_failed"
    assert (
        "server error (500)" in by_prompt["prompt 3"]["error"]
        and "gave up after 4 attempts" in by_prompt["prompt 3"]["error"]
    )
    assert by_prompt["prompt 5"]["status"] == "generation_failed"
    assert "context window" in by_prompt["prompt 5"]["error"]
    others = [r for p, r in by_prompt.items() if p not in ("prompt 3", "prompt 5")]
    bad = [(r["prompt"], r["status"], r["error"]) for r in others if r["status"] != "ok" or r["ratings"] != [2, 3]]
    assert not bad
    assert calls > 18 * 2 + 4  # transient faults were retried


def test_cli_killed_half_way_resumes_with_every_row_exactly_once(tmp_path):
    rows = make_rows(120)
    source = tmp_path / "filtered.parquet"
    pq.write_table(rows, source)
    out = tmp_path / "run"
    rnd = random.Random(3)

    def fault_for(request: dict):  # some rows fail hard in the first run: the resume must retry them
        if rnd.random() < 0.05:
            return Fault.status(500)
        return None

    with FakeLLMServer(responder=ultrafeedback_responder, latency=lambda: 0.03, fault_for=fault_for) as srv:
        cmd = [
            sys.executable,
            "-m",
            "pipeline",
            "generate",
            str(source),
            "-o",
            str(out),
            "--base-url",
            srv.base_url,
            "--model",
            "fake-model",
            "--concurrency",
            "4",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        checkpoint = out / "checkpoint.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if checkpoint.exists() and checkpoint.read_bytes().count(b"\n") >= 40:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # no clean-up at all
        proc.wait(10)
        lines_before = checkpoint.read_bytes().count(b"\n")
        assert 40 <= lines_before < 120
        assert not (out / "raw.parquet").exists()

        srv.fault_for = None  # the server recovers
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "already done" in done.stderr
    table = pq.read_table(out / "raw.parquet")
    assert table.column_names == list(schema.RAW_COLUMNS)
    assert table.column("id").to_pylist() == rows.column("id").to_pylist()  # every row, exactly once, in order
    assert set(table.column("status").to_pylist()) == {"ok"}
    assert (out / "pipeline.py").exists() and (out / "README.md").exists()
    # the resumed run did not redo the rows that were ok before the kill
    first_ok = sum(1 for line in checkpoint.read_text().splitlines()[:lines_before] if '"status": "ok"' in line)
    assert checkpoint.read_bytes().count(b"\n") <= 120 + (lines_before - first_ok) + 1


def test_end_to_end_on_real_llama_cpp(llm_servers, tmp_path):
    """SmolLM2 generates (server a) and judges (server b): its ratings are often unparseable; the run must still
    complete with an explicit status and reason for every row."""
    rows = make_rows(10, language_code="eng")
    llm_server, judge_server = llm_servers
    backend = llm_server.backend()
    settings = RunSettings(
        generators=(backend,),
        judge=judge_server.backend(),
        system_prompt="Answer briefly in English.",
        max_new_tokens=48,
        judge_max_new_tokens=128,
        concurrency=4,
    )
    handle = asyncio.run(run_async(rows, settings, Checkpoint(tmp_path / "c.jsonl"), timeout=120))
    snap = handle.snapshot()
    assert snap.state == "done", snap.message
    table = handle.table()
    assert table.num_rows == 10
    for rec in table.to_pylist():
        assert rec["status"] in schema.STATUSES
        assert rec["response_sources"] == ["human", llm_server.model]
        if rec["status"] == "ok":
            assert all(1 <= r <= 5 for r in rec["ratings"]) and rec["error"] == ""
        else:
            assert rec["error"], rec  # every failure says why
        if rec["status"] != "generation_failed":
            assert rec["responses"][1].strip()
        if rec["status"] == "judge_unparseable":
            assert "Raw reply" in rec["error"]
        assert rec["detected_languages"][0] is not None  # the human answer's language was checked too
    assert sum(snap.counts.values()) == 10
    print("statuses with SmolLM2:", snap.counts)


def test_generated_pipeline_script_runs_on_three_rows(llm_server, tmp_path):
    assert importlib.util.find_spec("bs4") is None, "bs4 makes distilabel fetch citations from the internet"
    backend = llm_server.backend()
    settings = RunSettings(
        generators=(backend,),
        judge=backend,
        system_prompt="Answer briefly.",
        max_new_tokens=32,
        judge_max_new_tokens=120,
    )
    meta = run_meta.build_raw_meta(settings, None, language="English", language_code="eng")
    script = recipe.render_pipeline_script(meta, data=str(tmp_path / "rows.parquet"))
    assert str(tmp_path) not in script and "rows.parquet" not in script  # no path of this machine in the script
    (tmp_path / "pipeline.py").write_text(script)
    pq.write_table(make_rows(5, language_code="eng"), tmp_path / "rows.parquet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_TOKEN")}
    env.update({"HOME": str(tmp_path), "DISTILABEL_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": ""})
    done = subprocess.run(
        [sys.executable, "pipeline.py", "--data", "rows.parquet", "--limit", "3", "--output", "out.jsonl"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    human = {r["prompt"]: r["response"] for r in make_rows(3).to_pylist()}
    for row in rows:
        assert row["generation_models"] == ["human", llm_server.model]
        assert row["generations"][0] == human[row["instruction"]]  # the human answer is first
        assert len(row["ratings"]) >= 1 and "detected_languages" in row


def test_push_raw_to_fake_hub_loads_back(fake_hub, tmp_path):
    import datasets

    from pipeline.generate import run_async as run
    from tests.pipeline_helpers import MockChat, fake_detect

    fake_hub.add_user("dora", "hf_dora_write")
    canary = "hf_dora_write"
    rows = make_rows(8)
    gen = Backend("serverless", "org/model-a")
    settings = RunSettings(generators=(gen,), judge=gen, system_prompt="Antwoord in het Nederlands.")
    handle = asyncio.run(
        run(rows, settings, Checkpoint(tmp_path / "c.jsonl"), chat_fn=MockChat(), detect=fake_detect, token=canary)
    )
    raw = handle.table()
    meta = run_meta.build_raw_meta(
        settings,
        raw,
        source=schema.Provenance(dataset="CohereForAI/aya_dataset", split="train", license="apache-2.0"),
        language="Dutch",
        language_code="nld",
    )
    url = publish.push_raw(raw, meta, "dora/aya-dutch-dpo-raw", canary, private=True)
    assert url.endswith("dora/aya-dutch-dpo-raw")
    ds = datasets.load_dataset("dora/aya-dutch-dpo-raw", split="train", token=canary)
    assert ds.column_names == list(schema.RAW_COLUMNS)
    assert ds["id"] == rows.column("id").to_pylist()
    assert ds[0]["responses"][0] == "human answer 0"
    from pipeline.core import hub

    card = hub.download_file("dora/aya-dutch-dpo-raw", "README.md", canary).decode()
    script = hub.download_file("dora/aya-dutch-dpo-raw", "pipeline.py", canary).decode()
    info = hub.download_file("dora/aya-dutch-dpo-raw", "dpo_studio.json", canary).decode()
    assert "org/model-a" in card and "| ok | 8 |" in card and "license: apache-2.0" in card
    assert "DATA = 'dora/aya-dutch-dpo-raw'" in script and "Antwoord in het Nederlands." in script
    assert json.loads(info)["counts"]["ok"] == 8
    for text in (card, script, info, (tmp_path / "c.jsonl").read_text(), (tmp_path / "c.jsonl.meta.json").read_text()):
        assert canary not in text
    # private by default: someone else cannot see it
    fake_hub.add_user("eve", "hf_eve_write")
    assert hub.check_dataset_access("dora/aya-dutch-dpo-raw", canary)["private"] is True
    with pytest.raises(hub.HubError):  # (datasets itself would fall back to its local cache)
        hub.check_dataset_access("dora/aya-dutch-dpo-raw", "hf_eve_write")
