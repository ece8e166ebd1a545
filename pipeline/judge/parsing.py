"""Reading a judge's reply: the plain UltraFeedback text format (:func:`parse_judgement`), structured ratings
(:func:`parse_structured_ratings`) and pairwise verdicts (:func:`parse_structured_pair`, :func:`parse_text_pair`).

A reply is accepted only if it fits: a rating outside 1-5, a missing text or a truncated object make it unparseable,
with a reason that says which and the raw reply kept (truncated). Never a made-up score. Pure functions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from pipeline.judge.prompts import DEFAULT_ASPECT, MAX_RATING, MIN_RATING, WINNERS, _task

RAW_KEEP_CHARS: Final = 4000  # how much of an unparseable reply is kept in the row's ``error``


@dataclass(frozen=True)
class Judgement:
    """The parsed judge reply for one row. ``ratings``/``rationales`` are aligned with the texts judged."""

    ratings: list[int | None]
    rationales: list[str | None]
    parsed: bool
    error: str = ""  # why it is unparseable, with the raw reply (truncated); "" when parsed
    raw: str = field(default="", repr=False)


def _clip(text: str, limit: int = RAW_KEEP_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


def _as_rating(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if int(value) != value or not MIN_RATING <= value <= MAX_RATING:
        return None
    return int(value)


def _unparseable_message(why: str, raw: str) -> str:
    shown = _clip(raw.strip()) if raw.strip() else "(empty reply)"
    return f"judge output unparseable: {why}. Raw reply: {shown}"


def parse_judgement(raw: str | None, n_texts: int, aspect: str = DEFAULT_ASPECT) -> Judgement:
    """Parse a text-format judge reply with distilabel's UltraFeedback parser; it must rate every text exactly once.

    Sections of the reply that distilabel cannot read at all (a preamble, a closing remark) are ignored; the
    reply is accepted only if what remains is exactly ``n_texts`` ratings, each an integer from 1 to 5.
    """
    text = raw or ""
    empty = [None] * n_texts

    def unparseable(why: str) -> Judgement:
        return Judgement(list(empty), list(empty), False, _unparseable_message(why, text), text)

    if not text.strip():
        return unparseable("the judge returned an empty reply")
    task = _task(aspect)
    try:
        out = task.format_output(text, {"instruction": "", "generations": [""] * n_texts})
    except Exception as exc:  # noqa: BLE001 - distilabel's parser raises IndexError/ValueError on odd ratings
        return unparseable(f"the parser failed ({type(exc).__name__})")
    ratings = list(out.get("ratings") or [])
    rationales = list(out.get("rationales") or [])
    extra = list(out.get("rationales-for-ratings") or [None] * len(ratings))
    sections = [
        (r, why, why2)
        for r, why, why2 in zip(ratings, rationales + [None] * len(ratings), extra + [None] * len(ratings))
        if not (r is None and why is None)  # a section distilabel could not match at all
    ]
    if len(sections) != n_texts:
        return unparseable(f"expected {n_texts} 'Rating: …' sections, found {len(sections)}")
    parsed = [_as_rating(r) for r, _, _ in sections]
    if any(r is None for r in parsed):
        got = [r for r, _, _ in sections]
        return unparseable(f"ratings must be integers from {MIN_RATING} to {MAX_RATING}, got {got}")
    reasons: list[str | None] = []
    for _, why, why2 in sections:
        parts = [p.strip() for p in (why, why2) if isinstance(p, str) and p.strip()]
        reasons.append("\n".join(parts) if parts else None)
    return Judgement(parsed, reasons, True, "", text)


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S | re.I)


def _load_json(raw: str) -> tuple[Any, str]:
    """(value, "") or (None, why)."""
    text = raw.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    if not text:
        return None, "the judge returned an empty reply"
    try:
        return json.loads(text), ""
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at character {exc.pos})"


def looks_like_json(raw: str) -> bool:
    """Whether a reply at least starts as a JSON object (a reply that does not ignored the schema altogether)."""
    text = raw.strip()
    fenced = _FENCE.match(text)
    return (fenced.group(1) if fenced else text).lstrip().startswith("{")


def parse_structured_ratings(raw: str, n_texts: int) -> Judgement:
    """Validate a JSON ratings verdict against :func:`ratings_schema` (by hand, with reasons people can read)."""
    empty: list[Any] = [None] * n_texts

    def unparseable(why: str) -> Judgement:
        return Judgement(list(empty), list(empty), False, _unparseable_message(why, raw), raw)

    value, why = _load_json(raw)
    if why:
        return unparseable(why)
    items = value.get("ratings") if isinstance(value, dict) else None
    if not isinstance(items, list):
        return unparseable('expected an object with a "ratings" list')
    if len(items) != n_texts:
        return unparseable(f"expected a rating for each of the {n_texts} texts, got {len(items)}")
    ratings: list[int | None] = []
    rationales: list[str | None] = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict) or "rating" not in item:
            return unparseable(f"text {i} has no rating")
        rating = _as_rating(item["rating"])
        if rating is None:
            return unparseable(
                f"the rating of text {i} is {item['rating']!r}; ratings must be integers from {MIN_RATING} to "
                f"{MAX_RATING}"
            )
        reason = item.get("rationale")
        ratings.append(rating)
        rationales.append(reason.strip() or None if isinstance(reason, str) else None)
    return Judgement(ratings, rationales, True, "", raw)


@dataclass(frozen=True)
class PairVerdict:
    """One parsed pairwise reply: ``winner`` is ``A``/``B``/``tie`` (None when unparseable)."""

    winner: str | None
    reason: str | None
    parsed: bool
    error: str = ""


def _winner(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip().strip("[]").strip()
    for w in WINNERS:
        if value.lower() == w.lower():
            return w
    return None


def parse_structured_pair(raw: str) -> PairVerdict:
    value, why = _load_json(raw)
    if why:
        return PairVerdict(None, None, False, _unparseable_message(why, raw))
    if not isinstance(value, dict) or "winner" not in value:
        return PairVerdict(None, None, False, _unparseable_message('expected an object with a "winner"', raw))
    winner = _winner(value["winner"])
    if winner is None:
        why = f"the winner is {value['winner']!r}; it must be one of {', '.join(WINNERS)}"
        return PairVerdict(None, None, False, _unparseable_message(why, raw))
    reason = value.get("reason")
    return PairVerdict(winner, reason.strip() or None if isinstance(reason, str) else None, True)


_TEXT_VERDICT = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.I)


def parse_text_pair(raw: str) -> PairVerdict:
    """Parse ``[[A]]``/``[[B]]``/``[[tie]]`` (FastChat's ``[[C]]`` = tie) from a text reply; exactly one verdict."""
    if not (raw or "").strip():
        return PairVerdict(None, None, False, _unparseable_message("the judge returned an empty reply", raw or ""))
    found = {("tie" if m.lower() in ("c", "tie") else m.upper()) for m in _TEXT_VERDICT.findall(raw)}
    if len(found) != 1:
        why = "no [[A]], [[B]] or [[tie]] verdict" if not found else f"several verdicts ({', '.join(sorted(found))})"
        return PairVerdict(None, None, False, _unparseable_message(why, raw))
    reason = _TEXT_VERDICT.split(raw)[0].strip() or None
    return PairVerdict(found.pop(), reason, True)
