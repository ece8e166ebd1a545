"""DPO Studio: build a DPO/ORPO preference dataset for your language.

UI only: every tab lives in ``ui/`` and calls the logic in ``pipeline/``.
"""

from __future__ import annotations

import os

import gradio as gr

from pipeline.state import Session
from ui import argilla_tab, export_tab, filter_tab, pipeline_tab, playground_tab

TITLE = "DPO Studio"
INTRO = (
    "Build a **DPO/ORPO preference dataset for your language**: filter human-written prompts and answers from "
    "[Aya](https://huggingface.co/datasets/CohereForAI/aya_dataset), pick a model in the Playground, generate and "
    "judge a second answer, let your community validate the pairs in Argilla, and export a dataset ready for TRL."
)


def oauth_available() -> bool:
    """Sign-in works on a Space with ``hf_oauth: true``; locally Gradio mocks it only when an HF token exists."""
    if os.environ.get("SPACE_ID"):
        return True
    try:
        from huggingface_hub import get_token

        return get_token() is not None
    except Exception:  # noqa: BLE001 - no token source at all
        return False


def build_app() -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        session = gr.State(Session())
        with gr.Row():
            with gr.Column(scale=4):
                gr.Markdown(f"# {TITLE}\n{INTRO}")
            with gr.Column(scale=1, min_width=220):
                if oauth_available():
                    gr.LoginButton()
                else:
                    gr.Markdown(
                        "**Not signed in.** Sign-in works when this app runs as a Hugging Face Space. "
                        "Pushing to the Hub and serverless inference need it; the demo data and a local "
                        "OpenAI-compatible server work without it."
                    )
        with gr.Tabs():
            with gr.Tab("1. Filter", id="filter") as tab_filter:
                filter_tab.build(session, tab_filter)
            with gr.Tab("2. Playground", id="playground") as tab_playground:
                playground_tab.build(session, tab_playground)
            with gr.Tab("3. Pipeline", id="pipeline") as tab_pipeline:
                pipeline_tab.build(session, tab_pipeline)
            with gr.Tab("4. Argilla", id="argilla") as tab_argilla:
                argilla_tab.build(session, tab_argilla)
            with gr.Tab("5. Export", id="export") as tab_export:
                export_tab.build(session, tab_export)
    return demo


demo = build_app()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=8).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        ssr_mode=False,
    )
