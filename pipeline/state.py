"""Per-user session state. The app keeps one ``Session`` per browser session in ``gr.State``; nothing per-user
lives in module globals. Tokens are never stored here: handlers receive them from Gradio's OAuth per call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelChoice:
    """What the Playground hands to the Pipeline tab ("Use in pipeline")."""

    model: str
    backend: str  # "serverless" | "endpoint" | "openai"
    base_url: str = ""  # endpoint or OpenAI-compatible base URL ("" for serverless)
    provider: str = "auto"  # serverless provider
    system_prompt: str = ""


@dataclass
class Session:
    # Filter tab
    filtered: Any = None  # pipeline.data.FilteredSet | None
    # Playground tab
    votes: list[dict] = field(default_factory=list)
    model_choice: ModelChoice | None = None
    # Pipeline tab
    run: Any = None  # the running/finished pipeline run handle (pipeline.generate), if any
    raw: Any = None  # pyarrow.Table with schema.RAW_COLUMNS
    raw_meta: dict = field(default_factory=dict)  # models, settings, source, counts: for cards
    # Argilla
    argilla_url: str = ""
    argilla_key: str = ""  # a per-session override typed by the user; never rendered back or logged
    annotations: Any = None  # pyarrow.Table with schema.ANNOTATION_COLUMNS
    # Export tab
    export: Any = None  # pipeline.export result
    extra: dict = field(default_factory=dict)
