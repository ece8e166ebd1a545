"""Export, step 1: the selection rules. Which raw rows become preference pairs, and why the others do not.

This module declares the rules and their contracts; :func:`pipeline.export.pairs.select_pairs` applies the
:class:`ExportRules` row by row to the raw results (``schema.RAW_COLUMNS``) joined
with the annotations (``schema.ANNOTATION_COLUMNS``) and returns a :class:`Selection`: :class:`PreferencePair`
records (format-independent) plus the number of rows each rule dropped. Every input row is either kept (it gives
one pair, or several with ``pairing="all_pairs"``) or dropped by exactly one rule: the first one it fails, in the
order of :data:`DROP_RULES`, counted under that rule (:func:`counts_table` puts the counts in words).

Pure: no network, no files, no Gradio. Bad input raises :class:`ExportError` with a message that says what to do.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa

from pipeline.core import schema
from pipeline.judge import agreement as agreement_mod

# --- Options -------------------------------------------------------------------------------------------------
SOURCE_HUMAN_THEN_JUDGE: Final = "human_then_judge"


SOURCE_JUDGE: Final = "judge"


SOURCE_HUMAN: Final = "human"


PREFERENCE_SOURCES: Final = (SOURCE_HUMAN_THEN_JUDGE, SOURCE_JUDGE, SOURCE_HUMAN)


PREFERENCE_SOURCE_LABELS: Final = {
    SOURCE_HUMAN_THEN_JUDGE: "Human answers first, the judge where nobody answered",
    SOURCE_JUDGE: "The LLM judge only",
    SOURCE_HUMAN: "Human answers only",
}


PAIRING_BEST_WORST: Final = "best_worst"


PAIRING_ALL: Final = "all_pairs"


PAIRINGS: Final = (PAIRING_BEST_WORST, PAIRING_ALL)


PAIRING_LABELS: Final = {
    PAIRING_BEST_WORST: "One pair per prompt: the best response against the worst",
    PAIRING_ALL: "Every pair whose rating margin reaches the minimum",
}


IMPROVED_SOURCE: Final = "annotator-improved"  # chosen_model of a pair whose chosen text an annotator rewrote


# --- Rules and counters --------------------------------------------------------------------------------------
# Rules that drop rows, in the order they are applied; each input row is counted under the first it fails.
DROP_RULES: Final = (
    "duplicate_id",
    "other_language",
    "generation_failed",
    "discarded",
    "no_human_answer",
    "judge_failed",
    "inconsistent",
    "empty_prompt",
    "too_few_responses",
    "tie",
    "margin",
    "chosen_rating",
    "language_mismatch",
    "identical",
    "duplicate_prompt",
)


RULE_LABELS: Final = {
    "duplicate_id": "Duplicate id (the first row with an id is kept)",
    "other_language": "Target language other than the exported one",
    "generation_failed": "Generation failed",
    "discarded": "Discarded by annotators (more discarded it than answered)",
    "no_human_answer": "No human answer (preference source: human only)",
    "judge_failed": "Judge failed or its reply could not be parsed (and no human answer)",
    "inconsistent": "Judge inconsistent: its preference flipped when the answers swapped places (both orders)",
    "empty_prompt": "Empty prompt",
    "too_few_responses": "Fewer than two non-empty, rated responses",
    "tie": "Tie (equal ratings, or annotators said tie)",
    "margin": "Rating margin below the minimum",
    "chosen_rating": "Chosen response rated below the minimum",
    "language_mismatch": "Chosen response not in the target language",
    "identical": "Chosen and rejected texts are identical",
    "duplicate_prompt": "Duplicate prompt (the best-supported row is kept)",
}


# Counters that drop nothing but are worth showing.
INFO_COUNTERS: Final = {
    "input": "Input rows",
    "kept": "Rows kept",
    "pairs": "Pairs exported",
    "from_human": "Pairs whose preference comes from annotators",
    "from_judge": "Pairs whose preference comes from the judge",
    "language_unchecked": "Pairs kept whose chosen language could not be checked (unsupported by the detector, "
    "or an annotator's rewrite)",
    "ties_kept": "Ties kept",
    "improved_used": "Pairs with an annotator's improved response as chosen",
    "annotations_unmatched": "Annotation rows whose id is not in the raw results (ignored)",
    "annotations_duplicate": "Duplicate annotation ids (the row with the most annotators is used)",
}

_EPS: Final = 1e-9


class ExportError(ValueError):
    """Bad input or options for the export; the message says what to do."""


@dataclass(frozen=True)
class ExportRules:
    """How pairs are chosen and which rows are kept. Every field has a default; each rule's drops are counted.

    Attributes:
        preference_source: ``"human_then_judge"`` (annotators where their answers make a pair: a vote, or
            ratings of two responses; the judge elsewhere),
            ``"judge"`` (ignore annotations) or ``"human"`` (only rows annotators answered).
        pairing: ``"best_worst"`` (one pair per prompt: best against worst) or ``"all_pairs"`` (every pair of
            responses whose margin reaches ``min_margin``; only differs from best/worst with 3+ responses).
        use_improved_response: use an annotator's improved response as chosen, over the response it improves
            (the preferred one). The pair has no ratings; its language is not checked.
        min_margin: minimum rating difference between chosen and rejected; ``0`` = any difference. Applies where
            both responses have a rating (a human preference given without ratings is kept).
        keep_ties: keep pairs whose responses are rated equal (or that annotators called a tie). Chosen is then
            the earlier response (the human one first). Chosen and rejected texts must still differ.
        drop_language_mismatch: drop pairs whose chosen response was detected in another language than the
            target. Responses in a language the detector does not know (``language_match`` None) are kept and
            counted as ``language_unchecked``.
        min_chosen_rating: optional minimum rating of the chosen response (the preference source's rating, the
            judge's where annotators gave none); ``None`` = no minimum.
        dedupe_prompts: keep one row per prompt (whitespace-normalised): the one with a human preference, then the
            larger margin, then the first.
        drop_discarded: drop rows that more annotators discarded in Argilla than answered (the annotations'
            optional ``n_discarded`` column). Not applied with ``preference_source="judge"``.
        drop_inconsistent: drop rows whose judge preference flipped between the two orders (``judge_inconsistent``
            in the raw data; only rows judged in both orders can be inconsistent, so this is a no-op otherwise).
            Applies where the judge decides, not where annotators' answers do.

    A pairwise judge's rows (``judge_mode == "pairwise"``) become pairs of the human answer against each model
    answer it was compared with (never two model answers), under the same rules: ties, margin, language,
    inconsistent. A comparison's points are the model's ``ratings[i]`` and ``6 - ratings[i]`` for the human answer
    (every verdict hands out 6 points: 5 + 1, or 3 + 3 for a tie; see ``pipeline.judge``).
    """

    preference_source: str = SOURCE_HUMAN_THEN_JUDGE
    pairing: str = PAIRING_BEST_WORST
    use_improved_response: bool = False
    min_margin: float = 0.0
    keep_ties: bool = False
    drop_language_mismatch: bool = True
    min_chosen_rating: float | None = None
    dedupe_prompts: bool = True
    drop_discarded: bool = True
    drop_inconsistent: bool = True

    def __post_init__(self) -> None:
        if self.preference_source not in PREFERENCE_SOURCES:
            raise ExportError(
                f"Unknown preference source {self.preference_source!r}; use one of {', '.join(PREFERENCE_SOURCES)}."
            )
        if self.pairing not in PAIRINGS:
            raise ExportError(f"Unknown pairing {self.pairing!r}; use one of {', '.join(PAIRINGS)}.")
        if self.min_margin is None or not math.isfinite(float(self.min_margin)) or self.min_margin < 0:
            raise ExportError(f"The minimum margin must be a number ≥ 0 (got {self.min_margin!r}).")
        if self.min_chosen_rating is not None and not (1 <= float(self.min_chosen_rating) <= 5):
            raise ExportError(f"The minimum chosen rating must be between 1 and 5 (got {self.min_chosen_rating!r}).")

    def describe(self) -> list[tuple[str, str]]:
        """The rules in words, as (rule, setting) rows for the UI and the card."""
        return [
            ("Preference source", PREFERENCE_SOURCE_LABELS[self.preference_source]),
            ("Pairs", PAIRING_LABELS[self.pairing]),
            (
                "Improved responses",
                "used as chosen over the response they improve" if self.use_improved_response else "not used",
            ),
            ("Minimum rating margin", "any difference" if self.min_margin <= 0 else f"{self.min_margin:g}"),
            ("Ties", "kept" if self.keep_ties else "dropped"),
            ("Chosen response in another language", "dropped" if self.drop_language_mismatch else "kept"),
            (
                "Minimum rating of the chosen response",
                "none" if self.min_chosen_rating is None else f"{float(self.min_chosen_rating):g}",
            ),
            ("Duplicate prompts", "collapsed to one row" if self.dedupe_prompts else "kept"),
            ("Rows discarded by annotators", "dropped" if self.drop_discarded else "kept"),
            (
                "Judge verdicts that flip when the answers swap places (judged in both orders)",
                "dropped" if self.drop_inconsistent else "kept",
            ),
            ("Failed generations, failed or unparseable judge (without a human answer)", "dropped"),
        ]


@dataclass
class PreferencePair:
    """One exported preference: format-independent, before ``pipeline.export.formats.format_pair``."""

    id: str
    prompt: str
    chosen: str
    rejected: str
    source_id: str = ""  # the raw row's id (several pairs share it with pairing="all_pairs"); default: ``id``
    system_prompt: str = ""
    chosen_rating: float | None = None
    rejected_rating: float | None = None
    margin: float | None = None
    tie: bool = False
    preference_source: str = SOURCE_JUDGE  # "human" | "judge"
    n_annotators: int = 0
    agreement: float | None = None
    chosen_model: str = ""
    rejected_model: str = ""
    chosen_language: str | None = None
    rejected_language: str | None = None
    target_language: str = ""
    language_checked: bool = True

    def __post_init__(self) -> None:
        if not self.source_id:
            self.source_id = self.id


@dataclass
class Selection:
    """What :func:`select_pairs` returns: the pairs, per-rule counts and notes for the user."""

    pairs: list[PreferencePair]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    target_language: str = ""
    agreement: dict[str, Any] = field(default_factory=dict)
    judge: schema.JudgeStats | None = None  # what the judge did over the raw rows (judge.report.judge_stats)


# --- Input checks --------------------------------------------------------------------------------------------
def missing_columns(table: pa.Table | Sequence[str], required: Iterable[str]) -> list[str]:
    """The required column names absent from ``table`` (a table or a list of column names)."""
    names = set(table.column_names if isinstance(table, pa.Table) else table)
    return [c for c in required if c not in names]


def check_columns(table: pa.Table, required: Iterable[str], what: str) -> None:
    """Raise :class:`ExportError` naming the columns ``table`` lacks (``what`` says which input it is)."""
    missing = missing_columns(table, required)
    if missing:
        raise ExportError(
            f"The {what} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}. "
            f"It needs {', '.join(required)}: use the raw results of DPO Studio's Pipeline step "
            "(or the annotations pulled from Argilla)."
        )


def target_languages(raw: pa.Table) -> Counter:
    """How many rows each ``target_language`` has (``""`` for missing)."""
    if "target_language" not in raw.column_names:
        return Counter()
    return Counter((v or "") for v in raw.column("target_language").to_pylist())


# --- Small helpers -------------------------------------------------------------------------------------------
def _aligned(values: Any, n: int) -> list:
    """``values`` as a list of length ``n`` (missing → None), so misaligned inputs never raise."""
    out = list(values) if isinstance(values, (list, tuple)) else []
    return (out + [None] * n)[:n]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def _same_text(a: str, b: str) -> bool:
    return a.strip() == b.strip()


def normalize_prompt(prompt: str) -> str:
    """The key used to find duplicate prompts: whitespace collapsed, case kept."""
    return " ".join(prompt.split())


def _human_answered(ann: Mapping[str, Any] | None, n: int) -> bool:
    if not ann:
        return False
    if int(ann.get("n_annotators") or 0) <= 0:
        return False
    pref = ann.get("human_preference")
    ratings = [agreement_mod.as_number(r) for r in _aligned(ann.get("human_ratings"), n)]
    return (pref is not None and not (isinstance(pref, float) and math.isnan(pref))) or any(
        r is not None for r in ratings
    )


def _pref_index(ann: Mapping[str, Any]) -> int | None:
    pref = ann.get("human_preference")
    if pref is None:
        return None
    try:
        f = float(pref)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else int(f)


def no_rows_message(counts: Mapping[str, int]) -> str:
    """The message for an export where every row was dropped: which rule dropped how many, and what to try."""
    parts = [f"{RULE_LABELS[r].split(' (')[0].lower()}: {counts[r]}" for r in DROP_RULES if counts.get(r)]
    hints = []
    if counts.get("tie"):
        hints.append("keep ties")
    if counts.get("margin"):
        hints.append("lower the minimum margin")
    if counts.get("chosen_rating"):
        hints.append("lower or clear the minimum chosen rating")
    if counts.get("language_mismatch"):
        hints.append("keep responses in another language")
    if counts.get("no_human_answer"):
        hints.append("use the judge as fallback")
    if counts.get("judge_failed") or counts.get("generation_failed"):
        hints.append("rerun the failed rows in the Pipeline step")
    if counts.get("inconsistent"):
        hints.append(
            "judge with a stronger judge model (its verdicts flipped when the answers swapped: check judges first with "
            "the judge check), have people answer in Argilla, or keep inconsistent rows"
        )
    total = counts.get("input", 0)
    msg = f"Every row was dropped ({total} in the input). Dropped by rule — " + "; ".join(parts or ["none"]) + "."
    if hints:
        msg += " To keep more rows: " + ", ".join(hints) + "."
    return msg


def counts_table(counts: Mapping[str, int], all_rules: bool = True) -> list[tuple[str, int]]:
    """(label, count) rows: input, kept, pairs, then each drop rule (only those that dropped rows when
    ``all_rules`` is False), then the other counters that are non-zero."""
    rows = [(INFO_COUNTERS[k], counts.get(k, 0)) for k in ("input", "kept", "pairs")]
    rows += [(f"Dropped — {RULE_LABELS[r]}", counts.get(r, 0)) for r in DROP_RULES if all_rules or counts.get(r)]
    rows += [
        (INFO_COUNTERS[k], counts[k]) for k in INFO_COUNTERS if k not in ("input", "kept", "pairs") and counts.get(k)
    ]
    return rows


def split_annotation_columns(table: pa.Table) -> tuple[pa.Table, pa.Table | None]:
    """A raw table that also carries annotation columns (e.g. a merged dataset) → (raw, annotations or None)."""
    extra = [c for c in schema.ANNOTATION_COLUMNS if c != "id" and c in table.column_names]
    if not all(c in table.column_names for c in schema.REQUIRED_ANNOTATION_COLUMNS):
        return table, None
    ann = table.select(["id", *extra])
    return table.drop_columns(extra), ann
