"""The Argilla tab: connect, send the Pipeline's pairs for human validation, pull the answers back.

UI glue only: everything that talks to Argilla or computes a number lives in :mod:`pipeline.argilla` and
:mod:`pipeline.judge.agreement`. The API key typed here is kept in ``session.argilla_key`` for this browser session only;
it is never rendered back (the box is emptied after a successful connection) nor logged.

The handlers are module-level, take the session plus ONE mapping of the form's values by name (:data:`DEFAULTS`)
and return named outputs (``ui/forms.py``'s convention), so tests call them with plain dicts. A pull replaces ``session.annotations`` with Argilla's answers and keeps the judge
check's labels (``session.judge_check``) for the rows nobody answered in Argilla, so they still reach Export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Final

import gradio as gr
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import argilla as aio
from pipeline.core import languages
from ui import argilla_progress, argilla_space, judge_check
from ui.common import column_widths, md_link, md_text, on_space, table_frame, username_of
from ui.forms import Form, pick, wire
from ui.session import Session

INTRO = (
    "Send the pairs to **Argilla** so people who speak the language check the judge: they rate each response, pick "
    "the best one and may improve it. Then pull their answers back: the Export step uses them, and the agreement "
    "between the judge and the people tells your community how far an LLM judge can be trusted in its language. "
    "You need an Argilla server, e.g. a free [Argilla Space](https://huggingface.co/new-space?template=argilla/"
    "argilla-template-space), and an owner or admin API key (in Argilla: your avatar → My settings).\n\n"
    "**Argilla is optional.** Without it, **5. Export** builds the dataset from the judge's verdicts (and the rows "
    "you labelled in the Pipeline tab's judge check)."
)
DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "url": "",  # empty: the session's URL, then ARGILLA_API_URL (the box starts with the latter)
        "key": "",  # empty: the session's key, then ARGILLA_API_KEY
        "workspace": None,  # None: the key's default workspace
        "dataset": "",
        "seed": 0,  # the order of the responses in each record
        "min_submitted": 1,  # answers needed per record
        "keep_order": False,
        "suggestions": True,
        "guidelines": "",
    }
)
"""Every value of the tab's form by name, with its default: the components start from these, handlers fill in a
missing value from here."""
ANNOTATION_PREVIEW_ROWS = 200
OPTIONAL = "Argilla is optional: **5. Export** works without it (the judge decides the pairs people did not)."
ANNOTATOR_COLUMNS = ["annotator", "submitted", "discarded", "draft"]
ANNOTATION_PREVIEW_COLUMNS = [
    "prompt",
    "human preference",
    "judge preference",
    "annotators",
    "agreement",
    "human ratings",
    "judge ratings",
    "improved response",
    "id",
]


_md = md_text  # untrusted text (names, messages quoting data) shown as text
TABLE_WIDTHS = column_widths([18, 11, 11, 11, 11, 10, 10, 12, 6])


def _env_key_name() -> str:
    return "this Space's ARGILLA_API_KEY secret" if on_space() else "the ARGILLA_API_KEY environment variable"


def _key_placeholder(session: Session | None = None) -> str:
    if session is not None and session.argilla_key:
        return "A key is set for this session (hidden). Paste another one to replace it."
    if aio.env_key_set():
        return f"Using {_env_key_name()}. Paste a key to use another one."
    return "Paste your Argilla API key (Argilla → your avatar → My settings → API key)"


def _credentials(session: Session, url_box: str, key_box: str = "") -> tuple[str, str]:
    """(url, key) for this call: the boxes / session override first, then the Space's secrets. A key still in its
    box (a connect that failed, or was never pressed) is the one people mean: it is used for this call."""
    url = (url_box or "").strip() or session.argilla_url
    return url, (key_box or "").strip() or session.argilla_key


def _connect(session: Session, url_box: str, key_box: str = "") -> aio.Connection:
    url, key = _credentials(session, url_box, key_box)
    return aio.connect(url, key)


def _language(session: Session) -> tuple[str, str]:
    """(language name, code) of the raw results, from the Pipeline's metadata or the rows."""
    meta = session.raw_meta
    name, code = (meta.language_name, meta.language_code) if meta is not None else ("", "")
    raw = session.raw
    if not code and raw is not None and "target_language" in getattr(raw, "column_names", []):
        codes = {c for c in raw.column("target_language").to_pylist() if c}
        code = next(iter(codes)) if len(codes) == 1 else ""
    if not name and code:
        name = languages.display_name(code)
    return name, code


def _rows(session: Session) -> int:
    raw = session.raw
    return int(getattr(raw, "num_rows", 0) or 0) if raw is not None else 0


def send_info(session: Session) -> str:
    n = _rows(session)
    if not n:
        return (
            "**Nothing to send yet.** Run the Pipeline step (tab 3) first: its results appear here when it has "
            "finished rows."
        )
    plan = aio.plan_records(session.raw, keep_order=True)
    name, _ = _language(session)
    text = f"**{len(plan.records)} of {n} rows are ready to send**"
    text += f" ({_md(name)})." if name else "."
    if plan.skipped:
        text += " Not sent: " + "; ".join(f"{v} × {_md(k)}" for k, v in plan.skipped.items()) + "."
    if plan.n_slots > aio.MIN_RESPONSES:
        text += f" Some rows have {plan.n_slots} responses: the dataset gets {plan.n_slots} response fields."
    return text


def default_name(session: Session, profile: gr.OAuthProfile | None) -> str:
    name, code = _language(session)
    return aio.default_dataset_name(username_of(profile), name or code)


def default_guidelines(session: Session) -> str:
    name, code = _language(session)
    judge = session.raw_meta.judge_model if session.raw_meta is not None else ""
    if not judge and session.raw is not None and "judge_model" in session.raw.column_names:
        judges = [j for j in session.raw.column("judge_model").to_pylist() if j]
        judge = judges[0] if judges else ""
    n_slots = aio.plan_records(session.raw, keep_order=True).n_slots if _rows(session) else aio.MIN_RESPONSES
    return aio.render_guidelines(name or None, n_slots, judge or None, code=code or None)


# --- Handlers ----------------------------------------------------------------------------------------------------
def on_select(session: Session, values: Mapping[str, Any], profile: gr.OAuthProfile | None = None) -> dict:
    """Refresh from the session when the tab opens (``values``: ``dataset``, ``guidelines``). Named outputs:
    ``send_info`` (what can be sent), ``dataset`` and ``guidelines`` (defaults where empty), ``key`` (its
    placeholder, never its value) and ``url`` (the session's)."""
    dataset, guidelines = values.get("dataset") or "", values.get("guidelines") or ""
    out = {
        "send_info": send_info(session),
        "dataset": dataset if dataset.strip() else default_name(session, profile),
        "guidelines": guidelines if guidelines.strip() else default_guidelines(session),
        "key": gr.update(placeholder=_key_placeholder(session)),
    }
    if session.argilla_url:
        out["url"] = gr.update(value=session.argilla_url)
    return out


def on_connect(session: Session, values: Mapping[str, Any]) -> dict:
    """Check the URL/key; keep a typed key for this session only; list the workspaces. ``values``: ``url``,
    ``key`` and ``workspace`` (:data:`DEFAULTS`). Named outputs: ``key`` (emptied once kept), ``conn_status``,
    ``workspace``."""
    v = {**DEFAULTS, **values}
    typed_key = (v["key"] or "").strip()
    url = (v["url"] or "").strip()
    workspace = v["workspace"]
    try:
        conn = aio.connect(url or session.argilla_url, typed_key or session.argilla_key)
        with conn:
            spaces = aio.list_workspaces(conn)
    except aio.ArgillaIOError as exc:
        return {"conn_status": f"**Not connected.** {_md(exc)} {OPTIONAL}"}
    if typed_key:
        session.argilla_key = typed_key
    if url:
        session.argilla_url = conn.url
    note = ""
    if not conn.can_see_all_answers:
        note = (
            " This key belongs to an annotator: it cannot create datasets or read other people's answers; use an "
            "owner or admin key here."
        )
    status = f"**Connected** to {_md(conn.url)} as {_md(conn.username)} ({_md(conn.role)}).{note}"
    if not spaces:
        status += " You belong to no workspace yet: ask an owner to add you to one."
    chosen = workspace if workspace in spaces else (spaces[0] if spaces else None)
    return {
        "key": gr.update(value="", placeholder=_key_placeholder(session)),
        "conn_status": status,
        "workspace": gr.update(choices=spaces, value=chosen),
    }


def on_forget(session: Session) -> dict:
    """Forget the session's key. Named outputs: ``key``, ``conn_status``."""
    session.argilla_key = ""
    msg = "Your key is forgotten." + (
        f" {_env_key_name()[:1].upper()}{_env_key_name()[1:]} is used now." if aio.env_key_set() else ""
    )
    return {"key": gr.update(value="", placeholder=_key_placeholder(session)), "conn_status": msg}


def _no_progress(*_args: Any, **_kwargs: Any) -> None:
    """A progress callback that shows nothing (for callers outside Gradio)."""


def on_send(session: Session, values: Mapping[str, Any], progress: Any = _no_progress) -> dict:
    """Send the raw results for validation. ``values``: ``url``, ``key``, ``workspace``, ``dataset``,
    ``keep_order``, ``suggestions``, ``seed``, ``min_submitted`` and ``guidelines`` (:data:`DEFAULTS`). Named
    output: ``send_status``. ``progress``: Gradio's progress bar when wired."""
    v = {**DEFAULTS, **values}
    if not _rows(session):
        return {"send_status": send_info(session)}
    name, _ = _language(session)

    def report(done: int, total: int) -> None:
        progress((done, max(total, 1)), desc="Sending records to Argilla")

    try:
        with _connect(session, v["url"], v["key"]) as conn:
            result = aio.push(
                conn,
                session.raw,
                v["dataset"],
                v["workspace"] or None,
                keep_order=bool(v["keep_order"]),
                seed=int(v["seed"] or 0),
                suggestions=bool(v["suggestions"]),
                min_submitted=int(v["min_submitted"] or 1),
                guidelines=v["guidelines"],
                language=name or None,
                progress=report,
            )
    except aio.ArgillaIOError as exc:
        return {"send_status": f"**Not sent.** {_md(exc)} {OPTIONAL}"}
    guidelines = v["guidelines"] if (v["guidelines"] or "").strip() else default_guidelines(session)
    session.argilla_tab = replace(
        session.argilla_tab,
        dataset=result.dataset,
        workspace=result.workspace,
        url=result.url,
        guidelines=guidelines if result.created else session.argilla_tab.guidelines,
    )
    link = md_link("Open it in Argilla", result.url)
    note = "" if result.created else " (existing records and their answers were left as they were)"
    return {"send_status": f"**Sent.** {_md(result.summary())}{note} {link}"}


def share_message(session: Session, link: str, add_argilla: bool) -> str:
    """One message for an annotator (the share box): the app's link and, when asked, the Argilla dataset's link and
    the guidelines sent with it. Never a key."""
    if not add_argilla:
        return ""
    state = session.argilla_tab
    if not state.url:
        return (
            "Send the pairs to Argilla first (4. Argilla): the message then carries the dataset's link and guidelines."
        )
    name, _ = _language(session)
    lines = [f"Help us build a {name or 'preference'} dataset: compare answers and pick the best ones."]
    if link:
        lines.append(f"DPO Studio (the project): {link}")
    lines += [
        f"Annotate here (sign in to Argilla, e.g. with your Hugging Face account): {state.url}",
        "",
        state.guidelines or default_guidelines(session),
    ]
    return "\n".join(lines)


def on_share_message(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """The share box's message (``values``: ``link``, ``add_argilla``); named output ``message``."""
    return {"message": share_message(session, values.get("link") or "", bool(values.get("add_argilla")))}


def _annotators_frame(result: aio.PullResult) -> pd.DataFrame:
    rows = [
        {
            "annotator": user,
            "submitted": c.get("submitted", 0),
            "discarded": c.get("discarded", 0),
            "draft": c.get("draft", 0),
        }
        for user, c in sorted(result.annotators.items())
    ]
    return table_frame(pd.DataFrame(rows, columns=ANNOTATOR_COLUMNS))


def _fmt_list(values: Any) -> str:
    return ", ".join("–" if v is None else f"{v:g}" for v in (values or []))


def annotations_frame(session: Session, limit: int = ANNOTATION_PREVIEW_ROWS) -> pd.DataFrame:
    """The answers pulled from Argilla, readable (prompt joined from the raw results when available). The rows the
    judge check's labels added are not Argilla's answers: they are left out here."""
    cols = ANNOTATION_PREVIEW_COLUMNS
    table = session.annotations
    if table is not None and session.judge_check.label_ids:
        table = table.filter(pc.invert(pc.is_in(table.column("id"), pa.array(sorted(session.judge_check.label_ids)))))
    if table is None or not table.num_rows:
        return table_frame(pd.DataFrame(columns=cols))
    prompts: dict[str, str] = {}
    if session.raw is not None and "prompt" in session.raw.column_names:
        prompts = dict(zip(session.raw.column("id").to_pylist(), session.raw.column("prompt").to_pylist()))

    def pref(v: Any) -> str:
        return {None: "–", -1: "tie", 0: "human"}.get(v, f"model response {v}")

    rows = []
    for r in table.slice(0, limit).to_pylist():
        rows.append(
            {
                "prompt": (prompts.get(r["id"]) or "")[:200],
                "human preference": pref(r.get("human_preference")),
                "judge preference": pref(r.get("judge_preference")),
                "annotators": r.get("n_annotators"),
                "agreement": None if r.get("agreement") is None else round(r["agreement"], 2),
                "human ratings": _fmt_list(r.get("human_ratings")),
                "judge ratings": _fmt_list(r.get("judge_ratings")),
                "improved response": (r.get("improved_response") or "")[:200],
                "id": r["id"],
            }
        )
    return table_frame(pd.DataFrame(rows, columns=cols))


def _keep_labels(session: Session) -> int:
    """Put the judge check's labels back into the freshly pulled ``session.annotations`` (Argilla's rows for the
    same ids win). Returns how many rows the labels added."""
    session.judge_check.label_ids = frozenset()  # the pulled table has none of them
    judge_check.sync_labels(session)
    return len(session.judge_check.label_ids)


def on_pull(session: Session, values: Mapping[str, Any], progress: Any = _no_progress) -> dict:
    """Pull the answers into ``session.annotations`` (the judge check's labels kept for rows nobody answered in
    Argilla). ``values``: ``url``, ``key``, ``workspace`` and ``dataset`` (:data:`DEFAULTS`). Named outputs:
    ``pull_status``, ``agreement``, ``annotators`` (table), ``table`` (answers per record)."""
    v = {**DEFAULTS, **values}

    def report(done: int, total: int) -> None:
        progress((done, max(total, done, 1)), desc="Reading answers")

    empty = table_frame(pd.DataFrame(columns=ANNOTATOR_COLUMNS))
    try:
        with _connect(session, v["url"], v["key"]) as conn:
            result = aio.pull(conn, v["dataset"], v["workspace"] or None, progress=report)
    except aio.ArgillaIOError as exc:
        status = f"**Not pulled.** {_md(exc)} {OPTIONAL}"
        return {"pull_status": status, "agreement": "", "annotators": empty, "table": annotations_frame(session)}
    session.annotations = result.table
    labelled = _keep_labels(session)
    submitted = sum(1 for counts in result.annotators.values() if counts.get("submitted"))
    session.argilla_tab = replace(
        session.argilla_tab, dataset=result.dataset, workspace=result.workspace, url=result.url, annotators=submitted
    )
    status = f"**Pulled.** {_md(result.summary())}"
    if labelled:
        status += (
            f" {labelled} row(s) you labelled in the judge check and nobody answered in Argilla are kept with them."
        )
    if session.annotations.num_rows:
        status += " The Export tab now uses these answers."
    return {
        "pull_status": status,
        "agreement": _md(result.agreement_summary()),
        "annotators": _annotators_frame(result),
        "table": annotations_frame(session),
    }


# --- Layout ------------------------------------------------------------------------------------------------------
def build_tab(session: gr.State, tab: gr.Tab) -> dict[str, Any]:
    """Build the tab and return its components by name (tests drive the handlers through them), and the events'
    forms under ``"forms"``."""
    d = DEFAULTS
    c: dict[str, Any] = {}
    gr.Markdown(INTRO)
    argilla_space.build_section(c)
    with gr.Group():
        with gr.Row():
            c["url"] = gr.Textbox(
                label="Argilla URL", value=aio.env_url(), placeholder="https://owner-name.hf.space", scale=3
            )
            c["key"] = gr.Textbox(
                label="API key", type="password", value=d["key"], placeholder=_key_placeholder(), scale=3
            )
            c["workspace"] = gr.Dropdown(
                label="Workspace", choices=[], value=d["workspace"], allow_custom_value=True, scale=2
            )
        with gr.Row():
            c["connect"] = gr.Button("Connect", variant="secondary")
            c["forget"] = gr.Button("Forget my key", variant="secondary")
    c["conn_status"] = gr.Markdown("Not connected yet.", elem_id="argilla-status")

    gr.Markdown("### Send pairs for validation")
    c["send_info"] = gr.Markdown()
    with gr.Row():
        c["dataset"] = gr.Textbox(label="Dataset name in Argilla", value=d["dataset"], scale=3)
        c["seed"] = gr.Number(label="Order seed", value=d["seed"], precision=0, scale=1)
        c["min_submitted"] = gr.Number(
            label="Answers needed per record",
            value=d["min_submitted"],
            precision=0,
            minimum=1,
            maximum=20,
            scale=1,
            info="2 or more lets you measure how much annotators agree.",
        )
    with gr.Row():
        c["keep_order"] = gr.Checkbox(
            label="Keep the recipe's order (human answer first)",
            value=d["keep_order"],
            info="Off: each record shows the responses in a random order, so annotators cannot tell which one a "
            "person wrote.",
        )
        c["suggestions"] = gr.Checkbox(
            label="Pre-fill the judge's ratings as suggestions",
            value=d["suggestions"],
            info="Faster for annotators, but it may sway them; turn off for an unbiased judge check.",
        )
    with gr.Accordion("Guidelines for annotators (edit or translate them before sending)", open=False):
        c["guidelines"] = gr.Textbox(label="Guidelines (Markdown)", value=d["guidelines"], lines=14, max_lines=40)
    c["send"] = gr.Button("Send to Argilla", variant="primary")
    c["send_status"] = gr.Markdown()

    argilla_progress.build_section(c)

    gr.Markdown("### Pull the answers")
    c["pull"] = gr.Button("Pull answers")
    c["pull_status"] = gr.Markdown()
    c["agreement"] = gr.Markdown()
    c["annotators"] = gr.Dataframe(
        value=table_frame(pd.DataFrame(columns=ANNOTATOR_COLUMNS)), label="Annotators", interactive=False, wrap=True
    )
    c["table"] = gr.Dataframe(
        value=table_frame(pd.DataFrame(columns=ANNOTATION_PREVIEW_COLUMNS)),
        label="Answers per record (first rows)",
        interactive=False,
        wrap=True,
        column_widths=TABLE_WIDTHS,
    )

    c["forms"] = _wire(session, tab, c)
    return c


def _wire(session: gr.State, tab: gr.Tab, c: dict[str, Any]) -> dict[str, Form]:
    """Connect the events to the module-level handlers (ui/forms.py's convention). Returns the forms by event."""
    connect_form = Form(url=c["url"], key=c["key"], workspace=c["workspace"])
    pull_form = Form(url=c["url"], key=c["key"], workspace=c["workspace"], dataset=c["dataset"])
    send_form = pull_form.add(**{k: c[k] for k in ("keep_order", "suggestions", "seed", "min_submitted", "guidelines")})

    select_form = Form(dataset=c["dataset"], guidelines=c["guidelines"])
    wire(
        tab.select,
        on_select,
        session=session,
        form=select_form,
        outputs=pick(c, "send_info", "dataset", "guidelines", "key", "url"),
    )
    connect_out = pick(c, "key", "conn_status", "workspace")
    wire(c["connect"].click, on_connect, session=session, form=connect_form, outputs=connect_out, api_name="on_connect")
    wire(c["key"].submit, on_connect, session=session, form=connect_form, outputs=connect_out)
    wire(c["forget"].click, on_forget, session=session, outputs=pick(c, "key", "conn_status"))
    wire(c["send"].click, on_send, session=session, form=send_form, outputs=pick(c, "send_status"), api_name="on_send")
    pull_out = pick(c, "pull_status", "agreement", "annotators", "table")
    wire(c["pull"].click, on_pull, session=session, form=pull_form, outputs=pull_out, api_name="on_pull")
    argilla_progress.wire(session, tab, c)
    return {
        "connect": connect_form,
        "send": send_form,
        "pull": pull_form,
        "space": argilla_space.wire(session, tab, c),
    }


def build(session: gr.State, tab: gr.Tab) -> gr.Timer:
    """Build the tab inside ``tab``; ``tab.select`` refreshes it from the session when the user opens it. Returns
    the progress timer, which the app stops when another tab opens (:func:`ui.argilla_progress.timer_for_tab`)."""
    return build_tab(session, tab)["progress_timer"]
