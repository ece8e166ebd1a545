"""The data contracts between the steps (Filter → Pipeline → Argilla → Export).

Every step reads and writes plain ``pyarrow`` tables with the columns below, so each step can be run, saved,
pushed and resumed on its own (in the app, in the CLI, or from a dataset on the Hub).

Filtered set (output of Filter, input of Pipeline)
    ``FILTERED_COLUMNS``: one row per prompt with its human-written response.

Raw results (output of Pipeline, input of Argilla and Export)
    ``RAW_COLUMNS``: one row per prompt. ``responses`` holds the human response first, then one response per
    generator model, in the order of ``response_sources`` (``"human"`` or the model id). ``ratings``,
    ``rationales``, ``detected_languages``, ``language_confidences`` and ``language_match`` are aligned with
    ``responses``. ``status`` is one of ``STATUSES``.

Annotations (output of Argilla pull, input of Export)
    ``ANNOTATION_COLUMNS``: one row per record id that has at least one submitted response. ``human_ratings`` is
    aligned with the raw row's ``responses`` (mean over annotators, ``None`` where nobody rated);
    ``human_preference`` is the index (into ``responses``) of the majority's best response, ``-1`` for a tie,
    ``None`` if nobody said; ``improved_response`` is an annotator's rewrite of the preferred response.

Every table's Arrow types are declared here once: ``FILTERED_SCHEMA``, ``raw_schema()``, ``ANNOTATION_SCHEMA``,
``LABEL_SCHEMA`` (the judge check's labels) and ``EXPORT_SCHEMAS`` (one per export format).

Provenance travels with the data: :class:`Provenance` (source dataset, config, split, licence, filters, language)
is stored in each table's Arrow schema metadata (:func:`with_provenance` / :func:`provenance_of`), which Parquet
keeps and :mod:`pipeline.core.tablefiles` keeps for JSON Lines in a sidecar file. A raw results table also carries its
:class:`RunMeta` (models, prompts, sampling, counts), the same object as the raw dataset's ``dpo_studio.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from types import MappingProxyType, UnionType
from typing import Any, Final, Union, get_args, get_origin, get_type_hints

import pyarrow as pa

# --- Filtered set -------------------------------------------------------------------------------------------
FILTERED_COLUMNS: Final = (
    "id",  # stable content id, see row_id()
    "prompt",
    "response",  # the human-written answer
    "language",  # e.g. "Dutch"
    "language_code",  # ISO 639-3 as in Aya, e.g. "nld"
    "annotation_type",  # Aya: original-annotations / re-annotations / ... ("" when the source has none)
    "user_id",  # Aya annotator id ("" when the source has none)
)

# --- Raw pipeline results -----------------------------------------------------------------------------------
HUMAN: Final = "human"

STATUS_OK: Final = "ok"
STATUS_GENERATION_FAILED: Final = "generation_failed"
STATUS_JUDGE_FAILED: Final = "judge_failed"
STATUS_JUDGE_UNPARSEABLE: Final = "judge_unparseable"
STATUSES: Final = (STATUS_OK, STATUS_GENERATION_FAILED, STATUS_JUDGE_FAILED, STATUS_JUDGE_UNPARSEABLE)

# Added with the structured, order-aware judge (pipeline/judge.py): absent in older raw files, read as null.
JUDGE_COLUMNS: Final = (
    "judge_mode",  # "ratings" | "pairwise" (null: ratings, an older file)
    "judge_orders",  # list[list[int]]: presentation order(s) used (pairwise: [shown as A, shown as B] per call)
    "judge_inconsistent",  # bool | None: judged in both orders and the preferred answer changed; None: judged once
    "judge_structured",  # bool | None: every judge call used structured output (False: fell back to text)
    "judge_winners",  # list[str] | None: pairwise, per generator "human" | "model" | "tie"
)

RAW_COLUMNS: Final = (
    "id",
    "prompt",
    "system_prompt",
    "target_language",  # ISO 639-3 code of the filtered language
    "responses",  # list[str]; index 0 is the human response
    "response_sources",  # list[str]; "human" or the generator's model id
    "ratings",  # list[float | None]; rating 1-5 per response (mean over orders; pairwise: points, see judge.py)
    "rationales",  # list[str | None]
    "detected_languages",  # list[str | None]; ISO 639-3, None where undetectable
    "language_confidences",  # list[float | None]
    "language_match",  # list[bool | None]; None = language unsupported by the detector
    "judge_model",
    "aspect",  # UltraFeedback aspect, e.g. "overall-rating"
    "status",  # one of STATUSES
    "error",  # human-readable reason, "" when status == ok
    *JUDGE_COLUMNS,
)

# Columns Export needs in a raw table; one without them is refused with a message naming them.
REQUIRED_RAW_COLUMNS: Final = (
    "id",
    "prompt",
    "target_language",
    "responses",
    "response_sources",
    "ratings",
    "language_match",
    "status",
)

# --- Human annotations pulled from Argilla ------------------------------------------------------------------
ANNOTATION_COLUMNS: Final = (
    "id",
    "n_annotators",
    "human_ratings",  # list[float | None], aligned with the raw row's responses
    "human_preference",  # int | None; index into responses, -1 = tie
    "agreement",  # float in [0, 1]: share of annotators that agree with the majority preference
    "improved_response",  # str | None
)
REQUIRED_ANNOTATION_COLUMNS: Final = ("id", "n_annotators", "human_ratings", "human_preference")  # what Export needs


@dataclass(frozen=True)
class HumanFeedback:
    """Where an export's human preferences come from, for its card: people's labels in the app's judge-check panel
    (``panel_rows`` rows by ``panel_people`` people) and annotators' answers pulled from Argilla (``argilla_rows``
    rows by ``argilla_annotators`` annotators). ``set_aside``: panel labels not used because the answers they were
    given for changed (a new run)."""

    panel_rows: int = 0
    panel_people: int = 0
    argilla_rows: int = 0
    argilla_annotators: int = 0
    set_aside: int = 0

    @property
    def any(self) -> bool:
        return bool(self.panel_rows or self.argilla_rows)

    def describe(self) -> str:
        """One sentence naming each source, e.g. "11 rows labelled by 1 person in DPO Studio's judge-check panel"."""
        parts = []
        if self.argilla_rows:
            who = f"{self.argilla_annotators} annotator{'s' if self.argilla_annotators != 1 else ''}"
            parts.append(
                f"{self.argilla_rows} rows answered in Argilla by {who if self.argilla_annotators else 'annotators'}"
            )
        if self.panel_rows:
            who = f"{self.panel_people} person" if self.panel_people == 1 else f"{self.panel_people} people"
            parts.append(f"{self.panel_rows} rows labelled by {who} in DPO Studio's judge-check panel")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HumanFeedback:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class JudgeStats:
    """What a run's judge did, counted over raw rows (``pipeline.judge.report.judge_stats``), for cards and the app.

    ``judged`` rows got an answer from the judge (``ok`` or ``judge_unparseable``; failed calls are not counted);
    ``structured`` of them used structured output in every call, ``text`` the text format (fell back, or asked);
    ``both_orders`` were judged in both orders and parsed, ``flips`` of them changed preference with the order."""

    mode: str = "ratings"  # "ratings" | "pairwise" | "mixed"
    order: str = "random"  # "random" | "both" | "fixed" (older runs: human first) | "mixed"
    judged: int = 0
    parsed: int = 0
    structured: int = 0
    text: int = 0
    both_orders: int = 0
    flips: int = 0

    @property
    def parse_rate(self) -> float | None:
        return self.parsed / self.judged if self.judged else None

    @property
    def flip_rate(self) -> float | None:
        return self.flips / self.both_orders if self.both_orders else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "parse_rate": self.parse_rate, "flip_rate": self.flip_rate}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeStats:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class JudgeScore:
    """One candidate judge's figures in a judge check (``pipeline.judge.check``); a rate is ``None`` when nothing
    was counted for it. ``agreement``/``kappa`` compare the judge's preferred answer with the people's (a tie is a
    label like the others); ``flip_rate`` is over rows whose verdict parsed in both orders."""

    model: str
    backend: str  # "serverless" | "endpoint" | "openai"
    base_url: str = ""  # public URL (no credentials); "" for serverless
    provider: str = ""
    rows: int = 0  # rows judged (each in both orders)
    parsed: int = 0  # rows whose verdict parsed
    flips: int = 0  # parsed rows whose preferred answer changed when the order was reversed
    flip_rows: int = 0  # parsed rows judged in both orders (the flip rate's denominator)
    compared: int = 0  # rows where both the judge and the people have a preference
    agree: int = 0  # of which: the judge picks the people's answer
    kappa: float | None = None  # Cohen's kappa of judge versus people over ``compared`` rows
    mean_latency_s: float | None = None  # per row (both orders)
    tokens_per_row: float | None = None  # prompt + completion, both orders
    structured: bool | None = None  # every call used structured output (False: fell back to text)
    error: str = ""  # why this judge's check stopped early ("" when it ran every row)

    @property
    def parse_rate(self) -> float | None:
        return self.parsed / self.rows if self.rows else None

    @property
    def flip_rate(self) -> float | None:
        return self.flips / self.flip_rows if self.flip_rows else None

    @property
    def agreement(self) -> float | None:
        return self.agree / self.compared if self.compared else None


@dataclass(frozen=True)
class JudgeCheck:
    """A judge check's result: up to 3 candidate judges against people's preferences on the same rows. Carried in
    the run's metadata so the cards can state the agreement figures."""

    rows: int  # rows with a people's preference
    source: str  # "labels" (people labelling in the app) | "annotations" (an Argilla pull)
    language: str  # ISO 639-3 code of the rows
    mode: str  # judge mode: "ratings" | "pairwise"
    aspect: str
    judges: tuple[JudgeScore, ...] = ()
    chosen: str = ""  # the judge model picked with "Use this judge" ("" if none yet)

    def score_of(self, model: str) -> JudgeScore | None:
        return next((j for j in self.judges if j.model == model), None)

    def to_dict(self) -> dict:
        """JSON-able, with the rates (for cards, ``dpo_studio.json`` and the CLI's ``--output``)."""
        out = asdict(self)
        out["judges"] = [
            {**asdict(j), "parse_rate": j.parse_rate, "flip_rate": j.flip_rate, "agreement": j.agreement}
            for j in self.judges
        ]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> JudgeCheck:
        """The inverse of :meth:`to_dict` (derived rates and unknown keys are ignored)."""
        names = {f.name for f in fields(JudgeScore)}
        judges = tuple(JudgeScore(**{k: v for k, v in j.items() if k in names}) for j in data.get("judges") or ())
        top = {f.name for f in fields(cls)} - {"judges"}
        return cls(**{k: v for k, v in data.items() if k in top}, judges=judges)


# --- Arrow schemas: every table's types, declared once ----------------------------------------------------------
FILTERED_SCHEMA: Final = pa.schema([(name, pa.string()) for name in FILTERED_COLUMNS])
"""The filtered set (``FILTERED_COLUMNS``): every column a string, ``""`` where the source has no value."""

# Columns an Argilla pull adds to ANNOTATION_COLUMNS (Export reads them when present).
EXTRA_ANNOTATION_COLUMNS: Final = (
    "judge_ratings",  # list[float | None], aligned with the raw row's responses
    "judge_preference",  # int | None; index into responses, -1 = tie
    "n_discarded",  # annotators who discarded the record
)

ANNOTATION_SCHEMA: Final = pa.schema(
    [
        ("id", pa.string()),
        ("n_annotators", pa.int64()),
        ("human_ratings", pa.list_(pa.float64())),
        ("human_preference", pa.int64()),
        ("agreement", pa.float64()),
        ("improved_response", pa.string()),
        ("judge_ratings", pa.list_(pa.float64())),
        ("judge_preference", pa.int64()),
        ("n_discarded", pa.int64()),
    ]
)
"""Annotations (``ANNOTATION_COLUMNS`` + ``EXTRA_ANNOTATION_COLUMNS``, in that order)."""

LABEL_SCHEMA: Final = pa.schema(
    [
        ("id", pa.string()),
        ("prompt", pa.string()),
        ("shown", pa.list_(pa.int64())),  # indices into the raw row's responses, in the order shown
        ("answers", pa.list_(pa.string())),
        ("choice", pa.string()),
        ("language", pa.string()),
        ("n_responses", pa.int64()),
    ]
)
"""People's labels from the judge check (``pipeline.judge.check``), one row per label."""
LABEL_COLUMNS: Final = tuple(LABEL_SCHEMA.names)

MESSAGE_TYPE: Final = pa.struct([("role", pa.string()), ("content", pa.string())])
"""One chat message (``{"role": ..., "content": ...}``), as TRL's conversational datasets hold them."""

EXPORT_EXTRA_SCHEMA: Final = pa.schema(
    [
        ("id", pa.string()),  # the raw row's id (``-<chosen>-<rejected>`` appended when a row gives several pairs)
        ("chosen_rating", pa.float64()),
        ("rejected_rating", pa.float64()),
        ("margin", pa.float64()),
        ("tie", pa.bool_()),
        ("preference_source", pa.string()),  # "human" | "judge"
        ("n_annotators", pa.int64()),
        ("agreement", pa.float64()),
        ("chosen_model", pa.string()),
        ("rejected_model", pa.string()),
        ("chosen_language", pa.string()),
        ("rejected_language", pa.string()),
        ("target_language", pa.string()),
    ]
)
"""The columns an export writes after ``prompt``/``chosen``/``rejected`` (TRL ignores them)."""


def annotations_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Annotation rows (mappings) as an Arrow table with :data:`ANNOTATION_SCHEMA` (missing columns are null).

    >>> annotations_table([{"id": "a", "n_annotators": 2, "human_preference": 1}]).column("n_annotators").to_pylist()
    [2]
    """
    data = [{c: r.get(c) for c in ANNOTATION_SCHEMA.names} for r in rows]
    return pa.Table.from_pylist(data, schema=ANNOTATION_SCHEMA)


def _export_schema(prompt: pa.DataType, completion: pa.DataType) -> pa.Schema:
    main = [("prompt", prompt), ("chosen", completion), ("rejected", completion)]
    return pa.schema([*main, *EXPORT_EXTRA_SCHEMA])


EXPORT_SCHEMAS: Final[Mapping[str, pa.Schema]] = MappingProxyType(
    {
        # {"prompt": str, "chosen": str, "rejected": str}
        "standard": _export_schema(pa.string(), pa.string()),
        # {"prompt": [system?, user], "chosen": [assistant], "rejected": [assistant]}
        "conversational": _export_schema(pa.list_(MESSAGE_TYPE), pa.list_(MESSAGE_TYPE)),
        # {"prompt": str, "chosen": [system?, user, assistant], "rejected": [system?, user, assistant]}
        "recipe": _export_schema(pa.string(), pa.list_(MESSAGE_TYPE)),
    }
)
"""The export table of each format (``pipeline.export.formats.FORMATS``): prompt, chosen, rejected, then the extras."""


# --- Provenance and the run's metadata ------------------------------------------------------------------------
DEMO_LABEL: Final = "DPO Studio demo data (bundled, self-written; not Aya)"
PROVENANCE_KEY: Final = b"dpo_studio.provenance"  # Arrow schema metadata key: Provenance.to_json()
RUN_META_KEY: Final = b"dpo_studio.run"  # Arrow schema metadata key: RunMeta.to_json() (raw results)


class MetaError(ValueError):
    """Metadata that cannot be read (not a JSON object, or a field of the wrong kind); the message says which."""


def _first(data: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    """The value of the first of ``keys`` that ``data`` has and is not None/"" (old files used other names)."""
    for key in keys:
        value = data.get(key)
        if value is not None and value != "":
            return value
    return default


def _encode(value: Any) -> Any:
    """JSON-able form of a field value: nested dataclasses via their ``to_dict``, tuples as lists."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(hint: Any, value: Any, where: str) -> Any:
    """``value`` (from JSON) as the field type ``hint``: dataclasses via ``from_dict``, lists as tuples, numbers
    checked. Raises :class:`MetaError` naming ``where`` for a value of the wrong kind."""
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        if value is None:
            return None
        args = [a for a in get_args(hint) if a is not type(None)]
        return _decode(args[0], value, where) if len(args) == 1 else value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise MetaError(f"{where} must be a list (got {type(value).__name__}).")
        item = get_args(hint)[0]
        return tuple(_decode(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict) or hint in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise MetaError(f"{where} must be an object (got {type(value).__name__}).")
        return dict(value)
    if isinstance(hint, type) and hasattr(hint, "from_dict"):
        if not isinstance(value, Mapping):
            raise MetaError(f"{where} must be an object (got {type(value).__name__}).")
        return hint.from_dict(value)
    if hint is bool:
        return bool(value)
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise MetaError(f"{where} must be a number (got {value!r}).") from None
        return int(value) if hint is int else float(value)
    if hint is str:
        return "" if value is None else str(value)
    return value


def _from_mapping(cls: type, data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Constructor arguments of dataclass ``cls`` from the known keys of ``data`` (unknown keys left out)."""
    hints = get_type_hints(cls)
    out = {}
    for f in fields(cls):
        if f.name in data and f.name != "unknown":
            out[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
    return out


@dataclass(frozen=True)
class Provenance:
    """Where a table's rows come from: the source dataset and the Filter step's choices.

    Travels with every file of the steps in the Arrow schema metadata (:data:`PROVENANCE_KEY`, see
    :func:`with_provenance`), so a filtered set, its raw results and its export all name the real source.
    ``dataset`` is ``""`` when the source is not known (a file made outside DPO Studio); cards then say so
    instead of guessing.
    """

    dataset: str = ""  # Hub id of the source dataset ("" = unknown; see demo)
    config: str = ""  # the dataset's configuration (subset), "" for the default
    split: str = ""
    revision: str = ""
    license: str = ""  # the source's licence (Hub card tag), "" if unknown
    demo: bool = False  # the bundled demo data (not a Hub dataset)
    columns: Mapping[str, str] = field(default_factory=dict)  # role -> source column: prompt, response, language
    filters: Mapping[str, Any] = field(default_factory=dict)  # pipeline.filter.filtered.FilterSpec's fields, as given
    filter_notes: tuple[str, ...] = ()  # the filters in words (pipeline.filter.filtered.FilterSpec.describe())
    language: str = ""  # e.g. "Dutch"
    language_code: str = ""  # ISO 639-3, e.g. "nld"
    rows: int | None = None  # rows of the filtered set
    file: str = ""  # the local file's name (never its folder) when the rows were read from one

    def __post_init__(self) -> None:
        # stored as JSON gives it back: tuples become lists, so a provenance equals itself after a round trip
        object.__setattr__(self, "filters", json.loads(json.dumps(dict(self.filters), default=list)))
        columns = {str(k): "" if v is None else str(v) for k, v in dict(self.columns).items()}
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "filter_notes", tuple(str(n) for n in self.filter_notes))

    @property
    def known(self) -> bool:
        """Whether the source is known (a Hub dataset id, or the demo data)."""
        return bool(self.dataset) or self.demo

    @property
    def label(self) -> str:
        """The source in words: the demo data's label, ``owner/name (config), split 'train'``, or "unknown"."""
        if self.demo:
            return DEMO_LABEL
        if not self.dataset:
            return "an unknown source" + (f" (file {self.file})" if self.file else "")
        cfg = f" ({self.config})" if self.config else ""
        return f"{self.dataset}{cfg}" + (f", split '{self.split}'" if self.split else "")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _encode(getattr(self, f.name)) for f in fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        """From :meth:`to_dict`'s output, or an older ``source`` object (``dataset_id``/``id``/``source_dataset``
        for ``dataset``, ``is_demo`` for ``demo``, ``source_license`` for ``license``). Unknown keys are ignored."""
        data = dict(data)
        data["dataset"] = _first(data, "dataset", "dataset_id", "source_dataset", "id", default="")
        data["demo"] = bool(_first(data, "demo", "is_demo", default=False))
        data["license"] = _first(data, "license", "source_license", default="")
        if isinstance(data["license"], list):
            data["license"] = ", ".join(str(x) for x in data["license"])
        data["language"] = _first(data, "language", "language_name", default="")
        data["config"] = data.get("config") or ""
        if data["demo"] and data["dataset"] == "dpo-studio/demo":
            data["dataset"] = ""  # the demo data's placeholder id is not a Hub dataset
        return cls(**_from_mapping(cls, data, "source"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Provenance:
        return cls.from_dict(_json_object(text, "provenance"))


@dataclass(frozen=True)
class ModelRef:
    """A model and where it ran (never a key; ``base_url`` without credentials)."""

    model: str = ""
    kind: str = ""  # "serverless" | "endpoint" | "openai"
    base_url: str = ""  # "" for serverless
    provider: str = "auto"  # serverless provider

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "base_url": self.base_url, "provider": self.provider}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelRef:
        return cls(**_from_mapping(cls, {**data, "provider": data.get("provider") or "auto"}, "model"))


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters of a model's calls (``None``: the server's default)."""

    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sampling:
        return cls(**_from_mapping(cls, data, "sampling"))


@dataclass(frozen=True)
class RunMeta:
    """What a Pipeline run was (models, prompts, sampling, source, language) and what it gave (rows, counts): the
    raw dataset's ``dpo_studio.json``, its card, its ``pipeline.py`` and the export's card all read it.

    To add a field: declare it here with a default (older files lack it) and a JSON-able type: ``str``, ``int``,
    ``float``, ``bool``, ``X | None``, ``tuple[X, ...]``, ``Mapping[str, X]``, or a dataclass with ``to_dict`` and
    ``from_dict`` (e.g. :class:`JudgeCheck`). :meth:`to_dict`/:meth:`from_dict` handle it from its type; nothing
    else changes. Keys this version does not know (a newer writer's) are kept in ``unknown`` and written back as
    they were, so reading and rewriting a file never loses them; code must not read ``unknown``.
    """

    source: Provenance = field(default_factory=Provenance)
    language: str = ""  # e.g. "Dutch"
    language_code: str = ""  # ISO 639-3 of the rows, e.g. "nld"
    generators: tuple[ModelRef, ...] = ()
    judge: ModelRef = field(default_factory=ModelRef)
    system_prompt: str = ""
    aspect: str = ""  # the judge's UltraFeedback aspect
    generation: Sampling = field(default_factory=Sampling)
    judge_generation: Sampling = field(default_factory=Sampling)
    concurrency: int | None = None
    max_rows: int | None = None
    max_tokens: int | None = None  # the run's token budget
    fingerprint: str = ""  # RunSettings.fingerprint(): what decides the rows' content
    rows: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)  # rows per schema.STATUSES value
    checkpoint: bool = False  # a checkpoint of a run in progress (not its final push)
    run_state: str = ""  # the run's last state when its results were taken (app)
    hedged_calls: int = 0  # backup requests sent for slow calls
    judge_mode: str = ""  # "ratings" | "pairwise" ("": ratings, an older run)
    judge_order: str = ""  # "random" | "both" ("": an older run, human answer shown first)
    judge_structured: bool | None = None  # the run asked the judge for structured output (None: older run)
    judge_stats: JudgeStats | None = None  # what the judge did, counted over the raw rows (judge.report.judge_stats)
    judge_check: JudgeCheck | None = None  # the judge check run before this run, if any (pipeline.judge.check)
    human_feedback: HumanFeedback | None = None  # where the export's human preferences come from (Export)
    raw_dataset: str = ""  # the Hub id the raw results were loaded from (Export)
    created_with: str = "DPO Studio"
    created_at: str = ""  # YYYY-MM-DD (UTC)
    unknown: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def models(self) -> list[str]:
        """The generator model ids, in order."""
        return [g.model for g in self.generators if g.model]

    @property
    def judge_model(self) -> str:
        return self.judge.model

    @property
    def language_name(self) -> str:
        """The language's name (the run's, else the source's)."""
        return self.language or self.source.language

    def replace(self, **changes: Any) -> RunMeta:
        """A copy with ``changes`` (field names); the copy keeps ``unknown``."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: every field by name (nested ones as objects), then the ``unknown`` keys as they were."""
        out = {f.name: _encode(getattr(self, f.name)) for f in fields(self) if f.name != "unknown"}
        return {**out, **{k: v for k, v in self.unknown.items() if k not in out}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunMeta:
        """From :meth:`to_dict`'s output or an older file's shape, which this accepts (and only this):

        - ``settings: {generators, judge, system_prompt, aspect, generation, judge_generation, concurrency,
          max_rows, max_tokens}`` (``RunSettings.describe()``) for the fields of the same names;
        - ``models``/``generator_models`` (ids) for ``generators``, ``judge_model`` for ``judge``;
        - ``source`` as a string (the dataset id), ``source_dataset``, ``license``/``source_license`` for the
          source's fields; ``language_name`` for ``language``.

        Raises :class:`MetaError` for a field of the wrong kind.
        """
        if not isinstance(data, Mapping):
            raise MetaError(f"The run's metadata must be a JSON object (got {type(data).__name__}).")
        data = dict(data)
        consumed = set(data)
        given = data.get("settings")
        settings: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        for key in (
            "generators",
            "judge",
            "system_prompt",
            "aspect",
            "generation",
            "judge_generation",
            "concurrency",
            "max_rows",
            "max_tokens",
            "judge_mode",
            "judge_order",
            "judge_structured",
        ):
            if data.get(key) is None and settings.get(key) is not None:
                data[key] = settings[key]
        if not data.get("generators"):
            ids = _first(data, "generator_models", "models", default=[])
            data["generators"] = [{"model": m} for m in ([ids] if isinstance(ids, str) else ids) if m]
        if not isinstance(data.get("judge"), Mapping):
            data["judge"] = {"model": _first(data, "judge_model", default="")}
        source = data.get("source")
        source = dict(source) if isinstance(source, Mapping) else {"dataset": source or ""}
        for key, names in (("dataset", ("source_dataset",)), ("license", ("license", "source_license"))):
            if not source.get(key) and _first(data, *names):
                source[key] = _first(data, *names)
        data["source"] = source
        data["language"] = _first(data, "language", "language_name", default="")
        if "language_code" not in data:
            data["language_code"] = source.get("language_code") or ""
        aliases = {
            "settings",
            "models",
            "generator_models",
            "judge_model",
            "source_dataset",
            "license",
            "source_license",
            "language_name",
        }
        known = {f.name for f in fields(cls)}
        unknown = {k: data[k] for k in consumed if k not in known and k not in aliases}
        return cls(**_from_mapping(cls, data, "run"), unknown=unknown)

    @classmethod
    def from_json(cls, text: str | bytes) -> RunMeta:
        """From a JSON text (e.g. a raw dataset's ``dpo_studio.json``); :class:`MetaError` if it is not one."""
        return cls.from_dict(_json_object(text, "The run's metadata"))


def _json_object(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise MetaError(f"{what} is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise MetaError(f"{what} must be a JSON object (got {type(data).__name__}).")
    return data


def with_provenance(table: pa.Table, provenance: Provenance | None, run_meta: RunMeta | None = None) -> pa.Table:
    """``table`` (the same columns, no copy) with ``provenance`` (and the run's metadata) in its Arrow schema
    metadata under :data:`PROVENANCE_KEY` (and :data:`RUN_META_KEY`); other metadata keys are kept.

    >>> import pyarrow as pa
    >>> t = with_provenance(pa.table({"prompt": ["Hoi"]}), Provenance(dataset="me/prompts", language_code="nld"))
    >>> provenance_of(t).dataset, provenance_of(t).language_code
    ('me/prompts', 'nld')
    """
    metadata = dict(table.schema.metadata or {})
    if provenance is not None:
        metadata[PROVENANCE_KEY] = provenance.to_json().encode("utf-8")
    if run_meta is not None:
        metadata[RUN_META_KEY] = json.dumps(run_meta.to_dict(), ensure_ascii=False).encode("utf-8")
    return table.replace_schema_metadata(metadata)


def provenance_of(table: pa.Table | pa.Schema) -> Provenance | None:
    """The provenance stored by :func:`with_provenance`, else the run metadata's source, else ``None``."""
    metadata = (table.schema if isinstance(table, pa.Table) else table).metadata or {}
    if PROVENANCE_KEY in metadata:
        try:
            return Provenance.from_json(metadata[PROVENANCE_KEY])
        except MetaError:
            return None
    meta = run_meta_of(table)
    return meta.source if meta is not None and meta.source.known else None


def run_meta_of(table: pa.Table | pa.Schema) -> RunMeta | None:
    """The run metadata stored by :func:`with_provenance`, or ``None``."""
    metadata = (table.schema if isinstance(table, pa.Table) else table).metadata or {}
    if RUN_META_KEY not in metadata:
        return None
    try:
        return RunMeta.from_json(metadata[RUN_META_KEY])
    except MetaError:
        return None


def row_id(prompt: str, response: str) -> str:
    """A stable id for a (prompt, human response) pair: the same text always gets the same id.

    Used for resuming runs, de-duplicating Argilla records and joining annotations back to raw rows.
    """
    digest = hashlib.sha256()
    digest.update(prompt.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(response.encode("utf-8"))
    return digest.hexdigest()[:16]


def raw_schema() -> pa.Schema:
    """The Arrow schema of the raw results table (``RAW_COLUMNS``, in order)."""
    s, i, f, b = pa.string(), pa.int64(), pa.float64(), pa.bool_()
    types = {
        "id": s,
        "prompt": s,
        "system_prompt": s,
        "target_language": s,
        "responses": pa.list_(s),
        "response_sources": pa.list_(s),
        "ratings": pa.list_(f),
        "rationales": pa.list_(s),
        "detected_languages": pa.list_(s),
        "language_confidences": pa.list_(f),
        "language_match": pa.list_(b),
        "judge_model": s,
        "aspect": s,
        "status": s,
        "error": s,
        "judge_mode": s,
        "judge_orders": pa.list_(pa.list_(i)),
        "judge_inconsistent": b,
        "judge_structured": b,
        "judge_winners": pa.list_(s),
    }
    return pa.schema([(name, types[name]) for name in RAW_COLUMNS])


_RAW_KEYS: Final = frozenset(RAW_COLUMNS)


def raw_row(**values: Any) -> dict[str, Any]:
    """One raw results row (``RAW_COLUMNS``, in order) from keyword values, exactly those keys.

    A misspelled or missing key raises ``TypeError`` naming it, where ``pa.Table.from_pylist(schema=...)`` would
    silently write a null. Values are not converted (the Arrow schema, :func:`raw_schema`, types them on write)."""
    unknown = [k for k in values if k not in _RAW_KEYS]
    missing = [k for k in RAW_COLUMNS if k not in values]
    if unknown or missing:
        problems = ([f"unknown key(s) {', '.join(unknown)}"] if unknown else []) + (
            [f"missing key(s) {', '.join(missing)}"] if missing else []
        )
        raise TypeError(f"Not a raw row: {'; '.join(problems)} (the columns are schema.RAW_COLUMNS).")
    return {k: values[k] for k in RAW_COLUMNS}


def conform_raw(table: pa.Table) -> pa.Table:
    """``table`` with every column of :func:`raw_schema`, in order and type: columns an older raw file lacks
    (``JUDGE_COLUMNS``) are added as nulls, integer ratings become floats, extra columns are kept at the end.
    Raises ``ValueError`` naming the missing columns when a column other than ``JUDGE_COLUMNS`` is absent."""
    target = raw_schema()
    missing = [c for c in RAW_COLUMNS if c not in table.column_names and c not in JUDGE_COLUMNS]
    if missing:
        raise ValueError(f"Not a raw results table: missing column(s) {', '.join(missing)}.")
    columns, names = [], []
    for fld in target:
        if fld.name in table.column_names:
            col = table.column(fld.name)
            columns.append(col if col.type == fld.type else col.cast(fld.type))
        else:
            columns.append(pa.nulls(table.num_rows, fld.type))
        names.append(fld.name)
    for name in table.column_names:
        if name not in target.names:
            columns.append(table.column(name))
            names.append(name)
    return pa.Table.from_arrays(columns, names=names)


# --- hand-offs between steps --------------------------------------------------------------------------------


@dataclass
class ModelChoice:
    """What the Playground hands to the Pipeline tab ("Use in pipeline")."""

    model: str
    backend: str  # "serverless" | "endpoint" | "openai"
    base_url: str = ""  # endpoint or OpenAI-compatible base URL ("" for serverless)
    provider: str = "auto"  # serverless provider
    system_prompt: str = ""

    def stamp(self) -> tuple[str, str, str, str, str]:
        """The values that identify this choice (the Pipeline tab prefills once per stamp)."""
        return (self.model, self.backend, self.base_url, self.provider, self.system_prompt)
