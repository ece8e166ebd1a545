"""The Argilla tab's "Annotators in view" section: how far each dataset has come, refreshed on a ``gr.Timer`` while
the tab is open (the app stops the timer when another tab opens: :func:`timer_for_tab`).

UI glue only: :func:`pipeline.argilla.workspace_progress` reads the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import gradio as gr
import pandas as pd

from pipeline import argilla as aio
from ui.common import md_text, table_frame
from ui.forms import Form, pick
from ui.forms import wire as wire_event
from ui.session import Session

_md = md_text
DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType({"url": "", "workspace": None})


PROGRESS_EVERY_S: Final = 30.0  # the progress refreshes this often while the tab is open
PROGRESS_COLUMNS = ["dataset", "records", "no answer", "1 answer", "2+ answers", "answers", "last activity"]
PROGRESS_COLUMNS += ["agreement so far"]
PROGRESS_ANNOTATOR_COLUMNS = ["annotator", "dataset", "submitted", "discarded", "draft"]


def _progress_frames(items: list[aio.DatasetProgress]) -> tuple[pd.DataFrame, pd.DataFrame]:
    datasets = pd.DataFrame([p.row() for p in items], columns=PROGRESS_COLUMNS)
    people = [
        {"annotator": user, "dataset": p.dataset, **{s: counts.get(s, 0) for s in ("submitted", "discarded", "draft")}}
        for p in items
        for user, counts in sorted(p.annotators.items())
    ]
    return table_frame(datasets), table_frame(pd.DataFrame(people, columns=PROGRESS_ANNOTATOR_COLUMNS))


def _shown(text: str, frames: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, Any]:
    return {"progress_status": text, "progress": frames[0], "progress_annotators": frames[1]}


def on_progress(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """How far the workspace's DPO Studio datasets have come (the tab's timer calls this while the tab is open).
    ``values``: ``url`` and ``workspace`` (:data:`DEFAULTS`). Makes no call before a URL and a key are known.
    Named outputs: ``progress_status``, ``progress`` (per dataset), ``progress_annotators``."""
    v = {**DEFAULTS, **values}
    empty = _progress_frames([])
    url = (v["url"] or "").strip() or session.argilla_url or aio.env_url()
    if not url or not (session.argilla_key or aio.env_key_set()):
        return _shown("Connect to Argilla (or create a Space) to follow your annotators here.", empty)
    try:
        with aio.connect(url, session.argilla_key) as conn:
            items = aio.workspace_progress(conn, v["workspace"] or None)
    except aio.ArgillaIOError as exc:
        return _shown(f"**Progress not available.** {_md(exc)}", empty)
    if not items:
        return _shown("No dataset sent by DPO Studio in this workspace yet.", empty)
    answers = sum(p.row()["answers"] for p in items)
    text = (
        f"**{len(items)} dataset(s), {answers} answer(s) so far.** Refreshed every {PROGRESS_EVERY_S:.0f} s while "
        "this tab is open."
    )
    return _shown(text, _progress_frames(items))


def start_timer() -> dict[str, Any]:
    """The tab opened: its progress timer runs (named output ``timer``)."""
    return {"timer": gr.Timer(active=True)}


def timer_for_tab(evt: gr.SelectData) -> gr.Timer:
    """Keep the progress timer running only while this tab is the one open (wired on the app's ``gr.Tabs``)."""
    return gr.Timer(active=str(evt.value).endswith("Argilla"))


def build_section(c: dict[str, Any]) -> None:
    """The section's components, added to the tab's ``c`` by name."""
    gr.Markdown("### Annotators in view")
    c["progress_status"] = gr.Markdown("Connect to Argilla (or create a Space) to follow your annotators here.")
    c["progress"] = gr.Dataframe(
        value=_progress_frames([])[0], label="Progress per dataset", interactive=False, wrap=True
    )
    c["progress_annotators"] = gr.Dataframe(
        value=_progress_frames([])[1], label="Answers per annotator", interactive=False, wrap=True
    )
    c["progress_refresh"] = gr.Button("Refresh now", size="sm")
    c["progress_timer"] = gr.Timer(PROGRESS_EVERY_S, active=False)


def follow_tabs(tabs: gr.Tabs, timer: gr.Timer) -> None:
    """Wire the app's ``gr.Tabs`` so the progress timer runs only while this tab is open (:func:`timer_for_tab`
    reads Gradio's ``SelectData``, which is not a form value)."""
    tabs.select(timer_for_tab, None, timer)


def wire(session: gr.State, tab: gr.Tab, c: dict[str, Any]) -> None:
    """The timer, the refresh button, and the tab's ``select`` that starts the timer and refreshes at once."""
    form = Form(url=c["url"], workspace=c["workspace"])
    out = pick(c, "progress_status", "progress", "progress_annotators")
    wire_event(c["progress_timer"].tick, on_progress, session=session, form=form, outputs=out, show_progress="hidden")
    wire_event(
        c["progress_refresh"].click, on_progress, session=session, form=form, outputs=out, api_name="on_progress"
    )
    started = wire_event(tab.select, start_timer, outputs={"timer": c["progress_timer"]})
    wire_event(started.then, on_progress, session=session, form=form, outputs=out, show_progress="hidden")
