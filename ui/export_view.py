"""What the Export tab shows, as pure display functions (no events, no session): the per-rule and rating tables
behind its charts, the preview rows (untrusted text as text), the status text of a built export and the count of
pairs decided by people without ratings. ``ui/export_tab.py`` wires them to the export."""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

import pandas as pd
import pyarrow as pa

from pipeline import export as ex
from pipeline.core import languages
from ui.common import md_text

PREVIEW_COLUMNS: Final = (
    "id",
    "prompt",
    "chosen",
    "rejected",
    "chosen_rating",
    "rejected_rating",
    "margin",
    "preference_source",
    "chosen_model",
    "rejected_model",
)


PREVIEW_ROWS: Final = 50
_md = md_text  # untrusted text (ids, codes, messages quoting data) shown as text


# --- what the tab shows (display only) --------------------------------------------------------------------------
def _bucket(value: float | None) -> str:
    """Ratings and margins to half-point labels ("4", "4.5"); None → "n/a"."""
    if value is None:
        return "n/a"
    return f"{round(value * 2) / 2:g}"


def export_frames(result: ex.ExportResult | ex.Selection) -> dict[str, pd.DataFrame]:
    """pandas DataFrames behind the tab's plots.

    Keys: ``rules`` (rule, rows, outcome: one "kept" row then one per rule that dropped rows), ``ratings`` (rating,
    pairs, response: chosen/rejected), ``margins`` (margin, pairs) and ``agreement`` (outcome, rows; empty when no
    row has both a human and a judge preference).
    """
    counts, pairs, agreement = result.counts, result.pairs, result.agreement
    rules_rows = [{"rule": "kept", "rows": counts.get("kept", 0), "outcome": "kept"}]
    rules_rows += [{"rule": r, "rows": counts[r], "outcome": "dropped"} for r in ex.DROP_RULES if counts.get(r)]
    ratings: Counter = Counter()
    for p in pairs:  # pairs people decided without rating them have no ratings: not a bar ("n/a"), counted apart
        if p.chosen_rating is not None:
            ratings[(_bucket(p.chosen_rating), "chosen")] += 1
        if p.rejected_rating is not None:
            ratings[(_bucket(p.rejected_rating), "rejected")] += 1
    rating_rows = [
        {"rating": k[0], "pairs": v, "response": k[1]}
        for k, v in sorted(ratings.items(), key=lambda kv: (float(kv[0][0]), kv[0][1]))
    ]
    margins = Counter(_bucket(p.margin) for p in pairs if p.margin is not None)
    margin_rows = [{"margin": k, "pairs": v} for k, v in sorted(margins.items(), key=lambda kv: float(kv[0]))]
    agreement_rows = (
        [{"outcome": k, "rows": v} for k, v in agreement.get("outcomes", {}).items()] if agreement.get("rows") else []
    )
    return {
        "rules": pd.DataFrame(rules_rows, columns=["rule", "rows", "outcome"]),
        "ratings": pd.DataFrame(rating_rows, columns=["rating", "pairs", "response"]),
        "margins": pd.DataFrame(margin_rows, columns=["margin", "pairs"]),
        "agreement": pd.DataFrame(agreement_rows, columns=["outcome", "rows"]),
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _last_text(value: Any) -> str:
    if isinstance(value, list):
        return _text(value[-1].get("content")) if value and isinstance(value[-1], dict) else ""
    return _text(value)


def _user_text(value: Any) -> str:
    if isinstance(value, list):
        users = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "user"]
        return _text(users[-1]) if users else ""
    return _text(value)


def preview_rows(table: pa.Table, limit: int = PREVIEW_ROWS) -> list[list[Any]]:
    """The first ``limit`` rows as plain values for the preview grid (:data:`PREVIEW_COLUMNS`): the prompt,
    chosen and rejected texts whatever the format (the user message and the assistant replies of conversations)."""
    out = []
    for row in table.slice(0, limit).to_pylist():
        prompt = _user_text(row["prompt"]) or _user_text(row["chosen"])
        out.append(
            [
                row["id"],
                prompt,
                _last_text(row["chosen"]),
                _last_text(row["rejected"]),
                *(row[c] for c in PREVIEW_COLUMNS[4:]),
            ]
        )
    return out


def _status_md(result: ex.ExportResult) -> str:
    dropped = result.dropped()
    lines = [
        f"**{result.num_rows} pairs** from {result.counts['kept']} of {result.counts['input']} rows "
        f"({', '.join(f'{k}: {v.num_rows}' for k, v in result.splits.items())}); format **{result.format}**; "
        f"target language {_md(languages.label(result.target_language))}.",
        f"Preferences from people: {result.counts['from_human']}; from the judge: {result.counts['from_judge']}.",
    ]
    unrated = unrated_pairs(result)
    if unrated:
        lines.append(
            f"{unrated} pair(s) decided by people without ratings have no rating margin: they are counted here, "
            "not drawn in the rating charts."
        )
    if dropped:
        lines.append("Dropped: " + "; ".join(f"{ex.RULE_LABELS[k]}: {v}" for k, v in dropped.items()) + ".")
    if result.counts.get("language_unchecked"):
        lines.append(
            f"{result.counts['language_unchecked']} kept pairs have a chosen response whose language could not be "
            "checked (the detector does not know the language, or an annotator rewrote it)."
        )
    ag = result.agreement
    if ag.get("rows"):
        kappa = "n/a" if ag["kappa"] is None else f"{ag['kappa']:.2f}"
        lines.append(
            f"Judge versus annotators on {ag['rows']} rows: the judge agrees on {ag['agree']} "
            f"({ag['share']:.0%}); Cohen's kappa {kappa}."
        )
    lines += [f"Note: {_md(n)}" for n in result.notes]
    return "\n\n".join(lines)


def unrated_pairs(result: ex.ExportResult | ex.Selection) -> int:
    """Pairs without a rating margin (people chose without rating): not in the rating charts."""
    return sum(1 for p in result.pairs if p.margin is None)
