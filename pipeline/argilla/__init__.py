"""Step 4, Argilla: the only package that talks to Argilla (SDK ``argilla`` 2.8). This file is its public facade
(``from pipeline import argilla as aio``); each job has its own module:

- :mod:`~pipeline.argilla.connection`: bounded-time connection checks, the client, workspaces, :class:`ArgillaIOError`;
- :mod:`~pipeline.argilla.layout`: the dataset's fields, questions, metadata and guidelines (``guidelines.md``);
- :mod:`~pipeline.argilla.records`: records with shuffled responses and ids from the rows, answers read back;
- :mod:`~pipeline.argilla.push`: append-only sends;
- :mod:`~pipeline.argilla.pull`: the annotators' answers, aggregated;
- :mod:`~pipeline.argilla.progress`: how far each dataset has come (answers per record and annotator, agreement);
- :mod:`~pipeline.argilla.space`: an Argilla Space on the Hub, created from Argilla's template and followed.

(The functions :func:`push` and :func:`pull` re-exported here shadow their modules' names on the package; import
the modules themselves as ``from pipeline.argilla.push import ...`` when you need more than the function.)
"""

from __future__ import annotations

from typing import Final

from pipeline.argilla.connection import (
    CONNECT_TIMEOUT,
    ENV_KEY,
    ENV_URL,
    PROBE_DEADLINE,
    READ_TIMEOUT,
    ArgillaIOError,
    Connection,
    connect,
    dataset_url,
    env_key_set,
    env_url,
    list_workspaces,
    normalize_url,
    resolve_credentials,
)
from pipeline.argilla.layout import (
    GUIDELINES_MAX_CHARS,
    GUIDELINES_TEMPLATE,
    IMPROVED_QUESTION,
    MAX_RESPONSES,
    MIN_RESPONSES,
    PREFERENCE_QUESTION,
    PROMPT_FIELD,
    TIE_LABEL,
    build_settings,
    default_dataset_name,
    guidelines_languages,
    guidelines_path,
    guidelines_template,
    rating_question,
    render_guidelines,
    response_field,
    source_key,
)
from pipeline.argilla.progress import DatasetProgress, workspace_progress
from pipeline.argilla.pull import PullResult, pull
from pipeline.argilla.push import BATCH_SIZE, PushResult, push
from pipeline.argilla.records import (
    LIST_BATCH,
    SKIP_DUPLICATE,
    SKIP_FEW_RESPONSES,
    SKIP_NO_ID,
    Plan,
    PlannedRecord,
    ProgressFn,
    plan_records,
    record_answers,
    response_order,
)
from pipeline.core import schema

EXTRA_ANNOTATION_COLUMNS: Final = schema.EXTRA_ANNOTATION_COLUMNS  # judge_ratings, judge_preference, n_discarded

__all__ = [
    "BATCH_SIZE",
    "CONNECT_TIMEOUT",
    "ENV_KEY",
    "ENV_URL",
    "EXTRA_ANNOTATION_COLUMNS",
    "GUIDELINES_MAX_CHARS",
    "GUIDELINES_TEMPLATE",
    "IMPROVED_QUESTION",
    "LIST_BATCH",
    "MAX_RESPONSES",
    "MIN_RESPONSES",
    "PREFERENCE_QUESTION",
    "PROBE_DEADLINE",
    "PROMPT_FIELD",
    "READ_TIMEOUT",
    "SKIP_DUPLICATE",
    "SKIP_FEW_RESPONSES",
    "SKIP_NO_ID",
    "TIE_LABEL",
    "ArgillaIOError",
    "Connection",
    "DatasetProgress",
    "Plan",
    "PlannedRecord",
    "ProgressFn",
    "PullResult",
    "PushResult",
    "build_settings",
    "connect",
    "dataset_url",
    "default_dataset_name",
    "env_key_set",
    "env_url",
    "guidelines_languages",
    "guidelines_path",
    "guidelines_template",
    "list_workspaces",
    "normalize_url",
    "plan_records",
    "pull",
    "push",
    "rating_question",
    "record_answers",
    "render_guidelines",
    "resolve_credentials",
    "response_field",
    "response_order",
    "source_key",
    "workspace_progress",
]
