"""The Export tab (placeholder until its issue lands)."""

from __future__ import annotations

import gradio as gr


def build(session: gr.State, tab: gr.Tab) -> None:
    """Build the tab inside `tab`; `tab.select(...)` can refresh it from the session when the user opens it."""
    gr.Markdown("**Coming next.** This step is not available in this version yet.")
