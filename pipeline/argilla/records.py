"""Records: raw rows turned into Argilla records and Argilla's answers turned back into raw index space.

- :func:`plan_records` (pure, no Argilla needed): one record per raw row, its id the row's ``id`` (so sending the
  same rows twice finds them), responses in a per-record random order (seeded by ``seed`` and the record id, so a
  re-send gives the same order) unless ``keep_order`` is set, the raw index of each shown response in the hidden
  metadata ``source_index_<k>``, the judge's ratings as suggestions.
- :func:`record_answers`: one record's submitted answers mapped back to the raw ``responses`` order.
- :func:`record_models` / :func:`existing_ids`: a dataset's records read page by page.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from pipeline.argilla.connection import Connection
from pipeline.argilla.layout import (
    IMPROVED_QUESTION,
    MAX_RESPONSES,
    MIN_RESPONSES,
    PREFERENCE_QUESTION,
    PROMPT_FIELD,
    TIE_LABEL,
    rating_question,
    response_field,
    source_key,
)
from pipeline.core import schema
from pipeline.judge import agreement

LIST_BATCH: Final = 500
SKIP_FEW_RESPONSES: Final = "fewer than 2 non-empty responses (e.g. generation failed)"
SKIP_NO_ID: Final = "no id or prompt"
SKIP_DUPLICATE: Final = "duplicate id in the table (the last one is sent)"

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``, called by pushes and pulls as they go."""


@dataclass
class PlannedRecord:
    """One record to send, before it becomes an ``rg.Record``."""

    id: str
    fields: dict[str, str]
    metadata: dict[str, Any]
    suggestions: dict[str, int]  # question name -> judge rating
    judge_model: str
    order: list[int]  # raw index shown in slot k+1


@dataclass
class Plan:
    records: list[PlannedRecord]
    skipped: dict[str, int]
    n_slots: int  # response fields needed (2..MAX_RESPONSES)
    truncated: int  # rows with more than MAX_RESPONSES non-empty responses (the extra ones are not sent)


def rows_of(raw: Any) -> list[dict]:
    if raw is None:
        return []
    if isinstance(raw, pa.Table):
        return raw.to_pylist()
    if hasattr(raw, "to_pylist"):
        return list(raw.to_pylist())
    return [dict(r) for r in raw]


def _at(values: Any, i: int) -> Any:
    try:
        return values[i] if values is not None else None
    except (IndexError, TypeError):
        return None


def int_or_none(value: Any) -> int | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(round(f)) if f == f else None


def shown_order(metadata: Mapping[str, Any]) -> list[int]:
    """The raw answer indexes a record showed as ``response_1``, ``response_2``, ... (from its hidden metadata),
    up to the first missing one."""
    order = []
    for k in range(1, MAX_RESPONSES + 1):
        index = int_or_none(metadata.get(source_key(k)))
        if index is None:
            break
        order.append(index)
    return order


def response_order(record_id: str, candidates: Sequence[int], seed: int, keep_order: bool = False) -> list[int]:
    """The raw indices in display order: shuffled per record (same seed + id → same order) or kept as they are."""
    order = list(candidates)
    if not keep_order:
        random.Random(f"{seed}:{record_id}").shuffle(order)
    return order


def plan_records(rows: Any, *, keep_order: bool = False, seed: int = 0, suggestions: bool = True) -> Plan:
    """Turn raw results (``schema.RAW_COLUMNS``) into records to send. Pure: no Argilla needed."""
    skipped: Counter = Counter()
    by_id: dict[str, dict] = {}
    for row in rows_of(rows):
        rid = str(row.get("id") or "").strip()
        if not rid or not str(row.get("prompt") or "").strip():
            skipped[SKIP_NO_ID] += 1
            continue
        if rid in by_id:
            skipped[SKIP_DUPLICATE] += 1
            del by_id[rid]  # the last one wins, like the pipeline's checkpoint
        by_id[rid] = row
    records: list[PlannedRecord] = []
    truncated = 0
    for rid, row in by_id.items():
        responses = list(row.get("responses") or [])
        candidates = [i for i, r in enumerate(responses) if isinstance(r, str) and r.strip()]
        if len(candidates) < MIN_RESPONSES:
            skipped[SKIP_FEW_RESPONSES] += 1
            continue
        if len(candidates) > MAX_RESPONSES:
            truncated += 1
            candidates = candidates[:MAX_RESPONSES]
        order = response_order(rid, candidates, seed, keep_order)
        sources = list(row.get("response_sources") or [])
        ratings = list(row.get("ratings") or [])
        judge_model = str(row.get("judge_model") or "")
        fields = {PROMPT_FIELD: str(row["prompt"])}
        metadata: dict[str, Any] = {"n_responses": len(order), "raw_responses": len(responses), "order_seed": int(seed)}
        suggested: dict[str, int] = {}
        matches = []
        shown_ratings = []
        for k, index in enumerate(order, start=1):
            fields[response_field(k)] = responses[index]
            metadata[source_key(k)] = index
            lang = _at(row.get("detected_languages"), index)
            metadata[f"language_{k}"] = str(lang) if lang else "unknown"
            conf = _at(row.get("language_confidences"), index)
            if conf is not None and conf == conf:
                metadata[f"language_confidence_{k}"] = float(conf)
            match = _at(row.get("language_match"), index)
            matches.append(match)
            metadata[f"language_match_{k}"] = "unsupported" if match is None else ("yes" if match else "no")
            rating = int_or_none(_at(ratings, index))
            shown_ratings.append(rating)
            if rating is not None and 1 <= rating <= 5:
                metadata[f"judge_rating_{k}"] = rating
                if suggestions:
                    suggested[rating_question(k)] = rating
        margin = agreement.rating_margin(shown_ratings)
        if margin is not None:
            metadata["rating_margin"] = int(margin)
        metadata["all_in_language"] = (
            "unknown" if any(m is None for m in matches) else ("yes" if all(matches) else "no")
        )
        models = sorted({str(s) for s in sources if s and s != schema.HUMAN})
        if models:
            metadata["generator_model"] = models if len(models) > 1 else models[0]
        if judge_model:
            metadata["judge_model"] = judge_model
        if row.get("status"):
            metadata["status"] = str(row["status"])
        records.append(PlannedRecord(rid, fields, metadata, suggested, judge_model, order))
    n_slots = max([MIN_RESPONSES, *(len(r.order) for r in records)])
    return Plan(records=records, skipped=dict(skipped), n_slots=n_slots, truncated=truncated)


def to_rg_record(planned: PlannedRecord) -> Any:
    import argilla as rg

    suggestions = [
        rg.Suggestion(question_name=q, value=v, agent=planned.judge_model or None, type="model")
        for q, v in planned.suggestions.items()
    ]
    return rg.Record(id=planned.id, fields=planned.fields, metadata=planned.metadata, suggestions=suggestions)


def record_models(conn: Connection, dataset: Any, with_responses: bool) -> Iterable[Any]:
    """The dataset's records as the SDK's API models, page by page.

    We read the API models (``client.api.records.list``) rather than ``dataset.records``: the high-level ``Record``
    drops a response without values (e.g. a discard with an empty form), and we count discards."""
    offset = 0
    while True:
        page = conn.client.api.records.list(
            dataset_id=dataset.id,
            offset=offset,
            limit=LIST_BATCH,
            with_suggestions=False,
            with_responses=with_responses,
        )
        yield from page
        if len(page) < LIST_BATCH:
            return
        offset += len(page)


def existing_ids(conn: Connection, dataset: Any) -> set[str]:
    return {str(m.external_id) for m in record_models(conn, dataset, False) if m.external_id is not None}


def _slot_index(value: Any, n_slots: int) -> int | None:
    m = re.fullmatch(r"response_(\d+)", str(value or ""))
    if m and 1 <= int(m.group(1)) <= n_slots:
        return int(m.group(1))
    return None


def record_answers(
    responses: Iterable[Any], order: Sequence[int], users: Mapping[Any, str] | None = None
) -> tuple[list[agreement.Answer], int]:
    """Submitted answers of one record in raw index space, and the number of annotators who discarded it.

    ``responses`` are one record's user responses as Argilla's API gives them (objects or dicts with ``user_id``,
    ``status`` and ``values = {question: {"value": ...}}``); ``order[k-1]`` is the raw index shown as
    ``response_k``.
    """

    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)

    answers = []
    discarded = 0
    for response in responses:
        status = get(response, "status")
        status = str(getattr(status, "value", status))
        if status == "discarded":
            discarded += 1
        if status != "submitted":
            continue
        user = get(response, "user_id")
        raw_values = get(response, "values") or {}
        values = {q: (v.get("value") if isinstance(v, Mapping) else v) for q, v in raw_values.items()}
        ratings = {}
        for k, index in enumerate(order, start=1):
            value = int_or_none(values.get(rating_question(k)))
            if value is not None:
                ratings[index] = value
        pref_value = values.get(PREFERENCE_QUESTION)
        if pref_value == TIE_LABEL:
            preference: int | None = agreement.TIE
        else:
            slot = _slot_index(pref_value, len(order))
            preference = order[slot - 1] if slot else None
        improved = values.get(IMPROVED_QUESTION)
        answers.append(
            agreement.Answer(
                user=(users or {}).get(user, str(user)),
                ratings=ratings,
                preference=preference,
                improved_response=improved if isinstance(improved, str) else None,
            )
        )
    return answers, discarded
