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
from ui.forms import Form
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


def on_progress(session: Session, values: Mapping[str, Any]) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """How far the workspace's DPO Studio datasets have come (the tab's timer calls this while the tab is open).
    ``values``: ``url`` and ``workspace`` (:data:`DEFAULTS`). Makes no call before a URL and a key are known."""
    v = {**DEFAULTS, **values}
    empty = _progress_frames([])
    url = (v["url"] or "").strip() or session.argilla_url or aio.env_url()
    if not url or not (session.argilla_key or aio.env_key_set()):
        return "Connect to Argilla (or create a Space) to follow your annotators here.", *empty
    try:
        with aio.connect(url, session.argilla_key) as conn:
            items = aio.workspace_progress(conn, v["workspace"] or None)
    except aio.ArgillaIOError as exc:
        return f"**Progress not available.** {_md(exc)}", *empty
    if not items:
        return "No dataset sent by DPO Studio in this workspace yet.", *empty
    answers = sum(p.row()["answers"] for p in items)
    text = (
        f"**{len(items)} dataset(s), {answers} answer(s) so far.** Refreshed every {PROGRESS_EVERY_S:.0f} s while "
        "this tab is open."
    )
    return text, *_progress_frames(items)


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


def wire(session: gr.State, tab: gr.Tab, c: dict[str, Any]) -> None:
    """The timer, the refresh button, and the tab's ``select`` that starts the timer and refreshes at once."""
    progress_form = Form(url=c["url"], workspace=c["workspace"])

    def _on_progress(inputs: dict) -> tuple:
        return on_progress(inputs[session], progress_form.values(inputs))

    progress_out = [c["progress_status"], c["progress"], c["progress_annotators"]]
    c["progress_timer"].tick(_on_progress, progress_form.inputs(session), progress_out, show_progress="hidden")
    c["progress_refresh"].click(_on_progress, progress_form.inputs(session), progress_out, api_name="on_progress")
    tab.select(lambda: gr.Timer(active=True), None, c["progress_timer"]).then(
        _on_progress, progress_form.inputs(session), progress_out, show_progress="hidden"
    )
