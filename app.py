"""DPO Studio: build a DPO/ORPO preference dataset for your language.

UI only: every tab lives in ``ui/`` and calls the logic in ``pipeline/``.
"""

from __future__ import annotations

import os

import gradio as gr

from pipeline.core import languages, links, netguard
from ui import argilla_progress, argilla_tab, export_tab, filter_tab, pipeline_tab, playground_tab, train_tab
from ui.common import md_text
from ui.session import Session

TITLE = "DPO Studio"
INTRO = (
    "Build a **DPO/ORPO preference dataset for your language**: filter human-written prompts and answers from "
    "[Aya](https://huggingface.co/datasets/CohereForAI/aya_dataset), pick a model in the Playground, generate and "
    "judge a second answer, let your community validate the pairs in Argilla, export a dataset ready for TRL, and "
    "train a model on it with TRL on Hugging Face Jobs."
)
# Table headers wrap between words, never inside one ("sta/tus"); cells wrap long texts anywhere as before.
CSS = """
.table-wrap thead th, .table-wrap thead th * { word-break: normal !important; overflow-wrap: normal !important;
  hyphens: manual; }
"""


def in_space() -> bool:
    return os.environ.get("SYSTEM") == "spaces"


def login_available() -> tuple[bool, str]:
    """Whether to show "Sign in with Hugging Face", and if not, the one line that says why.

    On a Space (``hf_oauth: true``) sign-in is real. Locally Gradio mocks it with the machine's HF token, and
    asks the Hub who that is once at start-up: without a token, or without a Hub to ask, there is no sign-in.
    """
    if in_space():
        return True, ""
    from pipeline.core import hub

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
        link_banner = gr.Markdown(visible=False, elem_id="link-banner")
        with gr.Tabs() as tabs:
            with gr.Tab("1. Filter", id="filter") as tab_filter:
                filter_parts = filter_tab.build(session, tab_filter)
            with gr.Tab("2. Playground", id="playground") as tab_playground:
                playground_tab.build(session, tab_playground)
            with gr.Tab("3. Pipeline", id="pipeline") as tab_pipeline:
                pipeline_tab.build(session, tab_pipeline)
            with gr.Tab("4. Argilla", id="argilla") as tab_argilla:
                argilla_timer = argilla_tab.build(session, tab_argilla)
            with gr.Tab("5. Export", id="export") as tab_export:
                export_tab.build(session, tab_export)
            with gr.Tab("6. Train", id="train") as tab_train:
                train_tab.build(session, tab_train)
        with gr.Accordion("Share a link with your community", open=False):
            gr.Markdown(
                "A link that opens DPO Studio with your language, and the model and system prompt you chose in the "
                "Playground (**Use in pipeline**), already selected. Nothing secret goes into it."
            )
            with gr.Row():
                make_link = gr.Button("Make the link from my choices", scale=1)
                link = gr.Textbox(label="Link", interactive=False, buttons=["copy"], scale=3, elem_id="share-link")
            link_note = gr.Markdown(elem_id="share-link-note")
            with gr.Row():  # the Argilla dataset's link and guidelines, for one message to annotators
                add_argilla = gr.Checkbox(label="Add the Argilla dataset's link and the guidelines", value=False)
                message = gr.Textbox(
                    label="Message for annotators",
                    lines=6,
                    interactive=False,
                    buttons=["copy"],
                    elem_id="share-message",
                )
        tabs.select(argilla_progress.timer_for_tab, None, argilla_timer)  # the progress refreshes only while it is open
        make_link.click(share_link, [session], [link, link_note]).then(
            argilla_tab.share_message, [session, link, add_argilla], [message]
        )
        add_argilla.change(argilla_tab.share_message, [session, link, add_argilla], [message])
        demo.load(link_banner_text, None, [link_banner])
        filter_tab.open_link_on_load(demo, session, filter_parts)
    return demo


def share_link(session: Session, request: gr.Request) -> tuple[str, str]:
    """The community link for this session's choices, and a note saying what it does not carry and why."""
    choices = links.choices_from_session(session)
    if choices.is_empty():
        gr.Warning("Choose a language in 1. Filter (and a model in 2. Playground) first.")
        return "", (
            "Choose a language in **1. Filter** first (and a model in **2. Playground**, then **Use in pipeline**)."
        )
    base = links.public_base_url(str(request.url), os.environ.get("SPACE_HOST"))
    missing = links.missing_choices(choices)
    if not missing:
        note = "The link opens the app with your language, model and system prompt chosen."
    elif "a model" in missing:
        note = (
            f"This link does not carry {' or '.join(missing)}: in **2. Playground** pick a model and click "
            "**Use in pipeline**, then make the link again to add the model and its system prompt."
        )
    else:
        note = f"This link does not carry {' or '.join(missing)}."
    return links.build_link(base, choices), note


def link_banner_text(request: gr.Request) -> dict:
    """Opened from a community link: one line naming what the link chose (and where), at the top of the page."""
    shared = links.parse_link_params(dict(request.query_params))
    if shared.is_empty():
        return gr.update(visible=False)
    parts = []
    if shared.language:
        parts.append(f"language **{md_text(languages.display_name(shared.language))} ({md_text(shared.language)})**")
    if shared.model:
        parts.append(f"model **{md_text(shared.model)}**")
    if shared.system_prompt:
        parts.append("a system prompt")
    where = "in **1. Filter** and **2. Playground**" if shared.model or shared.system_prompt else "in **1. Filter**"
    text = f"🔗 **Opened from a shared link:** {', '.join(parts)}, chosen for you {where}."
    return gr.update(visible=True, value=text)


def launch_options() -> dict:
    """The launch arguments that decide who can reach the app: the server name and whether to open a share link
    (Gradio's own defaults and environment variables, read here so that what the address guard sees is what the
    launch uses)."""
    return {
        "server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        "share": os.environ.get("GRADIO_SHARE", "").strip().lower() == "true",
    }


def guard_for_launch(options: dict) -> str | None:
    """Turn the private-address guard on when this launch serves beyond this machine (pipeline.core.netguard);
    returns why it is on, or None for a local run."""
    reason = netguard.launch_reason(options.get("server_name"), bool(options.get("share")))
    if reason:
        netguard.enable(reason)
    return netguard.guard_reason()


def main() -> None:
    options = launch_options()
    guard = guard_for_launch(options)  # before any request: sign-in's whoami below goes through the guard too
    print(f"Private-address guard: {'on (' + guard + ')' if guard else 'off (a local run)'}", flush=True)
    show_login, note = login_available()
    demo = build_app(show_login=show_login, login_note=note)
    # Queue: 8 workers for ordinary events; the Playground's streaming runs up to 24 at once (its own limit) and
    # pipeline runs execute in background threads that the tab polls, so a long run never holds a worker.
    # max_threads: every streaming generation holds one of Gradio's worker threads (default 40).
    # run_history=False: Gradio's "Runs" panel would keep every click's inputs, API keys included, in the browser's
    # localStorage.
    demo.queue(default_concurrency_limit=8).launch(
        css=CSS,
        **options,
        ssr_mode=False,
        run_history=False,
        max_threads=64,
    )


if __name__ == "__main__":
    main()
