"""Train, without training: the settings and the script written from them, the progress read from its output, the
estimate. (The script trains for real in tests/test_train_script.py; HF Jobs in tests/test_train_jobs.py.)"""

from __future__ import annotations

import ast

import pytest

from pipeline import train
from pipeline.train import trl_script
from pipeline.train.estimate import Flavor, count_tokens, estimate

A10G = Flavor("a10g-small", "Nvidia A10G - small", 0.016667, "minute", "4 vCPU", "15 GB", "A10G", 1, 24.0)
A100 = Flavor("a100-large", "Nvidia A100 - large", 0.041667, "minute", "12 vCPU", "142 GB", "A100", 1, 80.0)
CPU = Flavor("cpu-basic", "CPU Basic", 0.000167, "minute", "2 vCPU", "16 GB")


def _config_of(script: str) -> dict:
    """The CONFIG literal of a rendered script, parsed (not executed)."""
    for node in ast.parse(script).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "CONFIG":
            return ast.literal_eval(node.value)
    raise AssertionError("no CONFIG in the script")


def test_the_script_carries_the_settings_and_its_inline_dependencies():
    settings = train.TrainSettings(
        dataset="alice/aya-dutch-dpo", base_model="Qwen/Qwen3-0.6B", output_repo="alice/m", method="orpo", beta=0.2
    )
    script = train.render_script(settings)
    compile(script, "train.py", "exec")
    config = _config_of(script)
    assert config == settings.to_config()
    assert config["learning_rate"] == train.LR_LORA  # LoRA's default when none is given
    assert set(config) == set(trl_script.CONFIG)  # the template's keys, no more, no less
    header = script.split("# ///")[1]
    for dep in ("trl", "peft", "transformers", "datasets", "torch"):
        assert f'"{dep}' in header
    full = train.TrainSettings(dataset="a/b", base_model="m/n", lora=False)
    assert _config_of(train.render_script(full))["learning_rate"] == train.LR_FULL


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"dataset": "nope", "base_model": "m/n"}, "not a dataset id"),
        ({"dataset": "a/b", "base_model": "m/n", "method": "ppo"}, "Unknown method"),
        ({"dataset": "a/b", "base_model": "m/n", "beta": 0}, "beta"),
        ({"dataset": "a/b", "base_model": "m/n", "epochs": "x"}, "epochs"),
        ({"dataset": "a/b"}, "base model"),
    ],
)
def test_bad_settings_are_named(values, says):
    with pytest.raises(train.TrainError, match=says):
        train.render_script(train.TrainSettings.from_mapping(values))


def test_progress_is_read_from_the_output_even_after_a_progress_bar():
    lines = [
        'DPO_STUDIO_EVENT {"event": "data", "train_pairs": 64, "test_pairs": 32, "test_source": "test split"}',
        'DPO_STUDIO_EVENT {"event": "train", "total_steps": 8}',
        ' 12%|#  | 1/8 [00:03<00:24]\r 25%|## | 2/8 DPO_STUDIO_EVENT {"event": "log", "step": 2, "total_steps": 8, '
        '"loss": 0.56}',
        "some warning from transformers",
    ]
    progress = train.TrainProgress.from_lines(lines)
    assert (progress.step, progress.total_steps, progress.loss) == (2, 8, 0.56)
    assert progress.line() == "training: step 2/8, loss 0.5600"
    f = trl_script.figures([(-5.0, -4.0), (-3.0, -6.0)], [(-2.0, -5.0), (-2.5, -7.0)], beta=0.1)
    progress.feed(trl_script.EVENT_PREFIX + '{"event": "eval", "figures": ' + __import__("json").dumps(f) + "}")
    progress.feed(trl_script.EVENT_PREFIX + '{"event": "pushed", "url": "http://hub/alice/m"}')
    progress.feed(trl_script.EVENT_PREFIX + '{"event": "done"}')
    assert progress.figures is not None and progress.figures.reward_accuracy_after == 1.0
    assert "reward accuracy 50.0% -> 100.0%" in progress.figures.summary()
    assert progress.done and progress.model_url == "http://hub/alice/m"


def test_the_model_card_links_the_dataset_and_gives_method_hyperparameters_and_figures():
    config = {**trl_script.CONFIG, "dataset": "alice/d", "base_model": "Qwen/Qwen3-0.6B", "output_repo": "alice/m"}
    f = trl_script.figures([(-5.0, -4.0), (-3.0, -6.0)], [(-2.0, -5.0), (-2.5, -7.0)], beta=0.1)
    card = trl_script.model_card(config, {"figures": f, "steps": 12, "train_pairs": 90, "test_source": "test"})
    assert "https://huggingface.co/datasets/alice/d" in card and "base_model: Qwen/Qwen3-0.6B" in card
    assert "| method | DPO |" in card and "| beta | 0.1 |" in card and "| optimiser steps | 12 |" in card
    assert "| 50.0% | 100.0% |" in card and "**100.0%**" in card


def test_estimate_grows_with_tokens_and_model_size_and_warns_about_memory():
    rows = [{"prompt": "Wat is de hoofdstad?" * 10, "chosen": "Amsterdam." * 20, "rejected": "Parijs." * 20}] * 100
    tokens = count_tokens(rows)
    assert tokens > 0
    small = estimate(tokens, 3, 0.6, "dpo", True, A10G)
    big = estimate(tokens * 100, 3, 4.0, "dpo", True, A10G)
    assert small.minutes and big.minutes and small.cost_usd and big.cost_usd
    assert small.minutes[0] < small.minutes[1] and big.minutes[1] > small.minutes[1]
    assert big.cost_usd[1] > small.cost_usd[1] > 0
    assert "$" in small.text() and "Warning" not in small.text()
    assert "Warning" in estimate(tokens, 3, 4.0, "dpo", False, A10G).text()  # full fine-tuning of 4B: > 24 GB
    unknown = estimate(tokens, 3, None, "dpo", True, A10G)
    assert unknown.minutes is None and "no time estimate" in unknown.text()


def test_default_hardware_is_the_cheapest_gpu_that_fits():
    assert train.default_flavor([CPU, A100, A10G], 0.6, lora=True) == A10G
    assert train.default_flavor([CPU, A100, A10G], 4.0, lora=False) == A100
    assert train.default_flavor([CPU], 0.6, lora=True) is None
    assert A10G.hourly_usd == pytest.approx(1.0, abs=0.01)


def test_a_local_run_gets_the_token_in_its_environment_never_its_command_line(tmp_path):
    fake_python = tmp_path / "python"
    fake_python.write_text(
        "#!/bin/sh\n"
        'echo "argv: $*"\n'
        'test "$HF_TOKEN" = hf_local_secret && echo "token: in the environment"\n'
        'printf \'%s\\n\' \'DPO_STUDIO_EVENT {"event": "saved", "path": "/tmp/m"}\' \'DPO_STUDIO_EVENT {"event": "done"}\'\n'
    )
    fake_python.chmod(0o755)
    settings = train.TrainSettings(dataset="a/b", base_model="m/n")
    facts = train.ExportFacts("a/b", 10, 2, 1000, 100, "nl")
    plan = train.plan(settings, facts)
    seen: list[str] = []
    code, progress, tail = train.run_local(
        plan, "hf_local_secret", python=str(fake_python), args=["--no-push"], on_line=seen.append, workdir=tmp_path
    )
    assert code == 0 and progress.done and progress.saved_path == "/tmp/m"
    assert "token: in the environment" in seen and not any("hf_local_secret" in line for line in seen)
    assert seen[0].startswith("argv: ") and seen[0].endswith("--no-push") and "train.py" in seen[0]
    assert (tmp_path / "train.py").read_text(encoding="utf-8") == plan.script
