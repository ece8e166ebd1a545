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
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import Final

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

RAW_COLUMNS: Final = (
    "id",
    "prompt",
    "system_prompt",
    "target_language",  # ISO 639-3 code of the filtered language
    "responses",  # list[str]; index 0 is the human response
    "response_sources",  # list[str]; "human" or the generator's model id
    "ratings",  # list[int | None]; UltraFeedback rating 1-5 per response
    "rationales",  # list[str | None]
    "detected_languages",  # list[str | None]; ISO 639-3, None where undetectable
    "language_confidences",  # list[float | None]
    "language_match",  # list[bool | None]; None = language unsupported by the detector
    "judge_model",
    "aspect",  # UltraFeedback aspect, e.g. "overall-rating"
    "status",  # one of STATUSES
    "error",  # human-readable reason, "" when status == ok
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


@dataclass(frozen=True)
class JudgeScore:
    """One candidate judge's figures in a judge check (``pipeline.judgecheck``); a rate is ``None`` when nothing
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
        "ratings": pa.list_(i),
        "rationales": pa.list_(s),
        "detected_languages": pa.list_(s),
        "language_confidences": pa.list_(f),
        "language_match": pa.list_(b),
        "judge_model": s,
        "aspect": s,
        "status": s,
        "error": s,
    }
    return pa.schema([(name, types[name]) for name in RAW_COLUMNS])
