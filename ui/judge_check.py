"""The judge check section of the Pipeline tab: people label a pilot run, then up to 3 judge models are checked
against them, side by side (UI wiring only; the workflow is ``pipeline.judge.check``, the CLI's too).

- **Labelling panel**: 10-50 rows of the pilot run in ``session.raw``, one at a time: the prompt and two answers,
  in a random order, their sources hidden; people answer A / B / tie / both bad. Labels live in
  ``session.judge_check`` and go into ``session.annotations`` at once (as annotation rows), so Export uses them.
- **The check**: three judge pickers, "Estimate the check" (calls and tokens, before anything is spent), "Run the
  check" (a background thread; a ``gr.Timer`` polls it), the side-by-side table, and "Use this judge", which sets
  the run's judge fields (the Pipeline tab's judge :class:`~ui.backend_picker.BackendPicker`, given to
  :func:`build`) and keeps the check's figures in ``session.judge_check.result`` for the run's metadata and cards.

Handlers take ``(session, values)`` with ``values`` a mapping of named fields (see :class:`ui.forms.Form`).
Untrusted text (prompts, answers, model ids, server errors) is shown in text boxes, tables or through
``ui.common.md_text``, never as HTML or Markdown.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from pipeline import inference, judge
from pipeline.core import tablefiles
from pipeline.core.credentials import Credentials, api_keys_for
from pipeline.judge import check as judgecheck
from pipeline.judge import labels as judge_labels
from pipeline.judge import report as judge_report
from ui import sign_in
from ui.backend_picker import BackendPicker, follow, set_to
from ui.common import md_text, token_of, warn
from ui.forms import Form, wire
from ui.session import Session

__all__ = [
    "JUDGES",
    "answer",
    "build",
    "cancel_check",
    "candidates_follow",
    "estimate_check",
    "labels_file",
    "load_tasks",
    "move",
    "on_answer",
    "on_choice",
    "on_move",
    "on_save",
    "panel_view",
    "poll_check",
    "start_check",
    "sync_labels",
    "use_judge",
]

JUDGES = 3
POLL_S = 1.0
SOURCE_CHOICES = [
    ("People's labels from this panel", judge_labels.SOURCE_LABELS),
    ("All people's answers (Argilla pull and these labels)", judge_labels.SOURCE_ANNOTATIONS),
]
CHOICE_BUTTONS = (
    ("A is better", judge_labels.CHOICE_A),
    ("B is better", judge_labels.CHOICE_B),
    ("Tie", judge_labels.CHOICE_TIE),
    ("Both bad", judge_labels.CHOICE_BAD),
)
NO_PILOT = (
    "**No pilot run yet.** Run the pipeline above on a few rows first (Row limit 20, say): its answers are "
    "what you label here."
)
EMPTY_SCORES = pd.DataFrame(columns=list(judge_report.SCORE_COLUMNS))
PANEL_KEYS = ("position", "prompt", "answer_a", "answer_b", "tally")


# --------------------------------------------------------------------------------------------------------------
# Labelling
# --------------------------------------------------------------------------------------------------------------
def _tally(session: Session) -> str:
    labels = session.judge_check.labels
    if not labels:
        return "No labels yet."
    counts = Counter(lab.choice for lab in labels.values())
    parts = ", ".join(f"{counts[c]} {c}" for _, c in CHOICE_BUTTONS if counts[c])
    usable = len(labels) - counts[judge_labels.CHOICE_BAD]
    text = (
        f"**{len(labels)} labelled** ({parts}): {usable} can check judges; all are in **5. Export** as "
        "people's answers."
    )
    if usable < judge_labels.MIN_LABEL_ROWS:
        text += f" Label at least {judge_labels.MIN_LABEL_ROWS} for figures worth reading."
    if session.judge_check.set_aside:
        text += (
            f" **{session.judge_check.set_aside} label(s) set aside**: the answers they were given for changed "
            "(a new run), so they are not used; label the new answers."
        )
    return text


def panel_view(session: Session) -> dict[str, Any]:
    """The panel's values for the row at ``session.judge_check.position`` (text only; sources never shown)."""
    state = session.judge_check
    if not state.tasks:
        return {
            "position": NO_PILOT if session.raw is None else "Press **Label rows** to start.",
            "prompt": "",
            "answer_a": "",
            "answer_b": "",
            "tally": _tally(session),
        }
    state.position = max(0, min(state.position, len(state.tasks) - 1))
    task = state.tasks[state.position]
    done = state.labels.get(task.id)
    where = f"Row **{state.position + 1} of {len(state.tasks)}**"
    where += f" · your answer: **{md_text(done.choice)}** (answer again to change it)" if done else " · not labelled"
    return {
        "position": where,
        "prompt": task.prompt,
        "answer_a": task.answers[0],
        "answer_b": task.answers[1],
        "tally": _tally(session),
    }


def load_tasks(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the queue with ``values["rows"]`` rows (10-50) of the pilot run in ``session.raw``; earlier labels are
    kept (a row labelled before shows its answer)."""
    state = session.judge_check
    if session.raw is None or session.raw.num_rows == 0:
        warn("No pilot run yet: run the pipeline on a few rows first.")
        return panel_view(session)
    try:
        state.tasks = judge_labels.label_tasks(session.raw, int(values.get("rows") or judge_labels.DEFAULT_LABEL_ROWS))
    except judge_labels.JudgeCheckError as exc:
        warn(exc)
        return panel_view(session)
    state.raw_key = id(session.raw)
    if not state.tasks:
        warn("No row of the pilot run has two answers to compare (did the generations fail?).")
    state.position = next((i for i, t in enumerate(state.tasks) if t.id not in state.labels), 0)
    return panel_view(session)


def sync_labels(session: Session) -> None:
    """Put the labels that still belong to ``session.raw`` into ``session.annotations`` (Argilla's rows for the
    same ids win). A label whose answers changed (a new run) is set aside and counted, never reused for the new
    answers (:func:`pipeline.judge.check.current_labels`). Call it after the labels or ``session.raw`` change."""
    state = session.judge_check
    kept, state.set_aside = judge_labels.current_labels(state.labels.values(), session.raw)
    if not kept and not state.label_ids:
        return
    labelled = judge_labels.labels_to_annotations(kept)
    session.annotations, state.label_ids = judge_labels.merge_annotations(
        session.annotations, labelled, replace_ids=state.label_ids
    )


def answer(session: Session, choice: str) -> dict[str, Any]:
    """Record people's answer for the row shown, and show the next unlabelled row."""
    state = session.judge_check
    if not state.tasks:
        return panel_view(session)
    task = state.tasks[state.position]
    state.labels[task.id] = task.label(choice)
    sync_labels(session)
    after = [i for i in range(state.position + 1, len(state.tasks)) if state.tasks[i].id not in state.labels]
    if after:
        state.position = after[0]
    elif state.position + 1 < len(state.tasks):
        state.position += 1
    return panel_view(session)


def move(session: Session, step: int) -> dict[str, Any]:
    """Show the previous (``-1``) or next (``+1``) row."""
    session.judge_check.position += step
    return panel_view(session)


def on_answer(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """An answer button (``values["choice"]``: its answer, kept in a state next to the button)."""
    return answer(session, values["choice"])


def on_move(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """Previous / Next (``values["step"]``: -1 or +1, kept in a state next to the button)."""
    return move(session, int(values["step"]))


def labels_file(session: Session) -> str | None:
    """The labels as a JSON Lines file (for ``python -m pipeline judge-check --labels``), or None without labels."""
    labels = list(session.judge_check.labels.values())
    if not labels:
        warn("No labels yet: label a few rows first.")
        return None
    path = Path(tempfile.mkdtemp(prefix="judge-labels-")) / "labels.jsonl"
    return str(tablefiles.write_table(judge_labels.labels_table(labels), path))


def on_save(session: Session) -> dict[str, Any]:
    """ "Save labels": the file to download (named output ``file``)."""
    path = labels_file(session)
    return {"file": gr.update(value=path, visible=path is not None)}


# --------------------------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------------------------
def _judge_specs(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "kind": values.get(f"j{k}_kind"),
            "model": values.get(f"j{k}_model"),
            "base_url": values.get(f"j{k}_base_url") or "",
            "provider": values.get(f"j{k}_provider"),
        }
        for k in range(1, JUDGES + 1)
    ]


def _settings(values: Mapping[str, Any]) -> judgecheck.CheckSettings:
    judges = judgecheck.judges_from(_judge_specs(values))
    return judgecheck.CheckSettings(
        judges=judges,
        mode=values.get("mode") or judge.DEFAULT_MODE,
        aspect=values.get("aspect") or judge.DEFAULT_ASPECT,
    )


def _run_language(session: Session) -> str:
    """The language of the run about to be made: the filtered set's, else the pilot run's."""
    code = getattr(session.filtered, "language_code", "") or ""
    if code:
        return code
    if session.raw is not None and "target_language" in session.raw.column_names:
        codes = {c for c in session.raw.column("target_language").to_pylist() if c}
        return next(iter(codes)) if len(codes) == 1 else ""
    return ""


def _items(session: Session, values: Mapping[str, Any]) -> tuple[list[judge_labels.CheckItem], str]:
    source = values.get("source") or judge_labels.SOURCE_LABELS
    if source == judge_labels.SOURCE_ANNOTATIONS:
        if session.raw is None or session.annotations is None:
            raise judge_labels.JudgeCheckError(judge_labels.NO_ANNOTATED_ROWS)
        return judge_labels.items_from_annotations(session.raw, session.annotations), source
    return judge_labels.items_from_labels(session.judge_check.labels.values()), source


def _prepare(session: Session, values: Mapping[str, Any]):
    settings = _settings(values)
    items, source = _items(session, values)
    language = _run_language(session)
    judge_labels.check_items(items, language, source=source)
    return items, source, language, settings


def estimate_check(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """The check's estimate (calls and tokens), or what is missing, as Markdown (named output ``estimate``)."""
    try:
        items, _, _, settings = _prepare(session, values)
    except judge_labels.JudgeCheckError as exc:
        return {"estimate": md_text(exc)}
    return {"estimate": "**Estimate:** " + md_text(judgecheck.plan_check(items, settings).summary())}


def start_check(
    session: Session, values: Mapping[str, Any], oauth_token: gr.OAuthToken | None = None
) -> dict[str, Any]:
    """Start the check in a background thread. Named outputs: ``status`` (Markdown) and ``timer``."""
    state = session.judge_check
    token = token_of(oauth_token)
    if state.handle is not None and state.handle.running:
        warn("A judge check is already running: wait for it or cancel it.")
        return {"status": md_text(state.handle.line()), "timer": gr.Timer(active=True)}
    try:
        items, source, language, settings = _prepare(session, values)
        settings.require_sign_in(token, _lower_first(sign_in.how()))
    except judge_labels.JudgeCheckError as exc:
        warn(exc)
        return {"status": md_text(exc), "timer": gr.Timer(active=False)}
    keys = {b: values.get(f"j{k}_api_key") or "" for k, b in enumerate(settings.judges, start=1)}
    credentials = Credentials(token, api_keys_for(settings.judges, keys))
    plan = judgecheck.plan_check(items, settings)
    state.handle = judgecheck.start_check(items, settings, credentials, language=language, source=source)
    return {
        "status": f"Checking {len(settings.judges)} judge(s) on {len(items)} rows: " + md_text(plan.summary()),
        "timer": gr.Timer(active=True),
    }


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _score_frame(check: Any) -> pd.DataFrame:
    return pd.DataFrame(judge_report.score_rows(check), columns=list(judge_report.SCORE_COLUMNS))


def poll_check(session: Session) -> dict[str, Any]:
    """Timer tick: progress while the check runs; the table and the judges to choose from when it ends."""
    state = session.judge_check
    handle = state.handle
    if handle is None:  # nothing running (or its end already shown): leave the page as it is
        return {"timer": gr.Timer(active=False)}
    if handle.running:
        return {"status": "Checking: " + md_text(handle.line()), "timer": gr.Timer(active=True)}
    state.handle = None  # shown once: a late tick must not undo "Use this judge"
    if handle.error:
        return {"status": md_text(handle.error), "timer": gr.Timer(active=False)}
    report = handle.report
    state.result = report.check
    choices = [
        (f"{j.model} ({j.base_url})" if inference.KINDS[j.backend].needs_url else j.model, str(i))
        for i, j in enumerate(report.check.judges)
        if j.rows
    ]
    status = "Cancelled: the figures cover the rows judged before. " if report.cancelled else "Done. "
    status += md_text(judge_report.summary_line(report.check))
    verdicts = judge_report.verdicts(report.check)
    status += "\n\n**Verdict**\n\n" + "\n".join(f"- {'✅' if v.ok else '⚠️'} {md_text(v.text)}" for v in verdicts)
    first = choices[0][1] if choices else None
    return {
        "status": status,
        "table": _score_frame(report.check),
        "timer": gr.Timer(active=False),
        "choice": gr.update(choices=choices, value=first),
        "note": _caution(report.check, first),
    }


def _chosen(check: Any, choice: Any) -> tuple[int, Any] | None:
    try:
        index = int(choice)
        return index, check.judges[index]
    except (TypeError, ValueError, IndexError, AttributeError):
        return None


def _caution(check: Any, choice: Any) -> str:
    """What to know before "Use this judge" for the judge ``choice`` (an index into ``check.judges``)."""
    found = _chosen(check, choice)
    if found is None:
        return ""
    verdict = judge_report.verdicts(check)[found[0]]
    if verdict.ok:
        return f"✅ {md_text(verdict.text)}"
    return f"⚠️ **Think twice before using this judge.** {md_text(verdict.text)}"


def on_choice(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """The judge to use changed: say plainly what the check found about it, before "Use this judge"."""
    return {"note": _caution(session.judge_check.result, values.get("choice"))}


def cancel_check(session: Session) -> dict[str, Any]:
    """Cancel the running check (named output ``status``)."""
    handle = session.judge_check.handle
    if handle is None or not handle.running:
        return {"status": "No judge check is running."}
    handle.cancel()
    return {"status": "Cancelling: the calls in flight finish, then the rows judged so far are shown."}


def use_judge(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """Set the run's judge fields (named ``judge_kind``, ``judge_model``...) to the chosen judge, with a ``note``
    that repeats the check's verdict; keep the check (with the choice) for the run's metadata."""
    state = session.judge_check
    check = state.result
    found = _chosen(check, values.get("choice")) if check is not None else None
    if found is None:
        warn("Run the check first, then pick one of its judges.")
        return {}
    index, chosen = found
    state.result = dataclasses.replace(check, chosen=chosen.model)
    updates = set_to("judge_", chosen.backend, chosen.model, chosen.base_url, chosen.provider or "auto")
    verdict = judge_report.verdicts(check)[index]
    note = f"The run's judge is now **{md_text(chosen.model)}**; its check figures go into the run's cards."
    if not verdict.ok:
        note = f"⚠️ {note} Caution: {md_text(verdict.text)}"
    if inference.KINDS[chosen.backend].takes_api_key:
        note += " If its server needs an API key, type it in the judge's API key field above."
    return {**updates, "note": note}


def candidates_follow(values: Mapping[str, Any]) -> dict[str, Any]:
    """The generators' backend changed: candidate judges without a model id move to it (the usual case is judging
    on the same server), so the URL need not be typed again."""
    out: dict[str, Any] = {}
    for k in range(1, JUDGES + 1):
        out.update(follow(values, f"j{k}_"))
    return out


# --------------------------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------------------------
def build(
    session: gr.State, judge_picker: BackendPicker, generator: BackendPicker, *, aspect: Any = None, mode: Any = None
) -> None:
    """The judge check section (a closed accordion), inside the Pipeline tab's layout.

    ``judge_picker``: the run's judge fields ("Use this judge" sets them). ``generator``: the run's generator picker
    (candidate judges start on its backend). ``aspect`` / ``mode``: the run's judge aspect and mode components, if
    any, so the check judges as the run will (defaults otherwise)."""
    with gr.Accordion("Judge check: compare judge models with people before the run", open=False):
        gr.Markdown(
            "Does a judge know your language? Label 10-50 rows of a small pilot run (run the pipeline above with a "
            "row limit of about 20), then check up to 3 judge models on them: each judges every row in both orders. "
            "**Parse rate**: verdicts that could be read. **Flip rate**: the preferred answer changed when the "
            "answers swapped places (position bias). **Agreement** and **Cohen's kappa**: how often the judge picks "
            "the answer people picked (kappa corrects for chance: 0 = chance, 1 = always)."
        )
        with gr.Group():
            with gr.Row():
                rows = gr.Number(
                    label="Rows to label (10-50)",
                    value=judge_labels.DEFAULT_LABEL_ROWS,
                    precision=0,
                    minimum=judge_labels.MIN_LABEL_ROWS,
                    maximum=judge_labels.MAX_LABEL_ROWS,
                )
                load_btn = gr.Button("Label rows")
            position = gr.Markdown(NO_PILOT)
            prompt = gr.Textbox(label="Prompt", interactive=False, lines=2, max_lines=12)
            with gr.Row(equal_height=True):
                answer_a = gr.Textbox(label="Answer A", interactive=False, lines=4, max_lines=20)
                answer_b = gr.Textbox(label="Answer B", interactive=False, lines=4, max_lines=20)
            with gr.Row(elem_classes=["label-buttons"]):
                choice_btns = [
                    (gr.Button(label, variant="primary" if i < 2 else "secondary", min_width=110), gr.State(value))
                    for i, (label, value) in enumerate(CHOICE_BUTTONS)
                ]
            with gr.Row(elem_classes=["label-buttons"]):
                prev_btn = gr.Button("← Previous", variant="secondary", min_width=110)
                next_btn = gr.Button("Next →", variant="secondary", min_width=110)
                save_btn = gr.Button("Save labels (for the command line)", variant="secondary", min_width=110)
            tally = gr.Markdown("No labels yet.")
            labels_out = gr.File(label="Labels (JSON Lines)", interactive=False, visible=False)
        gr.Markdown("**Candidate judges** (up to 3; empty model ids are skipped; they start where the generators run)")
        with gr.Row(equal_height=False):
            pickers = []
            for k in range(1, JUDGES + 1):
                with gr.Column():
                    pickers.append(BackendPicker.build(f"Judge {k} model id"))
        source = gr.Radio(SOURCE_CHOICES, value=judge_labels.SOURCE_LABELS, label="Check against")
        with gr.Row():
            estimate_btn = gr.Button("Estimate the check")
            run_btn = gr.Button("Run the check", variant="primary")
            cancel_btn = gr.Button("Cancel the check", variant="stop")
        estimate_md = gr.Markdown()
        status_md = gr.Markdown(elem_id="judge-check-status")
        table = gr.Dataframe(EMPTY_SCORES, label="Judges side by side", interactive=False, wrap=True)
        with gr.Row():
            choice = gr.Dropdown(choices=[], label="Judge to use", scale=3)
            use_btn = gr.Button("Use this judge", scale=1)
        use_md = gr.Markdown(elem_id="judge-check-use")
        timer = gr.Timer(POLL_S, active=False)

    panel = {"position": position, "prompt": prompt, "answer_a": answer_a, "answer_b": answer_b, "tally": tally}
    fields: dict[str, Any] = {"source": source}
    for k, picker in enumerate(pickers, start=1):
        fields.update(picker.fields(prefix=f"j{k}_"))
    if aspect is not None:
        fields["aspect"] = aspect
    if mode is not None:
        fields["mode"] = mode
    check_form = Form(**fields)
    use_out = {**judge_picker.fields(prefix="judge_"), "note": use_md}

    wire(load_btn.click, load_tasks, session=session, form=Form(rows=rows), outputs=panel)
    for button, value in choice_btns:
        wire(button.click, on_answer, session=session, form=Form(choice=value), outputs=panel)
    for button, step in ((prev_btn, -1), (next_btn, 1)):
        wire(button.click, on_move, session=session, form=Form(step=gr.State(step)), outputs=panel)
    wire(save_btn.click, on_save, session=session, outputs={"file": labels_out})
    wire(estimate_btn.click, estimate_check, session=session, form=check_form, outputs={"estimate": estimate_md})
    wire(run_btn.click, start_check, session=session, form=check_form, outputs={"status": status_md, "timer": timer})
    wire(cancel_btn.click, cancel_check, session=session, outputs={"status": status_md})
    poll_out = {"status": status_md, "table": table, "choice": choice, "timer": timer, "note": use_md}
    wire(timer.tick, poll_check, session=session, outputs=poll_out)
    wire(choice.input, on_choice, session=session, form=Form(choice=choice), outputs={"note": use_md})
    wire(use_btn.click, use_judge, session=session, form=Form(choice=choice), outputs=use_out)
    follow_form = Form(
        kind=generator.kind,
        base_url=generator.base_url,
        provider=generator.provider,
        **{f"j{k}_model": p.model for k, p in enumerate(pickers, start=1)},
    )
    follow_out = {
        name: comp
        for k, p in enumerate(pickers, start=1)
        for name, comp in p.fields(prefix=f"j{k}_").items()
        if name != f"j{k}_model"
    }
    for change in (generator.kind.change, generator.base_url.change, generator.provider.change):
        wire(change, candidates_follow, form=follow_form, outputs=follow_out)
