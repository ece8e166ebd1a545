"""The Playground tab: vibe-check up to three models and a system prompt side by side (UI wiring only; the logic
is in ``pipeline.playground.compare``, ``pipeline.inference``, ``pipeline.langcheck`` and ``pipeline.playground.templates``)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import gradio as gr

from pipeline import inference, langcheck, links
from pipeline.core.credentials import Credentials, api_keys_for
from pipeline.generate.settings import DEFAULTS
from pipeline.inference import GenParams
from pipeline.playground import compare, templates
from ui.backend_picker import BackendPicker, set_to
from ui.common import html_text, md_text, shares_as_text, table_frame, token_of, warn
from ui.forms import Form, wire
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


ANSWER_KEYS = tuple(f"{letter.lower()}_text" for letter in compare.LETTERS)
STATS_KEYS = tuple(f"{letter.lower()}_stats" for letter in compare.LETTERS)


def _answers(snapshot: list, code: str) -> dict[str, Any]:
    return {
        **{k: s.text for k, s in zip(ANSWER_KEYS, snapshot)},
        **{k: _stats_html(compare.stats_line(s, code)) for k, s in zip(STATS_KEYS, snapshot)},
    }


def generate_answers(values: Mapping[str, Any], oauth_token: gr.OAuthToken | None = None) -> Iterator[dict]:
    """Stream every column's answer. ``values``: ``prompt``, ``system_prompt``, ``target`` (language code),
    ``max_new_tokens``, ``temperature``, ``top_p``, ``seed`` and each column's backend fields (``a_kind``,
    ``a_model``, ``a_base_url``, ``a_provider``, ``a_api_key``, then ``b_`` and ``c_``). Yields named outputs:
    ``a_text``... (answers), ``a_stats``... (their status lines), ``vote`` (cleared: a vote is for the answers it
    was given to) and, at the end, ``run`` (what a vote records)."""
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
    first = True
    for snapshot in compare.run_columns(requests, messages, params, code):
        out = _answers(snapshot, code)
        if first:  # new answers: the last vote's choice no longer applies
            out.update(vote=gr.update(value=None), vote_status="", run={})
            first = False
        yield out
    run = {
        "id": uuid.uuid4().hex,
        "prompt": prompt_text,
        "system_prompt": system_rendered,
        "target": code,
        "labels": {s.letter: s.label for s in snapshot},
        "responses": {s.letter: s.text for s in snapshot},
    }
    yield {**_answers(snapshot, code), "run": run}


def use_choice(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """ "Use in pipeline": hand the ``chosen`` column's model and the rendered system prompt to the Pipeline tab.
    ``values``: ``chosen`` (a letter), ``system_prompt``, ``target`` and the columns' backend fields. Named output:
    ``use_status``."""
    v = dict(values)
    letter = v.get("chosen") or "A"
    _, backend, key = next(c for c in _column_backends(v) if c[0] == letter)
    if backend is None:
        gr.Warning(f"Model {letter} is empty: pick a model first.")
        return {}
    try:
        backend.validate()
    except inference.InferenceError as exc:
        warn(exc.message)
        return {}
    code, system_text = v.get("target") or "", v.get("system_prompt") or ""
    name = langcheck.language_name(code) if code else ""
    rendered = templates.render(system_text, name) if name else system_text
    session.model_choice = compare.model_choice(backend, rendered)
    note = " Type the API key again in the Pipeline tab (keys are never carried over)." if key else ""
    return {"use_status": f"**3. Pipeline** will use {_safe(backend.label)} with this system prompt.{note}"}


def on_select(session: Session, values: Mapping[str, Any], request: gr.Request | None = None) -> dict[str, Any]:
    """Opening the tab: the target language from the filtered data (or, on the first visit, a community link's),
    and a link's model (with where it runs: column A's backend fields) and system prompt, once per session.
    ``values``: ``target`` (the current one). Named outputs: ``target``, ``target_note``, ``template``,
    ``data_note``, ``system_prompt`` and column A's ``a_model``, ``a_kind``, ``a_provider``, ``a_base_url``,
    ``a_api_key``."""
    name, code = compare.target_language(session.filtered)
    shared = links.shared_from_request(request)
    first_visit = not session.playground_tab.link_applied
    session.playground_tab.link_applied = True
    if first_visit and not code and shared.language:
        code = shared.language
    code = code or values.get("target") or ""
    rows = getattr(getattr(session.filtered, "table", None), "num_rows", None)
    note = (
        NO_DATA
        if session.filtered is None
        else (f"{rows} prompts in your filtered data ({_safe(name or langcheck.language_name(code))}).")
    )
    out: dict[str, Any] = {
        "target": gr.update(choices=_language_choices((name, code)), value=code),
        "target_note": _language_note(code),
        "template": gr.update(choices=_template_choices(code), value=None),
        "data_note": note,
    }
    if first_visit and shared.model:
        kind = shared.backend or "serverless"
        out.update(set_to("a_", kind, shared.model, shared.base_url, shared.provider or "auto"))
    if first_visit and shared.system_prompt:
        out["system_prompt"] = gr.update(value=shared.system_prompt)
    return out


def target_changed(values: Mapping[str, Any]) -> dict[str, Any]:
    """The target language changed: its note and its templates."""
    code = values.get("target") or ""
    return {"target_note": _language_note(code), "template": gr.update(choices=_template_choices(code), value=None)}


def use_template(values: Mapping[str, Any]) -> dict[str, Any]:
    """Put the chosen template (``values["template"]``) in the system prompt box."""
    chosen_template = templates.get(values.get("template") or "")
    if chosen_template is None:
        gr.Warning("Pick a template first.")
        return {}
    return {"system_prompt": chosen_template.text}


def sample(session: Session) -> dict[str, Any]:
    """A random prompt (and its human answer) from the filtered data."""
    row = compare.sample_row(session.filtered)
    if row is None:
        gr.Warning("No filtered data yet: load and filter a dataset in 1. Filter, or type a prompt.")
        return {}
    return {"prompt": row.get("prompt", ""), "human": row.get("response", "")}


def save_vote(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """Record a vote (``values``: ``vote``, the choice, and ``run``, the answers it is about). Named outputs:
    ``vote_status``, ``tally``, ``download``."""
    choice, run = values.get("vote"), values.get("run") or {}
    if not run:
        gr.Warning("Generate answers first, then vote.")
        return {}
    try:
        compare.record_vote(
            session.votes,
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
        return {}
    path = compare.write_votes_csv(session.votes, tempfile.mkdtemp(prefix="dpo-studio-votes-"))
    return {
        "vote_status": f"Saved: {_safe(choice or '')} ({len(session.votes)} vote(s) this session; voting again on "
        "the same answers changes this vote).",
        "tally": table_frame(shares_as_text(compare.tally(session.votes), {"win_rate": "shown"})),
        "download": gr.update(value=str(path), visible=True),
    }


def build(session: gr.State, tab: gr.Tab) -> None:
    """Build the tab inside ``tab``; opening the tab refreshes the target language from the filtered data."""
    last_run = gr.State({})  # labels/responses/prompt of the latest generation, for voting (per browser session)

    gr.Markdown(
        "Compare candidate models and a system prompt side by side on real prompts of your language. Vote for "
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

    answers: dict[str, Any] = {}
    with gr.Row(equal_height=False):
        for letter, text_key, stats_key in zip(compare.LETTERS, ANSWER_KEYS, STATS_KEYS):
            with gr.Column(min_width=260):
                answers[text_key] = gr.Textbox(label=f"Answer {letter}", lines=12, max_lines=30, interactive=False)
                answers[stats_key] = gr.HTML("")
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

    # --- wiring (handlers are module-level; see ui/forms.py) --------------------------------------------------------
    columns_form = Form(
        **{
            k: v
            for col, letter in zip(columns, compare.LETTERS)
            for k, v in col.fields(prefix=f"{letter.lower()}_").items()
        }
    )
    select_out = {
        "target": target,
        "target_note": target_note,
        "template": template,
        "data_note": data_note,
        "system_prompt": system_prompt,
        **columns[0].fields(prefix="a_"),
    }
    wire(tab.select, on_select, session=session, form=Form(target=target), outputs=select_out)
    wire(
        target.change,
        target_changed,
        form=Form(target=target),
        outputs={"target_note": target_note, "template": template},
    )
    wire(insert_btn.click, use_template, form=Form(template=template), outputs={"system_prompt": system_prompt})
    wire(sample_btn.click, sample, session=session, outputs={"prompt": prompt, "human": human})
    generate_form = columns_form.add(
        prompt=prompt,
        system_prompt=system_prompt,
        target=target,
        max_new_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
    )
    gen_event = wire(
        generate_btn.click,
        generate_answers,
        form=generate_form,
        outputs={
            **{k: answers[k] for k in (*ANSWER_KEYS, *STATS_KEYS)},
            "vote": vote,
            "vote_status": vote_status,
            "run": last_run,
        },
        concurrency_limit=GENERATE_CONCURRENCY,
        api_name="generate",
    )
    stop_btn.click(None, None, None, cancels=[gen_event])
    wire(
        vote_btn.click,
        save_vote,
        session=session,
        form=Form(vote=vote, run=last_run),
        outputs={"vote_status": vote_status, "tally": tally, "download": download},
    )
    use_form = columns_form.add(chosen=chosen, system_prompt=system_prompt, target=target)
    wire(use_btn.click, use_choice, session=session, form=use_form, outputs={"use_status": use_status})
