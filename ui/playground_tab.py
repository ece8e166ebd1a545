"""The Playground tab: vibe-check up to three models and a system prompt side by side (UI wiring only; the logic
is in ``pipeline.playground.compare``, ``pipeline.inference``, ``pipeline.langcheck`` and ``pipeline.playground.templates``)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import gradio as gr

from pipeline import inference, langcheck
from pipeline.core import links
from pipeline.core.credentials import Credentials, api_keys_for
from pipeline.generate.settings import DEFAULTS
from pipeline.inference import GenParams
from pipeline.playground import compare, templates
from ui.backend_picker import BackendPicker
from ui.common import html_text, md_text, table_frame, token_of, warn
from ui.forms import Form
from ui.session import Session

DEFAULT_MODELS = ("meta-llama/Llama-3.3-70B-Instruct", "Qwen/Qwen2.5-72B-Instruct", "")
# How many people can stream Playground answers at once (app-wide). A generation holds one of Gradio's worker
# threads (40 by default) for as long as the model streams, so this stays below that and leaves threads for every
# other click; the backends themselves are protected by pipeline.inference's per-backend limiters. With 8, the
# ninth person waited for a whole generation to finish (bench/load.py --latency 2: prompt p95 5.2 s vs 2.1 s).
GENERATE_CONCURRENCY = 24
NO_DATA = "No filtered data yet: type a prompt, or load data in **1. Filter** to sample real prompts."
_safe = md_text  # untrusted text for a Markdown component: shown as text


def _stats_html(text: str) -> str:
    """A column's status line as inert HTML: escaped text (no tags, no Markdown, no auto-links)."""
    return f'<div style="font-size:0.9em;line-height:1.4">{html_text(text)}</div>'


def _language_choices(extra: tuple[str, str] | None = None) -> list[tuple[str, str]]:
    """Aya's languages (plus ``extra`` = (name, code) of the loaded data if it is not one of them)."""
    names = dict(langcheck.AYA_LANGUAGES)
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
    name = langcheck.language_name(code)
    describe = _safe(langcheck.describe(code))
    if langcheck.is_supported(code):
        return f"Target **{_safe(name)} ({_safe(code)})**. {describe}"
    return (
        f"Target **{_safe(name)} ({_safe(code)})**. {describe} Answers in the right script are **not checked** "
        "further (shown as ➖, never as a mismatch)."
    )


def _column_ui(letter: str, default_model: str) -> BackendPicker:
    with gr.Column(min_width=260):
        gr.Markdown(f"### Model {letter}")
        return BackendPicker.build(
            "Model id" + (" (leave empty to skip)" if letter != "A" else ""),
            default_model,
            suggestions=inference.SUGGESTED_MODELS,
            model_info="Any chat model id (owner/name), or pick a suggestion.",
        )


def _column_backends(values: dict) -> list[tuple[str, inference.Backend | None, str]]:
    """(letter, backend or None when the column is empty, API key) of each column, from the form's values."""
    out = []
    for letter in compare.LETTERS:
        p = f"{letter.lower()}_"
        backend = compare.make_backend(
            values.get(f"{p}kind") or inference.DEFAULT_KIND,
            values.get(f"{p}model") or "",
            values.get(f"{p}base_url") or "",
            values.get(f"{p}provider") or "auto",
        )
        out.append((letter, backend, values.get(f"{p}api_key") or ""))
    return out


def generate_answers(values: Mapping[str, Any], oauth_token: gr.OAuthToken | None = None) -> Iterator[tuple]:
    """Stream every column's answer. ``values``: ``prompt``, ``system_prompt``, ``target`` (language code),
    ``max_new_tokens``, ``temperature``, ``top_p``, ``seed`` and each column's backend fields (``a_kind``,
    ``a_model``, ``a_base_url``, ``a_provider``, ``a_api_key``, then ``b_`` and ``c_``). Yields (3 texts, 3 stats,
    the run for voting or an update)."""
    v = dict(values)
    prompt_text, code = v.get("prompt") or "", v.get("target") or ""
    if not prompt_text.strip():
        gr.Warning("The prompt is empty: type one or sample one from your data.")
        return
    columns_now = _column_backends(v)
    token = token_of(oauth_token)
    # each column's own credentials (two columns on one server may use different keys)
    requests = [
        compare.ColumnRequest(
            letter, b, None if b is None else Credentials(token, api_keys_for([b], key)).for_backend(b)
        )
        for letter, b, key in columns_now
    ]
    if all(r.backend is None for r in requests):
        gr.Warning("Pick at least one model (Model A).")
        return
    name = langcheck.language_name(code) if code else ""
    system_text = v.get("system_prompt") or ""
    system_rendered = templates.render(system_text, name) if name else system_text
    messages = inference.build_messages(prompt_text, system_rendered)
    params = GenParams(
        int(v.get("max_new_tokens") or DEFAULTS["max_new_tokens"]),
        float(v.get("temperature", DEFAULTS["temperature"])),
        float(v.get("top_p", DEFAULTS["top_p"])),
        compare.parse_seed(v.get("seed")),
    )
    snapshot: list = []
    for snapshot in compare.run_columns(requests, messages, params, code):
        yield (
            *[s.text for s in snapshot],
            *[_stats_html(compare.stats_line(s, code)) for s in snapshot],
            gr.update(),
        )
    run = {
        "id": uuid.uuid4().hex,
        "prompt": prompt_text,
        "system_prompt": system_rendered,
        "target": code,
        "labels": {s.letter: s.label for s in snapshot},
        "responses": {s.letter: s.text for s in snapshot},
    }
    yield (*[s.text for s in snapshot], *[_stats_html(compare.stats_line(s, code)) for s in snapshot], run)


def use_choice(session: Session, values: Mapping[str, Any]) -> Any:
    """ "Use in pipeline": hand the ``chosen`` column's model and the rendered system prompt to the Pipeline tab.
    ``values``: ``chosen`` (a letter), ``system_prompt``, ``target`` and the columns' backend fields."""
    v = dict(values)
    letter = v.get("chosen") or "A"
    _, backend, key = next(c for c in _column_backends(v) if c[0] == letter)
    if backend is None:
        gr.Warning(f"Model {letter} is empty: pick a model first.")
        return gr.update()
    try:
        backend.validate()
    except inference.InferenceError as exc:
        warn(exc.message)
        return gr.update()
    code, system_text = v.get("target") or "", v.get("system_prompt") or ""
    name = langcheck.language_name(code) if code else ""
    rendered = templates.render(system_text, name) if name else system_text
    session.model_choice = compare.model_choice(backend, rendered)
    note = " Type the API key again in the Pipeline tab (keys are never carried over)." if key else ""
    return f"**3. Pipeline** will use {_safe(backend.label)} with this system prompt.{note}"


def build(session: gr.State, tab: gr.Tab) -> None:
    """Build the tab inside ``tab``; opening the tab refreshes the target language from the filtered data."""
    last_run = gr.State({})  # labels/responses/prompt of the latest generation, for voting (per browser session)

    gr.Markdown(
        "Compare candidate models and a system prompt on real prompts of your language, side by side. Vote for "
        "the best answers, then send the winner to **3. Pipeline**."
    )
    with gr.Row():
        target = gr.Dropdown(
            choices=_language_choices(),
            value="",
            label="Target language",
            scale=2,
            info="From your filtered data; change it to test another language.",
        )
        target_note = gr.Markdown(_language_note(""))
    with gr.Accordion("Languages only the script check covers", open=False):
        gr.Markdown(_safe(", ".join(langcheck.unsupported_names())) or "None.")

    columns = []
    with gr.Row(equal_height=False):
        for letter, default_model in zip(compare.LETTERS, DEFAULT_MODELS):
            columns.append(_column_ui(letter, default_model))

    with gr.Row():
        template = gr.Dropdown(choices=_template_choices(""), value=None, label="System prompt templates", scale=3)
        insert_btn = gr.Button("Use this template", scale=1)
    system_prompt = gr.Textbox(
        label="System prompt",
        lines=3,
        value=templates.GENERIC[0].text,
        info="{language} is replaced by the target language's name when sent.",
    )

    with gr.Row():
        sample_btn = gr.Button("Random prompt from the data")
        data_note = gr.Markdown(NO_DATA)
    with gr.Row():
        prompt = gr.Textbox(
            label="Prompt", lines=4, placeholder="Type a prompt, or sample one from your data.", scale=3
        )
    with gr.Accordion("Generation settings", open=False):
        with gr.Row():
            max_tokens = gr.Slider(16, 4096, value=DEFAULTS["max_new_tokens"], step=16, label="Max new tokens")
            temperature = gr.Slider(0.0, 2.0, value=DEFAULTS["temperature"], step=0.05, label="Temperature")
            top_p = gr.Slider(0.05, 1.0, value=DEFAULTS["top_p"], step=0.05, label="Top-p")
            seed = gr.Number(value=None, precision=0, label="Seed (empty = random)")
    with gr.Row():
        generate_btn = gr.Button("Generate", variant="primary")
        stop_btn = gr.Button("Stop")

    outputs_text, outputs_stats = [], []
    with gr.Row(equal_height=False):
        for letter in compare.LETTERS:
            with gr.Column(min_width=260):
                outputs_text.append(gr.Textbox(label=f"Answer {letter}", lines=12, max_lines=30, interactive=False))
                outputs_stats.append(gr.HTML(""))
        with gr.Column(min_width=260):
            human = gr.Textbox(label="Human answer (from the data)", lines=12, max_lines=30, interactive=False)

    gr.Markdown("### Your verdict")
    with gr.Row():
        vote = gr.Radio(choices=list(compare.VOTE_CHOICES), label="Which answer is best?", scale=3)
        vote_btn = gr.Button("Save vote", scale=1)
    vote_status = gr.Markdown("")
    tally = gr.Dataframe(
        value=table_frame(compare.tally([])), label="Your votes so far (this session)", interactive=False, wrap=True
    )
    download = gr.DownloadButton("Download votes (CSV)", visible=False)

    gr.Markdown("### Use in pipeline")
    with gr.Row():
        chosen = gr.Radio(choices=list(compare.LETTERS), value="A", label="Model to use", scale=1)
        use_btn = gr.Button("Use in pipeline", variant="secondary", scale=1)
    use_status = gr.Markdown("")

    # --- handlers ---------------------------------------------------------------------------------------------
    def refresh(sess: Session, current: str, request: gr.Request | None = None):
        name, code = compare.target_language(sess.filtered)
        # A community link (?language=&model=&system_prompt=) pre-selects once per session.
        shared = links.parse_link_params(dict(request.query_params) if request is not None else {})
        first_visit = not sess.playground_tab.link_applied
        sess.playground_tab.link_applied = True
        if first_visit and not code and shared.language:
            code = shared.language
        code = code or current or ""
        rows = getattr(getattr(sess.filtered, "table", None), "num_rows", None)
        note = (
            NO_DATA
            if sess.filtered is None
            else (f"{rows} prompts in your filtered data ({_safe(name or langcheck.language_name(code))}).")
        )
        model_update = gr.update(value=shared.model) if first_visit and shared.model else gr.update()
        prompt_update = gr.update(value=shared.system_prompt) if first_visit and shared.system_prompt else gr.update()
        return (
            gr.update(choices=_language_choices((name, code)), value=code),
            _language_note(code),
            gr.update(choices=_template_choices(code), value=None),
            note,
            model_update,
            prompt_update,
        )

    tab.select(
        refresh,
        inputs=[session, target],
        outputs=[target, target_note, template, data_note, columns[0].model, system_prompt],
    )

    target.change(
        lambda code: (_language_note(code), gr.update(choices=_template_choices(code), value=None)),
        inputs=target,
        outputs=[target_note, template],
    )

    def use_template(name: str | None):
        chosen_template = templates.get(name or "")
        if chosen_template is None:
            gr.Warning("Pick a template first.")
            return gr.update()
        return chosen_template.text

    insert_btn.click(use_template, inputs=template, outputs=system_prompt)

    def sample(sess: Session):
        row = compare.sample_row(sess.filtered)
        if row is None:
            gr.Warning("No filtered data yet: load and filter a dataset in 1. Filter, or type a prompt.")
            return gr.update(), gr.update()
        return row.get("prompt", ""), row.get("response", "")

    sample_btn.click(sample, inputs=session, outputs=[prompt, human])

    columns_form = Form(
        **{
            k: v
            for col, letter in zip(columns, compare.LETTERS)
            for k, v in col.fields(prefix=f"{letter.lower()}_").items()
        }
    )
    generate_form = columns_form.add(
        prompt=prompt,
        system_prompt=system_prompt,
        target=target,
        max_new_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
    )

    def generate(data: dict, oauth_token: gr.OAuthToken | None = None):
        yield from generate_answers(generate_form.values(data), oauth_token)

    generate.form = generate_form  # type: ignore[attr-defined]  # for API callers: Form.api_args

    gen_event = generate_btn.click(
        generate,
        inputs=generate_form.inputs(),
        outputs=[*outputs_text, *outputs_stats, last_run],
        concurrency_limit=GENERATE_CONCURRENCY,
    )
    stop_btn.click(None, None, None, cancels=[gen_event])

    def save_vote(sess: Session, choice: str | None, run: dict):
        if not run:
            gr.Warning("Generate answers first, then vote.")
            return gr.update(), gr.update(), gr.update()
        try:
            compare.record_vote(
                sess.votes,
                choice or "",
                prompt=run["prompt"],
                system_prompt=run["system_prompt"],
                labels=run["labels"],
                responses=run["responses"],
                target_code=run["target"],
                run_id=run.get("id", ""),
            )
        except ValueError as exc:
            warn(exc)
            return gr.update(), gr.update(), gr.update()
        path = compare.write_votes_csv(sess.votes, tempfile.mkdtemp(prefix="dpo-studio-votes-"))
        return (
            f"Saved: {_safe(choice or '')} ({len(sess.votes)} vote(s) this session; voting again on the same "
            "answers changes this vote).",
            table_frame(compare.tally(sess.votes)),
            gr.update(value=str(path), visible=True),
        )

    vote_btn.click(save_vote, inputs=[session, vote, last_run], outputs=[vote_status, tally, download])

    use_form = columns_form.add(chosen=chosen, system_prompt=system_prompt, target=target)

    def use_in_pipeline(data: dict):
        return use_choice(data[session], use_form.values(data))

    use_btn.click(use_in_pipeline, inputs=use_form.inputs(session), outputs=use_status)
