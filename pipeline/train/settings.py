"""Train, the settings: :class:`TrainSettings` (what one training run does, every default once, TRL's where TRL has
one), the suggested base model, the default name of the model repo, and the training script written from them.

The script is :mod:`pipeline.train.trl_script` with its ``CONFIG`` block replaced by the settings
(:func:`render_script`): one self-contained file with PEP 723 inline dependencies that ``uv run`` runs anywhere,
locally or on HF Jobs. Nothing here touches the network.
"""

from __future__ import annotations

import dataclasses
import pprint
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

METHOD_DPO: Final = "dpo"
METHOD_ORPO: Final = "orpo"
METHODS: Final = (METHOD_DPO, METHOD_ORPO)
METHOD_LABELS: Final = {
    METHOD_DPO: "DPO (needs a reference model: with LoRA the base model itself)",
    METHOD_ORPO: "ORPO (no reference model; also learns the chosen answers)",
}
# TRL's DPOConfig/ORPOConfig defaults (trl 1.13): beta 0.1, learning rate 1e-6, 3 epochs, max_length 1024. TRL's
# learning rate is for full fine-tuning; a LoRA adapter needs a larger one (the alignment handbook's QLoRA DPO
# recipe uses 5e-6).
LR_FULL: Final = 1e-6
LR_LORA: Final = 5e-6

# (largest number of training pairs, model, why): the smallest multilingual model that makes sense for a dataset of
# that size. Qwen3 covers 119 languages; every suggestion is editable.
BASE_MODELS: Final = (
    (2_000, "Qwen/Qwen3-0.6B", "small and multilingual (119 languages): a quick, cheap first run"),
    (20_000, "Qwen/Qwen3-1.7B", "multilingual (119 languages), enough capacity for a few thousand pairs"),
    (None, "Qwen/Qwen3-4B", "multilingual (119 languages), for a large preference set"),
)
_SCRIPT: Final = Path(__file__).with_name("trl_script.py")
_CONFIG_BLOCK: Final = re.compile(r"(# --- CONFIG \(written by DPO Studio\) ---\n).*?(# --- END CONFIG ---)", re.S)


class TrainError(Exception):
    """A setting or a request the user can fix; ``str(err)`` says what to do."""


def suggest_base_model(pairs: int | None) -> tuple[str, str]:
    """(model id, why) for a dataset of ``pairs`` training pairs (None: unknown, the smallest).

    >>> suggest_base_model(500)[0], suggest_base_model(5_000)[0], suggest_base_model(50_000)[0]
    ('Qwen/Qwen3-0.6B', 'Qwen/Qwen3-1.7B', 'Qwen/Qwen3-4B')
    """
    for limit, model, why in BASE_MODELS:
        if limit is None or pairs is None or pairs <= limit:
            return model, why
    return BASE_MODELS[-1][1], BASE_MODELS[-1][2]  # pragma: no cover - the last entry has no limit


def default_output_repo(namespace: str, dataset: str, base_model: str, method: str) -> str:
    """``namespace/<base model>-<dataset>-<method>``, within the Hub's 96 characters.

    >>> default_output_repo("alice", "alice/aya-dutch-dpo", "Qwen/Qwen3-0.6B", "dpo")
    'alice/Qwen3-0.6B-aya-dutch-dpo'
    >>> default_output_repo("alice", "alice/nld-prefs", "Qwen/Qwen3-0.6B", "orpo")
    'alice/Qwen3-0.6B-nld-prefs-orpo'
    """
    model = base_model.split("/")[-1]
    data = dataset.split("/")[-1]
    name = f"{model}-{data}" if data.endswith(f"-{method}") else f"{model}-{data}-{method}"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
    name = re.sub(r"-{2,}", "-", name).strip("-.")[:96].rstrip("-.")
    return f"{namespace}/{name}"


@dataclass(frozen=True)
class TrainSettings:
    """One training run. ``learning_rate`` None means the default for the kind of fine-tuning (:data:`LR_LORA` or
    :data:`LR_FULL`). ``gguf_file``: load the base model from this GGUF file of its repo (dequantised by
    transformers). ``output_repo`` "" trains without pushing."""

    dataset: str
    base_model: str
    output_repo: str = ""
    method: str = METHOD_DPO
    lora: bool = True
    beta: float = 0.1
    learning_rate: float | None = None
    epochs: float = 3.0
    max_length: int = 1024
    batch_size: int = 2
    gradient_accumulation: int = 4
    lora_r: int = 16
    lora_alpha: int = 32
    seed: int = 42
    train_split: str = "train"
    test_split: str = "test"
    test_fraction: float = 0.1
    eval_limit: int = 500
    gguf_file: str = ""
    private: bool = True
    language: str = ""

    @property
    def lr(self) -> float:
        """The learning rate the run uses."""
        if self.learning_rate:
            return float(self.learning_rate)
        return LR_LORA if self.lora else LR_FULL

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.gradient_accumulation

    def check(self) -> TrainSettings:
        """Self, or TrainError naming the first setting that cannot work."""
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", self.dataset or ""):
            raise TrainError(f"'{self.dataset}' is not a dataset id: use 'owner/name' (the export you pushed).")
        if not (self.base_model or "").strip():
            raise TrainError("Choose a base model (a model id on the Hub, e.g. Qwen/Qwen3-0.6B).")
        if self.method not in METHODS:
            raise TrainError(f"Unknown method {self.method!r}: use {' or '.join(METHODS)}.")
        if self.output_repo and not re.fullmatch(r"[\w.-]+/[\w.-]+", self.output_repo):
            raise TrainError(f"'{self.output_repo}' is not a model repo id: use 'owner/name'.")
        checks = (
            (self.beta > 0, "beta must be above 0 (TRL's default: 0.1)."),
            (self.lr > 0, "The learning rate must be above 0."),
            (self.epochs > 0, "Train for more than 0 epochs."),
            (self.max_length >= 16, "The maximum length must be at least 16 tokens."),
            (self.batch_size >= 1 and self.gradient_accumulation >= 1, "Batch size and accumulation must be ≥ 1."),
            (0 < self.test_fraction < 1, "The held-out fraction must be between 0 and 1."),
        )
        for ok, message in checks:
            if not ok:
                raise TrainError(message)
        return self

    def to_config(self) -> dict[str, Any]:
        """The script's ``CONFIG`` (the keys of :data:`pipeline.train.trl_script.CONFIG`)."""
        values = dataclasses.asdict(self)
        values["learning_rate"] = self.lr
        return values

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainSettings:
        """From a tab's or the CLI's values by field name (None or missing: the default); TrainError for a value of
        the wrong kind."""
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = values.get(f.name)
            if value is None or (isinstance(value, str) and not value.strip() and f.type != "str"):
                continue
            try:
                if f.type == "bool":
                    kwargs[f.name] = bool(value)
                elif f.type == "int":
                    kwargs[f.name] = int(value)
                elif f.type in ("float", "float | None"):
                    kwargs[f.name] = float(value)
                else:
                    kwargs[f.name] = str(value).strip()
            except (TypeError, ValueError):
                raise TrainError(f"{f.name.replace('_', ' ')}: {value!r} is not a valid value.")
        if "dataset" not in kwargs or "base_model" not in kwargs:
            raise TrainError("Choose the dataset (a pushed export) and the base model.")
        return cls(**kwargs)


def render_script(settings: TrainSettings) -> str:
    """The training script for ``settings``: :mod:`pipeline.train.trl_script` with its ``CONFIG`` filled in."""
    config = pprint.pformat(settings.check().to_config(), sort_dicts=False, width=100)
    source = _SCRIPT.read_text(encoding="utf-8")
    rendered, count = _CONFIG_BLOCK.subn(
        lambda m: f"{m.group(1)}CONFIG: dict[str, Any] = {config}\n{m.group(2)}", source
    )
    if count != 1:  # pragma: no cover - the template's markers are part of this package
        raise RuntimeError("trl_script.py lost its CONFIG markers")
    return rendered
