"""Export, step 1: the selection rules. Which raw rows become preference pairs, and why the others do not.

:func:`select_pairs` applies the :class:`ExportRules` row by row to the raw results (``schema.RAW_COLUMNS``) joined
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
from pipeline.judge import report

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


# --- Row by row ----------------------------------------------------------------------------------------------
@dataclass
class _Candidate:
    chosen: int  # index into responses, or -1 for the annotator's improved response
    rejected: int
    chosen_score: float | None
    rejected_score: float | None
    tie: bool
    source: str  # "human" | "judge"


def _margin_of(c: _Candidate) -> float:
    return (c.chosen_score or 0.0) - (c.rejected_score or 0.0)


def _scores(cands: list[int], score: list[float | None]) -> dict[int, float]:
    """The scores of ``cands`` (callers pass only candidates that have one)."""
    return {c: value for c in cands if (value := score[c]) is not None}


def _best_worst(cands: list[int], score: list[float | None]) -> tuple[int, int]:
    """Best (highest score, earliest on ties) and worst (lowest score, latest on ties) of scored candidates."""
    best = max(cands, key=lambda c: (score[c], -c))
    worst = min(cands, key=lambda c: (score[c], -c))
    return best, worst


def _pairs_from_scores(
    cands: list[int], score: list[float | None], rules: ExportRules, source: str
) -> list[_Candidate]:
    """Pairs from scores alone (judge ratings, or human ratings without a stated preference); ``cands`` are the
    candidates that have a score."""
    known = _scores(cands, score)
    if rules.pairing == PAIRING_BEST_WORST:
        best, worst = _best_worst(cands, score)
        if abs(known[best] - known[worst]) <= _EPS:  # all equal: a tie between the first and the last
            best, worst = cands[0], cands[-1]
            return [_Candidate(best, worst, score[best], score[worst], True, source)]
        return [_Candidate(best, worst, score[best], score[worst], False, source)]
    out = []
    for i in cands:
        for j in cands:
            if i == j:
                continue
            diff = known[i] - known[j]
            if diff > _EPS:
                out.append(_Candidate(i, j, score[i], score[j], False, source))
            elif abs(diff) <= _EPS and i < j:
                out.append(_Candidate(i, j, score[i], score[j], True, source))
    return out


PAIRWISE: Final = "pairwise"  # raw judge_mode of a pairwise judge (pipeline.judge.JUDGE_MODES)
PAIRWISE_POINTS: Final = 6.0  # points one pairwise verdict hands out (pipeline.judge.WIN_POINTS: 5 + 1, 3 + 3)


def _pairwise_candidates(cands: list[int], points: list[float | None], rules: ExportRules) -> list[_Candidate]:
    """Pairs from a pairwise judge: the human answer (index 0) against each model answer it was compared with.

    ``best_worst`` keeps the most decisive comparison (the first on equal margins; a tie if none is decisive)."""
    if 0 not in cands:
        return []
    known = _scores(cands, points)
    out = []
    for i in cands:
        if i == 0 or i not in known:
            continue
        model, human = known[i], PAIRWISE_POINTS - known[i]
        if abs(model - human) <= _EPS:
            out.append(_Candidate(0, i, human, model, True, SOURCE_JUDGE))
        elif model > human:
            out.append(_Candidate(i, 0, model, human, False, SOURCE_JUDGE))
        else:
            out.append(_Candidate(0, i, human, model, False, SOURCE_JUDGE))
    if rules.pairing == PAIRING_BEST_WORST and out:
        decisive = [c for c in out if not c.tie]
        out = [max(decisive, key=_margin_of)] if decisive else out[:1]
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
    known = _scores(rated, hr)
    best_idx = best if abs(known[best] - known[worst]) > _EPS else None
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
        if rules.drop_inconsistent and row.get("judge_inconsistent") is True:
            return [], "inconsistent"
        rated = [c for c in cands if judge[c] is not None]
        if len(rated) < 2:
            return [], "too_few_responses"
        if row.get("judge_mode") == PAIRWISE:
            cand_pairs = _pairwise_candidates(rated, judge, rules)
            if not cand_pairs:
                return [], "too_few_responses"
        else:
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

    Example:

    ```python
    >>> import pyarrow as pa
    >>> raw = pa.Table.from_pylist([
    ...     {"id": "r1", "prompt": "Hoe gaat het?", "target_language": "nld", "status": "ok",
    ...      "responses": ["Goed, dank je.", "Good, thanks."], "response_sources": ["human", "org/model"],
    ...      "ratings": [2, 5], "language_match": [True, False]},
    ...     {"id": "r2", "prompt": "Wat eet je?", "target_language": "nld", "status": "ok",
    ...      "responses": ["Brood.", "Kaas."], "response_sources": ["human", "org/model"],
    ...      "ratings": [3, 3], "language_match": [True, True]}])
    >>> selection = select_pairs(raw, rules=ExportRules(drop_language_mismatch=False))
    >>> pair = selection.pairs[0]
    >>> pair.chosen, pair.rejected, pair.margin, pair.preference_source
    ('Good, thanks.', 'Goed, dank je.', 3.0, 'judge')
    >>> selection.counts["kept"], selection.counts["tie"]
    (1, 1)

    ```
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
            f"{counts['annotations_duplicate']} annotation ids appear twice; the row with the most annotators was used."
        )
    agreement = judge_human_agreement(rows, anns)
    if not pairs:
        raise ExportError(no_rows_message(counts))
    return Selection(
        pairs=pairs,
        counts=dict(counts),
        notes=notes,
        target_language=language,
        agreement=agreement,
        judge=report.judge_stats(raw),
    )


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


# --- Judge versus human agreement ----------------------------------------------------------------------------
def _human_choice(ann: Mapping[str, Any], cands: list[int], n: int) -> int | None:
    """The annotators' best response among the non-empty ones (-1 tie), from their vote or else their ratings."""
    pref = _pref_index(ann)
    if pref is not None and (pref == -1 or pref in cands):
        return pref
    return agreement_mod.preference_from_ratings(_aligned(ann.get("human_ratings"), n), cands)


def judge_human_agreement(rows: Sequence[Mapping[str, Any]], anns: Mapping[str, Mapping[str, Any]]) -> dict:
    """How often the judge's preferred response is the annotators', over the rows where both gave one.

    The figures come from :func:`pipeline.judge.agreement.judge_human_agreement` (shared with the Argilla tab):
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
    if not all(c in table.column_names for c in REQUIRED_ANNOTATION_COLUMNS):
        return table, None
    ann = table.select(["id", *extra])
    return table.drop_columns(extra), ann
