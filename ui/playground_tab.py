"""The Playground tab: vibe-check up to three models and a system prompt side by side (UI wiring only; the logic
is in ``pipeline.playground``, ``pipeline.inference``, ``pipeline.langdetect`` and ``pipeline.templates``)."""

from __future__ import annotations

import html
import re
import tempfile
import uuid

import gradio as gr

from pipeline import inference, langdetect, links, playground, templates
from pipeline.inference import GenParams
from pipeline.state import Session
from ui.common import token_of, warn

KIND_CHOICES = [
    ("HF Inference Providers (serverless, sign-in)", "serverless"),
    ("HF Inference Endpoint (URL)", "endpoint"),
    ("OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp)", "openai"),
]
DEFAULT_MODELS = ("meta-llama/Llama-3.3-70B-Instruct", "Qwen/Qwen2.5-72B-Instruct", "")
# How many people can stream Playground answers at once (app-wide). A generation holds one of Gradio's worker
# threads (40 by default) for as long as the model streams, so this stays below that and leaves threads for every
# other click; the backends themselves are protected by pipeline.inference's per-backend limiters. With 8, the
# ninth person waited for a whole generation to finish (bench/load.py --latency 2: prompt p95 5.2 s vs 2.1 s).
GENERATE_CONCURRENCY = 24
NO_DATA = "No filtered data yet: type a prompt, or load data in **1. Filter** to sample real prompts."
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def _safe(text: str) -> str:
    """Untrusted text for a Markdown component: no HTML, no Markdown formatting or links."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text or "", quote=False))


def _stats_html(text: str) -> str:
    """A column's status line as inert HTML: escaped text (no tags, no Markdown, no auto-links)."""
    return f'<div style="font-size:0.9em;line-height:1.4">{html.escape(text or "")}</div>'


def _language_choices(extra: tuple[str, str] | None = None) -> list[tuple[str, str]]:
    """Aya's languages (plus ``extra`` = (name, code) of the loaded data if it is not one of them)."""
    names = dict(langdetect.AYA_LANGUAGES)
    if extra and extra[1] and extra[1] not in names:
        names[extra[1]] = extra[0] or extra[1]
    return [("(none: no language check)", "")] + sorted(
        ((f"{name} ({code})", code) for code, name in names.items()), key=lambda c: c[0]
    )


def _template_choices(code: str) -> list[str]:
    return [t.name for t in templates.templates_for(code or None)]


def _language_note(code: str) -> str:
    if not code:
        return "No target language: answers are not checked for language."
    name = langdetect.language_name(code)
    if langdetect.is_supported(code):
        return f"Target **{_safe(name)} ({code})**: every answer gets a language check."
    return (f"Target **{_safe(name)} ({code})**: the language detector (langid) does not know this language, so "
            "answers are **not checked** (shown as ➖, never as a mismatch).")


def _column_ui(letter: str, default_model: str) -> dict:
    with gr.Column(min_width=260):
        gr.Markdown(f"### Model {letter}")
        model = gr.Dropdown(
            choices=list(inference.SUGGESTED_MODELS),
            value=default_model or None,
            allow_custom_value=True,
            label="Model id" + (" (leave empty to skip)" if letter != "A" else ""),
            info="Any chat model id (owner/name), or pick a suggestion.",
        )
        kind = gr.Dropdown(choices=KIND_CHOICES, value="serverless", label="Runs on")
        provider = gr.Dropdown(choices=list(inference.PROVIDERS), value="auto", label="Provider",
                               info="auto = the first available in your Hugging Face settings order.")
        base_url = gr.Textbox(label="Base URL", placeholder="http://127.0.0.1:8080/v1", visible=False)
        api_key = gr.Textbox(label="API key (optional)", type="password", visible=False,
                             info="Used for this server only, per request; never stored or shown again.")
        list_btn = gr.Button("List the server's models", size="sm", visible=False)
    kind.change(
        lambda k: (gr.update(visible=k == "serverless"), gr.update(visible=k != "serverless"),
                   gr.update(visible=k == "openai"), gr.update(visible=k == "openai")),
        inputs=kind, outputs=[provider, base_url, api_key, list_btn],
    )
    list_btn.click(_list_models, inputs=[kind, model, base_url, api_key], outputs=[model])
    return {"model": model, "kind": kind, "provider": provider, "base_url": base_url, "api_key": api_key}


def _list_models(kind: str, model: str, base_url: str, api_key: str):
    try:
        backend = inference.Backend("openai", model or "?", base_url)
        names = inference.list_models(backend, api_key or None)
    except inference.InferenceError as exc:
        warn(exc.message)
        return gr.update()
    if not names:
        gr.Warning("The server did not list any models at /models: type the model name yourself.")
        return gr.update()
    gr.Info(f"{len(names)} model(s) on the server.")
    return gr.update(choices=names, value=model if model in names else names[0])


def build(session: gr.State, tab: gr.Tab) -> None:
    """Build the tab inside ``tab``; opening the tab refreshes the target language from the filtered data."""
    last_run = gr.State({})  # labels/responses/prompt of the latest generation, for voting (per browser session)

    gr.Markdown(
        "Compare candidate models and a system prompt on real prompts of your language, side by side. Vote for "
        "the best answers, then send the winner to **3. Pipeline**."
    )
    with gr.Row():
        target = gr.Dropdown(choices=_language_choices(), value="", label="Target language", scale=2,
                             info="From your filtered data; change it to test another language.")
        target_note = gr.Markdown(_language_note(""))
    with gr.Accordion("Languages the detector cannot check", open=False):
        gr.Markdown(_safe(", ".join(langdetect.unsupported_names())) or "None.")

    columns = []
    with gr.Row(equal_height=False):
        for letter, default_model in zip(playground.LETTERS, DEFAULT_MODELS):
            columns.append(_column_ui(letter, default_model))

    with gr.Row():
        template = gr.Dropdown(choices=_template_choices(""), value=None, label="System prompt templates",
                               scale=3)
        insert_btn = gr.Button("Use this template", scale=1)
    system_prompt = gr.Textbox(
        label="System prompt", lines=3, value=templates.GENERIC[0].text,
        info="{language} is replaced by the target language's name when sent.",
    )

    with gr.Row():
        sample_btn = gr.Button("Random prompt from the data")
        data_note = gr.Markdown(NO_DATA)
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", lines=4, placeholder="Type a prompt, or sample one from your data.",
                            scale=3)
    with gr.Accordion("Generation settings", open=False):
        with gr.Row():
            max_tokens = gr.Slider(16, 4096, value=512, step=16, label="Max new tokens")
            temperature = gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="Temperature")
            top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p")
            seed = gr.Number(value=None, precision=0, label="Seed (empty = random)")
    with gr.Row():
        generate_btn = gr.Button("Generate", variant="primary")
        stop_btn = gr.Button("Stop")

    outputs_text, outputs_stats = [], []
    with gr.Row(equal_height=False):
        for letter in playground.LETTERS:
            with gr.Column(min_width=260):
                outputs_text.append(gr.Textbox(label=f"Answer {letter}", lines=12, max_lines=30,
                                               interactive=False))
                outputs_stats.append(gr.HTML(""))
        with gr.Column(min_width=260):
            human = gr.Textbox(label="Human answer (from the data)", lines=12, max_lines=30, interactive=False)

    gr.Markdown("### Your verdict")
    with gr.Row():
        vote = gr.Radio(choices=list(playground.VOTE_CHOICES), label="Which answer is best?", scale=3)
        vote_btn = gr.Button("Save vote", scale=1)
    vote_status = gr.Markdown("")
    tally = gr.Dataframe(value=playground.tally([]), label="Your votes so far (this session)", interactive=False)
    download = gr.DownloadButton("Download votes (CSV)", visible=False)

    gr.Markdown("### Use in pipeline")
    with gr.Row():
        chosen = gr.Radio(choices=list(playground.LETTERS), value="A", label="Model to use", scale=1)
        use_btn = gr.Button("Use in pipeline", variant="secondary", scale=1)
    use_status = gr.Markdown("")

    # --- handlers ---------------------------------------------------------------------------------------------
    def refresh(sess: Session, current: str, request: gr.Request | None = None):
        name, code = playground.target_language(sess.filtered)
        # A community link (?language=&model=&system_prompt=) pre-selects once per session.
        shared = links.parse_link_params(dict(request.query_params) if request is not None else {})
        first_visit = not sess.playground_tab.link_applied
        sess.playground_tab.link_applied = True
        if first_visit and not code and shared.language:
            code = shared.language
        code = code or current or ""
        rows = getattr(getattr(sess.filtered, "table", None), "num_rows", None)
        note = NO_DATA if sess.filtered is None else (
            f"{rows} prompts in your filtered data ({_safe(name or langdetect.language_name(code))}).")
        model_update = gr.update(value=shared.model) if first_visit and shared.model else gr.update()
        prompt_update = (gr.update(value=shared.system_prompt) if first_visit and shared.system_prompt
                         else gr.update())
        return (gr.update(choices=_language_choices((name, code)), value=code), _language_note(code),
                gr.update(choices=_template_choices(code), value=None), note, model_update, prompt_update)

    tab.select(refresh, inputs=[session, target],
               outputs=[target, target_note, template, data_note, columns[0]["model"], system_prompt])

    target.change(
        lambda code: (_language_note(code), gr.update(choices=_template_choices(code), value=None)),
        inputs=target, outputs=[target_note, template],
    )

    def use_template(name: str | None):
        chosen_template = templates.get(name or "")
        if chosen_template is None:
            gr.Warning("Pick a template first.")
            return gr.update()
        return chosen_template.text

    insert_btn.click(use_template, inputs=template, outputs=system_prompt)

    def sample(sess: Session):
        row = playground.sample_row(sess.filtered)
        if row is None:
            gr.Warning("No filtered data yet: load and filter a dataset in 1. Filter, or type a prompt.")
            return gr.update(), gr.update()
        return row.get("prompt", ""), row.get("response", "")

    sample_btn.click(sample, inputs=session, outputs=[prompt, human])

    column_inputs = []
    for col in columns:
        column_inputs += [col["kind"], col["model"], col["base_url"], col["provider"], col["api_key"]]

    def generate(prompt_text, system_text, code, max_new, temp, top, seed_value,
                 kind_a, model_a, url_a, provider_a, key_a,
                 kind_b, model_b, url_b, provider_b, key_b,
                 kind_c, model_c, url_c, provider_c, key_c,
                 oauth_token: gr.OAuthToken | None = None):
        configs = [(kind_a, model_a, url_a, provider_a, key_a), (kind_b, model_b, url_b, provider_b, key_b),
                   (kind_c, model_c, url_c, provider_c, key_c)]
        if not (prompt_text or "").strip():
            gr.Warning("The prompt is empty: type one or sample one from your data.")
            return
        user_token = token_of(oauth_token)
        requests = []
        for letter, (kind, model, url, provider, key) in zip(playground.LETTERS, configs):
            backend = playground.make_backend(kind, model, url, provider)
            token = (key or None) if kind == "openai" else user_token
            requests.append(playground.ColumnRequest(letter, backend, token))
        if all(r.backend is None for r in requests):
            gr.Warning("Pick at least one model (Model A).")
            return
        name = langdetect.language_name(code) if code else ""
        system_rendered = templates.render(system_text or "", name) if name else (system_text or "")
        messages = inference.build_messages(prompt_text, system_rendered)
        params = GenParams(int(max_new), float(temp), float(top), playground.parse_seed(seed_value))
        snapshot = []
        for snapshot in playground.run_columns(requests, messages, params, code):
            yield (*[s.text for s in snapshot], *[_stats_html(playground.stats_line(s, code)) for s in snapshot],
                   gr.update())
        run = {
            "id": uuid.uuid4().hex,
            "prompt": prompt_text, "system_prompt": system_rendered, "target": code,
            "labels": {s.letter: s.label for s in snapshot},
            "responses": {s.letter: s.text for s in snapshot},
        }
        yield (*[s.text for s in snapshot], *[_stats_html(playground.stats_line(s, code)) for s in snapshot], run)

    gen_event = generate_btn.click(
        generate,
        inputs=[prompt, system_prompt, target, max_tokens, temperature, top_p, seed, *column_inputs],
        outputs=[*outputs_text, *outputs_stats, last_run],
        concurrency_limit=GENERATE_CONCURRENCY,
    )
    stop_btn.click(None, None, None, cancels=[gen_event])

    def save_vote(sess: Session, choice: str | None, run: dict):
        if not run:
            gr.Warning("Generate answers first, then vote.")
            return gr.update(), gr.update(), gr.update()
        try:
            playground.record_vote(
                sess.votes, choice or "", prompt=run["prompt"], system_prompt=run["system_prompt"],
                labels=run["labels"], responses=run["responses"], target_code=run["target"],
                run_id=run.get("id", ""),
            )
        except ValueError as exc:
            warn(exc)
            return gr.update(), gr.update(), gr.update()
        path = playground.write_votes_csv(sess.votes, tempfile.mkdtemp(prefix="dpo-studio-votes-"))
        return (f"Saved: {_safe(choice or '')} ({len(sess.votes)} vote(s) this session; voting again on the same "
                "answers changes this vote).",
                playground.tally(sess.votes), gr.update(value=str(path), visible=True))

    vote_btn.click(save_vote, inputs=[session, vote, last_run], outputs=[vote_status, tally, download])

    def use_in_pipeline(sess: Session, letter: str, system_text: str, code: str,
                        kind_a, model_a, url_a, provider_a, key_a,
                        kind_b, model_b, url_b, provider_b, key_b,
                        kind_c, model_c, url_c, provider_c, key_c):
        configs = {"A": (kind_a, model_a, url_a, provider_a, key_a), "B": (kind_b, model_b, url_b, provider_b, key_b),
                   "C": (kind_c, model_c, url_c, provider_c, key_c)}
        kind, model, url, provider, key = configs.get(letter or "A", configs["A"])
        backend = playground.make_backend(kind, model, url, provider)
        if backend is None:
            gr.Warning(f"Model {letter} is empty: pick a model first.")
            return gr.update()
        try:
            backend.validate()
        except inference.InferenceError as exc:
            warn(exc.message)
            return gr.update()
        name = langdetect.language_name(code) if code else ""
        rendered = templates.render(system_text or "", name) if name else (system_text or "")
        sess.model_choice = playground.model_choice(backend, rendered)
        note = " Type the API key again in the Pipeline tab (keys are never carried over)." if key else ""
        return f"**3. Pipeline** will use {_safe(backend.label)} with this system prompt.{note}"

    use_btn.click(use_in_pipeline, inputs=[session, chosen, system_prompt, target, *column_inputs],
                  outputs=use_status)
