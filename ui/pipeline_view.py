"""What the Pipeline tab shows, as pure display functions (no events, no session): the progress text of a run, the
ratings and language charts, the latest rows' table and the note on the filtered data. ``ui/pipeline_tab.py`` wires
them to the run; tests call them with plain tables."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from pipeline import generate, langcheck
from pipeline.core import schema
from pipeline.generate import results
from ui.common import (
    bar_chart,
    column_widths,
    md_text,
    series_colors,
)

NO_DATA = "**No filtered data yet.** Load and filter a language in **1. Filter** first."
_safe = md_text  # untrusted text for a Markdown component: shown as text

RATINGS_EMPTY = "The judge's 1-5 ratings of the human and the model answers appear here, per source, as rows finish."


LANGS_EMPTY = "The share of answers in the target language appears here, per source, as rows finish."


def progress_markdown(snap: generate.Progress, hub_message: str = "") -> str:
    """Rows done, failures by status, rows/s, ETA, and the run's message (escaped)."""
    pct = 100 * snap.done / snap.total if snap.total else 0
    filled = int(pct // 5)
    bar = "█" * filled + "░" * (20 - filled)
    fails = [f"{v} {k.replace('_', ' ')}" for k, v in snap.counts.items() if k != schema.STATUS_OK and v]
    eta = f" · ETA {generate.duration(snap.eta_s)}" if snap.eta_s is not None else ""
    lines = [
        f"`{bar}` **{snap.done:,} / {snap.total:,} rows** ({pct:.0f}%) · {snap.counts.get('ok', 0):,} ok"
        + (f" · {', '.join(fails)}" if fails else " · no failures")
        + f" · {snap.rows_per_s:.2f} rows/s{eta} · {snap.tokens_used:,} tokens · state: **{snap.state}**",
    ]
    if snap.running:  # calls in flight, the concurrency the providers allow now, calls/s, throttling
        lines.append(snap.calls.line())  # our own words and numbers
    if snap.judged_both:  # position bias, live: rows whose preferred answer changed when the answers swapped
        lines.append(
            f"Judge flip rate: **{snap.flip_rate:.0%}** ({snap.flips:,} of {snap.judged_both:,} rows judged "
            "in both orders changed their preferred answer)"
        )
    lines.extend(_safe(n) for n in snap.notices)
    if snap.message:
        lines.append(_safe(snap.message))
    if snap.failure_groups:  # at the end of a run: why rows failed (results.failure_reasons)
        lines.append(
            "**Failed rows by reason**\n\n"
            + "\n".join(f"- {g.rows:,} × {g.status.replace('_', ' ')}: {_safe(g.reason)}" for g in snap.failure_groups)
        )
    if hub_message:
        lines.append(_safe(hub_message))
    return "\n\n".join(lines)


def _empty_ratings() -> pd.DataFrame:
    return pd.DataFrame(columns=["rating", "source", "count"])


def _empty_langs() -> pd.DataFrame:
    return pd.DataFrame(columns=["source", "rate"])


def _plots_from_table(raw: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    ratings = results.rating_distribution(raw)
    langs = results.language_match_rates(raw)
    return (ratings if len(ratings) else _empty_ratings(), langs[["source", "rate"]] if len(langs) else _empty_langs())


def _leaderboard(raw: Any) -> pd.DataFrame | None:
    """The per-source leaderboard (the human answers and each generator; one generator is enough to compare)."""
    if raw is None or not raw.num_rows:
        return None
    board = results.leaderboard(raw)
    return board if len(board) >= 2 else None


# What people see (the timer's display wrapper turns poll's data into these) -----------------------------------
def ratings_chart(ratings: pd.DataFrame | None) -> Any:
    """Grouped bars: how often each source got each rating, a colour and a legend entry per source."""
    frame = (
        ratings if ratings is not None and len(ratings) and float(pd.to_numeric(ratings["count"]).sum()) > 0 else None
    )
    colors = series_colors(list(dict.fromkeys(frame["source"]))) if frame is not None else None
    return bar_chart(
        frame,
        "rating",
        "count",
        color="source",
        title="Judge ratings (1-5)",
        empty=RATINGS_EMPTY,
        x_title="Rating",
        y_title="Answers",
        color_title="Source",
        x_order=[str(r) for r in range(1, 6)],
        colors=colors,
    )


def langs_chart(langs: pd.DataFrame | None) -> Any:
    """One bar per source: the share of its answers in the target language (same colours as the ratings)."""
    frame = langs if langs is not None and len(langs) else None
    colors = series_colors(list(frame["source"])) if frame is not None else None
    return bar_chart(
        frame,
        "source",
        "rate",
        color="source" if frame is not None else None,
        title="Language-match rate",
        empty=LANGS_EMPTY,
        x_title="Source",
        y_title="In the target language",
        color_title="Source",
        y_max=1,
        y_format=".0%",
        colors=colors,
    )


def latest_view(latest: Any, language_code: str = "") -> Any:
    """The latest rows for people: the prompt, each source's answer, then its rating and language in two compact
    columns, so everything that matters fits the page; readable headers (the language column names the detector
    that checks ``language_code``). Passes a ``gr.update`` through."""
    if not isinstance(latest, pd.DataFrame):
        return latest
    cols = list(latest.columns)
    sources = [c for c in cols if f"{c} rating" in cols]

    def short(text: Any) -> str:
        return textwrap.shorten(" ".join(str(text or "").split()), 160, placeholder="…") if text else ""

    language_header = f"Language ({langcheck.coverage(language_code).label})" if language_code else "Language"
    rows = []
    for rec in latest.to_dict("records"):
        row = {"status": rec.get("status", ""), "Prompt": short(rec.get("prompt"))}
        for src in sources:
            row[f"{src.capitalize() if src == 'human' else src} answer"] = short(rec.get(src))
        row["Ratings"] = " · ".join(f"{src}: {rec.get(f'{src} rating') or '–'}" for src in sources)
        row[language_header] = " · ".join(f"{src}: {rec.get(f'{src} lang') or '?'}" for src in sources)
        row["Error"] = short(rec.get("error"))
        rows.append(row)
    names = [
        "status",
        "Prompt",
        *[f"{s.capitalize() if s == 'human' else s} answer" for s in sources],
        "Ratings",
        language_header,
        "Error",
    ]
    frame = pd.DataFrame(rows, columns=names).rename(columns={"status": "Status"})
    widths = column_widths([8, 22, *[max(12.0, 44 / max(len(sources), 1))] * len(sources), 11, 11, 10])
    return gr.update(value=frame, column_widths=widths)


def _data_note(filtered: Any) -> str:
    if filtered is None or getattr(filtered, "rows", 0) == 0:
        return NO_DATA
    code = filtered.language_code
    check = _safe(langcheck.describe(code))
    if not langcheck.is_supported(code):
        check += " Answers in the right script are **not checked** further."
    return f"Input: **{_safe(filtered.summary())}** · target {_safe(filtered.language)} ({_safe(code)}). {check}"


@dataclass(frozen=True)
class RunView:
    """What a tick shows, as data (tests read it; :func:`poll` draws it): ``ratings`` / ``langs`` are the plots'
    frames, ``board`` the per-source leaderboard (None: hidden), ``latest`` the latest rows."""

    progress: str
    latest: pd.DataFrame
    ratings: pd.DataFrame
    langs: pd.DataFrame
    board: pd.DataFrame | None
    running: bool


# Shares shown with their counts ("11/11 (100%)"): {share column: its denominator's column}
LEADERBOARD_SHARES = {"best_rated_share": "judged_rows", "language_match_rate": "language_checked"}


JUDGE_SHARES = {"parse_rate": "judged", "structured_share": "judged", "flip_rate": "both_orders"}
