# /// script
# requires-python = ">=3.10"
# dependencies = [
#     "torch>=2.4",
#     "trl>=1.13,<2",
#     "peft>=0.21",
#     "transformers>=5.17",
#     "accelerate>=1.15",
#     "datasets>=4",
#     "huggingface_hub>=1.0",
#     "gguf>=0.17",
# ]
# ///
"""Preference training with TRL (DPO or ORPO) on a DPO Studio export, an evaluation on its test split before and
after, and a push of the model (or its LoRA adapter) with a model card. Written by DPO Studio.

Run it anywhere: ``uv run train.py`` (the dependencies above install themselves; GPU when torch finds one, else
CPU), or on Hugging Face Jobs. The token comes from ``HF_TOKEN`` (on Jobs a secret; locally your environment or
``hf auth login``); it is never printed. Everything the run does is in ``CONFIG`` below: edit it freely.

Options: ``--max-steps N`` stops after N optimiser steps, ``--no-push`` keeps the model on disk, ``--output-dir``.

The evaluation (the same before and after training, on held-out pairs): for each test pair, the sum of the
log-probabilities of the chosen and of the rejected answer's tokens given the prompt.

- reward accuracy: the share of pairs where the model gives the chosen answer the higher log-probability
  (before: the base model; after: the trained one);
- mean margin: the mean of log p(chosen) - log p(rejected), in nats;
- gain share: the share of pairs whose chosen answer gained log-probability relative to the rejected one during
  training (DPO's implicit reward accuracy), and the reward margin, beta times the mean of that gain.

Lines that start with ``DPO_STUDIO_EVENT`` are JSON records (progress and figures) that DPO Studio reads.

This file is also a module of DPO Studio (``pipeline/train/trl_script.py``); it imports nothing from DPO Studio, and
torch/TRL only inside its functions.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

# --- CONFIG (written by DPO Studio) ---
CONFIG: dict[str, Any] = {
    "dataset": "",
    "train_split": "train",
    "test_split": "test",
    "test_fraction": 0.1,
    "base_model": "",
    "gguf_file": "",
    "method": "dpo",
    "lora": True,
    "beta": 0.1,
    "learning_rate": 5e-06,
    "epochs": 3.0,
    "max_length": 1024,
    "batch_size": 2,
    "gradient_accumulation": 4,
    "lora_r": 16,
    "lora_alpha": 32,
    "seed": 42,
    "eval_limit": 500,
    "output_repo": "",
    "private": True,
    "language": "",
}
# --- END CONFIG ---

EVENT_PREFIX = "DPO_STUDIO_EVENT "


def emit(event: str, **data: Any) -> None:
    """One machine-readable line on stdout (DPO Studio's CLI and tab read them from the local output or the logs)."""
    print(EVENT_PREFIX + json.dumps({"event": event, **data}, default=str), flush=True)


# --- the evaluation figures (pure Python) ------------------------------------------------------------------------
def figures(before: list[tuple[float, float]], after: list[tuple[float, float]], beta: float) -> dict[str, float]:
    """The evaluation figures from (log p(chosen), log p(rejected)) per test pair, before and after training.

    >>> f = figures([(-5.0, -4.0), (-3.0, -6.0)], [(-2.0, -5.0), (-2.5, -7.0)], beta=0.1)
    >>> f["reward_accuracy_before"], f["reward_accuracy_after"], f["gain_share"]
    (0.5, 1.0, 1.0)
    >>> round(f["mean_margin_before"], 2), round(f["mean_margin_after"], 2), round(f["reward_margin"], 3)
    (1.0, 3.75, 0.275)
    """
    if not before or len(before) != len(after):
        raise ValueError("figures need the same non-empty list of test pairs before and after")
    n = len(before)
    gains = [(ca - ra) - (cb - rb) for (cb, rb), (ca, ra) in zip(before, after)]
    return {
        "pairs": n,
        "reward_accuracy_before": sum(c > r for c, r in before) / n,
        "reward_accuracy_after": sum(c > r for c, r in after) / n,
        "mean_margin_before": sum(c - r for c, r in before) / n,
        "mean_margin_after": sum(c - r for c, r in after) / n,
        "gain_share": sum(g > 0 for g in gains) / n,
        "reward_margin": beta * sum(gains) / n,
    }


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def model_card(config: dict[str, Any], result: dict[str, Any]) -> str:
    """The model card (README.md): what was trained on what, how, and what the evaluation says."""
    method = config["method"].upper()
    kind = "LoRA adapter" if config["lora"] else "full fine-tune"
    tags = ["trl", config["method"], "dpo-studio"] + (["peft", "lora"] if config["lora"] else [])
    meta = [
        "---",
        f"base_model: {config['base_model']}",
        "datasets:",
        f"- {config['dataset']}",
        f"library_name: {'peft' if config['lora'] else 'transformers'}",
        "pipeline_tag: text-generation",
        "tags:",
        *[f"- {t}" for t in tags],
    ]
    if config.get("language"):
        meta += ["language:", f"- {config['language']}"]
    meta.append("---")
    f = result.get("figures") or {}
    hyper = [
        ("method", method),
        ("fine-tuning", kind + (f" (r={config['lora_r']}, alpha={config['lora_alpha']})" if config["lora"] else "")),
        ("beta", config["beta"]),
        ("learning rate", config["learning_rate"]),
        ("epochs", config["epochs"]),
        ("max length (tokens)", config["max_length"]),
        ("batch size x gradient accumulation", f"{config['batch_size']} x {config['gradient_accumulation']}"),
        ("seed", config["seed"]),
        ("optimiser steps", result.get("steps", "?")),
        ("training pairs", result.get("train_pairs", "?")),
    ]
    lines = [
        *meta,
        "",
        f"# {config['output_repo'].split('/')[-1] or 'Model'}",
        "",
        f"A {kind} of [{config['base_model']}](https://huggingface.co/{config['base_model']}) trained with "
        f"[TRL](https://github.com/huggingface/trl)'s {method} on the preference dataset "
        f"[{config['dataset']}](https://huggingface.co/datasets/{config['dataset']}), built with DPO Studio.",
        "",
        "## Training",
        "",
        "| Setting | Value |",
        "| --- | --- |",
        *[f"| {k} | {_fmt(v)} |" for k, v in hyper],
        "",
        f"## Evaluation on {f.get('pairs', '?')} held-out pairs ({result.get('test_source', 'test split')})",
        "",
    ]
    if f:
        lines += [
            "| Figure | Before | After |",
            "| --- | --- | --- |",
            f"| Reward accuracy (the model gives the chosen answer the higher log-probability) | "
            f"{f['reward_accuracy_before']:.1%} | {f['reward_accuracy_after']:.1%} |",
            f"| Mean margin, log p(chosen) - log p(rejected) (nats) | {f['mean_margin_before']:.3f} | "
            f"{f['mean_margin_after']:.3f} |",
            "",
            f"Test pairs whose chosen answer gained log-probability relative to the rejected one: "
            f"**{f['gain_share']:.1%}** (DPO's implicit reward accuracy); reward margin (beta x mean gain): "
            f"{f['reward_margin']:.4f}.",
        ]
    else:
        lines.append("No test pairs: nothing was evaluated.")
    lines += ["", "Trained with `train.py`, written by DPO Studio (in this repository)."]
    return "\n".join(lines) + "\n"


# --- data --------------------------------------------------------------------------------------------------------
def _pair(row: dict[str, Any]) -> dict[str, Any]:
    """prompt/chosen/rejected in one of TRL's forms: a recipe row (full conversations in chosen/rejected beside a
    text prompt) becomes conversational."""
    chosen, rejected = row["chosen"], row["rejected"]
    if isinstance(chosen, list) and len(chosen) > 1:
        return {"prompt": chosen[:-1], "chosen": chosen[-1:], "rejected": rejected[-1:]}
    return {"prompt": row["prompt"], "chosen": chosen, "rejected": rejected}


def load_pairs(config: dict[str, Any], token: str | None) -> tuple[Any, Any, str]:
    """(train, test, where the test pairs come from): the export's test split, else a held-out fraction."""
    from datasets import get_dataset_split_names, load_dataset

    splits = get_dataset_split_names(config["dataset"], token=token)
    train = load_dataset(config["dataset"], split=config["train_split"], token=token)
    keep = ["prompt", "chosen", "rejected"]
    train = train.map(_pair, remove_columns=train.column_names)
    if config["test_split"] in splits:
        test = load_dataset(config["dataset"], split=config["test_split"], token=token)
        test = test.map(_pair, remove_columns=test.column_names)
        source = f"the export's `{config['test_split']}` split"
    else:
        parts = train.train_test_split(test_size=config["test_fraction"], seed=config["seed"])
        train, test = parts["train"], parts["test"]
        source = f"{config['test_fraction']:.0%} of `{config['train_split']}` held out (seed {config['seed']})"
    return train.select_columns(keep), test.select_columns(keep), source


# --- model -------------------------------------------------------------------------------------------------------
def load_model(config: dict[str, Any], token: str | None) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = {"gguf_file": config["gguf_file"]} if config.get("gguf_file") else {}
    tokenizer = AutoTokenizer.from_pretrained(config["base_model"], token=token, **extra)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(config["base_model"], token=token, dtype=dtype, **extra)
    if extra:  # transformers dequantises a GGUF but marks the model quantized (not trainable): copy it to a plain one
        settings = model.config.to_dict()
        settings.pop("quantization_config", None)
        plain = AutoModelForCausalLM.from_config(type(model.config).from_dict(settings), dtype=dtype)
        plain.load_state_dict(model.state_dict())
        model = plain
    return model, tokenizer


def completion_logprobs(model: Any, tokenizer: Any, pairs: Any, max_length: int) -> list[tuple[float, float]]:
    """(log p(chosen | prompt), log p(rejected | prompt)) per pair: the sums over the answer's tokens."""
    import torch
    from trl.data_utils import maybe_apply_chat_template

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[tuple[float, float]] = []
    with torch.no_grad():
        for row in pairs:
            text = maybe_apply_chat_template(dict(row), tokenizer)
            prompt_ids = tokenizer(text["prompt"], add_special_tokens=False)["input_ids"][-(max_length // 2) :]
            scores = []
            for key in ("chosen", "rejected"):
                answer = tokenizer(text[key], add_special_tokens=False)["input_ids"]
                answer = answer[: max(max_length - len(prompt_ids), 1)]
                ids = torch.tensor([prompt_ids + answer], device=device)
                logits = model(input_ids=ids).logits[0, :-1].float()
                logp = torch.log_softmax(logits, dim=-1).gather(1, ids[0, 1:, None])[:, 0]
                scores.append(float(logp[len(prompt_ids) - 1 :].sum()))
            out.append((scores[0], scores[1]))
    if was_training:
        model.train()
    return out


def progress_callback(total_steps: int) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            numbers = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float)) and math.isfinite(v)}
            emit("log", step=state.global_step, total_steps=state.max_steps or total_steps, **numbers)

    return Progress()


def train(config: dict[str, Any], model: Any, tokenizer: Any, train_pairs: Any, max_steps: int, output_dir: str):
    import torch

    on_gpu = torch.cuda.is_available()
    common = {
        "output_dir": output_dir,
        "beta": config["beta"],
        "learning_rate": config["learning_rate"],
        "num_train_epochs": config["epochs"],
        "max_length": config["max_length"],
        "per_device_train_batch_size": config["batch_size"],
        "gradient_accumulation_steps": config["gradient_accumulation"],
        "max_steps": max_steps if max_steps > 0 else -1,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "bf16": on_gpu and torch.cuda.is_bf16_supported(),
        "gradient_checkpointing": on_gpu,
        "use_cpu": not on_gpu,
        "seed": config["seed"],
    }
    peft_config = None
    if config["lora"]:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=config["lora_r"],
            lora_alpha=config["lora_alpha"],
            lora_dropout=0.05,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    if config["method"] == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        trainer_cls, args = ORPOTrainer, ORPOConfig(**common)
    else:
        from trl import DPOConfig, DPOTrainer

        trainer_cls, args = DPOTrainer, DPOConfig(**common)
    steps_per_epoch = math.ceil(len(train_pairs) / (config["batch_size"] * config["gradient_accumulation"]))
    total = max_steps if max_steps > 0 else math.ceil(steps_per_epoch * config["epochs"])
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train_pairs,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[progress_callback(total)],
    )
    emit("train", total_steps=total, train_pairs=len(train_pairs), device="cuda" if on_gpu else "cpu")
    started = time.monotonic()
    output = trainer.train()
    seconds = time.monotonic() - started
    steps = trainer.state.global_step
    emit("trained", steps=steps, seconds=round(seconds, 2), seconds_per_step=round(seconds / max(steps, 1), 3))
    return trainer.model, {"steps": steps, "train_loss": output.training_loss, "seconds": seconds}


def push(config: dict[str, Any], model: Any, tokenizer: Any, card: str, folder: Path, token: str | None) -> str:
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(config["output_repo"], private=config["private"], exist_ok=True, repo_type="model")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text(card, encoding="utf-8")
    (folder / "train.py").write_text(Path(__file__).read_text(encoding="utf-8"), encoding="utf-8")
    api.upload_folder(
        folder_path=str(folder),
        repo_id=config["output_repo"],
        repo_type="model",
        commit_message=f"{config['method'].upper()} on {config['dataset']} (DPO Studio)",
    )
    return str(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many optimiser steps")
    parser.add_argument("--no-push", action="store_true", help="keep the model on disk; do not push it")
    parser.add_argument("--output-dir", default="dpo-studio-train", help="where checkpoints and the model go")
    opts = parser.parse_args(argv)
    config = dict(CONFIG)
    token = os.environ.get("HF_TOKEN") or None
    if not token:
        from huggingface_hub import get_token

        token = get_token()
    push_model = bool(config["output_repo"]) and not opts.no_push
    if push_model and not token:
        print("error: pushing the model needs a token: set HF_TOKEN (or pass --no-push)", file=sys.stderr)
        return 2
    emit("start", method=config["method"], base_model=config["base_model"], dataset=config["dataset"])
    train_pairs, test_pairs, test_source = load_pairs(config, token)
    test_pairs = test_pairs.select(range(min(len(test_pairs), config["eval_limit"])))
    model, tokenizer = load_model(config, token)
    emit("data", train_pairs=len(train_pairs), test_pairs=len(test_pairs), test_source=test_source)
    before = completion_logprobs(model, tokenizer, test_pairs, config["max_length"]) if len(test_pairs) else []
    model, stats = train(config, model, tokenizer, train_pairs, opts.max_steps, opts.output_dir)
    after = completion_logprobs(model, tokenizer, test_pairs, config["max_length"]) if len(test_pairs) else []
    result: dict[str, Any] = {
        "steps": stats["steps"],
        "train_pairs": len(train_pairs),
        "train_loss": stats["train_loss"],
        "test_source": test_source,
        "figures": figures(before, after, config["beta"]) if before else {},
    }
    emit("eval", **result)
    card = model_card(config, result)
    folder = Path(opts.output_dir) / "final"
    folder.mkdir(parents=True, exist_ok=True)
    if push_model:
        url = push(config, model, tokenizer, card, folder, token)
        emit("pushed", url=url, repo=config["output_repo"])
    else:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        (folder / "README.md").write_text(card, encoding="utf-8")
        emit("saved", path=str(folder.resolve()))
    emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
