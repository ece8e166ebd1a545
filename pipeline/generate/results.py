"""Pure summaries of a raw results table (``schema.RAW_COLUMNS``): counts, leaderboard, plots' data.

Every function takes a ``pyarrow.Table`` and returns plain Python / pandas values; nothing here calls a service.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from pipeline.core import schema

LEADERBOARD_COLUMNS = (
    "source",
    "responses",
    "rated",
    "mean_rating",
    "judged_rows",
    "best_rated_share",
    "language_checked",
    "language_match_rate",
)


def counts_by_status(raw: pa.Table) -> dict[str, int]:
    """Rows per status, every status present (0 when none)."""
    counts = dict.fromkeys(schema.STATUSES, 0)
    if raw is None or raw.num_rows == 0:
        return counts
    for status in raw.column("status").to_pylist():
        counts[status] = counts.get(status, 0) + 1
    return counts


@dataclass(frozen=True)
class FailureGroup:
    """Failed rows that failed the same way: ``rows`` rows of ``status``, for ``reason`` (the error's first
    sentence, e.g. "m on http://localhost:8000/v1: cannot connect to http://localhost:8000/v1")."""

    status: str
    reason: str
    rows: int


def _reason(error: str | None) -> str:
    """The part of a row's error that is the same for every row that failed the same way."""
    text = " ".join((error or "").split())
    text = text.split("; ")[0]  # several generators: the first one's reason
    text = re.sub(r"\s\(gave up after [^)]*\)", "", text)  # attempts and seconds differ from row to row
    text = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".")
    return (text[:157] + "…") if len(text) > 160 else (text or "no reason recorded")


def failure_reasons(raw: pa.Table | None) -> list[FailureGroup]:
    """The rows that did not finish ``ok``, grouped by status and reason, the biggest group first (the Pipeline
    tab and the CLI show these at the end of a run)."""
    if raw is None or raw.num_rows == 0:
        return []
    groups: Counter = Counter()
    for status, error in _iter_aligned(raw, "status", "error"):
        if status != schema.STATUS_OK:
            groups[(status, _reason(error))] += 1
    return [FailureGroup(status, reason, n) for (status, reason), n in groups.most_common()]


def _iter_aligned(raw: pa.Table, *columns: str):
    cols = [raw.column(c).to_pylist() for c in columns]
    yield from zip(*cols)


def leaderboard(raw: pa.Table) -> pd.DataFrame:
    """One row per response source (``"human"`` first, then each model, in order of first appearance).

    - ``responses``: non-empty responses of that source
    - ``rated`` / ``mean_rating``: responses with a judge rating, and their mean (1-5)
    - ``judged_rows``: rows where every answer was rated; ``best_rated_share``: share of those where this source
      got the highest rating (ties count for all)
    - ``language_checked`` / ``language_match_rate``: responses whose language the detector could check (the
      language is supported), and the share of those in the target language
    """
    stats: dict[str, dict[str, float]] = {}
    order: list[str] = []

    def s(source: str) -> dict[str, float]:
        if source not in stats:
            stats[source] = defaultdict(float)
            order.append(source)
        return stats[source]

    if raw is not None and raw.num_rows:
        for sources, responses, ratings, matches in _iter_aligned(
            raw, "response_sources", "responses", "ratings", "language_match"
        ):
            sources = sources or []
            ratings = ratings or [None] * len(sources)
            matches = matches or [None] * len(sources)
            rated = [r for r in ratings if r is not None]
            best = max(rated) if len(rated) == len(sources) and rated else None
            for source, response, rating, match in zip(sources, responses or [], ratings, matches):
                st = s(source)
                if response:
                    st["responses"] += 1
                if rating is not None:
                    st["rated"] += 1
                    st["rating_sum"] += rating
                if best is not None:
                    st["judged_rows"] += 1
                    st["best"] += 1 if rating == best else 0
                if match is not None:
                    st["checked"] += 1
                    st["matched"] += 1 if match else 0
    if schema.HUMAN in order:  # the human answers first
        order.remove(schema.HUMAN)
        order.insert(0, schema.HUMAN)
    rows = []
    for source in order:
        st = stats[source]
        rows.append(
            {
                "source": source,
                "responses": int(st["responses"]),
                "rated": int(st["rated"]),
                "mean_rating": round(st["rating_sum"] / st["rated"], 3) if st["rated"] else None,
                "judged_rows": int(st["judged_rows"]),
                "best_rated_share": round(st["best"] / st["judged_rows"], 3) if st["judged_rows"] else None,
                "language_checked": int(st["checked"]),
                "language_match_rate": round(st["matched"] / st["checked"], 3) if st["checked"] else None,
            }
        )
    return pd.DataFrame(rows, columns=list(LEADERBOARD_COLUMNS))


def rating_distribution(raw: pa.Table) -> pd.DataFrame:
    """Counts of each rating (1-5) per source: columns ``rating`` (str, for a categorical axis), ``source``,
    ``count``. Every (rating, source) pair is present so bar plots keep their shape."""
    counts: dict[tuple[int, str], int] = defaultdict(int)
    sources: list[str] = []
    if raw is not None and raw.num_rows:
        for srcs, ratings in _iter_aligned(raw, "response_sources", "ratings"):
            for source, rating in zip(srcs or [], ratings or []):
                if source not in sources:
                    sources.append(source)
                if rating is not None:
                    counts[(int(float(rating) + 0.5), source)] += 1  # a mean over two orders: x.5 up
    rows = [{"rating": str(r), "source": src, "count": counts[(r, src)]} for r in range(1, 6) for src in sources]
    return pd.DataFrame(rows, columns=["rating", "source", "count"])


def language_match_rates(raw: pa.Table) -> pd.DataFrame:
    """Per source: share of checked responses in the target language (``rate``, 0-1), and how many could not
    be checked because the detector does not support the language (``unsupported``)."""
    board = leaderboard(raw)
    unsupported: dict[str, int] = defaultdict(int)
    if raw is not None and raw.num_rows:
        for srcs, responses, matches in _iter_aligned(raw, "response_sources", "responses", "language_match"):
            for source, response, match in zip(srcs or [], responses or [], matches or []):
                if response and match is None:
                    unsupported[source] += 1
    return pd.DataFrame(
        [
            {
                "source": row["source"],
                "rate": row["language_match_rate"] if row["language_match_rate"] is not None else 0.0,
                "checked": row["language_checked"],
                "unsupported": unsupported[row["source"]],
            }
            for row in board.to_dict("records")
        ],
        columns=["source", "rate", "checked", "unsupported"],
    )


def preview_rows(raw_or_rows: Any, limit: int = 20) -> pd.DataFrame:
    """A compact text table of rows (newest first when given the run's latest previews) for the live view."""
    if isinstance(raw_or_rows, pa.Table):
        records = raw_or_rows.slice(max(0, raw_or_rows.num_rows - limit)).to_pylist()[::-1]
    else:
        records = list(raw_or_rows)[:limit]
    out = []
    for rec in records:
        sources = rec.get("response_sources") or []
        responses = rec.get("responses") or []
        ratings = rec.get("ratings") or [None] * len(sources)
        matches = rec.get("language_match") or [None] * len(sources)
        row = {"status": rec.get("status", ""), "prompt": _clip(rec.get("prompt", ""))}
        for i, source in enumerate(sources):
            label = "human" if source == schema.HUMAN else source.split("/")[-1]
            row[f"{label}"] = _clip(responses[i] if i < len(responses) else "")
            rating = ratings[i] if i < len(ratings) else None
            match = matches[i] if i < len(matches) else None
            row[f"{label} rating"] = "" if rating is None else f"{rating:g}"
            row[f"{label} lang"] = {True: "yes", False: "no", None: "?"}[match]
        row["error"] = _clip(rec.get("error", ""), 160)
        out.append(row)
    return pd.DataFrame(out)


def _clip(text: str | None, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
