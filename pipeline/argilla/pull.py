"""Pulling the annotators' answers back from Argilla, aggregated per record.

Pull reads the submitted answers of every annotator (it needs an owner or admin key: Argilla does not let
annotators list other people's answers), aggregates them per record with :mod:`pipeline.judge.agreement` into
``schema.ANNOTATION_COLUMNS`` plus ``schema.EXTRA_ANNOTATION_COLUMNS`` (the judge's ratings and preference, and the
number of discards), and reports progress and judge-versus-human agreement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from pipeline.argilla.connection import ArgillaIOError, Connection, dataset_url, describe, find_dataset, find_workspace
from pipeline.argilla.layout import MIN_RESPONSES, build_settings, signature, slots_of
from pipeline.argilla.records import LIST_BATCH, ProgressFn, int_or_none, record_answers, record_models, shown_order
from pipeline.core import schema
from pipeline.judge import agreement


@dataclass
class PullResult:
    dataset: str
    workspace: str
    url: str
    table: pa.Table  # ANNOTATION_COLUMNS + EXTRA_ANNOTATION_COLUMNS, one row per record with a submitted answer
    progress: dict[str, Any]  # agreement.progress(...)
    judge_agreement: dict[str, Any]  # agreement.judge_human_agreement(...)
    rating_difference: dict[str, Any]
    annotator_agreement: dict[str, Any]
    discarded_only: int  # records that were only discarded (not in the table)
    foreign: int  # records without DPO Studio metadata (ignored)
    annotators: dict[str, dict] = field(default_factory=dict)  # username -> {"submitted", "discarded", "draft"}

    def summary(self) -> str:
        p = self.progress
        if not p["total"]:
            return f"Dataset {self.dataset!r} has no records yet."
        text = f"{p['annotated']} of {p['total']} records have at least one submitted answer"
        if p.get("completed") is not None:
            text += f" ({p['completed']} complete)"
        text += "."
        if not p["annotated"]:
            text += " No answers yet: share the dataset link with your annotators."
        if self.discarded_only:
            text += f" {self.discarded_only} record(s) were discarded by everyone who saw them."
        if self.foreign:
            text += f" {self.foreign} record(s) were not sent by DPO Studio and are ignored."
        return text

    def agreement_summary(self) -> str:
        ag = self.judge_agreement
        if not ag["rows"]:
            return "Judge versus humans: no record has both a judge preference and a human answer yet."
        kappa = "n/a" if ag["kappa"] is None else f"{ag['kappa']:.2f}"
        text = (
            f"Judge versus humans: the judge picks the humans' best response in {ag['agree']} of {ag['rows']} "
            f"records ({ag['share']:.0%}); Cohen's kappa {kappa}."
        )
        rd = self.rating_difference
        if rd["mean_abs_diff"] is not None:
            text += f" Ratings differ by {rd['mean_abs_diff']:.2f} points on average ({rd['responses']} responses)."
        aa = self.annotator_agreement
        if aa["records"]:
            text += (
                f" Annotators agree on {aa['mean']:.0%} on average over the {aa['records']} records answered by two "
                f"or more people ({aa['unanimous']} unanimous)."
            )
        return text


def pull(
    conn: Connection, dataset: str, workspace: str | None = None, progress: ProgressFn | None = None
) -> PullResult:
    """Read every record's submitted answers and aggregate them (see the module docstring)."""
    name = (dataset or "").strip()
    if not name:
        raise ArgillaIOError("Give the name of the dataset to pull.")
    if not conn.can_see_all_answers:
        raise ArgillaIOError(
            f"User {conn.username!r} is an {conn.role}: Argilla shows everyone's answers only to owners and admins. "
            "Pull with an owner or admin API key."
        )
    ws = find_workspace(conn, workspace)
    ds = find_dataset(conn, name, ws)
    if ds is None:
        raise ArgillaIOError(f"Dataset {name!r} was not found in workspace {ws.name!r}. Send records first.")
    if slots_of(ds) < MIN_RESPONSES or signature(ds.settings) != signature(
        build_settings(slots_of(ds), client=conn.client)
    ):
        raise ArgillaIOError(
            f"Dataset {name!r} was not made by DPO Studio (its questions differ), so its answers cannot be read here."
        )
    try:
        users = {u.id: u.username for u in conn.client.users.list()}
    except Exception:  # noqa: BLE001 - names are a nicety
        users = {}
    try:
        expected = int(ds.progress().get("total") or 0)
    except Exception:  # noqa: BLE001 - only for the progress callback
        expected = 0
    if progress:
        progress(0, expected)
    rows: list[dict[str, Any]] = []
    total = completed = discarded_only = foreign = 0
    try:
        for record in record_models(conn, ds, True):
            total += 1
            if record.status == "completed":
                completed += 1
            meta = (
                record.metadata
                if isinstance(record.metadata, Mapping)
                else {m.name: m.value for m in (record.metadata or [])}
            )
            order = shown_order(meta)
            if len(order) < MIN_RESPONSES:
                foreign += 1
                continue
            answers, n_discarded = record_answers(record.responses, order, users)
            if not answers:
                if n_discarded:
                    discarded_only += 1
                continue
            n = max(int_or_none(meta.get("raw_responses")) or 0, max(order) + 1)
            row = {"id": str(record.external_id), **agreement.aggregate_answers(answers, n)}
            judge: list[int | None] = [None] * n
            for k, index in enumerate(order, start=1):
                judge[index] = int_or_none(meta.get(f"judge_rating_{k}"))
            row["judge_ratings"] = [float(v) if v is not None else None for v in judge]
            row["judge_preference"] = agreement.preference_from_ratings(judge, order)
            row["n_discarded"] = n_discarded
            rows.append(row)
            if progress and total % LIST_BATCH == 0:
                progress(total, max(expected, total))
    except ArgillaIOError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ArgillaIOError(f"Could not read the records of {name!r}: {describe(exc)}") from None
    annotators: dict[str, dict] = {}
    try:
        for username, stats in (ds.progress(with_users_distribution=True).get("users") or {}).items():
            counts: Counter = Counter()
            for part in ("completed", "pending"):
                counts.update({k: v for k, v in (stats.get(part) or {}).items() if isinstance(v, int)})
            annotators[username] = dict(counts)
    except Exception:  # noqa: BLE001 - annotators may not read progress; it is a nicety
        annotators = {}
    return PullResult(
        dataset=name,
        workspace=ws.name,
        url=dataset_url(conn, ds),
        table=schema.annotations_table(rows),
        progress=agreement.progress(total, len(rows), completed),
        judge_agreement=agreement.judge_human_agreement(
            (r["judge_preference"], agreement.human_choice(r["human_preference"], r["human_ratings"])) for r in rows
        ),
        rating_difference=agreement.rating_difference((r["judge_ratings"], r["human_ratings"]) for r in rows),
        annotator_agreement=agreement.annotator_agreement(rows),
        discarded_only=discarded_only,
        foreign=foreign,
        annotators=annotators,
    )
