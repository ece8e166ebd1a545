"""Untrusted text shows as text in every tab: an HTML + Markdown payload goes through each tab's handlers (the
way it would arrive: a dataset id, a language, a server URL, a model's error) and the Markdown they return is
rendered with a CommonMark renderer (raw HTML on, as Gradio's is). The payload must come out as the same visible
text, with no element made from it and no auto-linkable URL left in the source.

The browser journey and ``tests/test_ui_browser.py`` check the same in Chromium for some of these outputs.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from ui.common import html_text, md_link, md_text

PAYLOAD = (
    "<img src=x onerror=alert(1)> **bold** _em_ [link](http://evil.example/x) `code` # heading "
    "(like https://owner-name.hf.space) | a | b | ~~gone~~ <script>alert(2)</script> a@b.org $x$ 1. item"
)
RENDER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
MADE_FROM_PAYLOAD = {"img", "script", "a", "em", "code", "h1", "table", "s", "del", "ol", "li"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)

    def handle_data(self, data) -> None:
        self.text.append(data)


def rendered(markdown: str) -> tuple[list[str], str]:
    """(tags, visible text) of ``markdown`` as a Markdown component shows it."""
    parser = _Tags()
    parser.feed(RENDER.render(markdown))
    return parser.tags, " ".join(" ".join(parser.text).split())


def assert_inert(markdown: str, payload: str = PAYLOAD, allowed: frozenset[str] = frozenset()) -> None:
    tags, text = rendered(markdown)
    made = sorted((set(tags) & MADE_FROM_PAYLOAD) - allowed)
    assert not made, f"the payload became {made} elements: {RENDER.render(markdown)!r}"
    assert " ".join(payload.split()) in text, f"the payload is not shown as written: {text!r}"
    assert "://" not in markdown.replace("&#58;//", ""), f"an auto-linkable URL is left in: {markdown!r}"


def test_md_text_shows_the_payload_exactly():
    assert_inert(md_text(PAYLOAD))
    assert_inert(f"**Not pushed.** {md_text(PAYLOAD)}")  # inside the tabs' own formatting too
    lines = rendered(md_text("first line\n- second line\n\n## third"))[1]
    assert lines == "first line - second line ## third"


def test_md_link_keeps_the_label_as_text_and_the_url_whole():
    link = md_link(PAYLOAD, "https://huggingface.co/datasets/ayla/x y)")
    tags, text = rendered(link)
    assert tags.count("a") == 1 and "img" not in tags and "script" not in tags
    assert " ".join(PAYLOAD.split()) in text
    assert 'href="https://huggingface.co/datasets/ayla/x%20y%29"' in RENDER.render(link)


def test_html_text_is_inert_html():
    parser = _Tags()
    parser.feed(f"<div>{html_text(PAYLOAD)}</div>")
    assert parser.tags == ["div"] and html.unescape("".join(parser.text)) == PAYLOAD


# --- each tab ----------------------------------------------------------------------------------------------------
def test_filter_tab_messages():
    from ui import filter_tab as ft
    from ui.session import Session

    session = Session()
    ft.on_load(session, {"source": ft.SRC_DEMO})
    count = ft.on_filter(session, {"language": PAYLOAD})["count"]
    assert_inert(count)
    out = ft.on_load(Session(), {"source": ft.SRC_HUB, "dataset_id": "", "all_rows_language": PAYLOAD})
    assert "Could not load" in out["load_status"]


def test_playground_tab_messages():
    from ui import playground_tab as pt

    assert_inert(pt._language_note(PAYLOAD))
    parser = _Tags()
    parser.feed(pt._stats_html(PAYLOAD))
    assert parser.tags == ["div"] and html.unescape("".join(parser.text)) == PAYLOAD


def test_pipeline_tab_messages():
    from pipeline import generate
    from ui import pipeline_tab as pipe
    from ui import pipeline_view

    fields = dict(
        kind="openai",
        models="m",
        provider="auto",
        base_url=PAYLOAD,
        judge_kind="openai",
        judge_model="",
        judge_provider="auto",
        judge_base_url="",
        aspect="overall-rating",
        system_prompt="",
        max_rows=5,
        max_new_tokens=16,
        max_tokens=0,
        concurrency=1,
        temperature=0.7,
        top_p=0.95,
    )
    from pipeline.filter import filtered, sources
    from ui.session import Session

    session = Session()
    session.filtered = filtered.filter_source(sources.demo_source(), filtered.FilterSpec(language="nld"))
    message = pipe.estimate(session, fields)["estimate"]
    assert "not a URL" in message
    assert_inert(message)
    snap = generate.Progress(
        state="running",
        message=PAYLOAD,
        total=1,
        done=0,
        counts={},
        finished_this_run=0,
        elapsed_s=0.0,
        rows_per_s=0.0,
        eta_s=None,
        tokens_used=0,
    )
    assert_inert(
        pipeline_view.progress_markdown(snap, hub_message=PAYLOAD), allowed=frozenset({"code"})
    )  # its bar is code


def test_argilla_tab_messages():
    from ui import argilla_tab as at
    from ui.session import Session

    out = at.on_connect(Session(), {"url": f"http://{PAYLOAD}", "key": "some-key", "workspace": None})
    message = out["conn_status"]
    assert "Not connected" in message and "is not a URL" in message
    assert_inert(message)


def test_export_tab_messages():
    from ui import export_tab as et
    from ui.session import Session

    message = et.on_load_hub(Session(), {"hub_id": PAYLOAD, "hub_split": "train"})["summary"]
    assert "Could not load" in message
    assert_inert(message)


UI_MODULES = sorted(p for p in (Path(__file__).resolve().parent.parent / "ui").glob("*.py") if p.name != "common.py")


@pytest.mark.parametrize("path", [*UI_MODULES, UI_MODULES[0].parent.parent / "app.py"], ids=lambda p: p.name)
def test_no_tab_keeps_its_own_escaping(path):
    """One helper for the whole UI (ui/common.py): no other module escapes Markdown/HTML itself."""
    source = path.read_text(encoding="utf-8")
    assert "html.escape" not in source and "_MD_SPECIAL" not in source, f"{path.name} escapes text itself"
    assert r"\\\1" not in source, f"{path.name} has its own backslash escaping"
