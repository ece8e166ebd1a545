"""DPO Studio: build a DPO/ORPO preference dataset for your language.

UI only: every tab lives in ``ui/`` and calls the logic in ``pipeline/``.
"""

from __future__ import annotations

import os

import gradio as gr

from pipeline import links
from pipeline.core import languages, netguard
from pipeline.core.schema import ModelChoice
from pipeline.inference.kinds import KINDS
from pipeline.langcheck import heli_model
from ui import (
    argilla_progress,
    argilla_tab,
    export_tab,
    filter_link,
    filter_tab,
    pipeline_tab,
    playground_tab,
    sign_in,
    train_tab,
)
from ui.common import md_text
from ui.forms import Form, wire
from ui.session import Session

TITLE = "DPO Studio"
INTRO_SHORT = "Build a **DPO/ORPO preference dataset for your language**, with your community."
INTRO = (
    "Filter human-written prompts and answers from "
    "[Aya](https://huggingface.co/datasets/CohereForAI/aya_dataset), pick a model in the Playground, generate and "
    "judge a second answer, let your community validate the pairs in Argilla, export a dataset ready for TRL, and "
    "train a model on it with TRL on Hugging Face Jobs."
)
# Table headers wrap between words, never inside one ("sta/tus"); cells wrap long texts anywhere as before.
CSS = """
.table-wrap thead th, .table-wrap thead th * { word-break: normal !important; overflow-wrap: normal !important;
  hyphens: manual; }
/* The labelling panel's answers and moves are real buttons, finger-sized, on a phone too. */
.label-buttons button { min-height: 44px; border: 1px solid var(--button-secondary-border-color, #d1d5db) !important; }
/* Dropdown choices never run into the arrow. */
.wrap-inner input { text-overflow: ellipsis; padding-right: 1.75em; }
/* On a phone: a short header, and wide tables scroll sideways instead of crushing their columns. */
#intro-more { display: block; }
@media (max-width: 640px) {
  #intro-more, #signin-more { display: none; }
  #app-header h1 { font-size: 1.4em; margin-bottom: 0.2em; }
  .table-wrap .body-cell, .table-wrap .header-cell, .table-wrap th { min-width: 120px !important; }
}
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
    sign_in.configure(show_login, login_note)  # the tabs' sign-in texts follow the real state
    # Downloads are written to temp files: delete those older than a day, checking every hour.
    with gr.Blocks(title=TITLE, delete_cache=(3600, 86400)) as demo:
        session = gr.State(Session())
        with gr.Row(elem_id="app-header"):
            with gr.Column(scale=4):
                gr.Markdown(f"# {TITLE}\n{INTRO_SHORT}")
                gr.Markdown(INTRO, elem_id="intro-more")
            with gr.Column(scale=1, min_width=220):
                if show_login:
                    gr.LoginButton()
                else:
                    gr.Markdown("**Sign-in is off here:** the demo data and a local server work without it.")
                    gr.Markdown(
                        f"{login_note} Pushing to the Hub and serverless inference need it.", elem_id="signin-more"
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
        argilla_progress.follow_tabs(tabs, argilla_timer)  # the progress refreshes only while its tab is open
        message_form = Form(link=link, add_argilla=add_argilla)
        made = wire(make_link.click, share_link, session=session, outputs={"link": link, "note": link_note})
        for trigger in (made.then, add_argilla.change):
            wire(
                trigger, argilla_tab.on_share_message, session=session, form=message_form, outputs={"message": message}
            )
        wire(demo.load, open_link, session=session, outputs={"banner": link_banner})
        filter_link.open_link_on_load(demo, session, filter_parts)
    return demo


def share_link(session: Session, request: gr.Request) -> dict:
    """The community link for this session's choices (named output ``link``), and a ``note`` saying what it
    carries (where the model runs: the backend kind and a server's public URL, never a key) and what it does not."""
    choices = links.choices_from_session(session)
    if choices.is_empty():
        gr.Warning("Choose a language in 1. Filter (and a model in 2. Playground) first.")
        return {
            "link": "",
            "note": "Choose a language in **1. Filter** first (and a model in **2. Playground**, then **Use in "
            "pipeline**).",
        }
    base = links.public_base_url(str(request.url), os.environ.get("SPACE_HOST"))
    missing = links.missing_choices(choices)
    carried = [f"language **{md_text(choices.language)}**"] if choices.language else []
    if choices.model:
        carried.append(f"model **{md_text(choices.model)}** on {md_text(choices.where())}")
    if choices.system_prompt and "a system prompt" not in missing:
        carried.append("your system prompt")
    note = f"The link carries {', '.join(carried)}." if carried else ""
    if choices.model and choices.backend in KINDS and KINDS[choices.backend].needs_url:
        note += " No API key travels in it: people who open it type their own if the server needs one."
    if missing and "a model" in missing:
        note += (
            f" It does not carry {' or '.join(missing)}: in **2. Playground** pick a model and click "
            "**Use in pipeline**, then make the link again to add the model and its system prompt."
        )
    elif missing:
        note += f" It does not carry {' or '.join(missing)}."
    return {"link": links.build_link(base, choices), "note": note.strip()}


def open_link(session: Session, request: gr.Request) -> dict:
    """Opened from a community link: its model (with where it runs) becomes this session's model choice, so the
    Playground and the Pipeline tab start from it; one line at the top names what the link chose, and why a
    server it named was refused (a private address on a public deployment)."""
    shared = links.shared_from_request(request)
    if shared.is_empty() and not shared.refused:
        return {"banner": gr.update(visible=False)}
    if shared.model and session.model_choice is None:
        session.model_choice = ModelChoice(
            model=shared.model,
            backend=shared.backend or "serverless",
            base_url=shared.base_url,
            provider=shared.provider or "auto",
            system_prompt=shared.system_prompt,
        )
    parts = []
    if shared.language:
        known = languages.lookup(shared.language)
        if known is None:
            parts.append(f"language **{md_text(shared.language)}**, which is not a language DPO Studio knows")
        else:
            parts.append(f"language **{md_text(known.name)} ({md_text(shared.language)})**")
    if shared.model:
        where = f" on {md_text(shared.where())}" if shared.where() else ""
        parts.append(f"model **{md_text(shared.model)}**{where}")
    if shared.system_prompt:
        parts.append("a system prompt")
    tabs = "**1. Filter**, **2. Playground** and **3. Pipeline**" if shared.model else "**1. Filter**"
    text = f"🔗 **Opened from a shared link:** {', '.join(parts)}, chosen for you in {tabs}." if parts else ""
    if shared.refused:
        text += f" The link's server was not used: {md_text(shared.refused)}"
    return {"banner": gr.update(visible=True, value=text.strip())}


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
    if in_space():  # the compact heliport model (130 MB of arrays instead of 860 MB in memory) is built once
        heli_model.build_in_background()
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
