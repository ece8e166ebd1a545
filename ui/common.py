"""What every tab shares to show things to people (UI glue only; no logic that the CLI would also need).

- Untrusted text (a dataset's rows or column names, a server's error, a typed id) is shown only through
  :func:`md_text` (inside ``gr.Markdown``), :func:`html_text` (inside ``gr.HTML``) or :func:`warn` / :func:`info`
  (toasts). Each shows the text exactly as written: no HTML, no Markdown formatting, no links, no stray characters.
  :func:`md_link` makes a link from a URL the app built itself (a pushed dataset, an Argilla dataset).
- Tables go through :func:`table_frame` (people's column labels) and :func:`column_widths`.
- Charts are :func:`bar_chart` values for a ``gr.Plot``: grouped bars, one colour and one legend entry per series,
  and a sentence that says what will appear while there is no data yet; how the axes read (titles, order, scale)
  is one group of keyword options, :class:`Axes`.
- :func:`token_of` / :func:`username_of` read Gradio's OAuth values (a token is never stored, logged or rendered).
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypedDict, Unpack
from urllib.parse import quote

import gradio as gr
import pandas as pd
from gradio.components.plot import AltairPlotData


def token_of(oauth_token: gr.OAuthToken | None) -> str | None:
    """The signed-in user's token for this call, or None. Never stored in state, logged or rendered."""
    return oauth_token.token if oauth_token is not None else None


def username_of(profile: gr.OAuthProfile | None) -> str | None:
    return profile.username if profile is not None else None


def on_space() -> bool:
    """Whether the app runs on a Hugging Face Space (messages say "this Space" only there)."""
    return os.environ.get("SYSTEM") == "spaces"


# --- untrusted text -----------------------------------------------------------------------------------------------
# Markdown punctuation that could start formatting, a link, a list, a heading, a table or a code span. A backslash
# escape shows the character itself (CommonMark), so nothing extra appears on screen.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~=^])")


def md_text(value: Any) -> str:
    """``value`` as inert text for a ``gr.Markdown``: shown exactly as written, never as HTML, formatting or a link.

    HTML is escaped (``<``, ``>``, ``&``), Markdown punctuation is backslash-escaped, and ``://`` is written as an
    entity so that a URL in the text is not auto-linked (an auto-link would swallow a neighbouring backslash:
    ``https://x.hf.space\\)``). Line breaks stay line breaks, inside one paragraph."""
    text = html.escape("" if value is None else str(value), quote=False)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = text.replace("://", "&#58;//").replace("@", "&#64;")
    return "<br>".join(line.strip() for line in text.strip().splitlines())


def html_text(value: Any) -> str:
    """``value`` as inert text inside a ``gr.HTML`` (or any HTML attribute): every special character escaped."""
    return html.escape("" if value is None else str(value), quote=True)


def md_link(label: Any, url: str) -> str:
    """A Markdown link to a URL the app made itself, with an untrusted ``label`` shown as text."""
    safe_url = quote(str(url or ""), safe=":/?#@!$&'*+,;=%~._-")
    return f"[{md_text(label)}]({safe_url})"


def warn(message: object) -> None:
    """``gr.Warning`` for a message that may quote untrusted text (a dataset's column names, a server's error, a
    typed repo id). Gradio renders toast messages as (sanitised) HTML, so the message is escaped to show as text."""
    gr.Warning(html.escape(str(message), quote=False))


def info(message: object) -> None:
    """``gr.Info`` with the message shown as text (see :func:`warn`)."""
    gr.Info(html.escape(str(message), quote=False))


# --- tables -------------------------------------------------------------------------------------------------------
# Column names of the data contracts, as people read them in a table header. Short words, so a header wraps
# between words and never inside one.
COLUMN_LABELS: dict[str, str] = {
    "language": "Language",
    "code": "Code",
    "rows": "Rows",
    "mean_prompt_chars": "Prompt length (mean chars)",
    "mean_response_chars": "Answer length (mean chars)",
    "prompt": "Prompt",
    "response": "Answer",
    "language_code": "Language",
    "annotation_type": "Annotation type",
    "id": "Id",
    "status": "Status",
    "error": "Error",
    "source": "Source",
    "responses": "Answers",
    "rated": "Rated",
    "mean_rating": "Mean rating",
    "judged_rows": "Rows judged",
    "best_rated_share": "Best rated (share)",
    "language_checked": "Language checked",
    "language_match_rate": "Right language (share)",
    "chosen": "Chosen",
    "rejected": "Rejected",
    "chosen_rating": "Chosen rating",
    "rejected_rating": "Rejected rating",
    "margin": "Margin",
    "preference_source": "Preferred by",
    "chosen_source": "Chosen from",
    "rejected_source": "Rejected from",
    "chosen_model": "Chosen from",
    "rejected_model": "Rejected from",
    "target_language": "Language",
    "system_prompt": "System prompt",
}


def column_label(name: str) -> str:
    """The header people read for a column: :data:`COLUMN_LABELS`, else ``snake_case`` → ``Snake case``."""
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def table_frame(frame: pd.DataFrame | None, labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``frame`` with people's column labels (``labels`` first, then :func:`column_label`); the data is unchanged."""
    if frame is None:
        return pd.DataFrame()
    extra = dict(labels or {})
    return frame.rename(columns={c: extra.get(c) or column_label(c) for c in frame.columns})


def share_text(share: Any, total: Any = None) -> str:
    """A share as people read it: "11/11 (100%)" with its count when ``total`` is known, else "100%"; "–" for
    none (no bare decimals like "1" or "0.667")."""
    try:
        value = float(share)
    except (TypeError, ValueError):
        return "–"
    if value != value:  # NaN: nothing was counted
        return "–"
    try:
        n = int(total) if total is not None and total == total else None
    except (TypeError, ValueError):
        n = None
    if n:
        return f"{round(value * n)}/{n} ({value:.0%})"
    return f"{value:.0%}"


def shares_as_text(frame: pd.DataFrame | None, shares: Mapping[str, str | None]) -> pd.DataFrame | None:
    """A copy of ``frame`` whose share columns (``{share column: its count column or None}``) read as
    :func:`share_text`; columns it lacks are left out."""
    if frame is None:
        return None
    out = frame.copy()
    for column, total in shares.items():
        if column in out.columns:
            counts = out[total] if total and total in out.columns else [None] * len(out)
            out[column] = [share_text(v, n) for v, n in zip(out[column], counts)]
    return out


def column_widths(weights: Sequence[float]) -> list[str | int]:
    """Percent widths from relative weights (``gr.Dataframe(column_widths=...)``), summing to 100%."""
    total = float(sum(weights)) or 1.0
    return [f"{100 * w / total:.1f}%" for w in weights]  # typed as Gradio's parameter (str | int)


# --- charts -------------------------------------------------------------------------------------------------------
# Colours that stay apart for people with the common colour-vision deficiencies (Okabe-Ito), in a fixed order: the
# human answers always get the first, each model the next one, so a source keeps its colour across charts.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_TEXT = "#6b7280"  # readable on the light and the dark theme


def series_colors(names: Sequence[str]) -> dict[str, str]:
    """A fixed colour per series name, in order of first appearance."""
    out: dict[str, str] = {}
    for name in names:
        if name not in out:
            out[name] = PALETTE[len(out) % len(PALETTE)]
    return out


class Axes(TypedDict, total=False):
    """How a bar chart's axes read (:func:`bar_chart`'s keyword options; :data:`AXES_DEFAULTS` for a missing one)."""

    x_title: str | None  # the axis and tooltip titles; None: the column's name
    y_title: str | None
    color_title: str | None
    x_order: Sequence[str] | None  # the bars' order along x; None: as they come
    y_max: float | None  # the top of the y scale; None: the data's maximum
    y_format: str  # a d3 format for the y values, e.g. "d" (whole numbers) or ".0%"


AXES_DEFAULTS: Final[Axes] = {
    "x_title": None,
    "y_title": None,
    "color_title": None,
    "x_order": None,
    "y_max": None,
    "y_format": "d",
}


def bar_chart(
    frame: pd.DataFrame | None,
    x: str,
    y: str,
    *,
    title: str,
    empty: str,
    color: str | None = None,
    colors: Mapping[str, str] | None = None,
    **axes: Unpack[Axes],
) -> AltairPlotData:
    """A bar chart for a ``gr.Plot``: a Vega-Lite spec, drawn by Gradio's own Vega renderer with the app's theme
    (its fonts, text colours and series palette, light or dark) and the width of its box. ``axes``: the
    :class:`Axes` options (titles, x order, y scale and format).

    With ``color``, each series has its own colour and legend entry and its bars stand side by side (grouped,
    not stacked). Without data it shows the sentence ``empty`` (what will appear there) and no axes. The whole
    spec is sent with every update, so new series always get their colour (``gr.BarPlot`` keeps the colour scale
    of its first data). No ``width``: Gradio sets it to the box's width, also when a hidden tab opens."""
    unknown = sorted(set(axes) - set(AXES_DEFAULTS))
    if unknown:
        raise TypeError(f"bar_chart() got unknown axes option(s) {', '.join(unknown)}: use {', '.join(AXES_DEFAULTS)}")
    a: Axes = {**AXES_DEFAULTS, **axes}
    x_title, y_title, color_title = a["x_title"], a["y_title"], a["color_title"]
    x_order, y_max, y_format = a["x_order"], a["y_max"], a["y_format"]
    width_step = {"height": 300, "autosize": {"type": "fit", "contains": "padding"}}
    base: dict[str, Any] = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": {"text": title, "color": _TEXT, "fontWeight": "normal", "anchor": "start"},
        "background": "transparent",
        "config": {
            "view": {"stroke": None},
            "axis": {
                "labelColor": _TEXT,
                "titleColor": _TEXT,
                "grid": True,
                "gridOpacity": 0.3,
                "domain": False,
                "tickColor": _TEXT,
            },
            "legend": {"labelColor": _TEXT, "titleColor": _TEXT, "orient": "bottom"},
        },
        # SVG so the marks are elements (tests and screen readers see them); no action menu
        "usermeta": {"embedOptions": {"renderer": "svg", "actions": False}},
        **width_step,
    }
    rows = [] if frame is None or frame.empty else json.loads(frame.to_json(orient="records"))
    if not rows:
        base["height"] = 120
        base["data"] = {"values": [{"text": empty}]}
        base["mark"] = {"type": "text", "fontSize": 14, "color": _TEXT, "limit": 600}
        base["encoding"] = {"text": {"field": "text"}}
        return AltairPlotData(chart="bar", plot=json.dumps(base))
    order = list(x_order) if x_order else list(dict.fromkeys(r[x] for r in rows))
    scale: dict[str, Any] = {"domainMin": 0}
    if y_max is not None:
        scale["domainMax"] = y_max
    encoding: dict[str, Any] = {
        "x": {
            "field": x,
            "type": "nominal",
            "sort": order,
            "title": x_title or x,
            "axis": {"labelAngle": 0, "labelLimit": 160},
        },
        "y": {
            "field": y,
            "type": "quantitative",
            "title": y_title or y,
            "scale": scale,
            "axis": {"format": y_format, **({"tickMinStep": 1} if y_format == "d" else {})},
        },
        "tooltip": [
            {"field": x, "type": "nominal", "title": x_title or x},
            {"field": y, "type": "quantitative", "title": y_title or y},
        ],
    }
    if color:
        series = colors or series_colors([r[color] for r in rows])
        names = [n for n in series if any(r[color] == n for r in rows)]
        encoding["color"] = {
            "field": color,
            "type": "nominal",
            "title": color_title or color,
            "scale": {"domain": names, "range": [series[n] for n in names]},
            "legend": {"orient": "bottom", "labelLimit": 280},
        }
        if color != x:  # bars of one x value stand side by side, one per series
            encoding["xOffset"] = {"field": color, "type": "nominal", "sort": names}
        encoding["tooltip"].insert(0, {"field": color, "type": "nominal", "title": color_title or color})
    base["data"] = {"values": rows}
    base["mark"] = {"type": "bar", "tooltip": True}
    base["encoding"] = encoding
    return AltairPlotData(chart="bar", plot=json.dumps(base))
