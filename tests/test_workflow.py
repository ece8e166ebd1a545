"""The workflow layer that the app and the CLI share: Hub checkpoints from the CLI (restore on another machine),
the push pre-flight, the sign-in rule, and RunSettings built from a mapping with one set of defaults."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import workflow
from pipeline.core import hub
from pipeline.core.errors import RunError
from pipeline.generate.settings import DEFAULTS, RunSettings
from pipeline.inference import Backend
from tests.fixtures.faulty_server import FakeLLMServer
from tests.pipeline_helpers import make_rows
from tests.test_generate_services import ultrafeedback_responder

ROOT = Path(__file__).resolve().parent.parent


def test_settings_from_a_mapping_fill_defaults_and_the_judge_alike():
    s = RunSettings.from_mapping(
        {
            "models": "a\nb, a",
            "base_url": "http://127.0.0.1:9/v1",
            "max_rows": 0,
            "max_tokens": "",
            "temperature": None,
            "concurrency": "4",
        }
    )
    assert [g.model for g in s.generators] == ["a", "b"] and s.generators[0].kind == "openai"
    assert s.judge == Backend("openai", "a", "http://127.0.0.1:9/v1")  # the first generator, same server
    assert s.max_rows is None and s.max_tokens is None and s.concurrency == 4
    assert s.temperature == DEFAULTS["temperature"] and s.max_new_tokens == DEFAULTS["max_new_tokens"]
    # a judge of another kind does not inherit the generators' URL or provider
    s = RunSettings.from_mapping(
        {
            "models": ["m"],
            "kind": "serverless",
            "provider": "together",
            "judge_model": "j",
            "judge_kind": "openai",
            "judge_base_url": "http://h:1/v1",
        }
    )
    assert s.judge == Backend("openai", "j", "http://h:1/v1", "auto")
    s = RunSettings.from_mapping({"models": ["m"], "kind": "serverless", "provider": "together", "judge_model": "j"})
    assert s.judge == Backend("serverless", "j", "", "together")
    with pytest.raises(RunError, match="whole number"):
        RunSettings.from_mapping({"models": "m", "max_rows": "ten"})
    with pytest.raises(RunError, match="at least one generator"):
        RunSettings.from_mapping({"models": " \n "})


def test_sign_in_message_names_each_model_once():
    s = RunSettings.from_mapping({"models": "org/m", "kind": "serverless"})  # generator and judge are one model
    with pytest.raises(RunError) as err:
        workflow.require_sign_in(s, None, "Set HF_TOKEN")
    assert str(err.value).count("org/m") == 1 and "Set HF_TOKEN" in str(err.value)
    workflow.require_sign_in(s, "hf_x", "Set HF_TOKEN")  # a token: nothing to say


def test_preflight_push_refuses_before_any_work(fake_hub):
    import pyarrow as pa

    fake_hub.add_user("pia", "hf_pia_write")
    fake_hub.add_user("quinn", "hf_quinn_write")
    assert workflow.preflight_push("pia/new-set", "hf_pia_write", overwrite=False) == "pia/new-set"
    with pytest.raises(hub.HubError):  # someone else's namespace
        workflow.preflight_push("quinn/x", "hf_pia_write", overwrite=False)
    with pytest.raises(hub.HubError):  # not a repo id
        workflow.preflight_push("no spaces allowed/x", "hf_pia_write", overwrite=False)
    hub.push_dataset(pa.table({"x": [1]}), "pia/exists", "hf_pia_write", private=True, card="hi")
    with pytest.raises(hub.HubError, match="tick the box"):
        workflow.preflight_push("pia/exists", "hf_pia_write", overwrite=False, overwrite_hint="tick the box")
    assert workflow.preflight_push("pia/exists", "hf_pia_write", overwrite=True) == "pia/exists"
    assert workflow.preflight_push("pia/exists", "hf_pia_write", overwrite=False, ours=lambda rid: True)


def test_cli_hub_checkpoints_restore_on_another_machine(fake_hub, tmp_path):
    """`generate --hub-checkpoint` pushes the finished rows; a rerun that lost its output folder restores them
    from the Hub and runs only the rows that are new."""
    fake_hub.add_user("cleo", "hf_cleo_write")
    source = tmp_path / "filtered.parquet"
    pq.write_table(make_rows(10), source)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_TOKEN": "hf_cleo_write"}
    with FakeLLMServer(responder=ultrafeedback_responder, latency=lambda: 0.01) as srv:
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
            "--hub-checkpoint",
            "cleo/nld-checkpoints",
            "--checkpoint-every",
            "10",
        ]
        first = subprocess.run(
            [*cmd, "--max-rows", "8"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert first.returncode == 0, first.stderr
        assert "Checkpoints go to the private dataset cleo/nld-checkpoints" in first.stderr
        assert hub.check_dataset_access("cleo/nld-checkpoints", "hf_cleo_write")["private"] is True
        shutil.rmtree(out)  # another machine: nothing on disk
        before = srv.chat_requests
        second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert "Restored 8 finished rows" in second.stderr
        assert srv.chat_requests - before == 2 * 2  # only the 2 new rows: a generation and a judge call each
    table = pq.read_table(out / "raw.parquet")
    assert table.num_rows == 10 and set(table.column("status").to_pylist()) == {"ok"}
    assert "hf_cleo_write" not in (out / "checkpoint.jsonl").read_text()
