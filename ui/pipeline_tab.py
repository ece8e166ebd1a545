"""The Pipeline tab: generate second answers, judge them (UltraFeedback ratings or pairwise A/B/tie), check their
language (UI wiring only; the logic is in ``pipeline.generate``, ``pipeline.judge``, ``pipeline.generate.results``,
``pipeline.generate.meta`` and ``pipeline.generate.publish``).

Handlers take ``(session, values)``: ``values`` maps field names (the keys of ``RunSettings.from_mapping`` plus
the run options ``restart``, ``hub_checkpoints``, ``checkpoint_every``, ``repo``, ``hedge``) to what the user set;
``build`` wires them with a :class:`ui.forms.Form`. Runs start through ``pipeline.workflow.start_generation`` (the
CLI's path too) in a background thread; a ``gr.Timer`` polls the handle, kept in ``session.run``. Results land in ``session.raw`` / ``session.raw_meta`` for the Argilla and Export tabs. The
user's token comes from Gradio's OAuth per call and goes straight into the run: it is never stored in the session.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

import gradio as gr
import pandas as pd

from pipeline import generate, inference, judge, workflow
from pipeline.core import hub, schema
from pipeline.core.credentials import Credentials, api_keys_for
from pipeline.core.errors import RunError
from pipeline.generate import meta as run_meta
from pipeline.generate import publish, results
from pipeline.generate.checkpoint import Checkpoint
from pipeline.generate.settings import DEFAULTS, RunSettings
from pipeline.judge import report
from pipeline.playground import templates
from ui import judge_check, sign_in
from ui.backend_picker import BackendPicker, follow, kind_updates
from ui.common import (
    info,
    md_link,
    md_text,
    shares_as_text,
    table_frame,
    token_of,
    username_of,
    warn,
)
from ui.forms import Form, wire
from ui.pipeline_view import (
    JUDGE_SHARES,
    LEADERBOARD_SHARES,
    NO_DATA,
    RunView,
    _data_note,
    _empty_langs,
    _empty_ratings,
    _leaderboard,
    _plots_from_table,
    langs_chart,
    latest_view,
    progress_markdown,
    ratings_chart,
)
from ui.session import Session

DEFAULT_MODEL = "meta-llama/Llama-3.3-70B-Instruct"


DEFAULT_ROW_LIMIT = 100


POLL_S = 1.0


_safe = md_text  # untrusted text for a Markdown component: shown as text


# --- Pure helpers (tested directly) -----------------------------------------------------------------------------------
def parse_models(text: str) -> list[str]:
    """Model ids from a textbox: one per line (commas also separate), blanks and duplicates dropped."""
    seen: list[str] = []
    for part in re.split(r"[\n,]+", text or ""):
        part = part.strip()
        if part and part not in seen:
            seen.append(part)
    return seen


def make_settings(values: Mapping[str, Any]) -> RunSettings:
    """RunSettings from the tab's fields. Raises RunError / InferenceError with a message for the user."""
    if not parse_models(values.get("models") or ""):
        raise RunError("Type at least one generator model id.")
    return RunSettings.from_mapping(values)


def checkpoint_for(filtered: Any, settings: RunSettings, user: str | None) -> Checkpoint:
    """The local checkpoint of this data + settings + owner (see ``pipeline.workflow.local_checkpoint``)."""
    ids = filtered.table.column("id").to_pylist() if filtered is not None else []
    return workflow.local_checkpoint(ids, getattr(filtered, "language_code", ""), settings, user or "local")


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
    name = run_meta.default_repo_name(getattr(filtered, "language", ""), getattr(filtered, "language_code", ""))
    return f"{user}/{name}" if user else name


# --- Handlers (module level so tests can drive them) ------------------------------------------------------------------
HUB_CHECKPOINTS_INFO = "A restart then loses at most N rows."


JUDGE_MODE_CHOICES = [
    ("Ratings: an UltraFeedback rating (1-5) per answer", "ratings"),
    ("Pairwise: which answer is better, A, B or a tie", "pairwise"),
]


JUDGE_ORDER_CHOICES = [
    ("Random order per row (1 judge call)", "random"),
    ("Both orders, averaged (2 judge calls; flags verdicts that flip)", "both"),
]


RUN_OPTIONS: Mapping[str, Any] = {  # the run's options besides its settings, with their defaults
    "restart": False,
    "hub_checkpoints": True,
    "checkpoint_every": 100,
    "repo": "",
    "hedge": True,
}


def on_select(session: Session, values: Mapping[str, Any], profile: gr.OAuthProfile | None = None) -> dict:
    """Prefill from the Playground's choice (once per choice; a community link's model is one too) and the data.
    ``values``: the current ``models``, ``system_prompt``, ``repo`` and ``judge_model``. Returns named outputs:
    the generator's fields (``kind``, ``models``, ``provider``, ``base_url``, ``api_key``), the judge's (when its
    model id is empty it shows the generator's backend: an empty judge is the first generator, where it runs),
    ``system_prompt``, ``repo``, ``hub_checkpoints``, ``data_note`` and ``timer``."""
    updates: dict[str, Any] = {}
    choice = session.model_choice
    state = session.pipeline_tab
    if choice is not None and state.prefilled != choice.stamp():
        state.prefilled = choice.stamp()
        updates = {
            **kind_updates(choice.backend, choice.base_url, choice.provider),
            "models": gr.update(value=choice.model),
        }
        if choice.system_prompt:
            updates["system_prompt"] = gr.update(value=choice.system_prompt)
        leader = {"kind": choice.backend, "base_url": choice.base_url, "provider": choice.provider}
        updates.update(follow({**leader, "judge_model": values.get("judge_model")}, "judge_"))
    if "system_prompt" not in updates and not (values.get("system_prompt") or "").strip() and session.filtered:
        f = session.filtered
        updates["system_prompt"] = gr.update(value=templates.default_prompt(f.language_code, f.language))
    user = username_of(profile)
    repo = values.get("repo") or ""
    if not repo.strip() or ("/" not in repo and user):
        updates["repo"] = gr.update(value=default_repo(user, session.filtered))
    # Hub checkpoints need sign-in: not offered (and not ticked) without it, and the box says why
    updates["hub_checkpoints"] = (
        gr.update(interactive=True, info=HUB_CHECKPOINTS_INFO)
        if user
        else gr.update(value=False, interactive=False, info=sign_in.hub_checkpoints_note())
    )
    running = session.run is not None and session.run.running
    return {**updates, "data_note": _data_note(session.filtered), "timer": gr.Timer(active=running)}


def judge_follows(values: Mapping[str, Any]) -> dict[str, Any]:
    """The generator's backend changed: an empty judge (the first generator) shows the same backend. ``values``:
    the generator's ``kind``, ``base_url``, ``provider`` and the ``judge_model``."""
    return follow(values, "judge_")


def where_models_run(settings: RunSettings) -> str:
    """Markdown: where each model of the run runs (generators, then the judge)."""
    return "**Where the models run**\n\n" + "\n".join(
        f"- {role.capitalize()}: {_safe(backend.label)}" for role, backend in workflow.model_roles(settings)
    )


def estimate(session: Session, values: Mapping[str, Any], profile: gr.OAuthProfile | None = None) -> dict:
    """The estimate for the current fields (calls, tokens, rows already done, where each model runs). Named outputs:
    ``estimate`` and ``progress`` (a refusal an earlier Start left there is replaced by the run's progress, or
    cleared)."""
    progress = _progress(session, session.run) if session.run is not None else ""
    if session.filtered is None or session.filtered.rows == 0:
        return {"estimate": NO_DATA, "progress": progress}
    try:
        settings = make_settings(values)
    except (RunError, inference.InferenceError) as exc:
        return {"estimate": _safe(getattr(exc, "message", str(exc))), "progress": progress}
    ckpt = checkpoint_for(session.filtered, settings, run_owner(session, profile))
    try:
        generate.check_checkpoint(settings, ckpt)
    except RunError as exc:
        return {"estimate": _safe(str(exc)), "progress": progress}
    plan = generate.plan_run(session.filtered.table, settings, ckpt.statuses())
    return {"estimate": _safe(plan.summary()) + "\n\n" + where_models_run(settings), "progress": progress}


def estimate_after_start(session: Session, values: Mapping[str, Any], profile: gr.OAuthProfile | None = None) -> dict:
    """The estimate line only (after Start: the progress shows what Start said)."""
    return {"estimate": estimate(session, values, profile)["estimate"]}


def _refuse(message: str) -> dict:
    warn(message)
    return {"progress": _safe(message), "timer": gr.Timer(active=False)}


def start(
    session: Session,
    values: Mapping[str, Any],
    oauth_token: gr.OAuthToken | None = None,
    profile: gr.OAuthProfile | None = None,
) -> dict:
    """Start (or resume) a run. Named outputs: ``progress`` (Markdown) and ``timer``. ``values``: the settings
    fields and the options in :data:`RUN_OPTIONS` (``hedge``: backup requests for the slowest calls at the end)."""
    opts = {**RUN_OPTIONS, **{k: v for k, v in values.items() if k in RUN_OPTIONS and v is not None}}
    if session.filtered is None or session.filtered.rows == 0:
        warn("No filtered data yet: load and filter a language in 1. Filter first.")
        return {"progress": NO_DATA, "timer": gr.Timer(active=False)}
    if session.run is not None and session.run.running:
        warn("A run is already going in this session: wait for it to finish or cancel it first.")
        return {"progress": progress_markdown(session.run.snapshot()), "timer": gr.Timer(active=True)}
    token, user = token_of(oauth_token), username_of(profile)
    try:
        settings = make_settings(values)
        workflow.require_sign_in(settings, token, sign_in.how())
    except (RunError, inference.InferenceError) as exc:
        return _refuse(getattr(exc, "message", str(exc)))
    keys = {b: values.get("api_key") or "" for b in settings.generators}
    if settings.judge not in keys or values.get("judge_api_key"):
        keys[settings.judge] = values.get("judge_api_key") or ""
    filtered = session.filtered
    source, language, code = run_meta.source_from_filtered(filtered)
    request = workflow.GenerationRequest(
        rows=filtered.table,
        settings=settings,
        checkpoint=checkpoint_for(filtered, settings, run_owner(session, profile)),
        credentials=Credentials(token, api_keys_for((*settings.generators, settings.judge), keys)),
        source=source,
        language=language,
        language_code=code,
        restart=bool(opts["restart"]),
        hub_repo=(opts["repo"] or default_repo(user, filtered)) if opts["hub_checkpoints"] and token and user else None,
        checkpoint_every=int(opts["checkpoint_every"] or 100),
        hedge=bool(opts["hedge"]),
        judge_check=session.judge_check.result,
    )
    try:
        started = workflow.start_generation(request)
    except (RunError, hub.HubError) as exc:
        return _refuse(str(exc))
    notes = started.notes
    if opts["hub_checkpoints"] and request.hub_repo is None:
        notes.append("Not signed in: results are kept on this server's disk only (no Hub checkpoints).")
    session.run = started.handle
    session.pipeline_tab.run_meta = started.meta
    session.pipeline_tab.notes = tuple(notes)
    info(f"Started: {started.handle.plan.summary()}")
    return {"progress": _progress(session, started.handle), "timer": gr.Timer(active=True)}


def _progress(session: Session, handle: generate.RunHandle) -> str:
    """The run's progress, then the notes its start gave (kept for the whole run, not overwritten by the next tick)."""
    text = progress_markdown(handle.snapshot(), handle.hub_message)
    if session.pipeline_tab.notes:
        text += "\n\n" + "\n\n".join(_safe(n) for n in session.pipeline_tab.notes)
    return text


def cancel(session: Session) -> dict:
    """Cancel the run (rows finished so far are kept). Named output: ``progress``."""
    handle = session.run
    if handle is None or not handle.running:
        return {"progress": "Nothing is running."}
    handle.cancel()
    handle.wait(10)
    return {"progress": progress_markdown(handle.snapshot())}


def _load_results(session: Session, handle: generate.RunHandle) -> None:
    """Put the run's table (every id once) and metadata in the session for the Argilla and Export tabs; the judge
    check's labels are checked against the new answers (labels whose answers changed are set aside)."""
    table = handle.table()
    meta = session.pipeline_tab.run_meta
    if meta is None:
        source, language, code = run_meta.source_from_filtered(session.filtered)
        meta = run_meta.build_raw_meta(handle.settings, None, source=source, language=language, language_code=code)
    snap = handle.snapshot()
    session.raw_meta = run_meta.with_results(meta, table, run_state=snap.state, hedged_calls=snap.hedged_calls)
    session.raw = run_meta.tag_raw(table, session.raw_meta)
    session.pipeline_tab.loaded_run = id(handle)
    judge_check.sync_labels(session)


def run_view(session: Session) -> RunView | None:
    """The run's view now (None without a run); loads the results into the session when the run has ended. Rows
    and plots of earlier results stay on screen while a run adds nothing new (e.g. resuming a finished run)."""
    handle = session.run
    if handle is None:
        return None
    latest = results.preview_rows(handle.latest_rows())
    if handle.running:
        ratings, langs = handle.live_stats()
        rating_df = pd.DataFrame(ratings) if ratings else _empty_ratings()
        lang_df = pd.DataFrame(langs)[["source", "rate"]] if langs else _empty_langs()
        if latest.empty and session.raw is not None and session.raw.num_rows:  # nothing new yet: keep the last
            latest = results.preview_rows(session.raw)
            rating_df, lang_df = _plots_from_table(session.raw)
        return RunView(_progress(session, handle), latest, rating_df, lang_df, None, True)
    if session.pipeline_tab.loaded_run != id(handle):
        _load_results(session, handle)
    rating_df, lang_df = _plots_from_table(session.raw)
    text = _progress(session, handle)
    if session.raw is not None:
        text += f"\n\n**{session.raw.num_rows:,} rows** are ready for **4. Argilla** and **5. Export**."
        if latest.empty:  # a resumed run that had nothing left to do: its rows are the checkpoint's
            latest = results.preview_rows(session.raw)
    return RunView(text, latest, rating_df, lang_df, _leaderboard(session.raw), False)


def poll(session: Session) -> dict:
    """Timer tick: progress, latest rows, plots, leaderboards (named outputs). Once the run has ended the results
    are in the session, the estimate line (stale) is cleared and the timer stops."""
    view = run_view(session)
    if view is None:
        return {"progress": "", "timer": gr.Timer(active=False)}
    out = {
        "progress": view.progress,
        "latest": latest_view(view.latest, getattr(session.filtered, "language_code", "") or ""),
        "ratings": ratings_chart(view.ratings),
        "langs": langs_chart(view.langs),
        "timer": gr.Timer(active=view.running),
    }
    if view.running:
        return out
    if view.board is not None:
        board = gr.update(value=table_frame(shares_as_text(view.board, LEADERBOARD_SHARES)), visible=True)
    else:
        board = gr.update(visible=False)
    out.update(leaderboard=board, estimate="")
    if session.raw is not None and session.raw.num_rows:
        judges = shares_as_text(report.judge_leaderboard(session.raw), JUDGE_SHARES)
        out["judges"] = gr.update(value=table_frame(judges), visible=True)
    return out


def push(
    session: Session,
    values: Mapping[str, Any],
    oauth_token: gr.OAuthToken | None = None,
    profile: gr.OAuthProfile | None = None,
) -> dict:
    """Push ``session.raw`` with its card and pipeline.py to the user's namespace. ``values``: ``repo``,
    ``private``, ``overwrite``. Named output: ``push``."""
    return {"push": _push(session, values, token_of(oauth_token), username_of(profile))}


def _push(session: Session, values: Mapping[str, Any], token: str | None, user: str | None) -> str:
    if not token:
        warn(sign_in.needed())
        return _safe(sign_in.needed())
    if session.run is not None and session.run.running:
        warn("The run is still going: wait for it to finish (or cancel it) before pushing.")
        return "The run is still going."
    if session.raw is None and session.run is not None:
        _load_results(session, session.run)
    if session.raw is None or session.raw.num_rows == 0:
        warn("There are no results to push yet: run the pipeline first.")
        return "No results yet."
    private = bool(values.get("private", True))
    meta = session.raw_meta if session.raw_meta is not None else schema.RunMeta()
    try:
        repo_id = workflow.preflight_push(
            values.get("repo") or default_repo(user, session.filtered),
            token,
            overwrite=bool(values.get("overwrite")),
            overwrite_hint="tick “Overwrite if it exists”",
            ours=lambda rid: publish.checkpoint_repo_state(rid, token, meta.fingerprint) == "ours",
        )
        url = publish.push_raw(session.raw, meta, repo_id, token, private=private, overwrite=True)
    except hub.HubError as exc:
        warn(str(exc))
        return _safe(str(exc))
    info(f"Pushed {session.raw.num_rows} rows to {repo_id}.")
    return f"Pushed **{session.raw.num_rows:,} rows** to {md_link(repo_id, url)}" + (
        " (private)." if private else " (public)."
    )


# --- Layout -----------------------------------------------------------------------------------------------------------
def build(session: gr.State, tab: gr.Tab) -> None:
    """Build the tab inside ``tab``; selecting the tab prefills it from the Playground's choice and the data."""
    gr.Markdown(
        "For every prompt of your filtered data: a second answer from your model (or from several, to compare "
        "them), a verdict on the human and the model answers by an LLM judge (UltraFeedback ratings, or pairwise: "
        "which is better), and a language check of every answer. Results are saved as they finish: cancel or lose "
        "the connection at any time and press **Start / resume** again to continue where it stopped."
    )
    data_note = gr.Markdown(NO_DATA)
    with gr.Row(equal_height=False):
        with gr.Column():
            gr.Markdown("### Generator model(s)")
            gen = BackendPicker.build("Model id(s): one per line (several → a leaderboard)", DEFAULT_MODEL, lines=2)
        with gr.Column():
            gr.Markdown("### Judge")
            jud = BackendPicker.build("Judge model id (empty: the first generator)")
            aspect = gr.Dropdown(
                choices=list(judge.ASPECTS),
                value=DEFAULTS["aspect"],
                label="Aspect",
                info="overall-rating: one holistic 1-5 rating per answer.",
            )
            judge_mode = gr.Radio(choices=JUDGE_MODE_CHOICES, value=DEFAULTS["judge_mode"], label="Judge mode")
            judge_order = gr.Radio(
                choices=JUDGE_ORDER_CHOICES,
                value=DEFAULTS["judge_order"],
                label="Answer order",
                info="Judges favour positions: the order is random per row (seeded by the row), "
                "or both orders are judged and a row whose verdict flips is flagged.",
            )
            judge_structured = gr.Checkbox(
                value=DEFAULTS["judge_structured"],
                label="Structured output (the judge answers in JSON that fits a schema)",
                info="Falls back to the plain text format where a server refuses it.",
            )
    system_prompt = gr.Textbox(
        label="System prompt (generators)", lines=3, info="Prefilled from the Playground's “Use in pipeline”."
    )
    with gr.Accordion("Limits and settings", open=True):
        with gr.Row():
            max_rows = gr.Number(label="Row limit (0 = all rows)", value=DEFAULT_ROW_LIMIT, precision=0, minimum=0)
            max_new = gr.Number(
                label="Max new tokens per answer", value=DEFAULTS["max_new_tokens"], precision=0, minimum=1
            )
            budget = gr.Number(
                label="Token budget (0 = none)",
                value=0,
                precision=0,
                minimum=0,
                info="The run stops (resumable) once it has used this many tokens.",
            )
            concurrency = gr.Slider(1, 64, value=DEFAULTS["concurrency"], step=1, label="Concurrency (calls at once)")
            max_wait = gr.Number(
                label="Longest wait for the provider (s)",
                value=DEFAULTS["max_wait_s"],
                precision=0,
                minimum=1,
                info="When a provider throttles (429) longer than this in all, the run "
                "pauses (resumable) instead of waiting on.",
            )
        with gr.Row():
            temperature = gr.Slider(0.0, 2.0, value=DEFAULTS["temperature"], step=0.05, label="Temperature")
            top_p = gr.Slider(0.05, 1.0, value=DEFAULTS["top_p"], step=0.05, label="Top-p")
            hub_checkpoints = gr.Checkbox(
                value=RUN_OPTIONS["hub_checkpoints"],
                label="Checkpoint to a private dataset in my namespace",
                info="Needs sign-in; a restart then loses at most N rows.",
            )
            every = gr.Number(
                label="Checkpoint every N rows",
                value=RUN_OPTIONS["checkpoint_every"],
                precision=0,
                minimum=workflow.HUB_CHECKPOINT_MIN_EVERY,
            )
            hedge = gr.Checkbox(
                value=RUN_OPTIONS["hedge"],
                label="Backup requests for the slowest calls at the end",
                info="A shorter tail for a few extra calls: at most max(concurrency, 2.5% of the "
                "calls), only while slots would sit idle.",
            )
    settings_form = Form(
        **gen.fields(model_key="models"),
        **jud.fields(prefix="judge_"),
        aspect=aspect,
        system_prompt=system_prompt,
        max_rows=max_rows,
        max_new_tokens=max_new,
        max_tokens=budget,
        concurrency=concurrency,
        temperature=temperature,
        top_p=top_p,
        judge_mode=judge_mode,
        judge_order=judge_order,
        judge_structured=judge_structured,
        max_wait_s=max_wait,
    )
    with gr.Row():
        estimate_btn = gr.Button("Estimate")
        start_btn = gr.Button("Start / resume", variant="primary")
        cancel_btn = gr.Button("Cancel", variant="stop")
        restart = gr.Checkbox(
            value=RUN_OPTIONS["restart"], label="Start over (discard finished rows of these settings)"
        )
    estimate_md = gr.Markdown()
    progress_md = gr.Markdown(elem_id="pipeline-progress")
    latest = gr.Dataframe(
        latest_view(pd.DataFrame(columns=["status", "prompt", "human", "human rating", "human lang", "error"]))[
            "value"
        ],
        label="Latest rows (newest first)",
        interactive=False,
        wrap=True,
        elem_id="pipeline-latest",
    )
    with gr.Row():
        rating_plot = gr.Plot(ratings_chart(None), show_label=False, elem_id="ratings-chart")
        lang_plot = gr.Plot(langs_chart(None), show_label=False, elem_id="langs-chart")
    leaderboard = gr.Dataframe(
        label="Leaderboard (mean judge rating and language-match rate per source)", interactive=False, visible=False
    )
    judge_board = gr.Dataframe(
        label="Judge (per judge model: mode, order, parse rate, flip rate)", interactive=False, visible=False
    )
    judge_check.build(session, jud, gen, aspect=aspect, mode=judge_mode)  # label a pilot run, compare judges
    with gr.Accordion("Push the raw dataset to the Hub", open=False):
        with gr.Row():
            repo = gr.Textbox(label="Dataset (owner/name)", placeholder="your-name/aya-dutch-dpo-raw", scale=3)
            private = gr.Checkbox(value=True, label="Private", scale=1)
            overwrite = gr.Checkbox(value=False, label="Overwrite if it exists", scale=1)
        push_btn = gr.Button("Push raw dataset (with card and pipeline.py)")
        push_md = gr.Markdown()
    timer = gr.Timer(POLL_S, active=False)

    run_form = settings_form.add(
        restart=restart, hub_checkpoints=hub_checkpoints, checkpoint_every=every, repo=repo, hedge=hedge
    )
    judge_fields = jud.fields(prefix="judge_")
    select_form = Form(models=gen.model, system_prompt=system_prompt, repo=repo, judge_model=jud.model)
    select_out = {
        **gen.fields(model_key="models"),
        **judge_fields,
        "system_prompt": system_prompt,
        "repo": repo,
        "data_note": data_note,
        "timer": timer,
        "hub_checkpoints": hub_checkpoints,
    }
    run_out = {"progress": progress_md, "timer": timer}
    shown = {
        "progress": progress_md,
        "latest": latest,
        "ratings": rating_plot,
        "langs": lang_plot,
        "leaderboard": leaderboard,
        "timer": timer,
        "estimate": estimate_md,
        "judges": judge_board,
    }
    follow_form = Form(kind=gen.kind, base_url=gen.base_url, provider=gen.provider, judge_model=jud.model)
    follow_out = {k: v for k, v in judge_fields.items() if k != "judge_model"}

    wire(tab.select, on_select, session=session, form=select_form, outputs=select_out)
    for change in (gen.kind.change, gen.base_url.change, gen.provider.change):
        wire(change, judge_follows, form=follow_form, outputs=follow_out)
    estimate_out = {"estimate": estimate_md, "progress": progress_md}
    wire(estimate_btn.click, estimate, session=session, form=settings_form, outputs=estimate_out)
    started = wire(start_btn.click, start, session=session, form=run_form, outputs=run_out)
    wire(started.then, estimate_after_start, session=session, form=settings_form, outputs={"estimate": estimate_md})
    wire(cancel_btn.click, cancel, session=session, outputs={"progress": progress_md})
    wire(timer.tick, poll, session=session, outputs=shown)
    wire(
        push_btn.click,
        push,
        session=session,
        form=Form(repo=repo, private=private, overwrite=overwrite),
        outputs={"push": push_md},
    )


__all__ = [
    "RUN_OPTIONS",
    "build",
    "cancel",
    "checkpoint_for",
    "estimate",
    "estimate_after_start",
    "judge_follows",
    "make_settings",
    "on_select",
    "parse_models",
    "poll",
    "progress_markdown",
    "push",
    "run_view",
    "start",
]
