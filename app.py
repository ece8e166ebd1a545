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


def in_space() -> bool:
    return os.environ.get("SYSTEM") == "spaces"


def login_available() -> tuple[bool, str]:
    """Whether to show "Sign in with Hugging Face", and if not, the one line that says why.

    On a Space (``hf_oauth: true``) sign-in is real. Locally Gradio mocks it with the machine's HF token, and
    asks the Hub who that is once at start-up: without a token, or without a Hub to ask, there is no sign-in.
    """
    if in_space():
        return True, ""
    from pipeline import hub

    return hub.local_login_check()


def build_app(show_login: bool = False, login_note: str = "") -> gr.Blocks:
    # Downloads are written to temp files: delete those older than a day, checking every hour.
    with gr.Blocks(title=TITLE, delete_cache=(3600, 86400)) as demo:
        session = gr.State(Session())
        with gr.Row():
            with gr.Column(scale=4):
                gr.Markdown(f"# {TITLE}\n{INTRO}")
            with gr.Column(scale=1, min_width=220):
                if show_login:
                    gr.LoginButton()
                else:
                    gr.Markdown(
                        f"**Sign-in is off here.** {login_note} Pushing to the Hub and serverless inference "
                        "need it; the demo data and a local OpenAI-compatible server work without it."
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


def main() -> None:
    show_login, note = login_available()
    demo = build_app(show_login=show_login, login_note=note)
    demo.queue(default_concurrency_limit=8).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        ssr_mode=False,
    )


if __name__ == "__main__":
    main()
