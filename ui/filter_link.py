"""The Filter tab opened from a community link (``?language=&source=``): load the link's source, filter its
language with the tab's defaults, and say plainly when the language is unknown or not in the data. Wired on the
page's load by ``app.py``; the tab's own handlers live in ``ui/filter_tab.py``."""

from __future__ import annotations

from typing import Any

import gradio as gr

from pipeline import links
from pipeline.core import languages
from ui.filter_tab import (
    FILTER_OUTPUTS,
    LINK_SOURCES,
    LOAD_OUTPUTS,
    SRC_AYA,
    SRC_DEMO,
    _md,
    _waiting_for_data,
    on_filter,
    on_load,
)
from ui.forms import wire
from ui.session import Session


def on_link_open(session: Session, request: gr.Request, profile: gr.OAuthProfile | None = None) -> dict:
    """Page load with ``?language=…&source=…``: land ready. The link's source is chosen; the demo data (bundled,
    instant) is loaded and filtered to the link's language at once; Aya (about 200,000 rows from the Hub) is one
    click on **Load** away, with the language already chosen and named. A language the data does not have (or no
    language at all, like ``Klingon``) is said plainly. Named outputs: those of :func:`on_load` and
    :func:`on_filter`, and ``source``."""
    shared = links.shared_from_request(request)
    if not shared.language and not shared.source:
        return {}
    choice = LINK_SOURCES.get(shared.source, SRC_AYA)
    known = languages.lookup(shared.language) if shared.language else None
    if choice == SRC_DEMO:
        loaded = on_load(session, {"source": SRC_DEMO, "language": shared.language or None})
        chosen = loaded.get("language", {}).get("value")
        out = {**loaded, **on_filter(session, {"language": chosen}, profile), "source": gr.update(value=SRC_DEMO)}
        if shared.language and not chosen:  # said under the load status (the count line is the filter's)
            out["load_status"] += "\n\n" + _not_in_data(shared.language, known is not None, "the demo data")
        return out
    if shared.language and known is None:
        status = (
            f"**Opened from a shared link** for the language {_md(shared.language)}, which is not a language DPO "
            "Studio knows. Click **Load**, then choose a language from the list."
        )
        return {"source": gr.update(value=SRC_AYA), "load_status": status, "count": _waiting_for_data(None)}
    name = known.name if known else ""
    chosen_text = f"{_md(name)} ({_md(shared.language)})" if shared.language else "no language"
    status = (
        f"**Opened from a shared link** for {chosen_text} on Aya. Click **Load** to get Aya's rows (about "
        "200,000; a few seconds), or choose the demo data."
    )
    out = {"source": gr.update(value=SRC_AYA), "load_status": status, "count": _waiting_for_data(shared.language)}
    if shared.language:
        choices = [(f"{name} ({shared.language})", shared.language)]
        out["language"] = gr.update(choices=choices, value=shared.language, interactive=True)
    return out


def _not_in_data(language: str, known: bool, where: str) -> str:
    """The count line for a link's language that the loaded data does not have."""
    if not known:
        return f"**The link's language {_md(language)} is not a language DPO Studio knows.** Choose one from the list."
    name = languages.display_name(language)
    return f"**{_md(name)} ({_md(language)}) is not in {where}.** Choose a language from the list, or load Aya."


def open_link_on_load(demo: gr.Blocks, session: gr.State, c: dict[str, Any]) -> None:
    """Wire :func:`on_link_open` to the page's load event (app.py calls this once)."""
    shown = (*LOAD_OUTPUTS, *FILTER_OUTPUTS, "source")
    wire(demo.load, on_link_open, session=session, outputs={k: c[k] for k in dict.fromkeys(shown)})
