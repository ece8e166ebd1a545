"""Pure functions over human answers: per-record aggregation, progress, and judge-versus-human agreement.

No I/O and no Argilla here (``pipeline.argilla`` reads the answers and maps them to raw ``responses`` indices
first), so the Argilla tab, the Export step and the CLI can all reuse them.

Conventions (the same as the raw/annotation contracts in :mod:`pipeline.core.schema`):

- a *preference* is an index into the raw row's ``responses``, ``-1`` for a tie, ``None`` when unknown;
- *ratings* are lists aligned with ``responses``; ``None`` where nobody rated.

Aggregation rules of :func:`aggregate_answers` (documented here because annotators will ask):

- ``human_ratings``: the mean of the annotators' 1-5 ratings of each response.
- ``human_preference``: the most voted answer to "which response is best" (a "tie" vote is an answer like the
  others). When two or more answers share the most votes, the mean ratings break the split: the response they
  rate strictly best wins if it is one of the most voted answers; otherwise the record is a tie (``-1``).
- ``agreement``: the share of annotators in the largest voting block (1.0 = unanimous; 0.5 = a 1:1 split), over
  the annotators who answered the preference question; ``None`` without votes.
- ``improved_response``: the latest non-empty rewrite (by ``submitted_at``, else the last in the given order) by an
  annotator whose vote is the final preference (a rewrite by someone who preferred another response rewrites a
  different text, so it is not used).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

EPS: Final = 1e-9
TIE: Final = -1

OUTCOME_AGREE: Final = "judge agrees"
OUTCOME_DISAGREE: Final = "judge disagrees"
OUTCOME_JUDGE_TIE: Final = "judge says tie, humans do not"
OUTCOME_HUMAN_TIE: Final = "humans say tie, judge does not"
OUTCOMES: Final = (OUTCOME_AGREE, OUTCOME_DISAGREE, OUTCOME_JUDGE_TIE, OUTCOME_HUMAN_TIE)


@dataclass(frozen=True)
class Answer:
    """One annotator's submitted answer to one record, already mapped to raw ``responses`` indices."""

    user: str
    ratings: Mapping[int, float] = field(default_factory=dict)  # raw index -> rating 1-5
    preference: int | None = None  # raw index, -1 = tie, None = not answered
    improved_response: str | None = None
    submitted_at: float | None = None  # POSIX time, to pick the latest rewrite; None = unknown


def as_number(value: Any) -> float | None:
    """A finite number as float, else None (None, booleans, text, NaN and infinities count as missing)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def preference_from_ratings(ratings: Sequence[Any], candidates: Iterable[int] | None = None) -> int | None:
    """The index of the strictly best-rated response, ``-1`` for a tie at the top, ``None`` if fewer than two of
    the ``candidates`` (default: all indices) are rated."""
    values = [as_number(r) for r in ratings]
    cands = range(len(values)) if candidates is None else candidates
    rated = [i for i in cands if 0 <= i < len(values) and values[i] is not None]
    if len(rated) < 2:
        return None
    top = max(values[i] for i in rated)  # type: ignore[type-var]
    best = [i for i in rated if abs(values[i] - top) <= EPS]  # type: ignore[operator]
    return best[0] if len(best) == 1 else TIE


def rating_margin(ratings: Sequence[Any]) -> float | None:
    """Best rating minus the second best (0 for a tie at the top); ``None`` with fewer than two ratings."""
    values = sorted((v for v in (as_number(r) for r in ratings) if v is not None), reverse=True)
    return values[0] - values[1] if len(values) >= 2 else None


def mean_ratings(answers: Sequence[Answer], n_responses: int) -> list[float | None]:
    """Per response, the mean rating over the annotators who rated it (``None`` where nobody did)."""
    sums = [0.0] * n_responses
    counts = [0] * n_responses
    for answer in answers:
        for index, rating in answer.ratings.items():
            value = as_number(rating)
            if value is not None and 0 <= index < n_responses:
                sums[index] += value
                counts[index] += 1
    return [sums[i] / counts[i] if counts[i] else None for i in range(n_responses)]


def majority_preference(
    votes: Sequence[int | None], tie_break_ratings: Sequence[Any] | None = None
) -> tuple[int | None, float | None]:
    """``(preference, agreement)`` from annotators' votes (raw index or -1); see the module docstring."""
    cast = [v for v in votes if v is not None]
    if not cast:
        return None, None
    counts = Counter(cast)
    top = max(counts.values())
    leaders = sorted(v for v, c in counts.items() if c == top)
    agreement = top / len(cast)
    if len(leaders) == 1:
        return leaders[0], agreement
    by_ratings = preference_from_ratings(tie_break_ratings or [])
    return (by_ratings if by_ratings in leaders else TIE), agreement


def aggregate_answers(answers: Sequence[Answer], n_responses: int) -> dict[str, Any]:
    """One annotations row (the ``schema.ANNOTATION_COLUMNS`` except ``id``) from a record's submitted answers."""
    ratings = mean_ratings(answers, n_responses)
    valid = [
        a.preference
        for a in answers
        if a.preference is not None and (a.preference == TIE or 0 <= a.preference < n_responses)
    ]
    preference, agreement = majority_preference(valid, ratings)
    improved = None
    if preference is not None:
        rewrites = [
            a for a in answers if a.preference == preference and a.improved_response and a.improved_response.strip()
        ]
        if rewrites:
            _, _, latest = max(
                (a.submitted_at if a.submitted_at is not None else float("-inf"), pos, a)
                for pos, a in enumerate(rewrites)
            )
            improved = latest.improved_response.strip()  # type: ignore[union-attr]
    return {
        "n_annotators": len({a.user for a in answers}),
        "human_ratings": ratings,
        "human_preference": preference,
        "agreement": agreement,
        "improved_response": improved,
    }


def human_choice(human_preference: Any, human_ratings: Sequence[Any] | None) -> int | None:
    """The humans' preference; from their mean ratings when nobody answered the preference question."""
    pref = as_number(human_preference)
    if pref is not None:
        return int(pref)
    return preference_from_ratings(human_ratings or [])


# --- Agreement ------------------------------------------------------------------------------------------------
def cohens_kappa(pairs: Sequence[tuple[Any, Any]]) -> float | None:
    """Cohen's kappa of two raters over paired labels (any hashable labels; a tie is a label like the others).

    ``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_o`` the observed agreement and ``p_e`` the agreement expected by
    chance from each rater's label frequencies. ``None`` without pairs. When chance agreement is 1 (both raters
    always use the same single label) kappa is undefined: we return 1.0 if they agree on every pair, else 0.0
    (the same convention as :mod:`pipeline.export`). scikit-learn is not a dependency, hence this function.
    """
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(1 for a, b in pairs if a == b) / n
    ca, cb = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(ca[k] * cb.get(k, 0) for k in ca) / (n * n)
    if abs(1 - expected) <= EPS:
        return 1.0 if observed >= 1 - EPS else 0.0
    return (observed - expected) / (1 - expected)


def judge_human_agreement(pairs: Iterable[tuple[int | None, int | None]]) -> dict[str, Any]:
    """How often the judge's preferred response is the humans' one, over ``(judge, human)`` preference pairs.

    Pairs where either side is ``None`` are left out. Returns ``{"rows": n, "agree": k, "share": k/n or None,
    "kappa": Cohen's kappa or None, "outcomes": {outcome: count}}`` with the outcomes of :data:`OUTCOMES`.
    """
    labels: list[tuple[int, int]] = []
    outcomes: Counter = Counter({o: 0 for o in OUTCOMES})
    for judge, human in pairs:
        if judge is None or human is None:
            continue
        labels.append((judge, human))
        if judge == human:
            outcomes[OUTCOME_AGREE] += 1
        elif judge == TIE:
            outcomes[OUTCOME_JUDGE_TIE] += 1
        elif human == TIE:
            outcomes[OUTCOME_HUMAN_TIE] += 1
        else:
            outcomes[OUTCOME_DISAGREE] += 1
    agree = outcomes[OUTCOME_AGREE]
    return {
        "rows": len(labels),
        "agree": agree,
        "share": agree / len(labels) if labels else None,
        "kappa": cohens_kappa(labels),
        "outcomes": dict(outcomes),
    }


def rating_difference(pairs: Iterable[tuple[Sequence[Any], Sequence[Any]]]) -> dict[str, Any]:
    """Mean absolute difference between the judge's and the humans' (mean) ratings, over every response rated by
    both: ``{"responses": n, "mean_abs_diff": x or None}``. Each pair is ``(judge_ratings, human_ratings)``."""
    diffs = []
    for judge, human in pairs:
        for j, h in zip(judge or [], human or []):
            jv, hv = as_number(j), as_number(h)
            if jv is not None and hv is not None:
                diffs.append(abs(jv - hv))
    return {"responses": len(diffs), "mean_abs_diff": sum(diffs) / len(diffs) if diffs else None}


def annotator_agreement(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Inter-annotator agreement: the mean per-record ``agreement`` over records answered by two or more people.

    ``{"records": n, "mean": x or None, "unanimous": k}``."""
    values = [
        as_number(r.get("agreement"))
        for r in rows
        if int(as_number(r.get("n_annotators")) or 0) >= 2 and as_number(r.get("agreement")) is not None
    ]
    return {
        "records": len(values),
        "mean": sum(values) / len(values) if values else None,  # type: ignore[arg-type]
        "unanimous": sum(1 for v in values if v is not None and v >= 1 - EPS),
    }


def progress(total: int, annotated: int, completed: int | None = None) -> dict[str, Any]:
    """``{"total", "annotated", "pending", "share", "completed"}``: annotated = at least one submitted answer;
    completed = as many answers as the dataset asks for (Argilla's task distribution), when known."""
    total = max(0, int(total))
    annotated = max(0, min(int(annotated), total))
    return {
        "total": total,
        "annotated": annotated,
        "pending": total - annotated,
        "share": annotated / total if total else None,
        "completed": completed,
    }
