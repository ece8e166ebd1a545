"""What a judge did, as figures and text for people: the app, the CLI and the cards.

- A run's judge, counted over raw rows: :func:`judge_stats` (rows judged and parsed, structured or text, the order
  policy, flips), :func:`judge_leaderboard` (the same per judge model) and :func:`judge_card_lines` (the Markdown
  bullets on the judge in the raw and the export card).
- A judge check (``pipeline.judge.check``), the side-by-side table the app and the CLI both show:
  :func:`score_rows` (one row of text per judge, :data:`SCORE_COLUMNS`) and :func:`summary_line`.

Pure functions; no I/O."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Final

import pandas as pd
import pyarrow as pa

from pipeline.core import schema
from pipeline.inference import KINDS

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


# --- A judge check: the side-by-side table and its one-line summary (the app and the CLI show the same) ---------
SCORE_COLUMNS: Final = (
    "judge",
    "parse rate",
    "flip rate",
    "agreement",
    "kappa",
    "latency / row",
    "tokens / row",
    "output",
    "note",
)


def _share(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})" if n else "n/a"


def score_rows(check: schema.JudgeCheck) -> list[dict[str, str]]:
    """One row of text per judge, columns :data:`SCORE_COLUMNS` (rates with their counts; "n/a" when none)."""
    out = []
    for j in check.judges:
        output = {True: "structured", False: "text (fallback)", None: "n/a"}[j.structured]
        note = j.error
        if not note and j.rows and j.compared < j.rows:
            note = f"{j.rows - j.parsed} unparseable or failed row(s) left out of agreement and kappa"
        out.append(
            {
                "judge": f"{j.model} ({j.base_url or j.backend})" if KINDS[j.backend].needs_url else j.model,
                "parse rate": _share(j.parsed, j.rows),
                "flip rate": _share(j.flips, j.flip_rows),
                "agreement": _share(j.agree, j.compared),
                "kappa": "n/a" if j.kappa is None else f"{j.kappa:.2f}",
                "latency / row": "n/a" if j.mean_latency_s is None else f"{j.mean_latency_s:.2f} s",
                "tokens / row": "n/a" if j.tokens_per_row is None else f"{j.tokens_per_row:,.0f}",
                "output": output,
                "note": note,
            }
        )
    return out


def summary_line(check: schema.JudgeCheck) -> str:
    """One sentence for cards and messages, e.g. ``Judge check on 20 labelled rows (nld): m agrees with people on
    15/20 (75%), kappa 0.52, flip rate 2/20 (10%).``"""
    what = "labelled rows" if check.source == "labels" else "annotated rows"  # check.SOURCE_LABELS
    parts = []
    for j in check.judges:
        kappa = "n/a" if j.kappa is None else f"{j.kappa:.2f}"
        if j.error and not j.rows:
            parts.append(f"{j.model} stopped before judging a row")
            continue
        parts.append(
            f"{j.model} agrees with people on {_share(j.agree, j.compared)}, kappa {kappa}, flip rate "
            f"{_share(j.flips, j.flip_rows)}, parse rate {_share(j.parsed, j.rows)}"
        )
    lang = f" ({check.language})" if check.language else ""
    return f"Judge check on {check.rows} {what}{lang}: " + "; ".join(parts) + "."


CHANCE_KAPPA: Final = 0.2  # Cohen's kappa at or below this: "slight" at best, no better than chance for a judge
HIGH_FLIP_RATE: Final = 0.5  # more flips than this: the verdict follows the answers' positions, not the answers
LOW_PARSE_RATE: Final = 0.9
BETTER_BY: Final = 0.1  # a kappa this much higher than another judge's makes that one the worse choice


@dataclass(frozen=True)
class Verdict:
    """A plain verdict on one judge of a check: ``ok`` when nothing speaks against using it; ``text`` says why."""

    model: str
    ok: bool
    text: str


def verdicts(check: schema.JudgeCheck) -> list[Verdict]:
    """One verdict per judge of ``check`` (in order), said plainly before anyone uses it: no better than chance
    (kappa <= :data:`CHANCE_KAPPA`, or no rows to compare), position-biased (flip rate > :data:`HIGH_FLIP_RATE`),
    unreadable (parse rate < :data:`LOW_PARSE_RATE`), or worse than another candidate (kappa lower by
    :data:`BETTER_BY` or more)."""
    kappas = {j.model: j.kappa for j in check.judges if j.kappa is not None and j.rows}
    best_model = max(kappas, key=lambda m: kappas[m]) if kappas else ""
    out = []
    for j in check.judges:
        problems = []
        if j.error and not j.rows:
            out.append(Verdict(j.model, False, f"{j.model} stopped before judging a row: {j.error}"))
            continue
        if j.kappa is None:
            problems.append("no rows where it and people both gave a preference, so its agreement is unknown")
        elif j.kappa <= CHANCE_KAPPA:
            problems.append(
                f"no better than chance (kappa {j.kappa:.2f}; agreement {_share(j.agree, j.compared)}): its picks "
                "match people's about as often as random picks would"
            )
        if j.flip_rate is not None and j.flip_rate > HIGH_FLIP_RATE:
            problems.append(
                f"it changes its pick when the answers swap places in {_share(j.flips, j.flip_rows)} rows "
                "(position bias)"
            )
        if j.parse_rate is not None and j.parse_rate < LOW_PARSE_RATE:
            problems.append(f"only {_share(j.parsed, j.rows)} of its verdicts could be read")
        best = kappas.get(best_model)
        if best_model and best_model != j.model and j.kappa is not None and best is not None:
            if best - j.kappa >= BETTER_BY:
                problems.append(f"worse than {best_model} (kappa {j.kappa:.2f} against {best:.2f})")
        if problems:
            out.append(Verdict(j.model, False, f"{j.model}: " + "; ".join(problems) + "."))
        else:
            out.append(
                Verdict(
                    j.model,
                    True,
                    f"{j.model} agrees with people beyond chance (kappa {j.kappa:.2f}, agreement "
                    f"{_share(j.agree, j.compared)}).",
                )
            )
    return out
