"""DPO Studio: build a DPO/ORPO preference dataset for your language.

UI only: every tab lives in ``ui/`` and calls the logic in ``pipeline/``.
"""

from __future__ import annotations

import os

import gradio as gr

from pipeline import links
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
                filter_parts = filter_tab.build(session, tab_filter)
            with gr.Tab("2. Playground", id="playground") as tab_playground:
                playground_tab.build(session, tab_playground)
            with gr.Tab("3. Pipeline", id="pipeline") as tab_pipeline:
                pipeline_tab.build(session, tab_pipeline)
            with gr.Tab("4. Argilla", id="argilla") as tab_argilla:
                argilla_tab.build(session, tab_argilla)
            with gr.Tab("5. Export", id="export") as tab_export:
                export_tab.build(session, tab_export)
        with gr.Accordion("Share a link with your community", open=False):
            gr.Markdown(
                "A link that opens DPO Studio with your language, and the model and system prompt you chose in the "
                "Playground (**Use in pipeline**), already selected. Nothing secret goes into it."
            )
            with gr.Row():
                make_link = gr.Button("Make the link from my choices", scale=1)
                link = gr.Textbox(label="Link", interactive=False, buttons=["copy"], scale=3, elem_id="share-link")
        make_link.click(share_link, [session], [link])
        demo.load(link_language, None, [filter_parts["language"]])
    return demo


def share_link(session: Session, request: gr.Request) -> str:
    """The community link for this session's choices."""
    choices = links.choices_from_session(session)
    if choices.is_empty():
        gr.Warning("Choose a language in 1. Filter (and a model in 2. Playground) first.")
        return ""
    base = links.public_base_url(str(request.url), os.environ.get("SPACE_HOST"))
    return links.build_link(base, choices)


def link_language(request: gr.Request) -> dict:
    """Opened from a community link: pre-select its language in the Filter tab (applied when the data loads)."""
    shared = links.parse_link_params(dict(request.query_params))
    return gr.update(value=shared.language) if shared.language else gr.update()


def main() -> None:
    show_login, note = login_available()
    demo = build_app(show_login=show_login, login_note=note)
    # Queue: 8 workers for ordinary events; the Playground's streaming runs up to 24 at once (its own limit) and
    # pipeline runs execute in background threads that the tab polls, so a long run never holds a worker.
    # max_threads: every streaming generation holds one of Gradio's worker threads (default 40).
    # run_history=False: Gradio's "Runs" panel would keep every click's inputs, API keys included, in the browser's
    # localStorage.
    demo.queue(default_concurrency_limit=8).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        ssr_mode=False,
        run_history=False,
        max_threads=64,
    )


if __name__ == "__main__":
    main()
