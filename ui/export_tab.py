"""The Export tab: the final DPO/ORPO dataset (rules, format, split, numbers, preview, push, downloads).

UI glue only: every decision is made in :mod:`pipeline.export`; the Hub is reached through :mod:`pipeline.hub`.
"""

from __future__ import annotations

import html
import re
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from pipeline import export as ex
from pipeline import hub
from pipeline.agreement import OUTCOMES
from pipeline.state import HubRaw, Session
from ui.common import SIGN_IN_NEEDED, info, token_of, username_of, warn

SRC_SESSION = "This session: judge + annotators' answers"
SRC_JUDGE = "This session: judge only"
SRC_HUB = "A raw dataset on the Hub"
SOURCES = (SRC_SESSION, SRC_JUDGE, SRC_HUB)

_PREF = [(ex.PREFERENCE_SOURCE_LABELS[k], k) for k in ex.PREFERENCE_SOURCES]
_PAIRING = [(ex.PAIRING_LABELS[k], k) for k in ex.PAIRINGS]
_FORMATS = [(ex.FORMAT_LABELS[k], k) for k in ex.FORMATS]

INTRO = (
    "Build the **preference dataset** (`prompt`, `chosen`, `rejected`) that TRL's `DPOTrainer` and `ORPOTrainer` "
    "take as it is. Each rule below has a default; every row a rule drops is counted, so you can see what the "
    "dataset is made of before you push it."
)


def _md(text: Any) -> str:
    """Untrusted text (ids, codes, messages quoting data) made inert for Markdown: no HTML, no markup."""
    return re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", html.escape(str(text), quote=False))


def _inputs(session: Session, source: str) -> tuple[Any, Any, dict, str]:
    """(raw, annotations, meta, where) for the chosen source; raises ExportError when there is nothing."""
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
    return session.raw, annotations, dict(session.raw_meta or {}), "this session"


def _summary_md(session: Session, source: str) -> str:
    try:
        raw, annotations, _, where = _inputs(session, source)
    except ex.ExportError as e:
        return f"**No input yet.** {_md(e)}"
    s = ex.input_summary(raw, annotations)
    langs = ", ".join(f"{_md(k or '?')} ({v})" for k, v in s["languages"].items()) or "none"
    statuses = ", ".join(f"{_md(k)}: {v}" for k, v in s["statuses"].items())
    line = f"**Input:** {_md(where)} — {s['rows']} rows; target language {langs}; {statuses}."
    if source == SRC_JUDGE:
        line += " Annotations are not used (judge only)."
    elif annotations is None or not s["annotated"]:
        line += " No annotators' answers yet: the judge decides every pair (pull answers in the Argilla tab)."
    else:
        line += f" Annotators answered {s['annotated']} rows; the judge decides the others."
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
    return gr.update(choices=langs, value=value, interactive=len(langs) > 1)


def _owners(oauth_token: gr.OAuthToken | None) -> list[str]:
    token = token_of(oauth_token)
    if not token:
        return []
    try:
        return hub.whoami(token).namespaces
    except hub.HubError:
        return []


# --- handlers (module level so tests can call them) -----------------------------------------------------------
def on_refresh(
    session: Session,
    source: str,
    language: str | None,
    owner: str | None,
    repo_name: str,
    profile: gr.OAuthProfile | None = None,
    oauth_token: gr.OAuthToken | None = None,
) -> tuple:
    """On opening the tab or changing the source: describe the input, offer its languages and the push owners."""
    lang_update = _language_update(session, source, language)
    owners = _owners(oauth_token)
    user = username_of(profile)
    owner_value = owner if owner in owners else (user if user in owners else (owners[0] if owners else None))
    lang = lang_update.get("value") or language or ""
    try:
        meta = _inputs(session, source)[2]
    except ex.ExportError:
        meta = {}
    name = repo_name if (repo_name or "").strip() else ex.default_repo_name(lang, meta)
    signed_in = bool(token_of(oauth_token))
    push_note = "" if signed_in else SIGN_IN_NEEDED
    return (
        _summary_md(session, source),
        lang_update,
        gr.update(choices=owners, value=owner_value, interactive=signed_in),
        gr.update(value=name),
        gr.update(interactive=signed_in),
        push_note,
        gr.update(visible=source == SRC_HUB),
    )


def on_load_hub(
    dataset_id: str,
    split: str,
    session: Session,
    profile: gr.OAuthProfile | None = None,
    oauth_token: gr.OAuthToken | None = None,
) -> tuple:
    """Load a raw-results dataset from the Hub into this session (for this tab only)."""
    dataset_id = (dataset_id or "").strip()
    try:
        raw, annotations, meta = ex.load_raw_from_hub(dataset_id, token_of(oauth_token), (split or "train").strip())
    except (hub.HubError, ex.ExportError) as e:
        warn(e)
        return session, f"**Could not load it.** {_md(e)}", gr.update()
    session.export_tab.hub = HubRaw(dataset_id, raw, annotations, meta)
    lang_update = _language_update(session, SRC_HUB, None)
    return session, _summary_md(session, SRC_HUB), lang_update


def _rules(pref, pairing, improved, min_margin, keep_ties, drop_lang, min_chosen, dedupe,
           drop_discarded) -> ex.ExportRules:  # fmt: skip
    min_chosen = float(min_chosen or 0)
    return ex.ExportRules(
        preference_source=pref,
        pairing=pairing,
        use_improved_response=bool(improved),
        min_margin=float(min_margin or 0),
        keep_ties=bool(keep_ties),
        drop_language_mismatch=bool(drop_lang),
        min_chosen_rating=min_chosen if min_chosen > 0 else None,
        dedupe_prompts=bool(dedupe),
        drop_discarded=bool(drop_discarded),
    )


def _test_size(value: Any) -> float | int | None:
    size = float(value or 0)
    if size <= 0:
        return None
    return int(size) if size >= 1 and size.is_integer() else size


def _run_export(session: Session, source: str, language: str | None, rule_values: tuple, fmt: str,
                include_system: bool, test_size: Any, seed: Any) -> tuple[ex.ExportResult, dict]:  # fmt: skip
    raw, annotations, meta, _ = _inputs(session, source)
    result = ex.build_export(
        raw,
        annotations,
        _rules(*rule_values),
        fmt,
        include_system=bool(include_system),
        test_size=_test_size(test_size),
        seed=int(seed or 0),
        target_language=language or None,
    )
    return result, meta


def _downloads(result: ex.ExportResult, meta: dict, repo_id: str) -> list[str]:
    folder = Path(tempfile.mkdtemp(prefix="dpo-studio-export-"))
    stem = ex.default_repo_name(result.target_language, meta)
    files: list[str] = []
    for suffix in (".parquet", ".jsonl"):
        files += [str(p) for p in ex.write_export(result, folder / f"{stem}{suffix}").values()]
    card = folder / "README.md"
    card.write_text(ex.render_export_card(result, meta, repo_id), encoding="utf-8")
    files.append(str(card))
    return files


def _status_md(result: ex.ExportResult) -> str:
    dropped = result.dropped()
    lines = [
        f"**{result.num_rows} pairs** from {result.counts['kept']} of {result.counts['input']} rows "
        f"({', '.join(f'{k}: {v.num_rows}' for k, v in result.splits.items())}); format **{result.format}**; "
        f"target language {_md(result.target_language)}.",
        f"Preferences from annotators: {result.counts['from_human']}; from the judge: {result.counts['from_judge']}.",
    ]
    if dropped:
        lines.append("Dropped: " + "; ".join(f"{ex.RULE_LABELS[k]}: {v}" for k, v in dropped.items()) + ".")
    if result.counts.get("language_unchecked"):
        lines.append(
            f"{result.counts['language_unchecked']} kept pairs have a chosen response whose language could not be "
            "checked (the detector does not know the language, or an annotator rewrote it)."
        )
    ag = result.agreement
    if ag.get("rows"):
        kappa = "n/a" if ag["kappa"] is None else f"{ag['kappa']:.2f}"
        lines.append(
            f"Judge versus annotators on {ag['rows']} rows: the judge agrees on {ag['agree']} "
            f"({ag['share']:.0%}); Cohen's kappa {kappa}."
        )
    lines += [f"Note: {_md(n)}" for n in result.notes]
    return "\n\n".join(lines)


def _empty_outputs(message: str) -> tuple:
    import pandas as pd

    empty = {k: pd.DataFrame(columns=cols) for k, cols in (
        ("rules", ["rule", "rows", "outcome"]), ("ratings", ["rating", "pairs", "response"]),
        ("margins", ["margin", "pairs"]), ("agreement", ["outcome", "rows"]))}  # fmt: skip
    return (
        message,
        [],
        [],
        empty["rules"],
        empty["ratings"],
        empty["margins"],
        gr.update(value=empty["agreement"], visible=False),
        None,
    )


def on_build(
    session: Session,
    source: str,
    language: str | None,
    pref: str,
    pairing: str,
    improved: bool,
    min_margin: float,
    keep_ties: bool,
    drop_lang: bool,
    min_chosen: float,
    dedupe: bool,
    drop_discarded: bool,
    fmt: str,
    include_system: bool,
    test_size: float,
    seed: float,
    owner: str | None,
    repo_name: str,
) -> tuple:
    """Build the export with the rules shown; fill the numbers, plots, preview and downloads."""
    rule_values = (pref, pairing, improved, min_margin, keep_ties, drop_lang, min_chosen, dedupe, drop_discarded)
    try:
        result, meta = _run_export(session, source, language, rule_values, fmt, include_system, test_size, seed)
    except ex.ExportError as e:
        warn(e)
        session.export = None
        return (session, *_empty_outputs(f"**Nothing to export.** {_md(e)}"))
    session.export = result
    frames = ex.export_frames(result)
    repo_id = f"{owner}/{repo_name.strip()}" if owner and (repo_name or "").strip() else ""
    counts = [[label, value] for label, value in ex.counts_table(result.counts)]
    return (
        session,
        _status_md(result),
        counts,
        ex.preview_rows(result.table),
        frames["rules"],
        frames["ratings"],
        frames["margins"],
        gr.update(value=frames["agreement"], visible=not frames["agreement"].empty),
        _downloads(result, meta, repo_id),
    )


def on_push(
    session: Session,
    source: str,
    language: str | None,
    pref: str,
    pairing: str,
    improved: bool,
    min_margin: float,
    keep_ties: bool,
    drop_lang: bool,
    min_chosen: float,
    dedupe: bool,
    drop_discarded: bool,
    fmt: str,
    include_system: bool,
    test_size: float,
    seed: float,
    owner: str | None,
    repo_name: str,
    private: bool,
    overwrite: bool,
    profile: gr.OAuthProfile | None = None,
    oauth_token: gr.OAuthToken | None = None,
) -> str:
    """Push the export, built with the rules shown, to ``owner/repo_name``. The target is checked first."""
    token = token_of(oauth_token)
    if not token:
        gr.Warning(SIGN_IN_NEEDED)
        return SIGN_IN_NEEDED
    if not owner:
        return "Choose an owner (your account or an organisation where you can write)."
    repo_id = f"{owner}/{(repo_name or '').strip()}"
    try:  # refuse a target the user cannot write to before any work
        repo_id = hub.validate_repo_id(repo_id)
        hub.check_writable(repo_id, token)
        if hub.repo_exists(repo_id, token) and not overwrite:
            raise hub.HubError(
                f"'{repo_id}' already exists on the Hub: pick a new name, or tick overwrite to replace its contents."
            )
    except hub.HubError as e:
        warn(e)
        return f"**Not pushed.** {_md(e)}"
    rule_values = (pref, pairing, improved, min_margin, keep_ties, drop_lang, min_chosen, dedupe, drop_discarded)
    try:
        result, meta = _run_export(session, source, language, rule_values, fmt, include_system, test_size, seed)
        url = ex.push_export(result, repo_id, token, private=bool(private), meta=meta, overwrite=bool(overwrite))
    except (ex.ExportError, hub.HubError) as e:
        warn(e)
        return f"**Not pushed.** {_md(e)}"
    session.export = result
    visibility = "private" if private else "public"
    info(f"Pushed {result.num_rows} pairs to {repo_id}.")
    return f"**Pushed** {result.num_rows} pairs ({visibility}) to [{_md(repo_id)}]({html.escape(url, quote=True)})."


# --- layout ---------------------------------------------------------------------------------------------------
def build_tab(session: gr.State, tab: gr.Tab) -> dict[str, Any]:
    """Build the components; returns them by name (tests drive them)."""
    d = ex.ExportRules()
    c: dict[str, Any] = {}
    gr.Markdown(INTRO)
    with gr.Row():
        c["source"] = gr.Radio(list(SOURCES), value=SRC_SESSION, label="Input", scale=3)
        c["language"] = gr.Dropdown([], label="Target language (ISO 639-3)", interactive=False, scale=1,
                                    allow_custom_value=False)  # fmt: skip
    with gr.Row(visible=False) as c["hub_row"]:
        c["hub_id"] = gr.Textbox(label="Raw dataset on the Hub", placeholder="owner/aya-nld-raw", scale=3)
        c["hub_split"] = gr.Textbox(value="train", label="Split", scale=1)
        c["hub_load"] = gr.Button("Load", scale=1)
    c["summary"] = gr.Markdown()

    with gr.Accordion("Rules", open=True):
        with gr.Row():
            c["pref"] = gr.Radio(_PREF, value=d.preference_source, label="Preference source")
            c["pairing"] = gr.Radio(_PAIRING, value=d.pairing, label="With more than two responses")
        with gr.Row():
            c["min_margin"] = gr.Number(value=d.min_margin, minimum=0, maximum=4, step=0.5,
                                        label="Minimum rating margin (0 = any difference)")  # fmt: skip
            c["min_chosen"] = gr.Number(value=0, minimum=0, maximum=5, step=0.5,
                                        label="Minimum rating of the chosen response (0 = none)")  # fmt: skip
        with gr.Row():
            c["keep_ties"] = gr.Checkbox(value=d.keep_ties, label="Keep ties")
            c["drop_lang"] = gr.Checkbox(value=d.drop_language_mismatch,
                                         label="Drop pairs whose chosen response is in another language")  # fmt: skip
            c["dedupe"] = gr.Checkbox(value=d.dedupe_prompts, label="Collapse duplicate prompts")
            c["drop_discarded"] = gr.Checkbox(value=d.drop_discarded, label="Drop rows annotators discarded")
            c["improved"] = gr.Checkbox(value=d.use_improved_response,
                                        label="Use annotators' improved responses as chosen")  # fmt: skip
        gr.Markdown(
            "Always dropped: failed generations, a failed or unparseable judge where no annotator answered, empty "
            "texts, and pairs whose chosen and rejected texts are the same. Responses in a language the detector "
            "does not know are kept and counted."
        )
    with gr.Row():
        c["fmt"] = gr.Radio(_FORMATS, value=ex.FORMAT_STANDARD, label="Format", scale=3)
        with gr.Column(scale=1):
            c["include_system"] = gr.Checkbox(value=False, label="System prompt as a system message")
            c["test_size"] = gr.Number(value=0, minimum=0, label="Test split (fraction or prompts; 0 = none)")
            c["seed"] = gr.Number(value=42, precision=0, label="Split seed")
    c["build"] = gr.Button("Build the dataset", variant="primary")
    c["status"] = gr.Markdown()
    with gr.Row():
        c["plot_rules"] = gr.BarPlot(x="rule", y="rows", color="outcome", title="Rows kept and dropped by rule",
                                     sort=["kept", *ex.DROP_RULES], y_lim=[0, None],
                                     color_map={"kept": "#2e7d32", "dropped": "#c62828"})  # fmt: skip
        c["plot_margins"] = gr.BarPlot(x="margin", y="pairs", title="Rating margin (chosen − rejected)",
                                       y_lim=[0, None])  # fmt: skip
    with gr.Row():
        c["plot_ratings"] = gr.BarPlot(x="rating", y="pairs", color="response", y_lim=[0, None],
                                       title="Ratings of chosen and rejected responses")  # fmt: skip
        c["plot_agreement"] = gr.BarPlot(x="outcome", y="rows", title="Judge versus annotators", visible=False,
                                         y_lim=[0, None], sort=list(OUTCOMES))  # fmt: skip
    with gr.Accordion("Counts", open=False):
        c["counts"] = gr.Dataframe(headers=["", "rows"], datatype=["str", "number"], interactive=False,
                                   wrap=True)  # fmt: skip
    c["preview"] = gr.Dataframe(
        headers=list(ex.PREVIEW_COLUMNS),
        datatype=["str", "str", "str", "str", "number", "number", "number", "str", "str", "str"],
        interactive=False,
        wrap=True,
        label="Preview (first 50 pairs)",
        max_height=500,
        column_widths=["9%", "19%", "20%", "20%", "6%", "6%", "5%", "5%", "5%", "5%"],
    )
    c["downloads"] = gr.File(label="Download (Parquet, JSON Lines, card)", file_count="multiple",
                             interactive=False)  # fmt: skip

    with gr.Accordion("Push to the Hub", open=True):
        with gr.Row():
            c["owner"] = gr.Dropdown([], label="Owner (you or an organisation where you can write)",
                                     interactive=False, allow_custom_value=False)  # fmt: skip
            c["repo_name"] = gr.Textbox(label="Dataset name")
        with gr.Row():
            c["private"] = gr.Checkbox(value=True, label="Private")
            c["overwrite"] = gr.Checkbox(value=False, label="Overwrite if it exists")
            c["push"] = gr.Button("Push to the Hub", interactive=False)
        c["push_note"] = gr.Markdown()
        c["push_status"] = gr.Markdown()

    refresh_in = [session, c["source"], c["language"], c["owner"], c["repo_name"]]
    refresh_out = [c["summary"], c["language"], c["owner"], c["repo_name"], c["push"], c["push_note"],
                   c["hub_row"]]  # fmt: skip
    tab.select(on_refresh, refresh_in, refresh_out)
    c["source"].change(on_refresh, refresh_in, refresh_out)
    c["hub_load"].click(on_load_hub, [c["hub_id"], c["hub_split"], session], [session, c["summary"], c["language"]])
    build_in = [session, c["source"], c["language"], c["pref"], c["pairing"], c["improved"], c["min_margin"],
                c["keep_ties"], c["drop_lang"], c["min_chosen"], c["dedupe"], c["drop_discarded"], c["fmt"],
                c["include_system"], c["test_size"], c["seed"], c["owner"], c["repo_name"]]  # fmt: skip
    build_out = [session, c["status"], c["counts"], c["preview"], c["plot_rules"], c["plot_ratings"],
                 c["plot_margins"], c["plot_agreement"], c["downloads"]]  # fmt: skip
    c["build"].click(on_build, build_in, build_out)
    c["push"].click(on_push, [*build_in, c["private"], c["overwrite"]], [c["push_status"]])
    return c


def build(session: gr.State, tab: gr.Tab) -> None:
    """Build the tab inside ``tab``; ``tab.select`` refreshes it from the session when the user opens it."""
    build_tab(session, tab)
