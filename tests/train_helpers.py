"""Shared by the Train tests: a small export made by the pipeline whose preference is learnable, pushed to the fake
Hub; the script's output lines for a fake job; the training venv (scripts/services.sh)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from pipeline import export as ex
from pipeline.train.trl_script import EVENT_PREFIX, figures
from tests.conftest import SERVICES
from tests.test_export import raw_row

TRAIN_PYTHON = SERVICES / "train-venv" / "bin" / "python"
FRUIT = "appel peer banaan kers druif citroen mango pruim".split()
VEHICLES = "auto fiets trein boot bus tram vliegtuig wagen".split()


def learnable_raw_rows(n: int, seed: int = 7) -> list[dict]:
    """Raw pipeline rows whose better-rated answer names five fruits and whose worse one five vehicles (new words
    in a new order every time), so the preference generalises to held-out prompts."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        fruit, vehicles = " ".join(rng.sample(FRUIT, 5)), " ".join(rng.sample(VEHICLES, 5))
        responses, ratings = ([fruit, vehicles], [5, 1]) if i % 2 else ([vehicles, fruit], [1, 5])
        rows.append(raw_row(f"r{i}", responses, ratings, prompt=f"Noem vijf dingen, nummer {i}."))
    return rows


def push_export(repo_id: str, token: str, *, train: int = 64, test: int = 32, fmt: str = "standard") -> ex.ExportResult:
    """Build an export of ``train + test`` learnable pairs with the Export step (``test`` prompts held out) and push
    it (public) with its card."""
    import pyarrow as pa

    raw = pa.Table.from_pylist(learnable_raw_rows(train + test))
    result = ex.build_export(raw, None, ex.ExportRules(), fmt, test_size=test, seed=1)
    ex.push_export(result, repo_id, token, private=False)
    return result


def event(name: str, **data) -> str:
    return EVENT_PREFIX + json.dumps({"event": name, **data})


def script_output(model_url: str) -> list[str]:
    """What the training script prints (its records, with a progress bar and a warning in between)."""
    f = figures([(-9.0, -4.0), (-8.0, -7.5), (-3.0, -6.0)], [(-3.0, -6.0), (-5.0, -9.0), (-2.0, -8.0)], beta=0.1)
    return [
        "Installed 61 packages in 2.1s",
        event("start", method="dpo", base_model="Qwen/Qwen3-0.6B", dataset="d"),
        event("data", train_pairs=64, test_pairs=32, test_source="the export's `test` split"),
        event("train", total_steps=24, train_pairs=64, device="cuda"),
        " 4%|4         | 1/24 [00:01<00:30] " + event("log", step=1, total_steps=24, loss=0.6931),
        "UserWarning: something harmless",
        event("log", step=24, total_steps=24, loss=0.2137),
        event("trained", steps=24, seconds=30.0, seconds_per_step=1.25),
        event("eval", steps=24, train_pairs=64, test_source="test", figures=f),
        event("pushed", url=model_url, repo="x"),
        event("done"),
    ]


def have_train_venv() -> bool:
    return Path(TRAIN_PYTHON).exists() and (SERVICES / "train-venv" / ".stamp").exists()
