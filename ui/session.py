"""Per-user session state. The app keeps one ``Session`` per browser session in ``gr.State``; nothing per-user
lives in module globals. Tokens are never stored here: handlers receive them from Gradio's OAuth per call.

A ``Session`` holds two kinds of state, both declared (there is no free-form dict):

- the hand-offs between steps (``filtered`` -> ``raw`` / ``raw_meta`` -> ``annotations`` -> ``export`` ->
  ``pushed_export``), read by the next tab;
- one small dataclass per tab (``filter_tab``, ``playground_tab``, ``pipeline_tab``, ``argilla_tab``,
  ``export_tab``, ``train_tab``) for what only that tab reads back. A new per-tab value is a new typed field there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.core.schema import ModelChoice, RunMeta
from pipeline.train import ExportFacts, JobRef


@dataclass
class FilterState:
    """The Filter tab's own state."""

    source: Any = None  # pipeline.filter.sources.Source: the loaded source (shared read-only by all sessions)
    default_name: str = ""  # the push repo name the tab last suggested (replaced while the user has not edited it)


@dataclass
class PlaygroundState:
    """The Playground tab's own state."""

    link_applied: bool = False  # a community link's choices were applied (once per session)


@dataclass
class PipelineState:
    """The Pipeline tab's own state."""

    anonymous_key: str = ""  # checkpoint owner for a visitor who is not signed in (random, per session)
    prefilled: tuple | None = None  # the Playground choice (its values) last prefilled
    run_meta: RunMeta | None = None  # the run's metadata at start, completed when its results load
    loaded_run: int | None = None  # id() of the run handle whose results are in Session.raw
    notes: tuple[str, ...] = ()  # what the start said (restored rows, where checkpoints go), kept under the progress


@dataclass
class ArgillaState:
    """The Argilla tab's own state: where this session's records were last sent."""

    dataset: str = ""
    workspace: str = ""
    url: str = ""
    guidelines: str = ""  # the guidelines sent with the dataset (for the share box's message)
    space_id: str = ""  # the Argilla Space this session created or reused ("Create an Argilla Space")
    space_credentials: Any = None  # its OwnerCredentials when this session created it: kept here only, shown once
    annotators: int = 0  # annotators who submitted answers in the last pull


@dataclass
class HubRaw:
    """A raw-results dataset loaded from the Hub in the Export tab (for that tab only)."""

    dataset_id: str
    raw: Any  # pyarrow.Table with schema.RAW_SCHEMA's columns
    annotations: Any  # pyarrow.Table with schema.ANNOTATION_SCHEMA's columns, or None
    meta: RunMeta


@dataclass
class ExportState:
    """The Export tab's own state."""

    hub: HubRaw | None = None


@dataclass
class JudgeCheckState:
    """The judge check section of the Pipeline tab (``ui/judge_check.py``, logic in ``pipeline.judge.check``)."""

    tasks: list = field(default_factory=list)  # pipeline.judge.labels.LabelTask queue, from the pilot run in ``raw``
    raw_key: int | None = None  # id() of the raw table the tasks come from
    position: int = 0  # index in ``tasks`` of the row shown
    labels: dict = field(default_factory=dict)  # row id -> pipeline.judge.labels.Label (people's answers)
    label_ids: frozenset = frozenset()  # ids the labels added to ``Session.annotations`` (replaced on relabel)
    set_aside: int = 0  # labels not used: the answers they were given for changed (a new run; never reused)
    handle: Any = None  # pipeline.judge.check.CheckHandle of the check running or last run
    result: Any = None  # schema.JudgeCheck of the last finished check (for the run's metadata and cards)


@dataclass
class TrainState:
    """The Train tab's own state: the training job this session launched (or found again after a reload), and the
    facts of the export last read (so changing a setting does not reload the dataset)."""

    job: JobRef | None = None
    facts: ExportFacts | None = None


@dataclass
class Session:
    # Hand-offs between the steps
    filtered: Any = None  # pipeline.filter.filtered.FilteredSet | None (Filter -> Playground, Pipeline)
    votes: list[dict] = field(default_factory=list)  # Playground votes
    model_choice: ModelChoice | None = None  # Playground -> Pipeline
    run: Any = None  # the running/finished pipeline run handle (pipeline.generate), if any
    raw: Any = None  # pyarrow.Table with schema.RAW_SCHEMA's columns (Pipeline -> Argilla, Export)
    raw_meta: RunMeta | None = None  # `raw`'s run metadata (models, settings, source, counts: for cards)
    argilla_url: str = ""
    argilla_key: str = ""  # a per-session override typed by the user; never rendered back or logged
    annotations: Any = None  # pyarrow.Table with schema.ANNOTATION_SCHEMA's columns (Argilla -> Export)
    export: Any = None  # pipeline.export result
    pushed_export: str = ""  # the repo id of the export this session pushed last (Export -> Train)
    # Each tab's own state
    filter_tab: FilterState = field(default_factory=FilterState)
    playground_tab: PlaygroundState = field(default_factory=PlaygroundState)
    pipeline_tab: PipelineState = field(default_factory=PipelineState)
    argilla_tab: ArgillaState = field(default_factory=ArgillaState)
    export_tab: ExportState = field(default_factory=ExportState)
    judge_check: JudgeCheckState = field(default_factory=JudgeCheckState)
    train_tab: TrainState = field(default_factory=TrainState)
