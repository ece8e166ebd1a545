"""The Pipeline tab (placeholder until its issue lands)."""

from __future__ import annotations

import gradio as gr


def build(session: gr.State) -> None:
    gr.Markdown("**Coming next.** This step is not available in this version yet.")
