"""Step 6, Train: from a pushed export to a trained model, with TRL's DPO or ORPO, on HF Jobs or here.

One job per module; this package re-exports the step's public API (``from pipeline import train``):

- :mod:`pipeline.train.settings`: :class:`TrainSettings` (every default once), the suggested base model, the model
  repo's default name, and :func:`render_script` (the training script for the settings).
- :mod:`pipeline.train.trl_script`: the training script itself (PEP 723 inline dependencies; TRL, PEFT,
  transformers, datasets), also importable here without them: load the export, evaluate, train, evaluate, push the
  model or adapter with its card.
- :mod:`pipeline.train.progress`: the script's progress and evaluation :class:`Figures`, read from its output.
- :mod:`pipeline.train.estimate`: hardware flavours with prices, and the time and cost range of a run.
- :mod:`pipeline.train.jobs`: the only module that talks to HF Jobs (hardware, launch, status, logs, metrics,
  cancel).
- :mod:`pipeline.train.workflow`: the steps the tab and the CLI both run (read the export, plan, launch, run here).

Nothing here imports Gradio or the training libraries; the script imports those when it runs.
"""

from pipeline.train.estimate import Estimate, Flavor, default_flavor, estimate, params_from_name
from pipeline.train.jobs import (
    PAID_ACCOUNT,
    JobRef,
    JobsError,
    JobView,
    cancel,
    find_latest,
    list_flavors,
    payment_note,
    view,
)
from pipeline.train.progress import Figures, TrainProgress
from pipeline.train.settings import (
    LR_FULL,
    LR_LORA,
    METHOD_DPO,
    METHOD_LABELS,
    METHOD_ORPO,
    METHODS,
    TrainError,
    TrainSettings,
    default_output_repo,
    render_script,
    suggest_base_model,
)
from pipeline.train.workflow import ExportFacts, TrainPlan, launch, plan, read_export, run_local

__all__ = [
    "LR_FULL",
    "LR_LORA",
    "METHODS",
    "METHOD_DPO",
    "METHOD_LABELS",
    "METHOD_ORPO",
    "PAID_ACCOUNT",
    "Estimate",
    "ExportFacts",
    "Figures",
    "Flavor",
    "JobRef",
    "JobView",
    "JobsError",
    "TrainError",
    "TrainPlan",
    "TrainProgress",
    "TrainSettings",
    "cancel",
    "default_flavor",
    "default_output_repo",
    "estimate",
    "find_latest",
    "launch",
    "list_flavors",
    "params_from_name",
    "payment_note",
    "plan",
    "read_export",
    "render_script",
    "run_local",
    "suggest_base_model",
    "view",
]
