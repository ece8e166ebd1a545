"""The Argilla tab: connect, send the Pipeline's pairs for human validation, pull the answers back.

UI glue only: everything that talks to Argilla or computes a number lives in :mod:`pipeline.argilla_io` and
:mod:`pipeline.agreement`. The API key typed here is kept in ``session.argilla_key`` for this browser session only;
it is never rendered back (the box is emptied after a successful connection) nor logged.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from pipeline import argilla_io as aio
from pipeline.state import ArgillaState, Session
from ui.common import column_widths, md_link, md_text, on_space, table_frame, username_of

INTRO = (
    "Send the pairs to **Argilla** so people who speak the language check the judge: they rate each response, pick "
    "the best one and may improve it. Then pull their answers back: the Export step uses them, and the agreement "
    "between the judge and the people tells your community how far an LLM judge can be trusted in its language. "
    "You need an Argilla server, e.g. a free [Argilla Space](https://huggingface.co/new-space?template=argilla/"
    "argilla-template-space), and an owner or admin API key (in Argilla: your avatar → My settings)."
)
ANNOTATION_PREVIEW_ROWS = 200
ANNOTATOR_COLUMNS = ["annotator", "submitted", "discarded", "draft"]
ANNOTATION_PREVIEW_COLUMNS = ["prompt", "human preference", "judge preference", "annotators", "agreement",
                              "human ratings", "judge ratings", "improved response", "id"]  # fmt: skip


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


def _credentials(session: Session, url_box: str) -> tuple[str, str]:
    """(url, key) for this call: the boxes / session override first, then the Space's secrets."""
    url = (url_box or "").strip() or session.argilla_url
    return url, session.argilla_key


def _connect(session: Session, url_box: str) -> aio.Connection:
    url, key = _credentials(session, url_box)
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
        name = aio.language_name(code)
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
    name, _ = _language(session)
    judge = session.raw_meta.judge_model if session.raw_meta is not None else ""
    if not judge and session.raw is not None and "judge_model" in session.raw.column_names:
        judges = [j for j in session.raw.column("judge_model").to_pylist() if j]
        judge = judges[0] if judges else ""
    n_slots = aio.plan_records(session.raw, keep_order=True).n_slots if _rows(session) else aio.MIN_RESPONSES
    return aio.render_guidelines(name or None, n_slots, judge or None)


# --- Handlers ----------------------------------------------------------------------------------------------------
def on_select(session: Session, dataset: str, guidelines: str, profile: gr.OAuthProfile | None = None):
    """Refresh from the session when the tab opens: what can be sent, a default name and guidelines, the key's
    placeholder (never its value) and the session's URL."""
    return (
        send_info(session),
        dataset if (dataset or "").strip() else default_name(session, profile),
        guidelines if (guidelines or "").strip() else default_guidelines(session),
        gr.update(placeholder=_key_placeholder(session)),
        gr.update(value=session.argilla_url) if session.argilla_url else gr.update(),
    )


def on_connect(session: Session, url_box: str, key_box: str, workspace: str | None):
    """Check the URL/key; keep a typed key for this session only; list the workspaces."""
    typed_key = (key_box or "").strip()
    url = (url_box or "").strip()
    try:
        conn = aio.connect(url or session.argilla_url, typed_key or session.argilla_key)
        with conn:
            spaces = aio.list_workspaces(conn)
    except aio.ArgillaIOError as exc:
        return session, gr.update(), f"**Not connected.** {_md(exc)}", gr.update()
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
    return (
        session,
        gr.update(value="", placeholder=_key_placeholder(session)),
        status,
        gr.update(choices=spaces, value=chosen),
    )


def on_forget(session: Session):
    session.argilla_key = ""
    msg = "Your key is forgotten." + (f" {_env_key_name()[:1].upper()}{_env_key_name()[1:]} is used now."
                                      if aio.env_key_set() else "")
    return session, gr.update(value="", placeholder=_key_placeholder(session)), msg


def on_send(
    session: Session, url_box: str, workspace: str | None, dataset: str, keep_order: bool, suggestions: bool,
    seed: float | None, min_submitted: float | None, guidelines: str, progress: gr.Progress = gr.Progress(),
):  # fmt: skip
    if not _rows(session):
        return session, send_info(session)
    name, _ = _language(session)

    def report(done: int, total: int) -> None:
        progress((done, max(total, 1)), desc="Sending records to Argilla")

    try:
        with _connect(session, url_box) as conn:
            result = aio.push(
                conn, session.raw, dataset, workspace or None,
                keep_order=bool(keep_order), seed=int(seed or 0), suggestions=bool(suggestions),
                min_submitted=int(min_submitted or 1), guidelines=guidelines, language=name or None,
                progress=report,
            )  # fmt: skip
    except aio.ArgillaIOError as exc:
        return session, f"**Not sent.** {_md(exc)}"
    session.argilla_tab = ArgillaState(result.dataset, result.workspace, result.url)
    link = md_link("Open it in Argilla", result.url)
    note = "" if result.created else " (existing records and their answers were left as they were)"
    return session, f"**Sent.** {_md(result.summary())}{note} {link}"


def _annotators_frame(result: aio.PullResult) -> pd.DataFrame:
    rows = [
        {"annotator": user, "submitted": c.get("submitted", 0), "discarded": c.get("discarded", 0),
         "draft": c.get("draft", 0)}
        for user, c in sorted(result.annotators.items())
    ]  # fmt: skip
    return table_frame(pd.DataFrame(rows, columns=ANNOTATOR_COLUMNS))


def _fmt_list(values: Any) -> str:
    return ", ".join("–" if v is None else f"{v:g}" for v in (values or []))


def annotations_frame(session: Session, limit: int = ANNOTATION_PREVIEW_ROWS) -> pd.DataFrame:
    """The pulled annotations, readable (prompt joined from the raw results when available)."""
    cols = ANNOTATION_PREVIEW_COLUMNS
    table = session.annotations
    if table is None or not table.num_rows:
        return table_frame(pd.DataFrame(columns=cols))
    prompts: dict[str, str] = {}
    if session.raw is not None and "prompt" in session.raw.column_names:
        prompts = dict(zip(session.raw.column("id").to_pylist(), session.raw.column("prompt").to_pylist()))

    def pref(v: Any) -> str:
        return {None: "–", -1: "tie", 0: "human"}.get(v, f"model response {v}")

    rows = []
    for r in table.slice(0, limit).to_pylist():
        rows.append({
            "prompt": (prompts.get(r["id"]) or "")[:200],
            "human preference": pref(r.get("human_preference")),
            "judge preference": pref(r.get("judge_preference")),
            "annotators": r.get("n_annotators"),
            "agreement": None if r.get("agreement") is None else round(r["agreement"], 2),
            "human ratings": _fmt_list(r.get("human_ratings")),
            "judge ratings": _fmt_list(r.get("judge_ratings")),
            "improved response": (r.get("improved_response") or "")[:200],
            "id": r["id"],
        })  # fmt: skip
    return table_frame(pd.DataFrame(rows, columns=cols))


def on_pull(
    session: Session, url_box: str, workspace: str | None, dataset: str, progress: gr.Progress = gr.Progress()
):
    def report(done: int, total: int) -> None:
        progress((done, max(total, done, 1)), desc="Reading answers")

    empty = table_frame(pd.DataFrame(columns=ANNOTATOR_COLUMNS))
    try:
        with _connect(session, url_box) as conn:
            result = aio.pull(conn, dataset, workspace or None, progress=report)
    except aio.ArgillaIOError as exc:
        return session, f"**Not pulled.** {_md(exc)}", "", empty, annotations_frame(session)
    session.annotations = result.table
    session.argilla_tab = ArgillaState(result.dataset, result.workspace, result.url)
    status = f"**Pulled.** {_md(result.summary())}"
    if result.table.num_rows:
        status += " The Export tab now uses these answers."
    return session, status, _md(result.agreement_summary()), _annotators_frame(result), annotations_frame(session)


# --- Layout ------------------------------------------------------------------------------------------------------
def build_tab(session: gr.State, tab: gr.Tab) -> dict[str, Any]:
    """Build the tab and return its components by name (tests drive the handlers through them)."""
    c: dict[str, Any] = {}
    gr.Markdown(INTRO)
    with gr.Group():
        with gr.Row():
            c["url"] = gr.Textbox(
                label="Argilla URL", value=aio.env_url(), placeholder="https://owner-name.hf.space", scale=3
            )
            c["key"] = gr.Textbox(label="API key", type="password", value="", placeholder=_key_placeholder(), scale=3)
            c["workspace"] = gr.Dropdown(label="Workspace", choices=[], value=None, allow_custom_value=True, scale=2)
        with gr.Row():
            c["connect"] = gr.Button("Connect", variant="secondary")
            c["forget"] = gr.Button("Forget my key", variant="secondary")
    c["conn_status"] = gr.Markdown("Not connected yet.", elem_id="argilla-status")

    gr.Markdown("### Send pairs for validation")
    c["send_info"] = gr.Markdown()
    with gr.Row():
        c["dataset"] = gr.Textbox(label="Dataset name in Argilla", scale=3)
        c["seed"] = gr.Number(label="Order seed", value=0, precision=0, scale=1)
        c["min_submitted"] = gr.Number(
            label="Answers needed per record", value=1, precision=0, minimum=1, maximum=20, scale=1,
            info="2 or more lets you measure how much annotators agree.",
        )  # fmt: skip
    with gr.Row():
        c["keep_order"] = gr.Checkbox(
            label="Keep the recipe's order (human answer first)", value=False,
            info="Off: each record shows the responses in a random order, so annotators cannot tell which one a "
            "person wrote.",
        )  # fmt: skip
        c["suggestions"] = gr.Checkbox(
            label="Pre-fill the judge's ratings as suggestions", value=True,
            info="Faster for annotators, but it may sway them; turn off for an unbiased judge check.",
        )  # fmt: skip
    with gr.Accordion("Guidelines for annotators (edit or translate them before sending)", open=False):
        c["guidelines"] = gr.Textbox(label="Guidelines (Markdown)", lines=14, max_lines=40)
    c["send"] = gr.Button("Send to Argilla", variant="primary")
    c["send_status"] = gr.Markdown()

    gr.Markdown("### Pull the answers")
    c["pull"] = gr.Button("Pull answers")
    c["pull_status"] = gr.Markdown()
    c["agreement"] = gr.Markdown()
    c["annotators"] = gr.Dataframe(value=table_frame(pd.DataFrame(columns=ANNOTATOR_COLUMNS)), label="Annotators",
                                   interactive=False, wrap=True)  # fmt: skip
    c["table"] = gr.Dataframe(value=table_frame(pd.DataFrame(columns=ANNOTATION_PREVIEW_COLUMNS)),
                              label="Answers per record (first rows)", interactive=False, wrap=True,
                              column_widths=TABLE_WIDTHS)

    tab.select(on_select, [session, c["dataset"], c["guidelines"]],
               [c["send_info"], c["dataset"], c["guidelines"], c["key"], c["url"]])  # fmt: skip
    c["connect"].click(on_connect, [session, c["url"], c["key"], c["workspace"]],
                       [session, c["key"], c["conn_status"], c["workspace"]])  # fmt: skip
    c["key"].submit(on_connect, [session, c["url"], c["key"], c["workspace"]],
                    [session, c["key"], c["conn_status"], c["workspace"]])  # fmt: skip
    c["forget"].click(on_forget, [session], [session, c["key"], c["conn_status"]])
    c["send"].click(
        on_send,
        [session, c["url"], c["workspace"], c["dataset"], c["keep_order"], c["suggestions"], c["seed"],
         c["min_submitted"], c["guidelines"]],
        [session, c["send_status"]],
    )  # fmt: skip
    c["pull"].click(on_pull, [session, c["url"], c["workspace"], c["dataset"]],
                    [session, c["pull_status"], c["agreement"], c["annotators"], c["table"]])  # fmt: skip
    return c


def build(session: gr.State, tab: gr.Tab) -> None:
    """Build the tab inside ``tab``; ``tab.select`` refreshes it from the session when the user opens it."""
    build_tab(session, tab)
