"""Sending raw results to Argilla, append-only.

Sending twice never duplicates: rows whose id is already in the dataset are left untouched (their answers are
kept), only new rows are added. An existing dataset is reused only when its fields, questions and metadata are the
ones of :mod:`pipeline.argilla.layout` (guidelines, titles and the task distribution may have been edited in
Argilla); otherwise the send stops with a message. Nothing is ever deleted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from pipeline.argilla.connection import ArgillaIOError, Connection, dataset_url, describe, find_dataset, find_workspace
from pipeline.argilla.layout import (
    GUIDELINES_MAX_CHARS,
    MAX_RESPONSES,
    MIN_RESPONSES,
    build_settings,
    render_guidelines,
    signature,
    slots_of,
)
from pipeline.argilla.records import ProgressFn, existing_ids, plan_records, rows_of, to_rg_record
from pipeline.core import languages

BATCH_SIZE: Final = 200


@dataclass
class PushResult:
    dataset: str
    workspace: str
    url: str
    created: bool  # True when the dataset was made by this call
    added: int  # records sent now
    already_there: int  # rows whose id was already in the dataset (left untouched)
    skipped: dict[str, int]
    truncated: int
    total: int  # records in the dataset after the send
    n_slots: int

    def summary(self) -> str:
        parts = [
            f"{'Created' if self.created else 'Updated'} dataset {self.dataset!r} in workspace {self.workspace!r}: "
            f"{self.added} new record(s), {self.already_there} already there (left as they were), "
            f"{self.total} in total."
        ]
        if not self.created:
            parts.append("Its settings and guidelines were not changed (edit them in Argilla).")
        if self.skipped:
            parts.append("Not sent: " + "; ".join(f"{n} × {why}" for why, n in self.skipped.items()) + ".")
        if self.truncated:
            parts.append(
                f"{self.truncated} row(s) have more than {MAX_RESPONSES} responses: only the first {MAX_RESPONSES} "
                "were sent."
            )
        return " ".join(parts)


def push(
    conn: Connection,
    raw: Any,
    dataset: str,
    workspace: str | None = None,
    *,
    keep_order: bool = False,
    seed: int = 0,
    suggestions: bool = True,
    min_submitted: int = 1,
    guidelines: str | None = None,
    language: str | None = None,
    progress: ProgressFn | None = None,
) -> PushResult:
    """Send the raw results to ``dataset`` (created if missing; appended to if its settings match).

    ``guidelines`` defaults to the template rendered for ``language`` (default: the rows' ``target_language``).
    ``progress(done, total)`` is called after each batch. Raises :class:`ArgillaIOError` with a clear message.
    """
    import argilla as rg

    name = (dataset or "").strip()
    if not name:
        raise ArgillaIOError("Give the dataset a name.")
    if len(name) > 200:
        raise ArgillaIOError("The dataset name is too long (200 characters at most).")
    rows = rows_of(raw)
    if not rows:
        raise ArgillaIOError("There is nothing to send yet: run the pipeline first (or load its results).")
    if not conn.can_see_all_answers:
        raise ArgillaIOError(
            f"User {conn.username!r} is an {conn.role}: only owners and admins can create datasets and add records. "
            "Use an owner or admin API key."
        )
    plan = plan_records(rows, keep_order=keep_order, seed=seed, suggestions=suggestions)
    if not plan.records:
        reasons = "; ".join(f"{n} × {why}" for why, n in plan.skipped.items())
        raise ArgillaIOError(f"None of the {len(rows)} rows can be sent ({reasons}).")
    ws = find_workspace(conn, workspace)
    existing = find_dataset(conn, name, ws)
    created = False
    if existing is None:
        codes = Counter(str(r.get("target_language") or "") for r in rows)
        code = codes.most_common(1)[0][0] if codes else None
        if language is None:
            language = languages.display_name(code) if code else None
        judges = Counter(r.judge_model for r in plan.records if r.judge_model)
        text = (
            guidelines
            if guidelines and guidelines.strip()
            else render_guidelines(
                language, plan.n_slots, judges.most_common(1)[0][0] if judges else None, code=code or None
            )
        )
        settings = build_settings(plan.n_slots, text[:GUIDELINES_MAX_CHARS], min_submitted, client=conn.client)
        try:
            ds = rg.Dataset(name=name, workspace=ws, settings=settings, client=conn.client).create()
        except Exception as exc:  # noqa: BLE001
            raise ArgillaIOError(_write_error(conn, "create the dataset", exc)) from None
        created = True
        have: set[str] = set()
    else:
        ds = existing
        want = build_settings(max(slots_of(ds), MIN_RESPONSES), None, client=conn.client)
        if slots_of(ds) < MIN_RESPONSES or signature(ds.settings) != signature(want):
            raise ArgillaIOError(
                f"Dataset {name!r} already exists in workspace {ws.name!r} with other settings (it was not made by "
                "this version of DPO Studio). Nothing was changed. Choose another dataset name; DPO Studio never "
                "deletes datasets."
            )
        if slots_of(ds) < plan.n_slots:
            raise ArgillaIOError(
                f"Dataset {name!r} has room for {slots_of(ds)} responses per record, but some rows have "
                f"{plan.n_slots}. Nothing was changed. Send these rows to a new dataset name."
            )
        try:
            have = existing_ids(conn, ds)
        except Exception as exc:  # noqa: BLE001
            raise ArgillaIOError(f"Could not read the records of {name!r}: {describe(exc)}") from None
    new = [r for r in plan.records if r.id not in have]
    done = 0
    if progress:
        progress(0, len(new))
    for start in range(0, len(new), BATCH_SIZE):
        batch = new[start : start + BATCH_SIZE]
        try:
            ds.records.log([to_rg_record(r) for r in batch], batch_size=len(batch))
        except Exception as exc:  # noqa: BLE001
            raise ArgillaIOError(
                _write_error(conn, "add records", exc)
                + f" {done} of {len(new)} new records were added before the error; sending again adds the rest."
            ) from None
        done += len(batch)
        if progress:
            progress(done, len(new))
    return PushResult(
        dataset=name,
        workspace=ws.name,
        url=dataset_url(conn, ds),
        created=created,
        added=done,
        already_there=len(plan.records) - len(new),
        skipped=plan.skipped,
        truncated=plan.truncated,
        total=len(have) + done,
        n_slots=slots_of(ds),
    )


def _write_error(conn: Connection, what: str, exc: BaseException) -> str:
    text = describe(exc)
    if "forbidden" in text.lower() or "403" in text:
        return (
            f"Could not {what}: user {conn.username!r} (role {conn.role}) may not write here. Use an owner or "
            "admin API key."
        )
    return f"Could not {what}: {text}"
