"""Step 3 (Pipeline), its public API in one import: settings, plan, checkpoint, run handle and executor.

The pieces live in modules of their own: :mod:`pipeline.generate.settings` (:class:`RunSettings`, every default, the plan
and estimate), :mod:`pipeline.generate.checkpoint` (the JSON Lines checkpoint), :mod:`pipeline.generate.runhandle` (progress and
the run's lifecycle), :mod:`pipeline.generate.executor` (the continuous async executor) and :mod:`pipeline.core.credentials`.
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
