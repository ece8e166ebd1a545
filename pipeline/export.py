"""Export: turn raw pipeline results (and, optionally, human annotations) into a DPO/ORPO preference dataset.

Pure data-format functions in the style of TRL's ``trl/data_utils.py``: no Gradio, no network. The Hub side
(pushing, the card file) goes through :mod:`pipeline.hub`.

The export runs in three steps:

1. :func:`select_pairs` applies the :class:`ExportRules` row by row to the raw results (``schema.RAW_COLUMNS``)
   joined with the annotations (``schema.ANNOTATION_COLUMNS``) and returns :class:`PreferencePair` records plus
   the number of rows each rule dropped. Every input row is either kept (it gives one pair, or several with
   ``pairing="all_pairs"``) or dropped by exactly one rule: the first one it fails, in the order of
   :data:`DROP_RULES`.
2. :func:`format_pair` writes a pair in one of :data:`FORMATS`, all taken as they are by TRL's ``DPOTrainer`` and
   ``ORPOTrainer``:

   - ``standard``: ``{"prompt": str, "chosen": str, "rejected": str}``
   - ``conversational``: ``{"prompt": [system?, user], "chosen": [assistant], "rejected": [assistant]}``
   - ``recipe`` (the data-is-better-together recipe's form): ``{"prompt": str, "chosen": [system?, user,
     assistant], "rejected": [system?, user, assistant]}``; TRL's ``maybe_extract_prompt`` turns it into the
     conversational form (it ignores a string prompt next to conversational completions).

   :func:`check_trl_example` checks one example against the exact structure TRL expects.
3. :func:`build_export` does both, adds the extra columns (:data:`EXTRA_COLUMNS`), splits train/test by prompt
   with a seed (:func:`split_pairs`) and returns an :class:`ExportResult` (tables, counts, notes, agreement).

:func:`export_frames` gives the numbers behind the tab's plots and :func:`card_metadata` / :func:`card_body` the
dataset card.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import pyarrow as pa

from pipeline import agreement as agreement_mod
from pipeline import schema, tablefiles

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

FORMAT_STANDARD: Final = "standard"
FORMAT_CONVERSATIONAL: Final = "conversational"
FORMAT_RECIPE: Final = "recipe"
FORMATS: Final = (FORMAT_STANDARD, FORMAT_CONVERSATIONAL, FORMAT_RECIPE)
FORMAT_LABELS: Final = {
    FORMAT_STANDARD: "Standard: prompt, chosen and rejected as plain text",
    FORMAT_CONVERSATIONAL: "Conversational: prompt as user (and system) messages, chosen/rejected as one assistant message",
    FORMAT_RECIPE: "Recipe: chosen/rejected as full user + assistant conversations, plus the prompt as text",
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

# Columns the export needs; a table without them is refused with a message naming them.
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
REQUIRED_ANNOTATION_COLUMNS: Final = ("id", "n_annotators", "human_ratings", "human_preference")

# Columns written next to prompt/chosen/rejected (TRL ignores them; they let readers filter and audit).
EXTRA_COLUMNS: Final = (
    "id",
    "chosen_rating",
    "rejected_rating",
    "margin",
    "tie",
    "preference_source",
    "n_annotators",
    "agreement",
    "chosen_model",
    "rejected_model",
    "chosen_language",
    "rejected_language",
    "target_language",
)

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
            ("Improved responses", "used as chosen over the response they improve" if self.use_improved_response
             else "not used"),
            ("Minimum rating margin", "any difference" if self.min_margin <= 0 else f"{self.min_margin:g}"),
            ("Ties", "kept" if self.keep_ties else "dropped"),
            ("Chosen response in another language", "dropped" if self.drop_language_mismatch else "kept"),
            ("Minimum rating of the chosen response",
             "none" if self.min_chosen_rating is None else f"{float(self.min_chosen_rating):g}"),
            ("Duplicate prompts", "collapsed to one row" if self.dedupe_prompts else "kept"),
            ("Rows discarded by annotators", "dropped" if self.drop_discarded else "kept"),
            ("Failed generations, failed or unparseable judge (without a human answer)", "dropped"),
        ]


@dataclass
class PreferencePair:
    """One exported preference: format-independent, before :func:`format_pair`."""

    id: str
    source_id: str  # the raw row's id (several pairs share it with pairing="all_pairs")
    prompt: str
    system_prompt: str
    chosen: str
    rejected: str
    chosen_rating: float | None
    rejected_rating: float | None
    margin: float | None
    tie: bool
    preference_source: str  # "human" | "judge"
    n_annotators: int
    agreement: float | None
    chosen_model: str
    rejected_model: str
    chosen_language: str | None
    rejected_language: str | None
    target_language: str
    language_checked: bool = True


@dataclass
class Selection:
    """What :func:`select_pairs` returns: the pairs, per-rule counts and notes for the user."""

    pairs: list[PreferencePair]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    target_language: str = ""
    agreement: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExportResult:
    """The finished export: one table per split, the counts behind it and what the card needs."""

    splits: dict[str, pa.Table]
    pairs: list[PreferencePair]
    counts: dict[str, int]
    rules: ExportRules
    format: str
    target_language: str
    notes: list[str] = field(default_factory=list)
    agreement: dict[str, Any] = field(default_factory=dict)
    test_size: float | int | None = None
    seed: int | None = None

    @property
    def table(self) -> pa.Table:
        """All rows, splits concatenated (train first)."""
        return pa.concat_tables(list(self.splits.values()))

    @property
    def num_rows(self) -> int:
        return sum(t.num_rows for t in self.splits.values())

    def dropped(self) -> dict[str, int]:
        """Rows dropped by each rule that dropped any, in rule order."""
        return {rule: self.counts[rule] for rule in DROP_RULES if self.counts.get(rule)}


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


# --- Row by row ----------------------------------------------------------------------------------------------
@dataclass
class _Candidate:
    chosen: int  # index into responses, or -1 for the annotator's improved response
    rejected: int
    chosen_score: float | None
    rejected_score: float | None
    tie: bool
    source: str  # "human" | "judge"


def _best_worst(cands: list[int], score: list[float | None]) -> tuple[int, int]:
    """Best (highest score, earliest on ties) and worst (lowest score, latest on ties) of scored candidates."""
    best = max(cands, key=lambda c: (score[c], -c))
    worst = min(cands, key=lambda c: (score[c], -c))
    return best, worst


def _pairs_from_scores(
    cands: list[int], score: list[float | None], rules: ExportRules, source: str
) -> list[_Candidate]:
    """Pairs from scores alone (judge ratings, or human ratings without a stated preference)."""
    if rules.pairing == PAIRING_BEST_WORST:
        best, worst = _best_worst(cands, score)
        if abs(score[best] - score[worst]) <= _EPS:  # all equal: a tie between the first and the last
            best, worst = cands[0], cands[-1]
            return [_Candidate(best, worst, score[best], score[worst], True, source)]
        return [_Candidate(best, worst, score[best], score[worst], False, source)]
    out = []
    for i in cands:
        for j in cands:
            if i == j:
                continue
            diff = score[i] - score[j]
            if diff > _EPS:
                out.append(_Candidate(i, j, score[i], score[j], False, source))
            elif abs(diff) <= _EPS and i < j:
                out.append(_Candidate(i, j, score[i], score[j], True, source))
    return out


def _human_candidates(
    cands: list[int], ann: Mapping[str, Any], judge: list[float | None], n: int, rules: ExportRules
) -> tuple[list[_Candidate], int | None, str | None]:
    """Pairs from annotators' answers. Returns (pairs, index of the humans' best response or None, reason)."""
    hr = [agreement_mod.as_number(r) for r in _aligned(ann.get("human_ratings"), n)]
    pref = _pref_index(ann)
    if pref == -1:  # annotators said tie
        rated = [c for c in cands if hr[c] is not None]
        if len(rated) >= 2:
            pairs = _pairs_from_scores(rated, hr, rules, SOURCE_HUMAN)
            # a stated tie wins over ratings that differ: every pair is a tie
            for p in pairs:
                p.tie = True
            if rules.pairing == PAIRING_ALL:  # a tie has no direction: one pair per couple, earlier first
                seen, uniq = set(), []
                for p in pairs:
                    key = frozenset((p.chosen, p.rejected))
                    if key not in seen:
                        seen.add(key)
                        a, b = sorted((p.chosen, p.rejected))
                        uniq.append(_Candidate(a, b, hr[a], hr[b], True, SOURCE_HUMAN))
                pairs = uniq
            return pairs, None, None
        if len(cands) >= 2:
            return [_Candidate(cands[0], cands[-1], hr[cands[0]], hr[cands[-1]], True, SOURCE_HUMAN)], None, None
        return [], None, "too_few_responses"
    if pref is not None and pref in cands:
        others = [c for c in cands if c != pref]
        if not others:
            return [], None, "too_few_responses"
        if rules.pairing == PAIRING_ALL:
            pairs = [_Candidate(pref, o, hr[pref], hr[o], False, SOURCE_HUMAN) for o in others]
            rated_others = [c for c in others if hr[c] is not None]
            if len(rated_others) >= 2:  # the other responses among themselves, by the annotators' ratings
                pairs += _pairs_from_scores(rated_others, hr, rules, SOURCE_HUMAN)
            return pairs, pref, None
        rated_others = [c for c in others if hr[c] is not None]
        if rated_others:
            rejected = min(rated_others, key=lambda c: (hr[c], -c))
        elif len(others) == 1:
            rejected = others[0]
        else:  # several others and no human rating among them: the judge picks the worst
            judged = [c for c in others if judge[c] is not None]
            if not judged:
                return [], pref, "too_few_responses"
            rejected = min(judged, key=lambda c: (judge[c], -c))
        return [_Candidate(pref, rejected, hr[pref], hr[rejected], False, SOURCE_HUMAN)], pref, None
    # no (usable) stated preference: the human ratings decide
    rated = [c for c in cands if hr[c] is not None]
    if len(rated) < 2:
        return [], None, "too_few_responses"
    pairs = _pairs_from_scores(rated, hr, rules, SOURCE_HUMAN)
    best, worst = _best_worst(rated, hr)
    best_idx = best if abs(hr[best] - hr[worst]) > _EPS else None
    return pairs, best_idx, None


def _row_pairs(
    row: Mapping[str, Any], ann: Mapping[str, Any] | None, rules: ExportRules
) -> tuple[list[PreferencePair], str | None]:
    """Apply the rules to one raw row (with its annotation, if any).

    Returns (pairs, None) for a kept row, or ([], the rule that dropped it). When several candidate pairs all
    fail, the row is counted under the latest rule any of them reached (the one closest to passing)."""
    if row.get("status") == schema.STATUS_GENERATION_FAILED:
        return [], "generation_failed"
    responses = list(row.get("responses") or [])
    n = len(responses)
    if ann and rules.drop_discarded and int(ann.get("n_discarded") or 0) > int(ann.get("n_annotators") or 0):
        return [], "discarded"
    human = _human_answered(ann, n) and rules.preference_source != SOURCE_JUDGE
    if rules.preference_source == SOURCE_HUMAN and not human:
        return [], "no_human_answer"
    judge = [agreement_mod.as_number(r) for r in _aligned(row.get("ratings"), n)]
    judge_broken = row.get("status") in (schema.STATUS_JUDGE_FAILED, schema.STATUS_JUDGE_UNPARSEABLE)
    if not human and judge_broken:
        return [], "judge_failed"
    prompt = _text(row.get("prompt"))
    if not prompt.strip():
        return [], "empty_prompt"
    cands = [i for i, r in enumerate(responses) if not _blank(r)]

    best_idx: int | None = None
    if human:
        assert ann is not None
        cand_pairs, best_idx, reason = _human_candidates(cands, ann, judge, n, rules)
        if reason and rules.preference_source == SOURCE_HUMAN_THEN_JUDGE and not judge_broken:
            human = False  # the answers do not make a pair (e.g. one response rated, no vote): the judge decides
        elif reason:
            return [], reason
    if not human:
        rated = [c for c in cands if judge[c] is not None]
        if len(rated) < 2:
            return [], "too_few_responses"
        cand_pairs = _pairs_from_scores(rated, judge, rules, SOURCE_JUDGE)

    sources = [_text(s) or f"response {i}" for i, s in enumerate(_aligned(row.get("response_sources"), n))]
    langs = _aligned(row.get("detected_languages"), n)
    match = _aligned(row.get("language_match"), n)
    hr = [agreement_mod.as_number(r) for r in _aligned(ann.get("human_ratings"), n)] if (human and ann) else [None] * n

    improved = _text(ann.get("improved_response")) if (human and ann) else ""
    improved_pair: _Candidate | None = None
    if rules.use_improved_response and improved.strip() and best_idx is not None:
        if not _same_text(improved, responses[best_idx]):
            improved_pair = _Candidate(-1, best_idx, None, hr[best_idx], False, SOURCE_HUMAN)
            if rules.pairing == PAIRING_BEST_WORST:
                cand_pairs = [improved_pair]
            else:
                cand_pairs = [improved_pair, *cand_pairs]

    order = {rule: i for i, rule in enumerate(DROP_RULES)}
    kept: list[PreferencePair] = []
    worst_reason: str | None = None

    def fail(reason: str) -> None:
        nonlocal worst_reason
        if worst_reason is None or order[reason] > order[worst_reason]:
            worst_reason = reason

    for cp in cand_pairs:
        is_improved = cp.chosen == -1
        chosen_text = improved if is_improved else responses[cp.chosen]
        rejected_text = responses[cp.rejected]
        margin = (
            cp.chosen_score - cp.rejected_score
            if cp.chosen_score is not None and cp.rejected_score is not None
            else None
        )
        if cp.tie and not rules.keep_ties:
            fail("tie")
            continue
        if not cp.tie and rules.min_margin > 0 and margin is not None and margin < rules.min_margin - _EPS:
            fail("margin")
            continue
        if rules.min_chosen_rating is not None and not is_improved:
            rating = cp.chosen_score if cp.chosen_score is not None else judge[cp.chosen]
            if rating is not None and rating < float(rules.min_chosen_rating) - _EPS:
                fail("chosen_rating")
                continue
        chosen_match = None if is_improved else match[cp.chosen]
        if chosen_match is False and rules.drop_language_mismatch:
            fail("language_mismatch")
            continue
        if _same_text(chosen_text, rejected_text):
            fail("identical")
            continue
        pair_id = _text(row.get("id"))
        if rules.pairing == PAIRING_ALL:
            pair_id = f"{pair_id}-{'i' if is_improved else cp.chosen}-{cp.rejected}"
        kept.append(
            PreferencePair(
                id=pair_id,
                source_id=_text(row.get("id")),
                prompt=prompt,
                system_prompt=_text(row.get("system_prompt")),
                chosen=chosen_text,
                rejected=rejected_text,
                chosen_rating=cp.chosen_score,
                rejected_rating=cp.rejected_score,
                margin=margin,
                tie=cp.tie,
                preference_source=cp.source,
                n_annotators=int(ann.get("n_annotators") or 0) if ann else 0,  # None under "judge only"
                agreement=agreement_mod.as_number(ann.get("agreement")) if (ann and human) else None,
                chosen_model=IMPROVED_SOURCE if is_improved else sources[cp.chosen],
                rejected_model=sources[cp.rejected],
                chosen_language=None if is_improved else langs[cp.chosen],
                rejected_language=langs[cp.rejected],
                target_language=_text(row.get("target_language")),
                language_checked=chosen_match is not None,
            )
        )
    if not kept:
        return [], worst_reason or "too_few_responses"
    return kept, None


def _row_priority(pairs: list[PreferencePair], position: int) -> tuple:
    """Which of several rows with the same prompt to keep: human preference, then margin, then the first."""
    human = any(p.preference_source == SOURCE_HUMAN for p in pairs)
    margins = [p.margin for p in pairs if p.margin is not None]
    return (human, max(margins) if margins else -math.inf, -position)


def resolve_target_language(raw: pa.Table, target_language: str | None = None) -> str:
    """The one target language to export. Several in the input and none chosen → :class:`ExportError`."""
    counts = target_languages(raw)
    if target_language:
        if counts and target_language not in counts:
            found = ", ".join(f"{k or '(none)'} ({v})" for k, v in counts.most_common())
            raise ExportError(f"No row has target language {target_language!r}; the input has {found}.")
        return target_language
    if len(counts) > 1:
        found = ", ".join(f"{k or '(none)'} ({v} rows)" for k, v in counts.most_common())
        raise ExportError(
            f"The input mixes {len(counts)} target languages: {found}. A preference dataset is built for one "
            "language: choose one to export (the other rows are then left out and counted)."
        )
    return next(iter(counts), "")


def _index_annotations(annotations: pa.Table | None, raw_ids: set[str], counts: Counter) -> dict[str, dict]:
    if annotations is None or annotations.num_rows == 0:
        return {}
    check_columns(annotations, REQUIRED_ANNOTATION_COLUMNS, "annotations table")
    out: dict[str, dict] = {}
    for ann in annotations.to_pylist():
        key = _text(ann.get("id"))
        if key not in raw_ids:
            counts["annotations_unmatched"] += 1
            continue
        if key in out:
            counts["annotations_duplicate"] += 1
            if int(ann.get("n_annotators") or 0) <= int(out[key].get("n_annotators") or 0):
                continue
        out[key] = ann
    return out


def select_pairs(
    raw: pa.Table,
    annotations: pa.Table | None = None,
    rules: ExportRules | None = None,
    target_language: str | None = None,
) -> Selection:
    """Apply ``rules`` to every raw row and return the kept pairs and the per-rule counts.

    Args:
        raw: raw pipeline results (``schema.RAW_COLUMNS``; at least :data:`REQUIRED_RAW_COLUMNS`).
        annotations: human annotations (``schema.ANNOTATION_COLUMNS``), joined on ``id``; optional.
        rules: the rules; defaults to ``ExportRules()``.
        target_language: the language to export when the input mixes several (others are counted as
            ``other_language``); ``None`` = the input's only language.

    Raises:
        ExportError: missing columns, mixed languages without a choice, or no row left (the message lists how
            many rows each rule dropped).
    """
    rules = rules or ExportRules()
    check_columns(raw, REQUIRED_RAW_COLUMNS, "raw results table")
    language = resolve_target_language(raw, target_language)
    counts: Counter = Counter({key: 0 for key in (*INFO_COUNTERS, *DROP_RULES)})
    rows = raw.to_pylist()
    counts["input"] = len(rows)
    notes: list[str] = []
    anns = _index_annotations(annotations, {_text(r.get("id")) for r in rows}, counts)
    if rules.preference_source == SOURCE_HUMAN and not anns:
        raise ExportError(
            "The preference source is 'human only' but there are no human annotations for these rows: pull the "
            "annotators' answers from Argilla first, or choose 'human first, judge as fallback' or 'judge only'."
        )

    seen_ids: set[str] = set()
    kept_rows: list[tuple[int, list[PreferencePair]]] = []
    for position, row in enumerate(rows):
        rid = _text(row.get("id"))
        if rid in seen_ids:
            counts["duplicate_id"] += 1
            continue
        seen_ids.add(rid)
        if (row.get("target_language") or "") != language:
            counts["other_language"] += 1
            continue
        ann = anns.get(rid) if rules.preference_source != SOURCE_JUDGE else None  # judge only: ignore them
        pairs, reason = _row_pairs(row, ann, rules)
        if reason:
            counts[reason] += 1
            continue
        kept_rows.append((position, pairs))

    if rules.dedupe_prompts:
        best: dict[str, tuple[int, list[PreferencePair]]] = {}
        for position, pairs in kept_rows:
            key = normalize_prompt(pairs[0].prompt)
            if key not in best or _row_priority(pairs, position) > _row_priority(best[key][1], best[key][0]):
                best[key] = (position, pairs)
        keep_positions = {pos for pos, _ in best.values()}
        deduped = []
        for position, pairs in kept_rows:
            if position in keep_positions:
                deduped.append((position, pairs))
                continue
            counts["duplicate_prompt"] += 1
        kept_rows = deduped

    pairs = [p for _, ps in kept_rows for p in ps]
    counts["kept"] = len(kept_rows)
    counts["pairs"] = len(pairs)
    for p in pairs:
        counts["from_human" if p.preference_source == SOURCE_HUMAN else "from_judge"] += 1
        counts["language_unchecked"] += 0 if p.language_checked else 1
        counts["ties_kept"] += 1 if p.tie else 0
        counts["improved_used"] += 1 if p.chosen_model == IMPROVED_SOURCE else 0
    if counts["other_language"]:
        notes.append(
            f"The input mixes target languages: exported {language!r}, left out {counts['other_language']} rows "
            "in other languages."
        )
    if counts["duplicate_id"]:
        notes.append(f"{counts['duplicate_id']} rows repeated an id already seen; the first of each was used.")
    if counts["annotations_unmatched"]:
        notes.append(
            f"{counts['annotations_unmatched']} annotation rows have ids not in the raw results and were ignored "
            "(were they pulled for another dataset?)."
        )
    if counts["annotations_duplicate"]:
        notes.append(
            f"{counts['annotations_duplicate']} annotation ids appear twice; the row with the most annotators "
            "was used."
        )
    agreement = judge_human_agreement(rows, anns)
    if not pairs:
        raise ExportError(no_rows_message(counts))
    return Selection(pairs=pairs, counts=dict(counts), notes=notes, target_language=language, agreement=agreement)


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
    total = counts.get("input", 0)
    msg = f"Every row was dropped ({total} in the input). Dropped by rule — " + "; ".join(parts or ["none"]) + "."
    if hints:
        msg += " To keep more rows: " + ", ".join(hints) + "."
    return msg


# --- Judge versus human agreement ----------------------------------------------------------------------------
def _human_choice(ann: Mapping[str, Any], cands: list[int], n: int) -> int | None:
    """The annotators' best response among the non-empty ones (-1 tie), from their vote or else their ratings."""
    pref = _pref_index(ann)
    if pref is not None and (pref == -1 or pref in cands):
        return pref
    return agreement_mod.preference_from_ratings(_aligned(ann.get("human_ratings"), n), cands)


def judge_human_agreement(rows: Sequence[Mapping[str, Any]], anns: Mapping[str, Mapping[str, Any]]) -> dict:
    """How often the judge's preferred response is the annotators', over the rows where both gave one.

    The figures come from :func:`pipeline.agreement.judge_human_agreement` (shared with the Argilla tab):
    ``{"rows", "agree", "share", "kappa" (Cohen's), "outcomes": {outcome: count}}``; a tie is a label like the
    others. Only non-empty responses count as candidates on both sides.
    """
    pairs: list[tuple[int | None, int | None]] = []
    seen: set[str] = set()
    for row in rows:
        rid = _text(row.get("id"))
        ann = anns.get(rid)
        if rid in seen or not ann:
            continue
        seen.add(rid)
        responses = list(row.get("responses") or [])
        n = len(responses)
        if not _human_answered(ann, n):
            continue
        cands = [i for i, r in enumerate(responses) if not _blank(r)]
        judge = agreement_mod.preference_from_ratings(_aligned(row.get("ratings"), n), cands)
        pairs.append((judge, _human_choice(ann, cands, n)))
    return agreement_mod.judge_human_agreement(pairs)


# --- Formats -------------------------------------------------------------------------------------------------
def _messages(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in pairs]


def format_pair(pair: PreferencePair, fmt: str = FORMAT_STANDARD, include_system: bool = False) -> dict[str, Any]:
    """``prompt``/``chosen``/``rejected`` of one pair in format ``fmt`` (see :data:`FORMATS`).

    ``include_system`` adds the pipeline's system prompt (when not empty) as a ``system`` message in the
    conversational and recipe forms; the standard form has no place for it.

    Example:

    ```python
    >>> format_pair(pair, "conversational")
    {'prompt': [{'role': 'user', 'content': 'Wat is de hoofdstad?'}],
     'chosen': [{'role': 'assistant', 'content': 'Amsterdam.'}],
     'rejected': [{'role': 'assistant', 'content': 'Parijs.'}]}
    ```
    """
    system = _messages(("system", pair.system_prompt)) if include_system and pair.system_prompt.strip() else []
    if fmt == FORMAT_STANDARD:
        return {"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected}
    if fmt == FORMAT_CONVERSATIONAL:
        return {
            "prompt": system + _messages(("user", pair.prompt)),
            "chosen": _messages(("assistant", pair.chosen)),
            "rejected": _messages(("assistant", pair.rejected)),
        }
    if fmt == FORMAT_RECIPE:
        return {
            "prompt": pair.prompt,
            "chosen": system + _messages(("user", pair.prompt), ("assistant", pair.chosen)),
            "rejected": system + _messages(("user", pair.prompt), ("assistant", pair.rejected)),
        }
    raise ExportError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")


def is_conversational(example: Mapping[str, Any]) -> bool:
    """Whether an example is conversational, as TRL's ``trl.data_utils.is_conversational`` decides it.

    TRL looks at one of the keys ``prompt``, ``chosen``, ``rejected``, ``completion``, ``messages`` (whichever
    its set yields first) and answers True when it is a list whose first item is a dict with ``role`` and
    ``content``. Here every present key is looked at, and True means *all* of them are conversational, so the
    answer never depends on set order.
    """
    keys = [k for k in ("prompt", "chosen", "rejected", "completion", "messages") if k in example]
    if not keys:
        return False
    for key in keys:
        value = example[key]
        if not (isinstance(value, list) and value and isinstance(value[0], dict)
                and "role" in value[0] and "content" in value[0]):
            return False
    return True


def extract_prompt(example: Mapping[str, Any]) -> dict[str, Any]:
    """TRL's ``maybe_extract_prompt`` for a preference example, mirrored: a string prompt next to
    conversational ``chosen``/``rejected`` is ignored and the shared leading messages become the prompt.
    Used to check that the recipe form turns into the conversational one inside TRL."""
    chosen, rejected = example["chosen"], example["rejected"]
    if "prompt" in example:
        if is_conversational({"chosen": chosen}) == is_conversational({"prompt": example["prompt"]}):
            return dict(example)
    idx = 0
    for idx in range(min(len(chosen), len(rejected))):
        if chosen[idx] != rejected[idx]:
            if chosen[idx - 1] == " ":
                idx -= 1
            break
    return {"prompt": chosen[:idx], "chosen": chosen[idx:], "rejected": rejected[idx:]}


def check_trl_example(example: Mapping[str, Any], fmt: str) -> list[str]:
    """Problems with one formatted example against what TRL's DPO/ORPO trainers expect ([] = none).

    Checks the keys, the types, the message roles (``system`` only first, then ``user``; completions a single
    ``assistant`` message; recipe conversations ``[system?, user, assistant]`` sharing their prompt part), that no
    text is empty and that chosen and rejected differ.
    """
    problems: list[str] = []
    for key in ("prompt", "chosen", "rejected"):
        if key not in example:
            problems.append(f"missing key {key!r}")
    if problems:
        return problems

    def texts_of(value: Any, key: str) -> list[str]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not value:
            problems.append(f"{key} must be a non-empty list of messages")
            return []
        out = []
        for m in value:
            if not isinstance(m, dict) or set(m) != {"role", "content"}:
                problems.append(f"{key}: each message must be a dict with exactly 'role' and 'content'")
                continue
            if not isinstance(m["content"], str):
                problems.append(f"{key}: message content must be text")
                continue
            out.append(m["content"])
        return out

    def roles(value: Any) -> list[str]:
        return [m.get("role") for m in value if isinstance(m, dict)] if isinstance(value, list) else []

    prompt, chosen, rejected = example["prompt"], example["chosen"], example["rejected"]
    if fmt == FORMAT_STANDARD:
        for key in ("prompt", "chosen", "rejected"):
            if not isinstance(example[key], str):
                problems.append(f"{key} must be a string in the standard format")
        if is_conversational(example):
            problems.append("the standard format must not be conversational")
    elif fmt == FORMAT_CONVERSATIONAL:
        if not is_conversational(example):
            problems.append("prompt, chosen and rejected must all be lists of messages")
        pr = roles(prompt)
        if pr not in (["user"], ["system", "user"]):
            problems.append(f"prompt roles must be [user] or [system, user], got {pr}")
        for key, value in (("chosen", chosen), ("rejected", rejected)):
            if roles(value) != ["assistant"]:
                problems.append(f"{key} must be exactly one assistant message, got roles {roles(value)}")
    elif fmt == FORMAT_RECIPE:
        if not isinstance(prompt, str):
            problems.append("prompt must be a string in the recipe format")
        for key, value in (("chosen", chosen), ("rejected", rejected)):
            if roles(value) not in (["user", "assistant"], ["system", "user", "assistant"]):
                problems.append(f"{key} roles must be [system?, user, assistant], got {roles(value)}")
        if isinstance(chosen, list) and isinstance(rejected, list) and chosen[:-1] != rejected[:-1]:
            problems.append("chosen and rejected must share the same prompt messages")
        if isinstance(chosen, list) and len(chosen) >= 2 and isinstance(chosen[-2], dict):
            if isinstance(prompt, str) and chosen[-2].get("content") != prompt:
                problems.append("the user message must be the prompt")
        if not problems:
            extracted = extract_prompt(example)
            if not is_conversational(extracted) or roles(extracted["chosen"]) != ["assistant"]:
                problems.append("TRL's prompt extraction would not yield one assistant completion")
    else:
        problems.append(f"unknown format {fmt!r}")
        return problems
    for key, value in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        for text in texts_of(value, key):
            if not text.strip():
                problems.append(f"{key} has an empty text")
    c_texts, r_texts = texts_of(chosen, "chosen"), texts_of(rejected, "rejected")
    if c_texts and r_texts and c_texts[-1].strip() == r_texts[-1].strip():
        problems.append("chosen and rejected are the same text")
    return list(dict.fromkeys(problems))


_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])


def output_schema(fmt: str) -> pa.Schema:
    """The Arrow schema of an export table in format ``fmt`` (prompt, chosen, rejected, then the extras)."""
    text, messages = pa.string(), pa.list_(_MESSAGE)
    main = {
        FORMAT_STANDARD: (text, text, text),
        FORMAT_CONVERSATIONAL: (messages, messages, messages),
        FORMAT_RECIPE: (text, messages, messages),
    }
    if fmt not in main:
        raise ExportError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    p, c, r = main[fmt]
    return pa.schema(
        [
            ("prompt", p),
            ("chosen", c),
            ("rejected", r),
            ("id", pa.string()),
            ("chosen_rating", pa.float64()),
            ("rejected_rating", pa.float64()),
            ("margin", pa.float64()),
            ("tie", pa.bool_()),
            ("preference_source", pa.string()),
            ("n_annotators", pa.int64()),
            ("agreement", pa.float64()),
            ("chosen_model", pa.string()),
            ("rejected_model", pa.string()),
            ("chosen_language", pa.string()),
            ("rejected_language", pa.string()),
            ("target_language", pa.string()),
        ]
    )


def pairs_to_table(pairs: Sequence[PreferencePair], fmt: str = FORMAT_STANDARD, include_system: bool = False) -> pa.Table:
    """The export table for ``pairs`` in format ``fmt``: prompt/chosen/rejected plus :data:`EXTRA_COLUMNS`."""
    schema_ = output_schema(fmt)
    rows = []
    for p in pairs:
        row = format_pair(p, fmt, include_system)
        for col in EXTRA_COLUMNS:
            row[col] = getattr(p, col)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema_)


# --- Split ---------------------------------------------------------------------------------------------------
def split_pairs(
    pairs: Sequence[PreferencePair], test_size: float | int | None, seed: int = 42
) -> dict[str, list[PreferencePair]]:
    """Split pairs into ``train``/``test`` by prompt (pairs of one raw row never straddle the split).

    ``test_size``: a fraction in (0, 1) or a number of prompts ≥ 1; ``None``/0 = no split (only ``train``).
    The same pairs, size and seed always give the same split; rows keep their order within each split.
    """
    if not test_size:
        return {"train": list(pairs)}
    groups = list(dict.fromkeys(p.source_id for p in pairs))
    size = float(test_size)
    if 0 < size < 1:
        n_test = max(1, round(len(groups) * size))
    elif size >= 1 and size.is_integer():
        n_test = int(size)
    else:
        raise ExportError(
            f"The test size must be a fraction between 0 and 1 or a whole number of prompts (got {test_size})."
        )
    if n_test >= len(groups):
        raise ExportError(
            f"A test split of {n_test} prompts leaves nothing to train on ({len(groups)} prompts in total): "
            "use a smaller test size or no split."
        )
    shuffled = groups[:]
    random.Random(seed).shuffle(shuffled)
    test_groups = set(shuffled[:n_test])
    return {
        "train": [p for p in pairs if p.source_id not in test_groups],
        "test": [p for p in pairs if p.source_id in test_groups],
    }


# --- All together --------------------------------------------------------------------------------------------
def build_export(
    raw: pa.Table,
    annotations: pa.Table | None = None,
    rules: ExportRules | None = None,
    fmt: str = FORMAT_STANDARD,
    *,
    include_system: bool = False,
    test_size: float | int | None = None,
    seed: int = 42,
    target_language: str | None = None,
) -> ExportResult:
    """Select pairs with ``rules``, format them as ``fmt`` and split them: the whole export, ready to push.

    Raises:
        ExportError: see :func:`select_pairs`, plus a bad format or test size. Nothing is written.
    """
    rules = rules or ExportRules()
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    selection = select_pairs(raw, annotations, rules, target_language)
    split = split_pairs(selection.pairs, test_size, seed)
    splits = {name: pairs_to_table(ps, fmt, include_system) for name, ps in split.items()}
    return ExportResult(
        splits=splits,
        pairs=selection.pairs,
        counts=selection.counts,
        rules=rules,
        format=fmt,
        target_language=selection.target_language,
        notes=selection.notes,
        agreement=selection.agreement,
        test_size=test_size or None,
        seed=seed if test_size else None,
    )


# --- Numbers for plots ---------------------------------------------------------------------------------------
def _bucket(value: float | None) -> str:
    """Ratings and margins to half-point labels ("4", "4.5"); None → "n/a"."""
    if value is None:
        return "n/a"
    return f"{round(value * 2) / 2:g}"


def export_frames(result: ExportResult | Selection) -> dict[str, Any]:
    """pandas DataFrames behind the tab's plots.

    Keys: ``rules`` (rule, rows, outcome: one "kept" row then one per rule that dropped rows), ``ratings`` (rating, pairs,
    response: chosen/rejected), ``margins`` (margin, pairs) and ``agreement`` (outcome, rows; empty when no row has
    both a human and a judge preference).
    """
    import pandas as pd

    counts, pairs, agreement = result.counts, result.pairs, result.agreement
    rules_rows = [{"rule": "kept", "rows": counts.get("kept", 0), "outcome": "kept"}]
    rules_rows += [{"rule": r, "rows": counts[r], "outcome": "dropped"} for r in DROP_RULES if counts.get(r)]
    ratings = Counter()
    for p in pairs:
        ratings[(_bucket(p.chosen_rating), "chosen")] += 1
        ratings[(_bucket(p.rejected_rating), "rejected")] += 1
    rating_rows = [
        {"rating": k[0], "pairs": v, "response": k[1]}
        for k, v in sorted(ratings.items(), key=lambda kv: (kv[0][0] == "n/a", kv[0][0], kv[0][1]))
    ]
    margins = Counter(_bucket(p.margin) for p in pairs)
    margin_rows = [
        {"margin": k, "pairs": v}
        for k, v in sorted(margins.items(), key=lambda kv: (kv[0] == "n/a", float(kv[0]) if kv[0] != "n/a" else 0))
    ]
    agreement_rows = (
        [{"outcome": k, "rows": v} for k, v in agreement.get("outcomes", {}).items()] if agreement.get("rows") else []
    )
    return {
        "rules": pd.DataFrame(rules_rows, columns=["rule", "rows", "outcome"]),
        "ratings": pd.DataFrame(rating_rows, columns=["rating", "pairs", "response"]),
        "margins": pd.DataFrame(margin_rows, columns=["margin", "pairs"]),
        "agreement": pd.DataFrame(agreement_rows, columns=["outcome", "rows"]),
    }


def counts_table(counts: Mapping[str, int], all_rules: bool = True) -> list[tuple[str, int]]:
    """(label, count) rows: input, kept, pairs, then each drop rule (only those that dropped rows when
    ``all_rules`` is False), then the other counters that are non-zero."""
    rows = [(INFO_COUNTERS[k], counts.get(k, 0)) for k in ("input", "kept", "pairs")]
    rows += [(f"Dropped — {RULE_LABELS[r]}", counts.get(r, 0)) for r in DROP_RULES if all_rules or counts.get(r)]
    rows += [
        (INFO_COUNTERS[k], counts[k])
        for k in INFO_COUNTERS
        if k not in ("input", "kept", "pairs") and counts.get(k)
    ]
    return rows


# --- Files ---------------------------------------------------------------------------------------------------
def read_table(path: str | Path) -> pa.Table:
    """Read a Parquet or JSON Lines file as a table (see :mod:`pipeline.tablefiles`); errors as ExportError."""
    try:
        return tablefiles.read_table(path)
    except tablefiles.TableFileError as e:
        raise ExportError(str(e)) from None


def write_table(table: pa.Table, path: str | Path) -> Path:
    """Write ``table`` as Parquet or JSON Lines by suffix, atomically; errors as ExportError."""
    try:
        return tablefiles.write_table(table, path)
    except tablefiles.TableFileError as e:
        raise ExportError(str(e)) from None


def split_paths(path: str | Path, split_names: Sequence[str]) -> dict[str, Path]:
    """Where each split is written: the path itself for one split, ``<stem>-<split><suffix>`` for several."""
    path = Path(path)
    if list(split_names) == ["train"]:
        return {"train": path}
    return {name: path.with_name(f"{path.stem}-{name}{path.suffix}") for name in split_names}


def write_export(result: ExportResult, path: str | Path) -> dict[str, Path]:
    """Write every split of ``result`` (see :func:`split_paths`); returns split → path."""
    paths = split_paths(path, list(result.splits))
    for name, table in result.splits.items():
        write_table(table, paths[name])
    return paths


# --- Dataset card --------------------------------------------------------------------------------------------
def language_tag(code: str) -> str:
    """The Hub language tag for an ISO 639-3 code: ISO 639-1 when one exists ("nld" → "nl"), else the code."""
    if not code:
        return ""
    try:
        import langcodes

        return langcodes.standardize_tag(code)
    except Exception:  # noqa: BLE001 - an odd code is kept as it is
        return code


def language_name(code: str, meta: Mapping[str, Any] | None = None) -> str:
    """A readable language name: the one the Filter step recorded, else from langcodes, else the code."""
    meta = meta or {}
    for key in ("language_name",):
        value = meta.get(key)
        if isinstance(value, str) and value.strip() and value.strip().lower() != code.lower():
            return value.strip()
    import importlib.util

    if importlib.util.find_spec("language_data") is None:  # langcodes needs it for names (and prints if absent)
        return code
    try:
        import langcodes

        return langcodes.get(code).display_name()
    except Exception:  # noqa: BLE001 - an unknown code is shown as it is
        return code


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` value for ``n`` rows."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M"


def _first_str(*values: Any) -> str:
    for v in values:
        if isinstance(v, str) and v.strip():
            return v.strip()
    return ""


def normalize_meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The card's facts from whatever describes the raw results, as flat keys.

    Reads flat keys (``source_dataset``, ``source_license``/``license``, ``language_name``/``language``,
    ``generator_models``/``models``, ``judge_model``, ``system_prompt``, ``aspect``) and the Pipeline's checkpoint
    meta shape ``{"settings": RunSettings.describe(), "source": {...}}`` (``source``: ``dataset``/``dataset_id``/
    ``id``, ``license``, ``language``/``language_name``). Returns those flat keys (missing ones left out).
    """
    meta = dict(meta or {})
    settings = meta.get("settings") if isinstance(meta.get("settings"), Mapping) else {}
    source = meta.get("source") if isinstance(meta.get("source"), Mapping) else {}
    out: dict[str, Any] = {}
    dataset = _first_str(
        meta.get("source_dataset"), source.get("dataset"), source.get("dataset_id"), source.get("source_dataset"),
        source.get("id"), meta.get("source") if isinstance(meta.get("source"), str) else None,
    )
    if dataset:
        out["source_dataset"] = dataset
    lic = meta.get("source_license") or meta.get("license") or source.get("license") or source.get("source_license")
    if isinstance(lic, list):
        lic = ", ".join(str(x) for x in lic)
    if lic:
        out["source_license"] = str(lic)
    name = _first_str(meta.get("language_name"), meta.get("language"), source.get("language_name"),
                      source.get("language"))  # fmt: skip
    if name:
        out["language_name"] = name
    gens = meta.get("generator_models") or meta.get("models") or [
        g.get("model") for g in settings.get("generators") or [] if isinstance(g, Mapping)
    ]
    if isinstance(gens, str):
        gens = [gens]
    out["generator_models"] = [str(g) for g in gens if g]
    judge_cfg = settings.get("judge") if isinstance(settings.get("judge"), Mapping) else {}
    judge = _first_str(meta.get("judge_model"), judge_cfg.get("model"))
    if judge:
        out["judge_model"] = judge
    system_prompt = meta.get("system_prompt", settings.get("system_prompt"))
    if isinstance(system_prompt, str):
        out["system_prompt"] = system_prompt
    aspect = _first_str(meta.get("aspect"), settings.get("aspect"))
    if aspect:
        out["aspect"] = aspect
    return out


def _meta_models(result: ExportResult, meta: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(generator models, judge models) from the normalised meta, else from the pairs."""
    gens = list(meta.get("generator_models") or [])
    if not gens:
        seen = {p.chosen_model for p in result.pairs} | {p.rejected_model for p in result.pairs}
        gens = sorted(s for s in seen if s not in (schema.HUMAN, IMPROVED_SOURCE) and not s.startswith("response "))
    judge = meta.get("judge_model")
    return gens, [judge] if judge else []


def card_metadata(result: ExportResult, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The card's YAML front matter: language, licence, task categories, tags, size and source dataset.

    ``meta`` is the session's ``raw_meta`` or the Pipeline's checkpoint meta (see :func:`normalize_meta`).
    The ``argilla`` tag is added only when annotators' answers are in the export.
    """
    meta = normalize_meta(meta)
    tag = language_tag(result.target_language)
    name = language_name(result.target_language, meta)
    tags = ["dpo", "orpo", "distilabel"]
    if result.counts.get("from_human"):
        tags.append("argilla")
    tags += ["dpo-studio", "preference"]
    if name:
        tags.append(name.lower())
    out: dict[str, Any] = {
        "language": [tag] if tag else [],
        "task_categories": ["text-generation"],
        "tags": list(dict.fromkeys(tags)),
        "size_categories": [size_category(result.num_rows)],
        "pretty_name": f"{name} DPO/ORPO preferences" if name else "DPO/ORPO preferences",
    }
    if meta.get("source_license"):
        out["license"] = meta["source_license"]
    if meta.get("source_dataset"):
        out["source_datasets"] = [str(meta["source_dataset"])]
    return out


def _fence(text: str) -> str:
    """``text`` in a fenced block that its own backticks cannot close (untrusted text stays text)."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _md_cell(text: Any) -> str:
    """A value safe inside a Markdown table cell (no HTML, no pipes, no line breaks)."""
    import html

    return html.escape(str(text)).replace("|", "\\|").replace("\n", " ")


def card_body(result: ExportResult, meta: Mapping[str, Any] | None = None, repo_id: str = "") -> str:
    """The card's Markdown: what the dataset is, how it was made (source, models, system prompt, rules and
    counts), its columns, how to load it in TRL, and its limits. Untrusted text (system prompt, model ids) is
    escaped or fenced."""
    meta = normalize_meta(meta)
    name = language_name(result.target_language, meta)
    gens, judges = _meta_models(result, meta)
    source = meta.get("source_dataset") or ""
    license_ = meta.get("source_license") or ""
    system_prompt = meta.get("system_prompt")
    if system_prompt is None:
        system_prompt = next((p.system_prompt for p in result.pairs if p.system_prompt), "")
    repo = repo_id or "<your-namespace>/<this-dataset>"
    splits = ", ".join(f"{k}: {v.num_rows}" for k, v in result.splits.items())
    lines = [
        f"# {_md_cell(name)} DPO/ORPO preference dataset",
        "",
        f"A preference dataset (`prompt`, `chosen`, `rejected`) in **{_md_cell(name)}** "
        f"(`{_md_cell(result.target_language)}`), ready for TRL's `DPOTrainer` and `ORPOTrainer`. "
        "It was built with DPO Studio, following the data-is-better-together recipe "
        "\"DPO/ORPO dataset for a new language\".",
        "",
        f"- Rows: {result.num_rows} ({splits}); format: **{result.format}** — {FORMAT_LABELS[result.format]}.",
        f"- Preferences from annotators: {result.counts.get('from_human', 0)}; from the LLM judge: "
        f"{result.counts.get('from_judge', 0)}.",
    ]
    if result.test_size:
        lines.append(f"- Train/test split by prompt: test size {result.test_size}, seed {result.seed}.")
    lines += ["", "## How it was made", ""]
    if source:
        lines.append(
            f"1. **Prompts and human responses** from [`{_md_cell(source)}`](https://huggingface.co/datasets/"
            f"{quote(str(source), safe='/')})"
            + (f" (licence: `{_md_cell(license_)}`)" if license_ else "")
            + f", filtered to {_md_cell(name)}."
        )
    else:
        lines.append(f"1. **Prompts and human responses** in {_md_cell(name)}.")
    lines.append(
        "2. **A second response** for each prompt from "
        + (", ".join(f"`{_md_cell(g)}`" for g in gens) if gens else "the generator model(s)")
        + "."
    )
    lines.append(
        "3. **Ratings** (1–5) of every response by an UltraFeedback LLM judge"
        + (" (" + ", ".join(f"`{_md_cell(j)}`" for j in judges) + ")" if judges else "")
        + (f", aspect `{_md_cell(meta['aspect'])}`" if meta.get("aspect") else "")
        + ", and the **language** of every response detected with `langid`."
    )
    if result.counts.get("from_human"):
        lines.append("4. **Human validation** in Argilla: annotators rated the responses and picked the better one.")
    if system_prompt:
        lines += ["", "System prompt used for generation:", "", _fence(str(system_prompt))]
    lines += ["", "### Rules", "", "| Rule | Setting |", "|---|---|"]
    lines += [f"| {_md_cell(a)} | {_md_cell(b)} |" for a, b in result.rules.describe()]
    lines += ["", "### Counts", "", "| | Rows |", "|---|---:|"]
    lines += [f"| {_md_cell(label)} | {value} |" for label, value in counts_table(result.counts, all_rules=False)]
    if not any(result.counts.get(r) for r in DROP_RULES):
        lines.append("| No rule dropped any row | 0 |")
    if result.agreement.get("rows"):
        ag = result.agreement
        kappa = "n/a" if ag.get("kappa") is None else f"{ag['kappa']:.2f}"
        lines += [
            "",
            f"Judge versus annotators, on the {ag['rows']} rows where both gave a preference: the judge agreed on "
            f"{ag['agree']} ({ag['share']:.0%}); Cohen's kappa {kappa}.",
        ]
    for note in result.notes:
        lines += ["", f"Note: {_md_cell(note)}"]
    lines += [
        "",
        "## Columns",
        "",
        "| Column | Meaning |",
        "|---|---|",
        "| `prompt`, `chosen`, `rejected` | the preference pair (see the format above) |",
        "| `id` | the source row's id (with `-<chosen>-<rejected>` indices when a prompt gives several pairs) |",
        "| `chosen_rating`, `rejected_rating`, `margin` | ratings (1–5; annotators' mean where they rated) and their "
        "difference (negative when the annotators' vote and their mean ratings disagree; the vote decides) |",
        "| `tie` | the two responses were rated equal |",
        "| `preference_source` | `human` (annotators) or `judge` |",
        "| `n_annotators`, `agreement` | how many annotators answered; the share that agreed with the majority |",
        "| `chosen_model`, `rejected_model` | where each response came from (`human` = the source dataset, "
        f"`{IMPROVED_SOURCE}` = rewritten by an annotator) |",
        "| `chosen_language`, `rejected_language`, `target_language` | detected and target languages (ISO 639-3) |",
        "",
        "## Use it with TRL",
        "",
        "```python",
        "from datasets import load_dataset",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "from trl import DPOConfig, DPOTrainer",
        "",
        f'dataset = load_dataset("{repo}")',
        'model_id = "Qwen/Qwen2.5-0.5B-Instruct"  # any chat model that knows the language',
        "model = AutoModelForCausalLM.from_pretrained(model_id)",
        "tokenizer = AutoTokenizer.from_pretrained(model_id)",
        "trainer = DPOTrainer(",
        "    model=model,",
        '    args=DPOConfig(output_dir="dpo-model"),',
        '    train_dataset=dataset["train"],',
        ]
    if "test" in result.splits:
        lines.append('    eval_dataset=dataset["test"],')
    lines += [
        "    processing_class=tokenizer,",
        ")",
        "trainer.train()",
        "```",
        "",
        "`ORPOTrainer` (with `ORPOConfig`) takes the same dataset. The extra columns are ignored by the trainers.",
        "",
        "## Limits",
        "",
        "- The judge is an LLM: its ratings can be wrong, more so in languages it knows less. Rows with "
        "`preference_source = judge` were not checked by a person.",
        "- `langid` does not know every language; responses it cannot check are kept "
        f"({result.counts.get('language_unchecked', 0)} pairs here).",
        "- Human responses come from the source dataset as they are.",
    ]
    return "\n".join(lines) + "\n"


def render_export_card(result: ExportResult, meta: Mapping[str, Any] | None = None, repo_id: str = "") -> str:
    """The whole README.md (YAML front matter + body) for the export, via :func:`pipeline.hub.render_card`."""
    from pipeline import hub

    return hub.render_card(card_metadata(result, meta), card_body(result, meta, repo_id))


# --- The Hub -------------------------------------------------------------------------------------------------
def push_export(
    result: ExportResult,
    repo_id: str,
    token: str | None,
    *,
    private: bool = True,
    meta: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> str:
    """Push every split of ``result`` with its card to ``repo_id`` in one commit; returns the dataset's URL.

    :func:`pipeline.hub.push_dataset` refuses (``HubError``) before uploading anything when you are not signed in,
    cannot write to the namespace, or the repo exists and ``overwrite`` is False.
    """
    from pipeline import hub

    repo_id = hub.validate_repo_id(repo_id)
    card = render_export_card(result, meta, repo_id)
    return hub.push_dataset(
        dict(result.splits),
        repo_id,
        token,
        private=private,
        card=card,
        overwrite=overwrite,
        commit_message=f"DPO Studio export: {result.num_rows} preference pairs ({result.format})",
    )


def split_annotation_columns(table: pa.Table) -> tuple[pa.Table, pa.Table | None]:
    """A raw table that also carries annotation columns (e.g. a merged dataset) → (raw, annotations or None)."""
    extra = [c for c in schema.ANNOTATION_COLUMNS if c != "id" and c in table.column_names]
    if not all(c in table.column_names for c in REQUIRED_ANNOTATION_COLUMNS):
        return table, None
    ann = table.select(["id", *extra])
    return table.drop_columns(extra), ann


def load_raw_from_hub(
    dataset_id: str, token: str | None, split: str = "train"
) -> tuple[pa.Table, pa.Table | None, dict[str, Any]]:
    """Load raw pipeline results from the Hub: (raw, annotations found in the same table or None, meta for the card).

    Raises ``pipeline.hub.HubError`` for a dataset that cannot be loaded and :class:`ExportError` naming the
    columns a raw-results dataset needs but this one lacks. ``meta`` is the Pipeline's
    ``dpo_studio.json`` when the dataset has one, else it comes from the card (``source_datasets``, ``license``)
    and the rows (judge model, system prompt).
    """
    from pipeline import hub

    table = hub.load_dataset_table(dataset_id, split, token)
    missing = missing_columns(table, REQUIRED_RAW_COLUMNS)
    if missing:
        raise ExportError(
            f"'{dataset_id}' is not a DPO Studio raw-results dataset: it lacks the column"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}. Load the dataset pushed by the Pipeline step "
            "(columns: " + ", ".join(REQUIRED_RAW_COLUMNS) + ")."
        )
    raw, ann = split_annotation_columns(table)
    meta: dict[str, Any] = {}
    try:  # DPO Studio's Pipeline step pushes its raw_meta as dpo_studio.json next to the data
        stored = json.loads(hub.download_file(dataset_id, "dpo_studio.json", token).decode("utf-8"))
        if isinstance(stored, dict):
            meta.update(stored)
    except Exception:  # noqa: BLE001 - not a DPO Studio push, or an older one: the card below says less
        pass
    meta["raw_dataset"] = dataset_id
    if meta.get("source") or meta.get("source_dataset"):
        return raw, ann, meta
    try:
        from huggingface_hub import DatasetCard

        card = DatasetCard(hub.download_file(dataset_id, "README.md", token).decode("utf-8")).data.to_dict()
    except Exception:  # noqa: BLE001 - a dataset without a (valid) card still exports; the card just says less
        card = {}
    sources = card.get("source_datasets") or []
    if isinstance(sources, str):
        sources = [sources]
    if sources:
        meta["source_dataset"] = sources[0]
    if card.get("license"):
        lic = card["license"]
        meta["source_license"] = ", ".join(lic) if isinstance(lic, list) else str(lic)
    first = raw.slice(0, 1).to_pylist()
    if first:
        if first[0].get("judge_model"):
            meta["judge_model"] = first[0]["judge_model"]
        if first[0].get("system_prompt"):
            meta["system_prompt"] = first[0]["system_prompt"]
    return raw, ann, meta


# --- For the tab ---------------------------------------------------------------------------------------------
def default_repo_name(target_language: str, meta: Mapping[str, Any] | None = None) -> str:
    """A repo name for the export from the language: ``aya-dutch-dpo`` (the raw set being ``aya-dutch-dpo-raw``);
    the language code when no name is known; the source's name instead of ``aya`` for other sources."""
    flat = normalize_meta(meta)
    source = flat.get("source_dataset", "")
    base = source.split("/")[-1].lower() if source else "aya"
    base = "aya" if "aya" in base else re.sub(r"[^a-z0-9]+", "-", base).strip("-")[:40]
    name = flat.get("language_name", "")
    if name.lower() == (target_language or "").lower():
        name = ""
    lang = re.sub(r"[^a-z0-9]+", "-", (name or target_language or "").lower()).strip("-")[:40]
    return "-".join(part for part in (base, lang, "dpo") if part)


def _last_text(value: Any) -> str:
    if isinstance(value, list):
        return _text(value[-1].get("content")) if value and isinstance(value[-1], dict) else ""
    return _text(value)


def _user_text(value: Any) -> str:
    if isinstance(value, list):
        users = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "user"]
        return _text(users[-1]) if users else ""
    return _text(value)


PREVIEW_COLUMNS: Final = (
    "id", "prompt", "chosen", "rejected", "chosen_rating", "rejected_rating", "margin", "preference_source",
    "chosen_model", "rejected_model",
)  # fmt: skip


def preview_rows(table: pa.Table, limit: int = 50) -> list[list[Any]]:
    """The first ``limit`` rows as plain values for a preview grid (:data:`PREVIEW_COLUMNS`): the prompt, chosen
    and rejected texts whatever the format (the user message and the assistant replies of conversations)."""
    out = []
    for row in table.slice(0, limit).to_pylist():
        out.append(
            [
                row["id"],
                _user_text(row["prompt"]) or _user_text(row["chosen"]),
                _last_text(row["chosen"]),
                _last_text(row["rejected"]),
                row["chosen_rating"],
                row["rejected_rating"],
                row["margin"],
                row["preference_source"],
                row["chosen_model"],
                row["rejected_model"],
            ]
        )
    return out


def input_summary(raw: pa.Table | None, annotations: pa.Table | None = None) -> dict[str, Any]:
    """What an input holds, for the tab: rows, target languages, statuses and rows with human answers."""
    if raw is None:
        return {"rows": 0, "languages": {}, "statuses": {}, "annotated": 0}
    statuses = Counter(raw.column("status").to_pylist()) if "status" in raw.column_names else Counter()
    annotated = 0
    if annotations is not None and annotations.num_rows and "id" in annotations.column_names:
        ids = set(raw.column("id").to_pylist()) if "id" in raw.column_names else set()
        n_col = (annotations.column("n_annotators").to_pylist() if "n_annotators" in annotations.column_names
                 else [1] * annotations.num_rows)  # fmt: skip
        annotated = len({i for i, n in zip(annotations.column("id").to_pylist(), n_col) if i in ids and (n or 0) > 0})
    return {
        "rows": raw.num_rows,
        "languages": dict(target_languages(raw).most_common()),
        "statuses": dict(statuses.most_common()),
        "annotated": annotated,
    }
