"""Export, step 1b: turning raw rows into preference pairs, row by row (:func:`select_pairs`).

Applies the :class:`~pipeline.export.rules.ExportRules` to the raw results joined with the annotations: for each
row, the candidates (the human answer and each model's), their scores (people's preference first when the rules
say so, else the judge's ratings or pairwise points), the pairs (best versus worst, or all pairs) and the first rule
that drops the row, counted. Also the target language of a raw table and the judge-versus-people agreement over the
rows where both gave a preference. Pure: no network, no files, no Gradio.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from pipeline.core import schema
from pipeline.export.rules import (
    _EPS,
    DROP_RULES,
    IMPROVED_SOURCE,
    INFO_COUNTERS,
    PAIRING_ALL,
    PAIRING_BEST_WORST,
    SOURCE_HUMAN,
    SOURCE_HUMAN_THEN_JUDGE,
    SOURCE_JUDGE,
    ExportError,
    ExportRules,
    PreferencePair,
    Selection,
    _aligned,
    _blank,
    _human_answered,
    _pref_index,
    _same_text,
    _text,
    check_columns,
    no_rows_message,
    normalize_prompt,
    target_languages,
)
from pipeline.judge import agreement as agreement_mod
from pipeline.judge import report


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
    check_columns(annotations, schema.REQUIRED_ANNOTATION_COLUMNS, "annotations table")
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
        raw: raw pipeline results (``schema.RAW_COLUMNS``; at least ``schema.REQUIRED_RAW_COLUMNS``).
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
    check_columns(raw, schema.REQUIRED_RAW_COLUMNS, "raw results table")
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
