"""The Pipeline tab: generate second answers, judge them with UltraFeedback, check their language (UI wiring only;
the logic is in ``pipeline.generate``, ``pipeline.judge``, ``pipeline.results`` and ``pipeline.recipe``).

The run executes in a background thread (``pipeline.generate.start_run``); a ``gr.Timer`` polls its handle, kept in
``session.run``. Results land in ``session.raw`` / ``session.raw_meta`` for the Argilla and Export tabs. The
user's token comes from Gradio's OAuth per call and goes straight into the run: it is never stored in the session.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
from typing import Any

import gradio as gr
import pandas as pd

from pipeline import generate, hub, inference, judge, langdetect, recipe, results, schema, templates
from pipeline.generate import Checkpoint, RunError, RunSettings
from pipeline.state import Session
from ui.common import SIGN_IN_NEEDED, info, token_of, username_of, warn

KIND_CHOICES = [
    ("HF Inference Providers (serverless, sign-in)", "serverless"),
    ("HF Inference Endpoint (URL)", "endpoint"),
    ("OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp)", "openai"),
]
DEFAULT_MODEL = "meta-llama/Llama-3.3-70B-Instruct"
NO_DATA = "**No filtered data yet.** Load and filter a language in **1. Filter** first."
DEFAULT_ROW_LIMIT = 100
POLL_S = 1.0
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def _safe(text: Any) -> str:
    """Untrusted text for a Markdown component: no HTML, no Markdown formatting or links."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text or ""), quote=False))


# --------------------------------------------------------------------------------------------------------------
# Pure helpers (tested directly)
# --------------------------------------------------------------------------------------------------------------
def parse_models(text: str) -> list[str]:
    """Model ids from a textbox: one per line (commas also separate), blanks and duplicates dropped."""
    seen: list[str] = []
    for part in re.split(r"[\n,]+", text or ""):
        part = part.strip()
        if part and part not in seen:
            seen.append(part)
    return seen


def _number(value: Any, default: int | None = None) -> int | None:
    try:
        n = int(float(value))
    except (TypeError, ValueError):
        return default
    return n


def make_settings(gen_kind: str, gen_models: str, gen_provider: str, gen_url: str, judge_kind: str,
                  judge_model: str, judge_provider: str, judge_url: str, aspect: str, system_prompt: str,
                  max_rows: Any, max_new: Any, budget: Any, concurrency: Any, temperature: Any,
                  top_p: Any) -> RunSettings:  # fmt: skip
    """RunSettings from the tab's fields. Raises RunError / InferenceError with a message for the user."""
    models = parse_models(gen_models)
    if not models:
        raise RunError("Type at least one generator model id.")
    generators = tuple(inference.Backend(gen_kind, m, (gen_url or "").strip(), gen_provider or "auto") for m in models)
    for backend in generators:
        backend.validate()
    judge_backend = inference.Backend(
        judge_kind or gen_kind,
        (judge_model or "").strip() or models[0],
        (judge_url or "").strip() or ((gen_url or "").strip() if (judge_kind or gen_kind) == gen_kind else ""),
        judge_provider or "auto",
    )
    judge_backend.validate()
    rows = _number(max_rows, 0) or 0
    tokens = _number(budget, 0) or 0
    return RunSettings(
        generators=generators,
        judge=judge_backend,
        system_prompt=(system_prompt or "").strip(),
        aspect=aspect or judge.DEFAULT_ASPECT,
        max_new_tokens=_number(max_new, 512) or 512,
        temperature=float(temperature if temperature is not None else 0.7),
        top_p=float(top_p if top_p is not None else 0.95),
        concurrency=_number(concurrency, 8) or 8,
        max_rows=rows if rows > 0 else None,
        max_tokens=tokens if tokens > 0 else None,
    )


def checkpoint_for(filtered: Any, settings: RunSettings, user: str | None) -> Checkpoint:
    """The local checkpoint of this data + settings (+ user): the same choices resume the same file."""
    ids = filtered.table.column("id").to_pylist() if filtered is not None else []
    data = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:10]
    who = re.sub(r"[^A-Za-z0-9_.-]", "_", user or "local")
    code = re.sub(r"[^a-z0-9]", "", (getattr(filtered, "language_code", "") or "xx").lower()) or "xx"
    return Checkpoint(generate.default_data_dir() / "runs" / who / f"{code}-{data}-{settings.fingerprint()}.jsonl")


def run_owner(session: Session, profile: gr.OAuthProfile | None) -> str:
    """Whose checkpoints these are: the signed-in user (so a run resumes in any later session), else this browser
    session alone (a random key kept in the session), so people who are not signed in never share results."""
    user = username_of(profile)
    if user:
        return user
    if not session.pipeline_tab.anonymous_key:
        session.pipeline_tab.anonymous_key = f"anonymous-{secrets.token_hex(8)}"
    return session.pipeline_tab.anonymous_key


def default_repo(user: str | None, filtered: Any) -> str:
    name = recipe.default_repo_name(getattr(filtered, "language", ""), getattr(filtered, "language_code", ""))
    return f"{user}/{name}" if user else name


def progress_markdown(snap: generate.Progress, hub_message: str = "") -> str:
    """Rows done, failures by status, rows/s, ETA, and the run's message (escaped)."""
    pct = 100 * snap.done / snap.total if snap.total else 0
    filled = int(pct // 5)
    bar = "█" * filled + "░" * (20 - filled)
    fails = [f"{v} {k.replace('_', ' ')}" for k, v in snap.counts.items() if k != schema.STATUS_OK and v]
    eta = f" · ETA {generate.duration(snap.eta_s)}" if snap.eta_s is not None else ""
    lines = [
        f"`{bar}` **{snap.done:,} / {snap.total:,} rows** ({pct:.0f}%) · {snap.counts.get('ok', 0):,} ok"
        + (f" · {', '.join(fails)}" if fails else " · no failures")
        + f" · {snap.rows_per_s:.2f} rows/s{eta} · {snap.tokens_used:,} tokens · state: **{snap.state}**",
    ]
    if snap.message:
        lines.append(_safe(snap.message))
    if hub_message:
        lines.append(_safe(hub_message))
    return "\n\n".join(lines)


def _empty_ratings() -> pd.DataFrame:
    return pd.DataFrame({"rating": [str(r) for r in range(1, 6)], "source": ["-"] * 5, "count": [0] * 5})


def _empty_langs() -> pd.DataFrame:
    return pd.DataFrame({"source": ["-"], "rate": [0.0]})


def _plots_from_table(raw: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    ratings = results.rating_distribution(raw)
    langs = results.language_match_rates(raw)
    return (ratings if len(ratings) else _empty_ratings(), langs[["source", "rate"]] if len(langs) else _empty_langs())


def _leaderboard_update(raw: Any) -> Any:
    board = results.leaderboard(raw)
    several = raw is not None and raw.num_rows and len(board) > 2
    return gr.update(value=board if several else None, visible=bool(several))


def _data_note(filtered: Any) -> str:
    if filtered is None or getattr(filtered, "rows", 0) == 0:
        return NO_DATA
    code = filtered.language_code
    check = ("every answer gets a language check" if langdetect.is_supported(code)
             else "the language detector does not know this language: answers are **not checked**")  # fmt: skip
    return f"Input: **{_safe(filtered.summary())}** · target {_safe(filtered.language)} ({_safe(code)}): {check}."


# --------------------------------------------------------------------------------------------------------------
# Handlers (module level so tests can drive them)
# --------------------------------------------------------------------------------------------------------------
SETTINGS_FIELDS = ("gen_kind", "gen_models", "gen_provider", "gen_url", "judge_kind", "judge_model", "judge_provider",
                   "judge_url", "aspect", "system_prompt", "max_rows", "max_new", "budget", "concurrency",
                   "temperature", "top_p")  # fmt: skip


def on_select(session: Session, gen_models: str, system_prompt: str, repo: str,
              profile: gr.OAuthProfile | None = None) -> tuple:  # fmt: skip
    """Prefill from the Playground's choice (once per choice) and the data; show a finished run's results."""
    updates: dict[str, Any] = {}
    choice = session.model_choice
    stamp = None if choice is None else (choice.model, choice.backend, choice.base_url, choice.provider,
                                         choice.system_prompt)  # fmt: skip
    if choice is not None and session.pipeline_tab.prefilled != stamp:
        session.pipeline_tab.prefilled = stamp
        updates = {
            "gen_kind": gr.update(value=choice.backend),
            "gen_models": gr.update(value=choice.model),
            "gen_provider": gr.update(value=choice.provider or "auto", visible=choice.backend == "serverless"),
            "gen_url": gr.update(value=choice.base_url, visible=choice.backend != "serverless"),
            "gen_key": gr.update(visible=choice.backend == "openai"),
            "system_prompt": gr.update(value=choice.system_prompt),
        }
    elif not (system_prompt or "").strip() and session.filtered is not None:
        f = session.filtered
        updates["system_prompt"] = gr.update(value=templates.default_prompt(f.language_code, f.language))
    user = username_of(profile)
    if not (repo or "").strip() or ("/" not in repo and user):
        updates["repo"] = gr.update(value=default_repo(user, session.filtered))
    out = [updates.get(k, gr.update()) for k in ("gen_kind", "gen_models", "gen_provider", "gen_url", "gen_key",
                                                  "system_prompt", "repo")]  # fmt: skip
    note = _data_note(session.filtered)
    running = session.run is not None and session.run.running
    return (*out, note, gr.Timer(active=running))


def estimate(session: Session, gen_kind: str, gen_models: str, gen_provider: str, gen_url: str, judge_kind: str,
             judge_model: str, judge_provider: str, judge_url: str, aspect: str, system_prompt: str, max_rows: Any,
             max_new: Any, budget: Any, concurrency: Any, temperature: Any, top_p: Any,
             profile: gr.OAuthProfile | None = None) -> str:  # fmt: skip
    """The estimate for the current fields (calls, tokens, rows already done)."""
    fields = (gen_kind, gen_models, gen_provider, gen_url, judge_kind, judge_model, judge_provider, judge_url, aspect, system_prompt, max_rows, max_new, budget, concurrency, temperature, top_p)
    if session.filtered is None or session.filtered.rows == 0:
        return NO_DATA
    try:
        settings = make_settings(*fields)
    except (RunError, inference.InferenceError) as exc:
        return _safe(getattr(exc, "message", str(exc)))
    ckpt = checkpoint_for(session.filtered, settings, run_owner(session, profile))
    try:
        generate.check_checkpoint(settings, ckpt)
    except RunError as exc:
        return _safe(str(exc))
    return _safe(generate.plan_run(session.filtered.table, settings, ckpt).summary())


def start(session: Session, restart: bool, hub_checkpoints: bool, every: Any, repo: str, gen_key: str,
          judge_key: str, gen_kind: str, gen_models: str, gen_provider: str, gen_url: str, judge_kind: str,
          judge_model: str, judge_provider: str, judge_url: str, aspect: str, system_prompt: str, max_rows: Any,
          max_new: Any, budget: Any, concurrency: Any, temperature: Any, top_p: Any, hedge: bool = True,
          oauth_token: gr.OAuthToken | None = None, profile: gr.OAuthProfile | None = None) -> tuple[str, Any]:  # fmt: skip
    """Start (or resume) a run. Returns (progress markdown, timer update). ``hedge``: backup requests for the
    slowest calls at the very end of the run (a few extra calls for a shorter tail)."""
    fields = (gen_kind, gen_models, gen_provider, gen_url, judge_kind, judge_model, judge_provider, judge_url, aspect, system_prompt, max_rows, max_new, budget, concurrency, temperature, top_p)
    if session.filtered is None or session.filtered.rows == 0:
        warn("No filtered data yet: load and filter a language in 1. Filter first.")
        return NO_DATA, gr.Timer(active=False)
    if session.run is not None and session.run.running:
        warn("A run is already going in this session: wait for it to finish or cancel it first.")
        return progress_markdown(session.run.snapshot()), gr.Timer(active=True)
    try:
        settings = make_settings(*fields)
    except (RunError, inference.InferenceError) as exc:
        warn(getattr(exc, "message", str(exc)))
        return _safe(getattr(exc, "message", str(exc))), gr.Timer(active=False)
    token = token_of(oauth_token)
    user = username_of(profile)
    hf_backends = [b for b in (*settings.generators, settings.judge) if b.kind == "serverless"]
    if hf_backends and not token:
        warn(SIGN_IN_NEEDED + " Serverless inference runs on your account; or use a local OpenAI-compatible server.")
        return _safe(SIGN_IN_NEEDED), gr.Timer(active=False)
    api_keys = {}
    for backend, key in [(b, gen_key) for b in settings.generators] + [(settings.judge, judge_key)]:
        if backend.kind == "openai" and (key or "").strip():
            api_keys[backend.base_url] = key.strip()
    filtered = session.filtered
    ckpt = checkpoint_for(filtered, settings, run_owner(session, profile))
    source, language, code = recipe.source_from_filtered(filtered)
    meta = recipe.build_raw_meta(settings, None, source=source, language=language, language_code=code)
    notes: list[str] = []
    on_checkpoint = None
    every_n = max(10, _number(every, 100) or 100)
    if hub_checkpoints and token and user:
        try:
            repo_id = hub.validate_repo_id(repo or default_repo(user, filtered))
            state = recipe.checkpoint_repo_state(repo_id, token, settings.fingerprint())
            if state == "other":
                raise hub.HubError(f"'{repo_id}' already exists and is not a checkpoint of this run: choose another "
                                   "dataset name below (or untick Hub checkpoints).")  # fmt: skip
            if state == "ours" and (restart or not ckpt.exists()):
                if not restart:
                    restored = recipe.restore_checkpoint(repo_id, token, ckpt)
                    notes.append(f"Restored {restored} finished rows from your Hub checkpoint {repo_id}.")
            on_checkpoint = recipe.checkpoint_pusher(meta, repo_id, token)
            notes.append(f"Checkpoints go to the private dataset {repo_id} every {every_n} rows.")
        except hub.HubError as exc:
            warn(str(exc))
            return _safe(str(exc)), gr.Timer(active=False)
    elif hub_checkpoints:
        notes.append("Not signed in: results are kept on this server's disk only (no Hub checkpoints).")
    try:
        handle = generate.start_run(
            filtered.table, settings, ckpt, restart=restart, token=token, api_keys=api_keys,
            on_checkpoint=on_checkpoint, checkpoint_every=every_n, source=source, hedge=bool(hedge),
        )  # fmt: skip
    except RunError as exc:
        warn(str(exc))
        return _safe(str(exc)), gr.Timer(active=False)
    session.run = handle
    session.pipeline_tab.run_meta = meta
    info(f"Started: {handle.plan.summary()}")
    text = progress_markdown(handle.snapshot())
    if notes:
        text += "\n\n" + "\n\n".join(_safe(n) for n in notes)
    return text, gr.Timer(active=True)


def cancel(session: Session) -> str:
    handle = session.run
    if handle is None or not handle.running:
        return "Nothing is running."
    handle.cancel()
    handle.wait(10)
    return progress_markdown(handle.snapshot())


def _load_results(session: Session, handle: generate.RunHandle) -> None:
    """Put the run's table (every id once) and metadata in the session for the Argilla and Export tabs."""
    table = handle.table()
    meta = dict(session.pipeline_tab.run_meta or {})
    settings = handle.settings
    source, language, code = recipe.source_from_filtered(session.filtered)
    fresh = recipe.build_raw_meta(settings, table, source=meta.get("source") or source,
                                  language=meta.get("language") or language,
                                  language_code=meta.get("language_code") or code)  # fmt: skip
    fresh["run_state"] = handle.snapshot().state
    fresh["hedged_calls"] = handle.snapshot().hedged_calls
    session.raw = table
    session.raw_meta = fresh
    session.pipeline_tab.loaded_run = id(handle)


def poll(session: Session) -> tuple:
    """Timer tick: progress, latest rows, plots, leaderboard; loads the results into the session at the end."""
    handle = session.run
    if handle is None:
        return ("", gr.update(), gr.update(), gr.update(), gr.update(), gr.Timer(active=False))
    snap = handle.snapshot()
    latest = results.preview_rows(handle.latest_rows())
    if handle.running:
        ratings, langs = handle.live_stats()
        rating_df = pd.DataFrame(ratings) if ratings else _empty_ratings()
        lang_df = pd.DataFrame(langs)[["source", "rate"]] if langs else _empty_langs()
        return (progress_markdown(snap, handle.hub_message), latest, rating_df, lang_df, gr.update(),
                gr.Timer(active=True))  # fmt: skip
    if session.pipeline_tab.loaded_run != id(handle):
        _load_results(session, handle)
    rating_df, lang_df = _plots_from_table(session.raw)
    text = progress_markdown(snap, handle.hub_message)
    if session.raw is not None:
        text += f"\n\n**{session.raw.num_rows:,} rows** are ready for **4. Argilla** and **5. Export**."
    return (text, latest, rating_df, lang_df, _leaderboard_update(session.raw), gr.Timer(active=False))


def push(session: Session, repo: str, private: bool, overwrite: bool, oauth_token: gr.OAuthToken | None = None,
         profile: gr.OAuthProfile | None = None) -> str:  # fmt: skip
    """Push ``session.raw`` with its card and pipeline.py to the user's namespace."""
    token = token_of(oauth_token)
    if not token:
        warn(SIGN_IN_NEEDED)
        return _safe(SIGN_IN_NEEDED)
    if session.run is not None and session.run.running:
        warn("The run is still going: wait for it to finish (or cancel it) before pushing.")
        return "The run is still going."
    if session.raw is None and session.run is not None:
        _load_results(session, session.run)
    if session.raw is None or session.raw.num_rows == 0:
        warn("There are no results to push yet: run the pipeline first.")
        return "No results yet."
    try:
        repo_id = hub.validate_repo_id(repo or default_repo(username_of(profile), session.filtered))
        meta = session.raw_meta or {}
        ours = recipe.checkpoint_repo_state(repo_id, token, meta.get("fingerprint", "")) == "ours"
        url = recipe.push_raw(session.raw, meta, repo_id, token, private=bool(private),
                              overwrite=bool(overwrite) or ours)  # fmt: skip
    except hub.HubError as exc:
        warn(str(exc))
        return _safe(str(exc))
    info(f"Pushed {session.raw.num_rows} rows to {repo_id}.")
    return f"Pushed **{session.raw.num_rows:,} rows** to [{_safe(repo_id)}]({html.escape(url, quote=True)})" + (
        " (private)." if private else " (public)."
    )


# --------------------------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------------------------
def _backend_fields(prefix: str, default_model: str, model_label: str, lines: int) -> dict:
    kind = gr.Dropdown(choices=KIND_CHOICES, value="serverless", label="Runs on")
    model = gr.Textbox(label=model_label, value=default_model, lines=lines, max_lines=8)
    provider = gr.Dropdown(choices=list(inference.PROVIDERS), value="auto", label="Provider",
                           info="auto = the first available in your Hugging Face settings order.")  # fmt: skip
    base_url = gr.Textbox(label="Base URL", placeholder="http://127.0.0.1:8080/v1", visible=False)
    api_key = gr.Textbox(label="API key (optional)", type="password", visible=False,
                         info="Sent to this server only, per call; never stored or shown again.")  # fmt: skip
    kind.change(
        lambda k: (gr.update(visible=k == "serverless"), gr.update(visible=k != "serverless"),
                   gr.update(visible=k == "openai")),
        inputs=kind, outputs=[provider, base_url, api_key],
    )  # fmt: skip
    return {"kind": kind, "model": model, "provider": provider, "base_url": base_url, "api_key": api_key}


def build(session: gr.State, tab: gr.Tab) -> None:
    """Build the tab inside ``tab``; selecting the tab prefills it from the Playground's choice and the data."""
    gr.Markdown(
        "For every prompt of your filtered data: a second answer from your model (or from several, to compare "
        "them), an **UltraFeedback** rating of the human and the model answers by an LLM judge, and a language "
        "check of every answer. Results are saved as they finish: cancel or lose the connection at any time and "
        "press **Start / resume** again to continue where it stopped."
    )
    data_note = gr.Markdown(NO_DATA)
    with gr.Row(equal_height=False):
        with gr.Column():
            gr.Markdown("### Generator model(s)")
            gen = _backend_fields("gen", DEFAULT_MODEL, "Model id(s): one per line (several → a leaderboard)", 2)
        with gr.Column():
            gr.Markdown("### Judge (UltraFeedback)")
            jud = _backend_fields("judge", "", "Judge model id (empty: the first generator)", 1)
            aspect = gr.Dropdown(choices=list(judge.ASPECTS), value=judge.DEFAULT_ASPECT, label="Aspect",
                                 info="overall-rating: one holistic 1-5 rating per answer.")  # fmt: skip
    system_prompt = gr.Textbox(label="System prompt (generators)", lines=3,
                               info="Prefilled from the Playground's “Use in pipeline”.")  # fmt: skip
    with gr.Accordion("Limits and settings", open=True):
        with gr.Row():
            max_rows = gr.Number(label="Row limit (0 = all rows)", value=DEFAULT_ROW_LIMIT, precision=0, minimum=0)
            max_new = gr.Number(label="Max new tokens per answer", value=512, precision=0, minimum=1)
            budget = gr.Number(label="Token budget (0 = none)", value=0, precision=0, minimum=0,
                               info="The run stops (resumable) once it has used this many tokens.")  # fmt: skip
            concurrency = gr.Slider(1, 64, value=8, step=1, label="Concurrency (calls at once)")
        with gr.Row():
            temperature = gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="Temperature")
            top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p")
            hub_checkpoints = gr.Checkbox(value=True, label="Checkpoint to a private dataset in my namespace",
                                          info="Needs sign-in; a restart then loses at most N rows.")  # fmt: skip
            every = gr.Number(label="Checkpoint every N rows", value=100, precision=0, minimum=10)
            hedge = gr.Checkbox(value=True, label="Backup requests for the slowest calls at the end",
                                info="A shorter tail for a few extra calls: at most max(concurrency, 2.5% of the "
                                     "calls), only while slots would sit idle.")  # fmt: skip
    fields = [gen["kind"], gen["model"], gen["provider"], gen["base_url"], jud["kind"], jud["model"],
              jud["provider"], jud["base_url"], aspect, system_prompt, max_rows, max_new, budget, concurrency,
              temperature, top_p]  # fmt: skip
    with gr.Row():
        estimate_btn = gr.Button("Estimate")
        start_btn = gr.Button("Start / resume", variant="primary")
        cancel_btn = gr.Button("Cancel", variant="stop")
        restart = gr.Checkbox(value=False, label="Start over (discard finished rows of these settings)")
    estimate_md = gr.Markdown()
    progress_md = gr.Markdown()
    latest = gr.Dataframe(
        pd.DataFrame(columns=["status", "prompt", "human", "human rating", "human lang", "error"]),
        label="Latest rows (newest first)", interactive=False, wrap=True,
    )  # fmt: skip
    with gr.Row():
        rating_plot = gr.BarPlot(_empty_ratings(), x="rating", y="count", color="source",
                                 title="Judge ratings (1-5)", sort=None)  # fmt: skip
        lang_plot = gr.BarPlot(_empty_langs(), x="source", y="rate", title="Language-match rate", y_lim=[0, 1])
    leaderboard = gr.Dataframe(label="Leaderboard (mean judge rating and language-match rate per source)",
                               interactive=False, visible=False)  # fmt: skip
    with gr.Accordion("Push the raw dataset to the Hub", open=False):
        with gr.Row():
            repo = gr.Textbox(label="Dataset (owner/name)", placeholder="your-name/aya-dutch-dpo-raw", scale=3)
            private = gr.Checkbox(value=True, label="Private", scale=1)
            overwrite = gr.Checkbox(value=False, label="Overwrite if it exists", scale=1)
        push_btn = gr.Button("Push raw dataset (with card and pipeline.py)")
        push_md = gr.Markdown()
    timer = gr.Timer(POLL_S, active=False)

    tab.select(
        on_select, inputs=[session, gen["model"], system_prompt, repo],
        outputs=[gen["kind"], gen["model"], gen["provider"], gen["base_url"], gen["api_key"], system_prompt, repo,
                 data_note, timer],
    )  # fmt: skip
    estimate_btn.click(estimate, inputs=[session, *fields], outputs=estimate_md)
    start_btn.click(
        start, inputs=[session, restart, hub_checkpoints, every, repo, gen["api_key"], jud["api_key"], *fields, hedge],
        outputs=[progress_md, timer],
    ).then(estimate, inputs=[session, *fields], outputs=estimate_md)  # fmt: skip
    cancel_btn.click(cancel, inputs=session, outputs=progress_md)
    timer.tick(poll, inputs=session, outputs=[progress_md, latest, rating_plot, lang_plot, leaderboard, timer])
    push_btn.click(push, inputs=[session, repo, private, overwrite], outputs=push_md)


__all__ = ["build", "make_settings", "parse_models", "checkpoint_for", "estimate", "start", "cancel", "poll", "push",
           "on_select", "progress_markdown"]
