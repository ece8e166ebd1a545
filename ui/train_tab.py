"""The Train tab: from a pushed export to a model trained with TRL (DPO or ORPO) on Hugging Face Jobs.

Three choices and one click: the export (the one this session pushed last), the base model (a suggestion for the
dataset's size) and the hardware (HF Jobs' flavours with their prices; the cheapest GPU that fits), then "Train on
HF Jobs". The method, LoRA or full fine-tuning and TRL's hyperparameters sit in an accordion with their defaults.
Before the click the tab shows the estimate (time and cost range) and, for an account that cannot pay for Jobs,
says so. While the job runs, a timer shows its stage, the training's progress, the hardware's metrics and the tail
of its logs; then the evaluation figures and the model's link. The script can be downloaded or copied to run
anywhere.

UI glue only: every decision is in :mod:`pipeline.train` (the same functions as ``dpo-studio train``). Handlers are
module-level and take the session plus one mapping of the form's values by name (:data:`FIELDS`), so tests call
them with plain dicts. The job lives in the session (``Session.train_tab.job``); after a reload the tab finds the
user's latest training job again by its label.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import gradio as gr

from pipeline import train
from pipeline.core import hub
from pipeline.train.jobs import metrics_line
from pipeline.train.settings import BASE_MODELS
from ui import sign_in
from ui.common import md_link, md_text, token_of, username_of, warn
from ui.forms import Form, pick, wire
from ui.session import Session

_defaults = train.TrainSettings(dataset="", base_model="")
DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "dataset": "",
        "base_model": "",
        "flavor": None,
        "method": _defaults.method,
        "lora": _defaults.lora,
        "beta": _defaults.beta,
        "learning_rate": 0.0,  # 0: the default for LoRA or full fine-tuning
        "epochs": _defaults.epochs,
        "max_length": _defaults.max_length,
        "output_repo": "",
        "private": _defaults.private,
    }
)
"""Every value of the tab's form by name, with its default."""
FIELDS: Final = tuple(DEFAULTS)
POLL_SECONDS: Final = 3.0
LOG_LINES: Final = 40
FIGURE_HEADERS: Final = ["Figure (held-out pairs)", "Before", "After"]

INTRO = (
    "Train a model on your preference dataset with TRL's **DPO** or **ORPO**, on Hugging Face Jobs in your "
    "namespace. The script evaluates the model on the export's test split before and after training (reward "
    "accuracy, margins) and pushes the model, or its LoRA adapter, with a model card. Download the script to run "
    "the same training anywhere (`uv run train.py`), or use `dpo-studio train`."
)


def _settings(values: Mapping[str, Any]) -> train.TrainSettings:
    v = {**DEFAULTS, **{k: val for k, val in values.items() if val is not None}}
    return train.TrainSettings.from_mapping(
        {
            "dataset": (v["dataset"] or "").strip(),
            "base_model": (v["base_model"] or "").strip(),
            "output_repo": (v["output_repo"] or "").strip(),
            "method": v["method"],
            "lora": bool(v["lora"]),
            "beta": v["beta"],
            "learning_rate": float(v["learning_rate"] or 0) or None,
            "epochs": v["epochs"],
            "max_length": v["max_length"],
            "private": bool(v["private"]),
        }
    )


def _facts(session: Session, dataset: str, token: str | None) -> train.ExportFacts:
    cached = session.train_tab.facts
    if cached is not None and cached.dataset == dataset:
        return cached
    facts = train.read_export(dataset, token)
    session.train_tab.facts = facts
    return facts


def _flavors(token: str | None) -> list[train.Flavor]:
    try:
        return train.list_flavors(token)
    except train.JobsError:
        return []


def _plan(
    session: Session, values: Mapping[str, Any], token: str | None, namespace: str, flavors: list[train.Flavor]
) -> train.TrainPlan:
    settings = _settings(values)
    facts = _facts(session, hub.validate_repo_id(settings.dataset), token)
    return train.plan(settings, facts, namespace=namespace, flavors=flavors, flavor=values.get("flavor") or "")


def _estimate_md(plan: train.TrainPlan) -> str:
    facts = plan.facts
    test = f"{facts.test_pairs} test pairs" if facts.test_pairs else "no test split (10% of train held out)"
    lines = [f"**{facts.train_pairs} training pairs**, {test}. Pushes to **{md_text(plan.settings.output_repo)}**."]
    if plan.estimate is not None:
        lines.append(f"**Estimate:** {md_text(plan.estimate.text())}")
    return "\n\n".join(lines)


# --- handlers ---------------------------------------------------------------------------------------------------
def on_open(
    session: Session,
    values: Mapping[str, Any],
    profile: gr.OAuthProfile | None = None,
    oauth_token: gr.OAuthToken | None = None,
) -> dict[str, Any]:
    """On opening the tab: the export this session pushed, a base model for its size, the hardware with prices and
    the default flavour, the note about paying for Jobs, the estimate; and the job of this session, or the user's
    latest training job after a reload. ``values``: the form's values by name (:data:`FIELDS`). Named outputs:
    ``dataset``, ``base_model``, ``flavor``, ``payment``, ``estimate``, ``launch`` and the job's (see
    :func:`_job_outputs`)."""
    token = token_of(oauth_token)
    user = username_of(profile) or ""
    dataset = (values.get("dataset") or "").strip() or session.pushed_export
    base_model = (values.get("base_model") or "").strip()
    flavors = _flavors(token)
    flavor_choices = [(f.label(), f.name) for f in flavors]
    estimate, flavor = "", values.get("flavor")
    if dataset:
        try:
            facts = _facts(session, dataset, token)
            base_model = base_model or train.suggest_base_model(facts.train_pairs)[0]
            plan = _plan(session, {**values, "dataset": dataset, "base_model": base_model}, token, user, flavors)
            flavor = plan.flavor.name if plan.flavor else flavor
            estimate = _estimate_md(plan)
        except (train.TrainError, train.JobsError, hub.HubError) as e:
            estimate = f"**Cannot train on it yet.** {md_text(e)}"
    else:
        estimate = "Push an export in **5. Export** first, or enter the id of a preference dataset on the Hub."
    if session.train_tab.job is None and token and user:
        try:
            session.train_tab.job = train.find_latest(token, user)
        except train.JobsError:
            pass
    note = train.payment_note(token) if token else sign_in.needed() + " " + train.PAID_ACCOUNT
    base_choices = [m for _, m, _ in BASE_MODELS]
    return {
        "dataset": gr.update(value=dataset),
        "base_model": gr.update(choices=sorted({*base_choices, base_model} - {""}), value=base_model or None),
        "flavor": gr.update(choices=flavor_choices, value=flavor),
        "payment": md_text(note) if note else "",
        "estimate": estimate,
        "launch": gr.update(interactive=bool(token)),
        **_job_outputs(session, token),
    }


def on_change(
    session: Session,
    values: Mapping[str, Any],
    profile: gr.OAuthProfile | None = None,
    oauth_token: gr.OAuthToken | None = None,
) -> dict[str, Any]:
    """A choice changed: the estimate again (the export's facts are cached in the session). Named output:
    ``estimate``."""
    token = token_of(oauth_token)
    if not (values.get("dataset") or "").strip():
        return {"estimate": "Choose the export to train on."}
    try:
        return {"estimate": _estimate_md(_plan(session, values, token, username_of(profile) or "", _flavors(token)))}
    except (train.TrainError, train.JobsError, hub.HubError) as e:
        return {"estimate": f"**Cannot train on it yet.** {md_text(e)}"}


def on_script(
    session: Session,
    values: Mapping[str, Any],
    profile: gr.OAuthProfile | None = None,
    oauth_token: gr.OAuthToken | None = None,
) -> dict[str, Any]:
    """The training script for the choices shown: a file to download and the text to read or copy (named outputs
    ``script_file``, ``script``)."""
    token = token_of(oauth_token)
    try:
        plan = _plan(session, values, token, username_of(profile) or "", [])
    except (train.TrainError, hub.HubError) as e:
        warn(e)
        return {"script_file": None, "script": f"# {e}"}
    path = Path(tempfile.mkdtemp(prefix="dpo-studio-train-")) / "train.py"
    path.write_text(plan.script, encoding="utf-8")
    return {"script_file": str(path), "script": plan.script}


def on_launch(
    session: Session,
    values: Mapping[str, Any],
    profile: gr.OAuthProfile | None = None,
    oauth_token: gr.OAuthToken | None = None,
) -> dict[str, Any]:
    """Start the training on HF Jobs with the user's token (as the job's secret); the job goes into the session.
    Named outputs: the job's (:func:`_job_outputs`)."""
    token = token_of(oauth_token)
    if not token:
        gr.Warning(sign_in.needed())
        return _job_outputs(session, token, sign_in.needed())
    try:
        plan = _plan(session, values, token, username_of(profile) or "", _flavors(token))
        session.train_tab.job = train.launch(plan, token)
    except (train.TrainError, train.JobsError, hub.HubError) as e:
        warn(e)
        return _job_outputs(session, token, f"**Not started.** {md_text(e)}")
    return _job_outputs(session, token)


def on_poll(session: Session, oauth_token: gr.OAuthToken | None = None) -> dict[str, Any]:
    """Timer tick: the job's stage, progress, metrics and logs; the timer stops when the job has ended."""
    return _job_outputs(session, token_of(oauth_token))


def on_cancel(session: Session, oauth_token: gr.OAuthToken | None = None) -> dict[str, Any]:
    """Cancel the session's job. Named outputs: the job's (:func:`_job_outputs`)."""
    token = token_of(oauth_token)
    job = session.train_tab.job
    if job is None:
        return _job_outputs(session, token, "No training job to cancel.")
    try:
        train.cancel(job, token)
    except train.JobsError as e:
        warn(e)
        return _job_outputs(session, token, f"**Not cancelled.** {md_text(e)}")
    return _job_outputs(session, token)


def _job(status: str, figures: list, logs: str, running: bool) -> dict[str, Any]:
    return {
        "status": status,
        "figures": figures,
        "logs": logs,
        "cancel": gr.update(interactive=running),
        "timer": gr.Timer(active=running),
    }


def _job_outputs(session: Session, token: str | None, message: str = "") -> dict[str, Any]:
    """Named outputs ``status``, ``figures``, ``logs``, ``cancel`` (the button) and ``timer`` for the session's
    job."""
    ref = session.train_tab.job
    if ref is None:
        return _job(message, [], "", False)
    try:
        job = train.view(ref, token, tail=LOG_LINES)
    except train.JobsError as e:
        return _job(f"{message}\n\n**Could not read job {md_text(ref.job_id)}.** {md_text(e)}".strip(), [], "", False)
    session.train_tab.job = job.ref
    lines = [message] if message else []
    link = md_link(job.ref.job_id, job.url) if job.url else md_text(job.ref.job_id)
    lines.append(f"**Job {link}: {md_text(job.stage)}**" + (f" — {md_text(job.message)}" if job.message else ""))
    if job.progress.stage:
        lines.append(md_text(job.progress.line()))
    if job.metrics:
        lines.append(md_text(metrics_line(job.metrics)))
    if job.progress.seconds_per_step:
        lines.append(f"{job.progress.step} steps, {job.progress.seconds_per_step:.2f} s a step.")
    if job.model_url:
        lines.append(f"**Model:** {md_link(job.ref.output_repo or job.model_url, job.model_url)}")
    figures = [list(row) for row in job.progress.figures.rows()] if job.progress.figures else []
    running = not job.finished
    return _job("\n\n".join(lines), figures, "\n".join(job.logs[-LOG_LINES:]), running)


# --- layout -----------------------------------------------------------------------------------------------------
def build_tab(session: gr.State, tab: gr.Tab) -> dict[str, Any]:
    """Build the components; returns them by name (the names of :data:`FIELDS` for the form's fields)."""
    d = DEFAULTS
    c: dict[str, Any] = {}
    gr.Markdown(INTRO)
    c["payment"] = gr.Markdown(elem_id="train-payment")
    with gr.Row():
        c["dataset"] = gr.Textbox(value=d["dataset"], label="1. Preference dataset (your pushed export)", scale=2)
        c["base_model"] = gr.Dropdown(
            [], value=None, label="2. Base model (a suggestion for the dataset's size; any model id)",
            allow_custom_value=True, scale=2,
        )  # fmt: skip
        c["flavor"] = gr.Dropdown([], value=None, label="3. Hardware (HF Jobs, price per hour)", scale=2)
    c["estimate"] = gr.Markdown(elem_id="train-estimate")
    with gr.Accordion("Method and hyperparameters (TRL's defaults)", open=False):
        with gr.Row():
            c["method"] = gr.Radio(
                [(train.METHOD_LABELS[m], m) for m in train.METHODS], value=d["method"], label="Method"
            )
            c["lora"] = gr.Checkbox(value=d["lora"], label="LoRA adapter (untick: full fine-tuning)")
        with gr.Row():
            c["beta"] = gr.Number(value=d["beta"], minimum=0, label="beta")
            c["learning_rate"] = gr.Number(
                value=d["learning_rate"],
                minimum=0,
                label=f"Learning rate (0 = {train.LR_LORA:g} with LoRA, {train.LR_FULL:g} full)",
            )
            c["epochs"] = gr.Number(value=d["epochs"], minimum=0, label="Epochs")
            c["max_length"] = gr.Number(value=d["max_length"], precision=0, minimum=16, label="Maximum length")
        with gr.Row():
            c["output_repo"] = gr.Textbox(value=d["output_repo"], label="Model repo (empty: you/<model>-<data>)")
            c["private"] = gr.Checkbox(value=d["private"], label="Private model")
    with gr.Row():
        c["launch"] = gr.Button("Train on HF Jobs", variant="primary", interactive=False)
        c["cancel"] = gr.Button("Cancel the job", interactive=False)
    c["status"] = gr.Markdown(elem_id="train-status")
    c["figures"] = gr.Dataframe(headers=FIGURE_HEADERS, interactive=False, label="Evaluation")
    c["logs"] = gr.Textbox(label="Logs (tail)", lines=12, max_lines=12, interactive=False, autoscroll=True)
    with gr.Accordion("The training script (run it anywhere)", open=False):
        c["make_script"] = gr.Button("Write the script for these choices")
        c["script_file"] = gr.File(label="train.py", interactive=False)
        c["script"] = gr.Code(language="python", label="train.py", interactive=False)
    c["timer"] = gr.Timer(POLL_SECONDS, active=False)
    c["forms"] = _wire(session, tab, c)
    return c


def _wire(session: gr.State, tab: gr.Tab, c: dict[str, Any]) -> dict[str, Form]:
    """Connect the events to the module-level handlers (ui/forms.py's convention). Returns the forms by event."""
    form = Form(**{k: c[k] for k in FIELDS})
    job_out = pick(c, "status", "figures", "logs", "cancel", "timer")
    open_out = {**pick(c, "dataset", "base_model", "flavor", "payment", "estimate", "launch"), **job_out}
    wire(tab.select, on_open, session=session, form=form, outputs=open_out)
    for name in ("base_model", "flavor", "method", "lora", "epochs", "max_length", "output_repo"):
        wire(c[name].change, on_change, session=session, form=form, outputs=pick(c, "estimate"))
    wire(c["dataset"].submit, on_open, session=session, form=form, outputs=open_out)
    script_out = pick(c, "script_file", "script")
    wire(c["make_script"].click, on_script, session=session, form=form, outputs=script_out, api_name="train_script")
    wire(c["launch"].click, on_launch, session=session, form=form, outputs=job_out, api_name="train_launch")
    wire(c["cancel"].click, on_cancel, session=session, outputs=job_out, api_name="train_cancel")
    wire(c["timer"].tick, on_poll, session=session, outputs=job_out)
    return {"open": form, "change": form, "script": form, "launch": form}


def build(session: gr.State, tab: gr.Tab) -> None:
    """Build the tab inside ``tab``; opening it fills it from the session."""
    build_tab(session, tab)
