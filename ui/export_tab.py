"""The Export tab: the final DPO/ORPO dataset (rules, format, split, numbers, preview, push, downloads).

UI glue only: every decision is made in :mod:`pipeline.export`; pushes are pre-flighted by
:func:`pipeline.workflow.preflight_push` and reach the Hub through :mod:`pipeline.export.hub_io`. The handlers are
module-level and take the session plus ONE mapping of the form's values by name (:data:`FIELDS`; Gradio passes a
dict when ``inputs`` is a set, :class:`ui.forms.Form` names it), so tests call them with plain dicts. Every
default is in :data:`DEFAULTS`, taken from :class:`pipeline.export.ExportRules`. The numbers behind the plots and
the preview grid are made here (:func:`export_frames`, :func:`preview_rows`): they are display only.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import gradio as gr
import pandas as pd
import pyarrow as pa

from pipeline import export as ex
from pipeline import workflow
from pipeline.core import hub, languages
from pipeline.core.schema import HumanFeedback, RunMeta
from pipeline.judge.agreement import OUTCOMES
from ui import sign_in
from ui.common import column_label, column_widths, info, md_link, md_text, token_of, username_of, warn
from ui.export_view import PREVIEW_COLUMNS, PREVIEW_ROWS, _status_md, export_frames, preview_rows
from ui.forms import Form, wire
from ui.session import HubRaw, Session

SRC_SESSION = "This session: judge + annotators' answers"


SRC_JUDGE = "This session: judge only"


SRC_HUB = "A raw dataset on the Hub"


SOURCES = (SRC_SESSION, SRC_JUDGE, SRC_HUB)


_PREF = [(ex.PREFERENCE_SOURCE_LABELS[k], k) for k in ex.PREFERENCE_SOURCES]


_PAIRING = [(ex.PAIRING_LABELS[k], k) for k in ex.PAIRINGS]


_FORMATS = [(ex.FORMAT_LABELS[k], k) for k in ex.FORMATS]


RULE_FIELDS: Final = tuple(f.name for f in dataclasses.fields(ex.ExportRules))


DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "source": SRC_SESSION,
        "language": None,
        "hub_id": "",
        "hub_split": "train",
        **dataclasses.asdict(ex.ExportRules()),  # the rules' defaults, as the rules declare them
        "min_chosen_rating": 0,  # the box's 0 means "no minimum" (ExportRules: None)
        "format": ex.FORMAT_STANDARD,
        "include_system": False,
        "test_size": 0,  # 0 = no test split
        "seed": 42,
        "owner": None,
        "repo_name": "",
        "private": True,
        "overwrite": False,
    }
)


"""Every value of the tab's form by name, with its default: the components start from these, handlers fill in a
missing value from here."""


FIELDS: Final = tuple(DEFAULTS)


_RULE_DEFAULTS: Final = ex.ExportRules()


INTRO = (
    "Build the **preference dataset** (`prompt`, `chosen`, `rejected`) that TRL's `DPOTrainer` and `ORPOTrainer` "
    "take as it is. Each rule below has a default; every row a rule drops is counted, so you can see what the "
    "dataset is made of before you push it."
)


_md = md_text  # untrusted text (ids, codes, messages quoting data) shown as text


@dataclass(frozen=True)
class ExportRequest:
    """What the form asks for, checked: the rules, the format and the split (from the values by name)."""

    rules: ex.ExportRules
    fmt: str
    include_system: bool
    test_size: float | int | None
    seed: int
    language: str | None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ExportRequest:
        """From the form's values (missing ones from :data:`DEFAULTS`); ``ExportError`` for a bad rule value."""
        v = {**DEFAULTS, **{k: val for k, val in values.items() if val is not None}}
        rules: dict[str, Any] = {}
        for name in RULE_FIELDS:
            default = getattr(_RULE_DEFAULTS, name)
            if isinstance(default, bool):
                rules[name] = bool(v[name])
            elif name == "min_chosen_rating":
                rules[name] = float(v[name]) if float(v[name] or 0) > 0 else None
            elif isinstance(default, float):
                rules[name] = float(v[name] or 0)
            else:
                rules[name] = v[name]
        size = float(v["test_size"] or 0)
        test_size = None if size <= 0 else (int(size) if size >= 1 and size.is_integer() else size)
        return cls(
            ex.ExportRules(**rules),
            v["format"],
            bool(v["include_system"]),
            test_size,
            int(v["seed"] or 0),
            values.get("language") or None,
        )


# --- the input ------------------------------------------------------------------------------------------------
def _inputs(session: Session, source: str) -> tuple[pa.Table, pa.Table | None, RunMeta, str]:
    """(raw, annotations, the run's metadata, where) for the chosen source; ExportError when there is nothing."""
    if source == SRC_HUB:
        loaded = session.export_tab.hub
        if loaded is None:
            raise ex.ExportError("Load a raw dataset from the Hub first (its id, then 'Load').")
        return loaded.raw, loaded.annotations, loaded.meta, f"Hub dataset {loaded.dataset_id}"
    if session.raw is None:
        raise ex.ExportError(
            "There are no raw results in this session yet: run the Pipeline step (tab 3), or load a raw "
            "dataset from the Hub."
        )
    annotations = session.annotations if source == SRC_SESSION else None
    meta = session.raw_meta or RunMeta()
    if annotations is not None:
        meta = meta.replace(human_feedback=human_feedback(session))
    return session.raw, annotations, meta, "this session"


def human_feedback(session: Session) -> HumanFeedback:
    """Who gave this session's human preferences: the rows people labelled in the judge-check panel (one person:
    this session) and the rows pulled from Argilla (with how many annotators submitted answers)."""
    table = session.annotations
    ids = set(table.column("id").to_pylist()) if table is not None and table.num_rows else set()
    panel = len(ids & set(session.judge_check.label_ids))
    return HumanFeedback(
        panel_rows=panel,
        panel_people=1 if panel else 0,
        argilla_rows=len(ids) - panel,
        argilla_annotators=session.argilla_tab.annotators,
        set_aside=session.judge_check.set_aside,
    )


def _people_line(feedback: HumanFeedback, answered: int) -> str:
    """Who answered how many rows, e.g. "People answered 11 rows (11 rows labelled by 1 person in ...)"."""
    line = f" People answered {answered} rows ({_md(feedback.describe() or 'source not recorded')})"
    line += "; the judge decides the others."
    return line + (_set_aside_line(feedback.set_aside) if feedback.set_aside else "")


def _set_aside_line(count: int) -> str:
    return (
        f" {count} judge-check label(s) are set aside: the answers they were given for changed (a new run), so "
        "they are not used."
    )


def _summary_md(session: Session, source: str) -> str:
    try:
        raw, annotations, meta, where = _inputs(session, source)
    except ex.ExportError as e:
        return f"**No input yet.** {_md(e)}"
    s = ex.input_summary(raw, annotations)
    langs = ", ".join(f"{_md(languages.label(k))}: {v} rows" for k, v in s["languages"].items()) or "none"
    statuses = ", ".join(f"{_md(k)}: {v}" for k, v in s["statuses"].items())
    line = f"**Input:** {_md(where)} — {s['rows']} rows; target language {langs}; {statuses}."
    if source == SRC_JUDGE:
        line += " Annotations are not used (judge only)."
    elif annotations is None or not s["annotated"]:
        line += " No annotators' answers yet: the judge decides every pair (pull answers in the Argilla tab)."
        if source == SRC_SESSION and session.judge_check.set_aside:
            line += _set_aside_line(session.judge_check.set_aside)
    else:
        line += _people_line(meta.human_feedback or HumanFeedback(), s["annotated"])
    if len(s["languages"]) > 1:
        line += " **The input mixes languages: choose the one to export.**"
    return line


def _language_update(session: Session, source: str, current: str | None) -> dict:
    try:
        raw, *_ = _inputs(session, source)
        langs = [k for k in ex.target_languages(raw) if k]
    except ex.ExportError:
        langs = []
    value = current if current in langs else (langs[0] if len(langs) == 1 else None)
    choices = [(languages.label(code), code) for code in langs]  # "Dutch (nld)", not a bare code
    return gr.update(choices=choices, value=value, interactive=len(langs) > 1)


def _empty_outputs(message: str) -> dict[str, Any]:
    frames = {
        k: pd.DataFrame(columns=cols)
        for k, cols in (
            ("rules", ["rule", "rows", "outcome"]),
            ("ratings", ["rating", "pairs", "response"]),
            ("margins", ["margin", "pairs"]),
            ("agreement", ["outcome", "rows"]),
        )
    }
    return {
        "status": message,
        "counts": [],
        "preview": [],
        "plot_rules": frames["rules"],
        "plot_ratings": frames["ratings"],
        "plot_margins": frames["margins"],
        "plot_agreement": gr.update(value=frames["agreement"], visible=False),
        "downloads": None,
    }


# --- the export -------------------------------------------------------------------------------------------------
def _run_export(session: Session, values: Mapping[str, Any]) -> tuple[ex.ExportResult, RunMeta]:
    raw, annotations, meta, _ = _inputs(session, values.get("source") or DEFAULTS["source"])
    req = ExportRequest.from_values(values)
    result = ex.build_export(
        raw,
        annotations,
        req.rules,
        req.fmt,
        include_system=req.include_system,
        test_size=req.test_size,
        seed=req.seed,
        target_language=req.language,
        source=meta.source if meta.source.known else None,
    )
    return result, meta


def _repo_id(values: Mapping[str, Any]) -> str:
    owner, name = values.get("owner"), (values.get("repo_name") or "").strip()
    return f"{owner}/{name}" if owner and name else ""


def _downloads(result: ex.ExportResult, meta: RunMeta, repo_id: str) -> list[str]:
    folder = Path(tempfile.mkdtemp(prefix="dpo-studio-export-"))
    stem = ex.default_repo_name(result.target_language, meta)
    files: list[str] = []
    for suffix in (".parquet", ".jsonl"):
        files += [str(p) for p in ex.write_export(result, folder / f"{stem}{suffix}").values()]
    card = folder / "README.md"
    card.write_text(ex.render_export_card(result, meta, repo_id), encoding="utf-8")
    files.append(str(card))
    return files


# --- handlers (module level so tests can call them) -----------------------------------------------------------
def on_refresh(
    session: Session,
    values: Mapping[str, Any],
    profile: gr.OAuthProfile | None = None,
    oauth_token: gr.OAuthToken | None = None,
) -> dict[str, Any]:
    """On opening the tab or changing the source: describe the input, offer its languages and the push owners.
    ``values``: ``source``, ``language``, ``owner``, ``repo_name``. Named outputs: ``summary``, ``language``,
    ``owner``, ``repo_name``, ``push``, ``push_note``, ``hub_row``."""
    source = values.get("source") or DEFAULTS["source"]
    language, owner, repo_name = values.get("language"), values.get("owner"), values.get("repo_name") or ""
    lang_update = _language_update(session, source, language)
    owners = hub.owners(token_of(oauth_token))
    user = username_of(profile)
    owner_value = owner if owner in owners else (user if user in owners else (owners[0] if owners else None))
    lang = lang_update.get("value") or language or ""
    try:
        meta = _inputs(session, source)[2]
    except ex.ExportError:
        meta = RunMeta()
    name = repo_name if repo_name.strip() else ex.default_repo_name(lang, meta)
    signed_in = bool(token_of(oauth_token))
    return {
        "summary": _summary_md(session, source),
        "language": lang_update,
        "owner": gr.update(choices=owners, value=owner_value, interactive=signed_in),
        "repo_name": gr.update(value=name),
        "push": gr.update(interactive=signed_in),
        "push_note": "" if signed_in else sign_in.needed(),
        "hub_row": gr.update(visible=source == SRC_HUB),
    }


def on_load_hub(
    session: Session,
    values: Mapping[str, Any],
    profile: gr.OAuthProfile | None = None,
    oauth_token: gr.OAuthToken | None = None,
) -> dict[str, Any]:
    """Load a raw-results dataset from the Hub into this session (for this tab only). ``values``: ``hub_id``,
    ``hub_split``. Named outputs: ``summary``, ``language``."""
    dataset_id = (values.get("hub_id") or "").strip()
    split = (values.get("hub_split") or DEFAULTS["hub_split"]).strip()
    try:
        raw, annotations, meta = ex.load_raw_from_hub(dataset_id, token_of(oauth_token), split)
    except (hub.HubError, ex.ExportError) as e:
        warn(e)
        return {"summary": f"**Could not load it.** {_md(e)}"}
    session.export_tab.hub = HubRaw(dataset_id, raw, annotations, meta)
    return {"summary": _summary_md(session, SRC_HUB), "language": _language_update(session, SRC_HUB, None)}


def on_build(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """Build the export with the rules shown; fill the numbers, plots, preview and downloads. ``values``: the
    form's values by name (:data:`FIELDS`). Named outputs: ``status``, ``counts``, ``preview``, ``plot_rules``,
    ``plot_ratings``, ``plot_margins``, ``plot_agreement``, ``downloads``."""
    try:
        result, meta = _run_export(session, values)
    except ex.ExportError as e:
        warn(e)
        session.export = None
        return _empty_outputs(f"**Nothing to export.** {_md(e)}")
    session.export = result
    frames = export_frames(result)
    counts = [[label, value] for label, value in ex.counts_table(result.counts)]
    return {
        "status": _status_md(result),
        "counts": counts,
        "preview": preview_rows(result.table),
        "plot_rules": frames["rules"],
        "plot_ratings": frames["ratings"],
        "plot_margins": frames["margins"],
        "plot_agreement": gr.update(value=frames["agreement"], visible=not frames["agreement"].empty),
        "downloads": _downloads(result, meta, _repo_id(values)),
    }


def on_push(
    session: Session,
    values: Mapping[str, Any],
    profile: gr.OAuthProfile | None = None,
    oauth_token: gr.OAuthToken | None = None,
) -> dict[str, Any]:
    """Push the export, built with the rules shown, to ``owner/repo_name`` (``values`` as for :func:`on_build`,
    plus ``private`` and ``overwrite``). The target is checked before any work. Named output: ``push_status``."""
    return {"push_status": _push(session, values, token_of(oauth_token))}


def _push(session: Session, values: Mapping[str, Any], token: str | None) -> str:
    if not token:
        gr.Warning(sign_in.needed())
        return sign_in.needed()
    if not values.get("owner"):
        return "Choose an owner (your account or an organisation where you can write)."
    private, overwrite = bool(values.get("private", DEFAULTS["private"])), bool(values.get("overwrite"))
    try:
        repo_id = workflow.preflight_push(
            f"{values['owner']}/{(values.get('repo_name') or '').strip()}",
            token,
            overwrite=overwrite,
            overwrite_hint="tick overwrite",
        )
    except hub.HubError as e:
        warn(e)
        return f"**Not pushed.** {_md(e)}"
    try:
        result, meta = _run_export(session, values)
        url = ex.push_export(result, repo_id, token, private=private, meta=meta, overwrite=overwrite)
    except (ex.ExportError, hub.HubError) as e:
        warn(e)
        return f"**Not pushed.** {_md(e)}"
    session.export = result
    session.pushed_export = repo_id  # the Train tab starts from it
    info(f"Pushed {result.num_rows} pairs to {repo_id}.")
    return f"**Pushed** {result.num_rows} pairs ({'private' if private else 'public'}) to {md_link(repo_id, url)}."


# --- layout ---------------------------------------------------------------------------------------------------
def _rules_box(d: Mapping[str, Any]) -> dict[str, Any]:
    """The rule components, named by their :class:`pipeline.export.ExportRules` field."""
    c: dict[str, Any] = {}
    with gr.Row():
        c["preference_source"] = gr.Radio(_PREF, value=d["preference_source"], label="Preference source")
        c["pairing"] = gr.Radio(_PAIRING, value=d["pairing"], label="With more than two responses")
    with gr.Row():
        c["min_margin"] = gr.Number(
            value=d["min_margin"], minimum=0, maximum=4, step=0.5, label="Minimum rating margin (0 = any difference)"
        )
        c["min_chosen_rating"] = gr.Number(
            value=d["min_chosen_rating"],
            minimum=0,
            maximum=5,
            step=0.5,
            label="Minimum rating of the chosen response (0 = none)",
        )
    with gr.Row():
        c["keep_ties"] = gr.Checkbox(value=d["keep_ties"], label="Keep ties")
        c["drop_language_mismatch"] = gr.Checkbox(
            value=d["drop_language_mismatch"], label="Drop pairs whose chosen response is in another language"
        )
        c["dedupe_prompts"] = gr.Checkbox(value=d["dedupe_prompts"], label="Collapse duplicate prompts")
        c["drop_discarded"] = gr.Checkbox(value=d["drop_discarded"], label="Drop rows annotators discarded")
        c["use_improved_response"] = gr.Checkbox(
            value=d["use_improved_response"], label="Use annotators' improved responses as chosen"
        )
        c["drop_inconsistent"] = gr.Checkbox(
            value=d["drop_inconsistent"], label="Drop judge verdicts that flip when the answers swap places"
        )
    gr.Markdown(
        "Always dropped: failed generations, a failed or unparseable judge where no annotator answered, empty "
        "texts, and pairs whose chosen and rejected texts are the same. Responses in a language the detector "
        "does not know are kept and counted."
    )
    return c


def build_tab(session: gr.State, tab: gr.Tab) -> dict[str, Any]:
    """Build the components; returns them by name (the names of :data:`FIELDS` for the form's fields), and the
    events' forms under ``"forms"``."""
    d = DEFAULTS
    c: dict[str, Any] = {}
    gr.Markdown(INTRO)
    with gr.Row():
        c["source"] = gr.Radio(list(SOURCES), value=d["source"], label="Input", scale=3)
        c["language"] = gr.Dropdown([], label="Target language", interactive=False, scale=1, allow_custom_value=False)
    with gr.Row(visible=False) as c["hub_row"]:
        c["hub_id"] = gr.Textbox(
            value=d["hub_id"], label="Raw dataset on the Hub", placeholder="owner/aya-nld-raw", scale=3
        )
        c["hub_split"] = gr.Textbox(value=d["hub_split"], label="Split", scale=1)
        c["hub_load"] = gr.Button("Load", scale=1)
    c["summary"] = gr.Markdown()

    with gr.Accordion("Rules", open=True):
        c.update(_rules_box(d))
    with gr.Row():
        c["format"] = gr.Radio(_FORMATS, value=d["format"], label="Format", scale=3)
        with gr.Column(scale=1):
            c["include_system"] = gr.Checkbox(value=d["include_system"], label="System prompt as a system message")
            c["test_size"] = gr.Number(
                value=d["test_size"], minimum=0, label="Test split (fraction or prompts; 0 = none)"
            )
            c["seed"] = gr.Number(value=d["seed"], precision=0, label="Split seed")
    c["build"] = gr.Button("Build the dataset", variant="primary")
    c["status"] = gr.Markdown()
    with gr.Row():
        c["plot_rules"] = gr.BarPlot(
            x="rule",
            y="rows",
            color="outcome",
            title="Rows kept and dropped by rule",
            sort=["kept", *ex.DROP_RULES],
            y_lim=[0, None],
            color_map={"kept": "#2e7d32", "dropped": "#c62828"},
        )
        c["plot_margins"] = gr.BarPlot(
            x="margin", y="pairs", title="Rating margin (chosen − rejected)", y_lim=[0, None], sort="x"
        )
    with gr.Row():
        c["plot_ratings"] = gr.BarPlot(
            x="rating",
            y="pairs",
            color="response",
            y_lim=[0, None],
            sort="x",
            title="Ratings of chosen and rejected responses",
        )
        c["plot_agreement"] = gr.BarPlot(
            x="outcome",
            y="rows",
            title="Judge versus people",
            visible=False,
            y_lim=[0, None],
            sort=list(OUTCOMES),
            x_label_angle=-30,
        )
    with gr.Accordion("Counts", open=False):
        c["counts"] = gr.Dataframe(headers=["", "Rows"], datatype=["str", "number"], interactive=False, wrap=True)
    c["preview"] = gr.Dataframe(
        headers=[column_label(c) for c in PREVIEW_COLUMNS],
        datatype=["str", "str", "str", "str", "number", "number", "number", "str", "str", "str"],
        interactive=False,
        wrap=True,
        label=f"Preview (first {PREVIEW_ROWS} pairs)",
        max_height=500,
        column_widths=column_widths([5, 15, 17, 17, 8, 9, 8, 8, 7, 8]),
    )
    c["downloads"] = gr.File(label="Download (Parquet, JSON Lines, card)", file_count="multiple", interactive=False)

    with gr.Accordion("Push to the Hub", open=True):
        with gr.Row():
            c["owner"] = gr.Dropdown(
                [],
                value=d["owner"],
                label="Owner (you or an organisation where you can write)",
                interactive=False,
                allow_custom_value=False,
            )
            c["repo_name"] = gr.Textbox(value=d["repo_name"], label="Dataset name")
        with gr.Row():
            c["private"] = gr.Checkbox(value=d["private"], label="Private")
            c["overwrite"] = gr.Checkbox(value=d["overwrite"], label="Overwrite if it exists")
            c["push"] = gr.Button("Push to the Hub", interactive=False)
        c["push_note"] = gr.Markdown()
        c["push_status"] = gr.Markdown()
    c["forms"] = _wire(session, tab, c)
    return c


def _wire(session: gr.State, tab: gr.Tab, c: dict[str, Any]) -> dict[str, Form]:
    """Connect the events to the module-level handlers (ui/forms.py's convention). Returns the forms by event (API
    callers order their arguments with ``Form.api_args``)."""
    refresh_form = Form(**{k: c[k] for k in ("source", "language", "owner", "repo_name")})
    hub_form = Form(hub_id=c["hub_id"], hub_split=c["hub_split"])
    form = Form(**{k: c[k] for k in FIELDS if k not in ("hub_id", "hub_split")})
    refresh_out = {k: c[k] for k in ("summary", "language", "owner", "repo_name", "push", "push_note", "hub_row")}
    build_keys = ("status", "counts", "preview", "plot_rules", "plot_ratings", "plot_margins", "plot_agreement")
    build_out = {k: c[k] for k in (*build_keys, "downloads")}
    for trigger in (tab.select, c["source"].change):
        wire(trigger, on_refresh, session=session, form=refresh_form, outputs=refresh_out)
    hub_out = {"summary": c["summary"], "language": c["language"]}
    wire(c["hub_load"].click, on_load_hub, session=session, form=hub_form, outputs=hub_out, api_name="export_load_hub")
    wire(c["build"].click, on_build, session=session, form=form, outputs=build_out, api_name="export_build")
    push_out = {"push_status": c["push_status"]}
    wire(c["push"].click, on_push, session=session, form=form, outputs=push_out, api_name="export_push")
    return {"refresh": refresh_form, "load_hub": hub_form, "build": form, "push": form}


def build(session: gr.State, tab: gr.Tab) -> None:
    """Build the tab inside ``tab``; ``tab.select`` refreshes it from the session when the user opens it."""
    build_tab(session, tab)
