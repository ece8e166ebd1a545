"""Step 3 (Pipeline), its public API in one import: settings, plan, checkpoint, run handle and executor.

The pieces live in modules of their own: :mod:`pipeline.generate.settings` (:class:`RunSettings`, every default, the
plan and estimate), :mod:`pipeline.generate.checkpoint` (the JSON Lines checkpoint and the run's row writer),
:mod:`pipeline.generate.runhandle` (progress and the run's lifecycle), :mod:`pipeline.generate.executor` (the row
pipeline: generate, judge, language check), :mod:`pipeline.generate.stops` (which errors end a run),
:mod:`pipeline.generate.results` (counts, leaderboard, plot data), :mod:`pipeline.generate.meta` (the run's
metadata), :mod:`pipeline.generate.card` (the raw card), :mod:`pipeline.generate.recipe` (the distilabel
``pipeline.py``) and :mod:`pipeline.generate.publish` (the Hub push and checkpoints). How calls are scheduled is
shared with the judge check: :mod:`pipeline.core.scheduler` and :mod:`pipeline.inference.pool`.
The app and the CLI start runs through :mod:`pipeline.workflow`, which adds Hub checkpoints and credentials.
"""

from __future__ import annotations

from pipeline.core.errors import RunError
from pipeline.core.schema import raw_schema
from pipeline.generate.checkpoint import SPACE_PERSISTENT_DIR, Checkpoint, Entry, check_checkpoint, default_data_dir
from pipeline.generate.executor import ChatFn, execute, run_async, start_run
from pipeline.generate.runhandle import (
    RUNNING_STATES,
    STATE_CANCELLED,
    STATE_DONE,
    STATE_FAILED,
    STATE_PAUSED,
    STATE_STOPPED,
    Progress,
    RunHandle,
    duration,
    prepare_run,
)
from pipeline.generate.settings import DEFAULTS, Plan, RunSettings, plan_run, replace_fields

__all__ = [
    "DEFAULTS",
    "RUNNING_STATES",
    "SPACE_PERSISTENT_DIR",
    "STATE_CANCELLED",
    "STATE_DONE",
    "STATE_FAILED",
    "STATE_PAUSED",
    "STATE_STOPPED",
    "ChatFn",
    "Checkpoint",
    "Entry",
    "Plan",
    "Progress",
    "RunError",
    "RunHandle",
    "RunSettings",
    "check_checkpoint",
    "default_data_dir",
    "duration",
    "execute",
    "plan_run",
    "prepare_run",
    "raw_schema",
    "replace_fields",
    "run_async",
    "start_run",
]
