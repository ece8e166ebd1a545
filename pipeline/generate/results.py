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
    - ``best_rated_share``: share of judged rows where this source got the highest rating (ties count for all)
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


# --- The judge: what it did, per judge model, and what the cards say about it ------------------------------------
JUDGE_BOARD_COLUMNS = (
    "judge_model",
    "mode",
    "order",
    "judged",
    "parse_rate",
    "structured_share",
    "both_orders",
    "flip_rate",
)

_MODE_WORDS = {
    "ratings": "ratings (distilabel's UltraFeedback prompt: a 1-5 rating and a rationale per answer)",
    "pairwise": "pairwise (which answer is better: A, B or tie; the human answer against each model's answer)",
}
_ORDER_WORDS = {
    "random": "random per row (seeded by the row id; recorded in `judge_orders`)",
    "both": "both orders (every row judged twice, the second time in reverse order; ratings averaged, a row whose "
    "preferred answer changed is `judge_inconsistent`)",
    "fixed": "fixed: the human answer first (a run made before the order was randomised)",
}


def _judge_rows(raw: pa.Table):
    names = raw.column_names
    cols = ["status", "judge_model", "judge_mode", "judge_orders", "judge_inconsistent", "judge_structured"]
    data = {c: raw.column(c).to_pylist() if c in names else [None] * raw.num_rows for c in cols}
    yield from (dict(zip(cols, values)) for values in zip(*(data[c] for c in cols)))


def _one(values: set, default: str) -> str:
    values = {v for v in values if v}
    return default if not values else values.pop() if len(values) == 1 else "mixed"


def _stats(rows: list[dict]) -> schema.JudgeStats:
    judged = [r for r in rows if r["status"] in (schema.STATUS_OK, schema.STATUS_JUDGE_UNPARSEABLE)]
    orders = set()
    for r in judged:
        n_orders = len(r["judge_orders"] or [])
        if r["judge_orders"] is None:
            orders.add("fixed")
        elif r["judge_mode"] == "pairwise":
            firsts = {tuple(o) for o in r["judge_orders"]}
            orders.add("both" if any(tuple(o[::-1]) in firsts for o in firsts) else "random")
        else:
            orders.add("both" if n_orders > 1 else "random")
    both = [r for r in judged if r["judge_inconsistent"] is not None]
    return schema.JudgeStats(
        mode=_one({r["judge_mode"] or "ratings" for r in rows}, "ratings"),
        order=_one(orders, "random"),
        judged=len(judged),
        parsed=sum(1 for r in judged if r["status"] == schema.STATUS_OK),
        structured=sum(1 for r in judged if r["judge_structured"] is True),
        text=sum(1 for r in judged if r["judge_structured"] is not True),
        both_orders=len(both),
        flips=sum(1 for r in both if r["judge_inconsistent"]),
    )


def judge_stats(raw: pa.Table | None) -> schema.JudgeStats:
    """What the judge did over ``raw``: rows judged and parsed, structured or text, orders, flips."""
    if raw is None or raw.num_rows == 0:
        return schema.JudgeStats()
    return _stats(list(_judge_rows(raw)))


def judge_leaderboard(raw: pa.Table | None) -> pd.DataFrame:
    """One row per judge model: mode, order policy, rows judged, parse rate, share of structured output, rows
    judged in both orders and the flip rate (rates rounded, None when nothing was counted)."""
    by_model: dict[str, list[dict]] = defaultdict(list)
    if raw is not None and raw.num_rows:
        for row in _judge_rows(raw):
            by_model[row["judge_model"] or ""].append(row)
    out = []
    for model, rows in by_model.items():
        st = _stats(rows)
        out.append(
            {
                "judge_model": model,
                "mode": st.mode,
                "order": st.order,
                "judged": st.judged,
                "parse_rate": None if st.parse_rate is None else round(st.parse_rate, 3),
                "structured_share": round(st.structured / st.judged, 3) if st.judged else None,
                "both_orders": st.both_orders,
                "flip_rate": None if st.flip_rate is None else round(st.flip_rate, 3),
            }
        )
    return pd.DataFrame(out, columns=list(JUDGE_BOARD_COLUMNS))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def judge_card_lines(
    stats: schema.JudgeStats,
    *,
    structured_asked: bool | None = None,
    check: schema.JudgeCheck | None = None,
    judge_model: str = "",
) -> list[str]:
    """Markdown bullets on the judge for the raw and the export card: mode, structured output or text, order
    policy, parse rate, flip rate and the judge check's agreement figures (when one was run)."""
    lines = [f"- Judge mode: {_MODE_WORDS.get(stats.mode, stats.mode)}."]
    if not stats.judged:
        lines.append("- Output format: no row was judged.")
    elif stats.text == 0:
        lines.append(
            f"- Output format: structured output (JSON that fits a schema) for all {stats.judged} judged rows."
        )
    elif stats.structured == 0:
        why = (
            "the run asked for the text format"
            if structured_asked is False
            else "the judge's server refused structured output or ignored the schema, so it fell back to the text "
            "format"
            if structured_asked
            else "the text format"
        )
        lines.append(f"- Output format: plain UltraFeedback text for all {stats.judged} judged rows ({why}).")
    else:
        lines.append(
            f"- Output format: structured output for {stats.structured} of {stats.judged} judged rows; the "
            f"other {stats.text} used the text format (the judge fell back to it)."
        )
    lines.append(f"- Order of the answers shown to the judge: {_ORDER_WORDS.get(stats.order, stats.order)}.")
    lines.append(
        f"- Parse rate: {_pct(stats.parse_rate)} ({stats.parsed} of {stats.judged} judged rows had a "
        "readable verdict; the others are `judge_unparseable`, never given a made-up score)."
    )
    if stats.both_orders:
        lines.append(
            f"- Flip rate: {_pct(stats.flip_rate)} ({stats.flips} of {stats.both_orders} rows judged in "
            "both orders changed their preferred answer when the answers swapped places)."
        )
    else:
        lines.append("- Flip rate: not measured (each row was judged in one order).")
    if check is not None:
        score = check.score_of(check.chosen or judge_model) or check.score_of(judge_model)
        if score is not None:
            kappa = "n/a" if score.kappa is None else f"{score.kappa:.2f}"
            lines.append(
                f"- Judge check before the run ({check.rows} rows with people's preferences, from {check.source}): "
                f"`{score.model}` agreed with the people on {_pct(score.agreement)} ({score.agree} of "
                f"{score.compared}), Cohen's kappa {kappa}; parse rate {_pct(score.parse_rate)}, flip rate "
                f"{_pct(score.flip_rate)}."
            )
    return lines
