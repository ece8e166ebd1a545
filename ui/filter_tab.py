"""The Filter tab: load Aya (or another prompt/response dataset, or the demo data), keep one language, push it.

UI glue only: loading, filtering, cards and pushing live in :mod:`pipeline.filter.sources` and :mod:`pipeline.filter.filtered` and :mod:`pipeline.core.hub`.
The loaded source is shared read-only by all sessions (cached in ``pipeline.filter.sources``); this session keeps a
reference in ``session.filter_tab.source`` and the current filtered set in ``session.filtered``.

The handlers are module-level, take the session plus ONE mapping of the form's values by name and return named
outputs (``ui/forms.py``'s convention): :data:`LOAD_DEFAULTS` for :func:`on_load`, :data:`FILTER_DEFAULTS` for
:func:`on_filter`, :data:`PUSH_DEFAULTS` for :func:`on_push`. Those mappings hold every default once: the
components start from them and a handler fills a missing value from them, so tests and a community link pass only
what they mean. The wired events keep the API names ``/on_load``, ``/on_filter``, ``/on_download`` and
``/on_push``; an API caller orders its arguments with ``Form.api_args``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import gradio as gr
import pandas as pd

from pipeline import langcheck
from pipeline.core import hub, languages
from pipeline.filter import filtered, sources
from ui import sign_in
from ui.common import column_widths, md_link, md_text, table_frame, token_of, username_of, warn
from ui.forms import Form, pick, wire
from ui.session import Session

SRC_AYA = f"Aya ({sources.AYA_ID})"


SRC_HUB = "Another dataset on the Hub"


SRC_DEMO = "Demo data (bundled, no network)"


SOURCES = (SRC_AYA, SRC_HUB, SRC_DEMO)


PREVIEW_ROWS = 50


PREVIEW_HEADERS = ["prompt", "response", "language_code", "annotation_type", "id"]


PREVIEW_WIDTHS = column_widths([34, 42, 8, 10, 6])


LANG_TABLE_COLUMNS = ["language", "code", "rows", "mean_prompt_chars", "mean_response_chars"]


LINK_SOURCES = {"aya": SRC_AYA, "demo": SRC_DEMO}  # a community link's source -> the Source choice


LOAD_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "source": SRC_AYA,
        "dataset_id": "",
        "split": "train",
        "config": "",
        "prompt_col": "prompt",
        "response_col": "response",
        "language_col": "",  # empty: no language column
        "all_rows_language": "",  # ...or one language for every row
        "language": None,  # the language to keep chosen after loading (a name or code), if any
    }
)


"""The load form's values by name, with their defaults (the components start from these)."""


_FILTER: Final = filtered.FilterSpec(language="")


FILTER_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "language": None,
        "annotation_types": (),  # none ticked = all
        "min_prompt": _FILTER.min_prompt_chars,  # lengths in characters; 0 = no limit
        "max_prompt": _FILTER.max_prompt_chars,
        "min_response": _FILTER.min_response_chars,
        "max_response": _FILTER.max_response_chars,
        "dedup": _FILTER.dedup,
        "sample": _FILTER.sample,  # 0 = all rows
        "seed": _FILTER.seed,
        "repo_name": "",  # the push's dataset name as typed (the handler proposes one while it is empty)
    }
)


"""The filter form's values by name, with their defaults (those of :class:`pipeline.filter.filtered.FilterSpec`)."""


PUSH_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "owner": None,  # None: the signed-in user
        "repo_name": FILTER_DEFAULTS["repo_name"],  # the same box; empty: the filtered set's default name
        "private": True,
        "overwrite": False,
    }
)


"""The push form's values by name, with their defaults."""


INTRO = (
    "**Step 1 — choose your language.** Load the human-written [Aya](https://huggingface.co/datasets/"
    f"{sources.AYA_ID}) prompts and answers (or another prompt/response dataset), keep one language and clean it. "
    "The result stays in this session for the next tabs; you can also download it or push it to your account."
)


_md = md_text  # untrusted text (dataset ids, column names, messages quoting them) shown as text


def _source(session: Session) -> sources.Source | None:
    return session.filter_tab.source


# --- load ---------------------------------------------------------------------------------------------------------
def source_spec(values: Mapping[str, Any]) -> sources.SourceSpec:
    """The SourceSpec for the load form's values (by name, see :data:`LOAD_DEFAULTS`; missing ones from there)."""
    v = {**LOAD_DEFAULTS, **values}
    if v["source"] == SRC_DEMO:
        return sources.SourceSpec.demo()
    if v["source"] == SRC_AYA:
        return sources.SourceSpec.aya()
    return sources.SourceSpec.hub_dataset(
        v["dataset_id"] or "",
        v["split"] or "train",
        prompt_col=v["prompt_col"] or "",
        response_col=v["response_col"] or "",
        language_col=v["language_col"] or "",
        language=v["all_rows_language"] or "",
        config=(v["config"] or "").strip() or None,
    )


def _load_status(src: sources.Source) -> str:
    info = src.info
    lines = []
    if info.note:
        lines.append(f"⚠️ **{_md(info.note)}**")
    if info.is_demo:
        lines.append(
            f"**Loaded: {_md(sources.DEMO_LABEL)}** — {info.rows:,} rows in {len(src.offsets)} languages. "
            "Demo rows are for trying the app, not for training a model."
        )
    else:
        lic = f", licence {_md(info.license)}" if info.license else ""
        private = " (private)" if info.private else ""
        lines.append(
            f"**Loaded:** {_md(info.label)}{private} — {info.rows:,} rows in {len(src.offsets)} languages{lic}."
        )
    if info.dropped_empty:
        lines.append(f"{info.dropped_empty:,} rows with an empty prompt or response were skipped.")
    lines.append("Now choose a language below.")
    return "\n\n".join(lines)


def _language_choices(src: sources.Source) -> list[tuple[str, str]]:
    return [(f"{name} ({code}) — {src.offsets[code][1]:,} rows", code) for name, code in src.languages()]


def _table_frames(src: sources.Source) -> tuple[pd.DataFrame, pd.DataFrame]:
    lt = src.language_table().to_pandas()
    lt["mean_prompt_chars"] = lt["mean_prompt_chars"].astype(int)
    lt["mean_response_chars"] = lt["mean_response_chars"].astype(int)
    plot = lt[["language", "rows"]].copy()
    return table_frame(lt[[c for c in LANG_TABLE_COLUMNS if c in lt.columns]]), plot


def on_load(session: Session, values: Mapping[str, Any], oauth_token: gr.OAuthToken | None = None) -> dict:
    """Load the chosen source (shared cache) for this user. ``values``: the load form's values by name
    (:data:`LOAD_DEFAULTS`). Named outputs: ``load_status``, ``lang_table``, ``lang_plot``, ``language``,
    ``annotation_types``, ``source`` (the demo data when Aya could not be reached and the demo data came instead),
    and the download box cleared (``files``, ``download_status``): its files were another set's."""
    token = token_of(oauth_token)
    spec = source_spec(values)
    language = values.get("language", LOAD_DEFAULTS["language"])
    try:
        if spec.kind == "hub" and not spec.dataset_id:
            raise sources.DataError("Enter a dataset id like 'owner/name' (as in its URL on the Hub).")
        src = sources.load_source(spec, token)
    except (hub.HubError, sources.DataError) as e:
        warn(e)
        return {"load_status": f"**Could not load the dataset.** {_md(e)}"}
    session.filter_tab.source = src
    session.filtered = None
    lt, plot = _table_frames(src)
    choices = _language_choices(src)
    value = None
    if language:
        try:
            value = src.resolve_language(language).code
        except sources.DataError:
            value = None
    ann = src.annotation_types()
    out = {
        "load_status": _load_status(src),
        "lang_table": lt,
        "lang_plot": plot,
        "language": gr.update(choices=choices, value=value, interactive=True),
        "annotation_types": gr.update(choices=ann, value=[], visible=bool(ann)),
        **_no_files(),
    }
    if src.info.is_demo and values.get("source") != SRC_DEMO:  # Aya could not be reached: the demo data came
        out["source"] = gr.update(value=SRC_DEMO)
    return out


def _no_files() -> dict[str, Any]:
    """The download box emptied (its files belong to a set that is no longer the current one)."""
    return {"files": None, "download_status": ""}


# --- filter -------------------------------------------------------------------------------------------------------
def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def filter_spec(values: Mapping[str, Any]) -> filtered.FilterSpec:
    """The FilterSpec for the filter form's values (by name, see :data:`FILTER_DEFAULTS`; missing ones from there)."""
    v = {**FILTER_DEFAULTS, **values}
    return filtered.FilterSpec(
        language=v["language"] or "",
        annotation_types=tuple(v["annotation_types"] or ()),
        min_prompt_chars=_int(v["min_prompt"]),
        max_prompt_chars=_int(v["max_prompt"]),
        min_response_chars=_int(v["min_response"]),
        max_response_chars=_int(v["max_response"]),
        dedup=bool(v["dedup"]),
        sample=_int(v["sample"]),
        seed=_int(v["seed"]),
    )


def _push_needs_sign_in() -> str:
    extra = " Downloads work without signing in." if sign_in.is_available() else ""
    return f"Pushing: {sign_in.needed()}{extra}"


def _push_state(session: Session, profile: gr.OAuthProfile | None) -> dict[str, Any]:
    """Named outputs ``push`` (the button) and ``push_note`` for the current set and sign-in."""
    fs = session.filtered
    if username_of(profile) is None:
        return {"push": gr.update(interactive=False), "push_note": _push_needs_sign_in()}
    if fs is None or fs.rows == 0:
        note = "Pushing needs at least one row: choose a language and loosen the filters."
        return {"push": gr.update(interactive=False), "push_note": note}
    return {"push": gr.update(interactive=True), "push_note": ""}


def on_filter(session: Session, values: Mapping[str, Any], profile: gr.OAuthProfile | None = None) -> dict:
    """Apply the filters (milliseconds) and keep the result in the session. ``values``: the filter form's values by
    name (:data:`FILTER_DEFAULTS`). Named outputs: ``count``, ``preview``, ``repo_name``, ``push``,
    ``push_note``, and the download box emptied (``files``, ``download_status``: they were the previous set's)."""
    language = values.get("language", FILTER_DEFAULTS["language"])
    repo_name = values.get("repo_name", FILTER_DEFAULTS["repo_name"]) or ""
    src = _source(session)
    empty = table_frame(pd.DataFrame(columns=PREVIEW_HEADERS))

    def shown(count: str, preview: Any = empty, repo: Any = None) -> dict:
        out = {"count": count, "preview": preview, **_push_state(session, profile), **_no_files()}
        return {**out, "repo_name": repo} if repo is not None else out

    if src is None:
        session.filtered = None
        return shown(_waiting_for_data(language))
    if not language:
        session.filtered = None
        return shown("**Choose a language** to see how many rows you get.")
    try:
        spec = filter_spec(values)
        fs = filtered.filter_source(src, spec)
    except sources.DataError as e:
        session.filtered = None
        return shown(f"**{_md(e)}**")
    session.filtered = fs if fs.rows else None
    langcheck.warm_up(fs.language_code, background=True)  # its detector (or the Hub model's download) starts now
    total = src.offsets.get(fs.language_code, (0, 0, 0))[1]
    demo = " (demo data)" if fs.is_demo else ""
    if fs.rows:
        count = (
            f"**{fs.rows:,} rows** of {_md(fs.language)} ({_md(fs.language_code)}){demo} after filters, "
            f"out of {total:,}. This set is ready for the next tabs. Language check: "
            f"{_md(langcheck.describe(fs.language_code))}"
        )
    else:
        count = (
            f"**0 rows** of {_md(fs.language)} ({_md(fs.language_code)}) pass these filters (out of {total:,}). "
            "Loosen the length limits or the annotation types; pushing is disabled."
        )
    user = username_of(profile)
    # the name a push would get (e.g. demo-nld for the demo data), also as the placeholder when signed out
    repo_update = gr.update(placeholder=fs.default_repo_name(user or "you").split("/", 1)[1])
    if user:
        st = session.filter_tab
        default = fs.default_repo_name(user).split("/", 1)[1]
        if not repo_name.strip() or repo_name.strip() == st.default_name:
            repo_update = gr.update(value=default, placeholder=default)
        st.default_name = default
    return shown(count, table_frame(filtered.preview_frame(fs.table, PREVIEW_ROWS)), repo_update)


# --- push and downloads -------------------------------------------------------------------------------------------
def on_tab_select(
    session: Session,
    values: Mapping[str, Any],
    profile: gr.OAuthProfile | None = None,
    oauth_token: gr.OAuthToken | None = None,
) -> dict:
    """Refresh sign-in dependent parts (``values``: the current ``owner``). Named outputs: ``owner``, ``push``,
    ``push_note``."""
    owner = values.get("owner")
    user = username_of(profile)
    owners = hub.owners(token_of(oauth_token), user) if user else []
    value = owner if owner in owners else (owners[0] if owners else None)
    owner_box = gr.update(choices=owners, value=value, interactive=bool(owners))
    return {"owner": owner_box, **_push_state(session, profile)}


def on_push(
    session: Session,
    values: Mapping[str, Any],
    profile: gr.OAuthProfile | None = None,
    oauth_token: gr.OAuthToken | None = None,
) -> dict:
    """Push the session's filtered set to ``owner/repo_name``. ``values``: the push form's values by name
    (:data:`PUSH_DEFAULTS`). Named output: ``push_status``."""
    return {"push_status": _push(session, values, token_of(oauth_token), username_of(profile))}


def _push(session: Session, values: Mapping[str, Any], token: str | None, user: str | None) -> str:
    v = {**PUSH_DEFAULTS, **values}
    owner, repo_name, private = v["owner"], v["repo_name"], v["private"]
    if user is None or token is None:
        return f"**Not pushed.** {sign_in.needed()}"
    fs: filtered.FilteredSet | None = session.filtered
    if fs is None or fs.rows == 0:
        return "**Not pushed.** There are no rows to push: choose a language and loosen the filters."
    owner = (owner or user).strip()
    name = (repo_name or "").strip() or fs.default_repo_name(owner).split("/", 1)[1]
    repo_id = f"{owner}/{name}"
    try:
        url = filtered.push_filtered(fs, repo_id, token, private=bool(private), overwrite=bool(v["overwrite"]))
    except (hub.HubError, sources.DataError) as e:
        return f"**Not pushed.** {_md(e)}"
    visibility = "private" if private else "public"
    demo = " These are demo rows, and the card says so." if fs.is_demo else ""
    return f"**Pushed** {fs.rows:,} rows ({visibility}) to {md_link(repo_id, url)} with a dataset card.{demo}"


def on_download(session: Session) -> dict:
    """Write the filtered set as Parquet and JSON Lines for download. Named outputs: ``files``,
    ``download_status``."""
    fs: filtered.FilteredSet | None = session.filtered
    if fs is None or fs.rows == 0:
        return {"files": None, "download_status": "Nothing to download yet: choose a language with at least one row."}
    folder = Path(tempfile.mkdtemp(prefix="dpo-studio-filter-"))
    stem = f"{fs.source.short_name}-{fs.language_code}"
    files = [
        str(filtered.write_parquet(fs.table, folder / f"{stem}.parquet")),
        str(filtered.write_jsonl(fs.table, folder / f"{stem}.jsonl")),
    ]
    (folder / "README.md").write_text(filtered.filter_card(fs), encoding="utf-8")
    files.append(str(folder / "README.md"))
    return {
        "files": files,
        "download_status": f"{fs.rows:,} rows ready to download (Parquet, JSON Lines and the dataset card).",
    }


def on_source_change(values: Mapping[str, Any]) -> dict:
    """The Hub dataset's fields show only for "Another dataset on the Hub"."""
    return {"hub_group": gr.update(visible=values.get("source") == SRC_HUB)}


# --- opened from a community link ---------------------------------------------------------------------------------
def _waiting_for_data(language: str | None) -> str:
    """The count line before any data is loaded (a community link may already have chosen the language)."""
    if not language:
        return "Load a dataset first (button above)."
    name = languages.display_name(language)
    label = f"{name} ({language})" if name != language else language
    return f"Click **Load** above: {_md(label)} is chosen, and its rows show as soon as the data is there."


LOAD_OUTPUTS = (
    "load_status",
    "lang_table",
    "lang_plot",
    "language",
    "annotation_types",
    "source",
    "files",
    "download_status",
)


FILTER_OUTPUTS = ("count", "preview", "repo_name", "push", "push_note", "files", "download_status")


# --- layout -------------------------------------------------------------------------------------------------------
def build_tab(session: gr.State, tab: gr.Tab) -> dict[str, Any]:
    """Build the components; returns them by name (tests drive them), and the events' forms under ``"forms"``."""
    ld, fd, pu = LOAD_DEFAULTS, FILTER_DEFAULTS, PUSH_DEFAULTS
    c: dict[str, Any] = {}
    gr.Markdown(INTRO)
    with gr.Row():
        c["source"] = gr.Radio(list(SOURCES), value=ld["source"], label="Source", scale=4)
        c["load"] = gr.Button("Load", variant="primary", scale=1)
    with gr.Group(visible=False) as c["hub_group"]:
        with gr.Row():
            c["dataset_id"] = gr.Textbox(value=ld["dataset_id"], label="Dataset id", placeholder="owner/name", scale=3)
            c["split"] = gr.Textbox(value=ld["split"], label="Split", scale=1)
            c["config"] = gr.Textbox(value=ld["config"], label="Configuration (if any)", scale=1)
        with gr.Row():
            c["prompt_col"] = gr.Textbox(value=ld["prompt_col"], label="Prompt column")
            c["response_col"] = gr.Textbox(value=ld["response_col"], label="Response column")
            c["language_col"] = gr.Textbox(
                value=ld["language_col"], label="Language column (names or codes; empty if none)"
            )
            c["all_rows_language"] = gr.Textbox(
                value=ld["all_rows_language"], label="…or the language of all rows", placeholder="e.g. Dutch"
            )
    c["load_status"] = gr.Markdown(
        "Choose a source and click **Load**. Aya is about 200,000 rows; the demo data "
        "loads instantly and needs no network."
    )
    with gr.Accordion("Languages in the dataset", open=False):
        with gr.Row():
            c["lang_table"] = gr.Dataframe(
                headers=list(table_frame(pd.DataFrame(columns=LANG_TABLE_COLUMNS)).columns),
                datatype=["str", "str", "number", "number", "number"],
                interactive=False,
                max_height=400,
                label="Rows and mean lengths (characters) per language",
                wrap=True,
                column_widths=column_widths([30, 12, 14, 22, 22]),
            )
            c["lang_plot"] = gr.BarPlot(
                x="language",
                y="rows",
                sort="-y",
                title="Rows per language",
                y_lim=[0, None],
                x_label_angle=-60,
                height=400,
            )

    with gr.Row():
        c["language"] = gr.Dropdown(
            [],
            value=fd["language"],
            label="Language (required)",
            allow_custom_value=True,
            interactive=False,
            filterable=True,
            scale=2,
        )
        c["annotation_types"] = gr.CheckboxGroup(
            [], value=list(fd["annotation_types"]), visible=False, scale=2, label="Annotation types (none ticked = all)"
        )
    with gr.Row():
        c["min_prompt"] = gr.Number(value=fd["min_prompt"], minimum=0, precision=0, label="Min prompt length (chars)")
        c["max_prompt"] = gr.Number(
            value=fd["max_prompt"], minimum=0, precision=0, label="Max prompt length (0 = none)"
        )
        c["min_response"] = gr.Number(
            value=fd["min_response"], minimum=0, precision=0, label="Min response length (chars)"
        )
        c["max_response"] = gr.Number(
            value=fd["max_response"], minimum=0, precision=0, label="Max response length (0 = none)"
        )
    with gr.Row():
        c["dedup"] = gr.Checkbox(value=fd["dedup"], label="Drop duplicate prompts (keep the first)")
        c["sample"] = gr.Number(
            value=fd["sample"], minimum=0, precision=0, label="Random sample of at most N rows (0 = all)"
        )
        c["seed"] = gr.Number(value=fd["seed"], minimum=0, precision=0, label="Sample seed")
    c["count"] = gr.Markdown("Load a dataset first.")
    c["preview"] = gr.Dataframe(
        headers=list(table_frame(pd.DataFrame(columns=PREVIEW_HEADERS)).columns),
        datatype=["str"] * len(PREVIEW_HEADERS),
        interactive=False,
        wrap=True,
        max_height=450,
        label=f"Preview (first {PREVIEW_ROWS} rows)",
        column_widths=PREVIEW_WIDTHS,
    )

    with gr.Row():
        with gr.Column():
            gr.Markdown("**Download** (no sign-in needed)")
            c["download"] = gr.Button("Prepare Parquet + JSON Lines")
            c["files"] = gr.File(label="Files", file_count="multiple", interactive=False)
            c["download_status"] = gr.Markdown()
        with gr.Column():
            gr.Markdown("**Push to the Hub** (your account)")
            with gr.Row():
                c["owner"] = gr.Dropdown(
                    [], value=pu["owner"], label="Owner", interactive=False, allow_custom_value=False
                )
                c["repo_name"] = gr.Textbox(value=fd["repo_name"], label="Dataset name", placeholder="aya-nld")
            with gr.Row():
                c["private"] = gr.Checkbox(value=pu["private"], label="Private")
                c["overwrite"] = gr.Checkbox(value=pu["overwrite"], label="Overwrite if it exists")
            c["push"] = gr.Button("Push to the Hub", interactive=False)
            c["push_note"] = gr.Markdown(f"Pushing: {sign_in.needed()}")
            c["push_status"] = gr.Markdown()

    c["forms"] = _wire(session, tab, c)
    return c


def _wire(session: gr.State, tab: gr.Tab, c: dict[str, Any]) -> dict[str, Form]:
    """Connect the events to the module-level handlers (ui/forms.py's convention). The load, filter, download
    and push events keep their API names (``/on_load``, ``/on_filter``, ``/on_download``, ``/on_push``; an API
    caller fills the form with ``Form.api_args``). Returns the forms by event."""
    load_form = Form(**{k: c[k] for k in LOAD_DEFAULTS})
    filter_form = Form(**{k: c[k] for k in FILTER_DEFAULTS})
    push_form = Form(**{k: c[k] for k in PUSH_DEFAULTS})
    select_form = Form(owner=c["owner"])

    select_out = pick(c, "owner", "push", "push_note")
    wire(
        c["source"].change,
        on_source_change,
        form=Form(source=c["source"]),
        outputs=pick(
            c,
            "hub_group",
        ),
    )
    loaded = wire(
        c["load"].click, on_load, session=session, form=load_form, outputs=pick(c, *LOAD_OUTPUTS), api_name="on_load"
    )
    filtered_ = wire(
        loaded.then,
        on_filter,
        session=session,
        form=filter_form,
        outputs=pick(c, *FILTER_OUTPUTS),
        api_name="on_filter",
    )
    wire(filtered_.then, on_tab_select, session=session, form=select_form, outputs=select_out)
    for name in ("language", "annotation_types", "dedup"):
        wire(c[name].change, on_filter, session=session, form=filter_form, outputs=pick(c, *FILTER_OUTPUTS))
    for name in ("min_prompt", "max_prompt", "min_response", "max_response", "sample", "seed"):
        wire(
            c[name].change,
            on_filter,
            session=session,
            form=filter_form,
            outputs=pick(c, *FILTER_OUTPUTS),
            trigger_mode="always_last",
        )
    wire(tab.select, on_tab_select, session=session, form=select_form, outputs=select_out)
    download_out = pick(c, "files", "download_status")
    wire(c["download"].click, on_download, session=session, outputs=download_out, api_name="on_download")
    wire(
        c["push"].click,
        on_push,
        session=session,
        form=push_form,
        outputs=pick(
            c,
            "push_status",
        ),
        api_name="on_push",
    )
    return {"load": load_form, "filter": filter_form, "push": push_form}


def build(session: gr.State, tab: gr.Tab) -> dict[str, Any]:
    """Build the tab inside ``tab``; ``tab.select`` refreshes it from the session when the user opens it.
    Returns the components by name (app.py pre-selects the language of a community link)."""
    return build_tab(session, tab)
