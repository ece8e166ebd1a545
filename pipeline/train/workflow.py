"""Train, the steps as the tab and the CLI both run them: read the export (:func:`read_export`), plan the run
(:func:`plan`: settings checked, the script, the hardware and the estimate), then launch it on HF Jobs
(:func:`launch`) or run it here (:func:`run_local`).

The export is read through :mod:`pipeline.hub` (its ``train`` split, and ``test`` when there is one); HF Jobs through
:mod:`pipeline.train.jobs`. Tokens are passed to each call, never stored; a local run gets the token in its
environment (``HF_TOKEN``), never on its command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pipeline.train.jobs as jobs
from pipeline.core import hub, languages
from pipeline.train.estimate import Estimate, Flavor, count_tokens, default_flavor, estimate, params_from_name
from pipeline.train.progress import TrainProgress
from pipeline.train.settings import TrainError, TrainSettings, default_output_repo, render_script

REQUIRED_COLUMNS = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class ExportFacts:
    """What the training needs to know about a pushed export before it starts."""

    dataset: str
    train_pairs: int
    test_pairs: int  # 0: no test split (the script holds out a fraction of train)
    tokens: int  # approximate tokens of one pass over the train split (see estimate.count_tokens)
    eval_tokens: int
    language: str  # the Hub tag of the export's target language ("" when unknown)


@dataclass(frozen=True)
class TrainPlan:
    """A run ready to start: the settings, the script written from them, and on HF Jobs the flavour and estimate."""

    settings: TrainSettings
    script: str
    facts: ExportFacts
    flavor: Flavor | None = None
    estimate: Estimate | None = None


def read_export(dataset: str, token: str | None) -> ExportFacts:
    """Facts about a pushed export (HubError when it cannot be read; TrainError when it is not preference pairs)."""
    dataset = hub.validate_repo_id(dataset)
    train = hub.load_dataset_table(dataset, "train", token)
    missing = [c for c in REQUIRED_COLUMNS if c not in train.column_names]
    if missing:
        raise TrainError(
            f"'{dataset}' is not a preference dataset: it lacks {', '.join(missing)}. Train on an export pushed by "
            "the Export step (prompt, chosen, rejected)."
        )
    if train.num_rows == 0:
        raise TrainError(f"'{dataset}' has no training pairs.")
    try:
        test = hub.load_dataset_table(dataset, "test", token)
    except hub.HubError:
        test = None
    language = ""
    if "target_language" in train.column_names:
        codes = {c for c in train.column("target_language").to_pylist()[:1000] if c}
        language = languages.hub_tag(codes.pop()) if len(codes) == 1 else ""
    rows = train.select(list(REQUIRED_COLUMNS)).to_pylist()
    eval_rows = test.select(list(REQUIRED_COLUMNS)).slice(0, 500).to_pylist() if test is not None else []
    return ExportFacts(
        dataset=dataset,
        train_pairs=train.num_rows,
        test_pairs=test.num_rows if test is not None else 0,
        tokens=count_tokens(rows),
        eval_tokens=count_tokens(eval_rows),
        language=language,
    )


def plan(
    settings: TrainSettings,
    facts: ExportFacts,
    *,
    namespace: str = "",
    flavors: Sequence[Flavor] = (),
    flavor: str = "",
) -> TrainPlan:
    """Check ``settings``, fill the model repo name (``namespace``/…) and the language when left empty, write the
    script, and (given HF Jobs' ``flavors``) pick ``flavor`` or the default one and estimate the run on it."""
    if not settings.output_repo and namespace:
        settings = replace(
            settings,
            output_repo=default_output_repo(namespace, settings.dataset, settings.base_model, settings.method),
        )
    if not settings.language and facts.language:
        settings = replace(settings, language=facts.language)
    script = render_script(settings)
    chosen: Flavor | None = None
    if flavors:
        params = params_from_name(settings.base_model)
        by_name = {f.name: f for f in flavors}
        if flavor and flavor not in by_name:
            raise TrainError(f"Unknown hardware flavour {flavor!r}: choose one of {', '.join(by_name)}.")
        chosen = by_name[flavor] if flavor else default_flavor(flavors, params, settings.lora)
    est = None
    if chosen is not None:
        est = estimate(
            facts.tokens,
            settings.epochs,
            params_from_name(settings.base_model),
            settings.method,
            settings.lora,
            chosen,
            eval_tokens=facts.eval_tokens,
        )
    return TrainPlan(settings, script, facts, chosen, est)


def launch(train_plan: TrainPlan, token: str | None, timeout: str = "8h") -> jobs.JobRef:
    """Start the planned run on HF Jobs, in the namespace of the model repo (checked writable first); the job
    stops after ``timeout`` ("90m", "8h")."""
    settings = train_plan.settings
    if not token:
        raise jobs.JobsError("Sign in with Hugging Face to run the training on HF Jobs.")
    if train_plan.flavor is None:
        raise TrainError("Choose the hardware for the job.")
    if not settings.output_repo:
        raise TrainError("Name the model repo the job pushes to (owner/name).")
    hub.check_writable(settings.output_repo, token)
    namespace = settings.output_repo.split("/")[0]
    return jobs.launch(
        train_plan.script,
        token=token,
        flavor=train_plan.flavor.name,
        output_repo=settings.output_repo,
        namespace=namespace,
        timeout=timeout,
    )


def local_command(script_path: Path, python: str = "") -> list[str]:
    """How to run the script here: with ``python`` when given (an environment that has the dependencies), else
    ``uv run`` (installs the script's inline dependencies), else this Python."""
    if python:
        return [python, str(script_path)]
    uv = shutil.which("uv")
    return [uv, "run", str(script_path)] if uv else [sys.executable, str(script_path)]


def run_local(
    train_plan: TrainPlan,
    token: str | None,
    *,
    python: str = "",
    args: Sequence[str] = (),
    on_line: Callable[[str], None] = lambda line: None,
    workdir: Path | None = None,
) -> tuple[int, TrainProgress, list[str]]:
    """Run the script here (CPU or GPU, whatever torch finds); ``on_line`` gets every line of its output as it
    comes. Returns (exit code, the progress read from the output, the last 50 lines)."""
    folder = Path(workdir or tempfile.mkdtemp(prefix="dpo-studio-train-"))
    folder.mkdir(parents=True, exist_ok=True)
    script_path = folder / "train.py"
    script_path.write_text(train_plan.script, encoding="utf-8")
    env = dict(os.environ)
    if token:
        env["HF_TOKEN"] = token
    env.setdefault("PYTHONUNBUFFERED", "1")
    command = [*local_command(script_path, python), "--output-dir", str(folder / "output"), *args]
    progress = TrainProgress()
    tail: list[str] = []
    proc = subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            for line in raw.rstrip("\n").split("\r"):
                if not line.strip():
                    continue
                progress.feed(line)
                tail = [*tail[-49:], line]
                on_line(line)
        code = proc.wait()
    except BaseException:
        proc.terminate()
        proc.wait(timeout=30)
        raise
    return code, progress, tail
