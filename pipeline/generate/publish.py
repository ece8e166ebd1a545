"""What a run puts on the Hub: the raw dataset with its card, ``pipeline.py`` and ``dpo_studio.json``
(:func:`push_raw`), and the checkpoints of a run in progress (:func:`hub_checkpoints`: refuse a dataset that is
not this run's checkpoint, restore the finished rows from it when the local checkpoint is missing, and push the
results so far every N rows).

Every Hub call goes through :mod:`pipeline.core.hub`, which raises ``hub.HubError`` with a message for the user.
The token is passed, used in the calling thread (or kept inside the pusher's closure, in the run's thread), never
stored or written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from pipeline.core import hub, schema
from pipeline.core.schema import RunMeta
from pipeline.generate.card import render_raw_card
from pipeline.generate.checkpoint import Checkpoint
from pipeline.generate.meta import tag_raw, with_results
from pipeline.generate.recipe import render_pipeline_script


def push_raw(
    raw: pa.Table, meta: RunMeta, repo_id: str, token: str | None, *, private: bool = True, overwrite: bool = False
) -> str:
    """Push the raw table to ``repo_id`` with its card, ``pipeline.py`` and ``dpo_studio.json`` (the metadata,
    also in the Parquet file's schema metadata).

    Raises ``pipeline.core.hub.HubError`` with a message for the user. Returns the dataset URL.
    """
    if raw is None or raw.num_rows == 0:
        raise hub.HubError("There are no results to push yet: run the pipeline first.")
    raw = schema.conform_raw(raw).select(list(schema.RAW_COLUMNS))
    meta = with_results(meta, raw, checkpoint=False)
    return hub.push_dataset(
        tag_raw(raw, meta),
        repo_id,
        token,
        private=private,
        card=render_raw_card(meta, raw),
        overwrite=overwrite,
        extra_files={
            "pipeline.py": render_pipeline_script(meta, data=hub.validate_repo_id(repo_id)),
            "dpo_studio.json": meta.to_json(),
        },
        commit_message=f"Raw generations ({raw.num_rows} rows) with DPO Studio",
    )


CHECKPOINT_MARKER = "dpo_studio.json"


def checkpoint_repo_state(repo_id: str, token: str | None, fingerprint: str) -> str:
    """``"absent"``, ``"ours"`` (a checkpoint of a run with these settings) or ``"other"`` (anything else).

    A run never overwrites a dataset that is not its own checkpoint. Raises ``hub.HubError``.
    """
    if not hub.repo_exists(repo_id, token):
        return "absent"
    try:
        meta = RunMeta.from_json(hub.download_file(repo_id, CHECKPOINT_MARKER, token))
    except (hub.HubError, schema.MetaError):
        return "other"
    return "ours" if meta.fingerprint == fingerprint else "other"


def restore_checkpoint(repo_id: str, token: str | None, checkpoint: Checkpoint) -> int:
    """Copy a Hub checkpoint into the local ``checkpoint``; returns its rows."""
    table = hub.load_dataset_table(repo_id, "train", token)
    missing = [c for c in schema.RAW_COLUMNS if c not in table.column_names and c not in schema.JUDGE_COLUMNS]
    if missing:
        raise hub.HubError(f"'{repo_id}' is not a DPO Studio raw dataset (missing {', '.join(missing)}).")
    checkpoint.write_table(table)
    return table.num_rows


def checkpoint_pusher(meta: RunMeta, repo_id: str, token: str | None) -> Callable[[Any], None]:
    """A callable for ``generate.execute(on_checkpoint=...)`` that pushes the results so far to ``repo_id``
    (private, replacing the previous checkpoint). The token stays inside the closure, in the run's thread."""

    def push(handle: Any) -> None:
        table = handle.table()
        if table.num_rows == 0:
            return
        snapshot = with_results(meta, table, fingerprint=handle.settings.fingerprint(), checkpoint=True)
        hub.push_dataset(
            tag_raw(table, snapshot),
            repo_id,
            token,
            private=True,
            overwrite=True,
            card=render_raw_card(snapshot, table).replace(
                "\n# ",
                "\n> **Checkpoint of a run in progress** (DPO Studio pushes the results so far every few "
                "rows; the final push replaces it).\n\n# ",
                1,
            ),
            extra_files={CHECKPOINT_MARKER: snapshot.to_json()},
            commit_message=f"Checkpoint: {table.num_rows} rows",
        )

    return push


def hub_checkpoints(
    meta: RunMeta, repo_id: str, token: str | None, checkpoint: Checkpoint, *, restart: bool = False, every: int = 100
) -> tuple[Callable[[Any], None], list[str]]:
    """Prepare Hub checkpoints of a run into the private dataset ``repo_id``: (the pusher for
    ``execute(on_checkpoint=...)``, notes for the user).

    Refuses (``hub.HubError``) without a token, or when ``repo_id`` exists and is not a checkpoint of this run
    (``meta.fingerprint``); restores the finished rows from it when the local ``checkpoint`` is missing (a restarted
    Space, another machine) and the run is not started over; checks a new dataset can be written."""
    if not token:
        raise hub.HubError(hub.SIGN_IN_TO_PUSH)
    repo_id = hub.validate_repo_id(repo_id)
    notes: list[str] = []
    state = checkpoint_repo_state(repo_id, token, meta.fingerprint)
    if state == "other":
        raise hub.HubError(
            f"'{repo_id}' already exists and is not a checkpoint of this run: choose another "
            "dataset name for the checkpoints."
        )
    if state == "ours" and not restart and not checkpoint.exists():
        restored = restore_checkpoint(repo_id, token, checkpoint)
        notes.append(f"Restored {restored} finished rows from your Hub checkpoint {repo_id}.")
    if state == "absent":
        hub.check_writable(repo_id, token)
    notes.append(f"Checkpoints go to the private dataset {repo_id} every {every} rows.")
    return checkpoint_pusher(meta, repo_id, token), notes
