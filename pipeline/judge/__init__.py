"""The LLM judge: UltraFeedback ratings or a pairwise A/B/tie verdict, asked for as JSON, in a bias-aware order.

What this module owns and promises:

- **Prompts.** Ratings mode uses distilabel's ``UltraFeedback`` task (its Jinja templates and system prompt; only the
  *task*, never distilabel's runner or LLM clients: calls go through :mod:`pipeline.inference` like every other call
  of the app). :class:`_PromptOnlyLLM` is a minimal, documented stand-in that lets the task be built; it is never
  called. Pairwise mode asks "which answer is better for this prompt: A, B, or tie?" in the style of FastChat's
  MT-Bench pairwise judge.
- **Structured verdicts.** Each call asks for JSON that fits a schema (:func:`ratings_schema`: per text an integer
  rating 1-5 and a short rationale; :func:`pairwise_schema`: a reason and the winner ``A``/``B``/``tie``) through
  ``GenParams.response_format``; :mod:`pipeline.inference` turns that into the backend's dialect. A reply is
  accepted only if it fits: a rating of 7, a missing text or a truncated object make it unparseable, with a reason
  that says which. An unparseable structured reply is asked once more (with another seed; with twice the token
  budget if it was cut off); if that fails too the row is ``judge_unparseable`` with the raw reply kept. Never a
  made-up score.
- **Falling back to text.** When a backend refuses structured output (HTTP 400/422 to ``response_format`` while the
  same call without it works) or its replies ignore the schema (plain text instead of JSON), that backend is judged
  with the plain UltraFeedback text format (or ``[[A]]``/``[[B]]``/``[[tie]]`` for pairwise) for the rest of the
  process. :class:`StructuredState` remembers this per backend and model; :data:`STRUCTURED` is the process-wide
  instance, and ``StructuredState.notice(backend)`` gives the sentence a run shows its user.
- **Order.** The texts are shown in a random order per row, seeded by the row id (:func:`presentation_order`; the
  same id always gets the same order), recorded in :class:`RowVerdict` ``orders``. With the ``both`` policy each row
  is judged twice, the second time in the reverse order; ratings are averaged, and a row whose preferred text
  changes between the two orders is ``inconsistent`` (see :func:`preferred`).
- **Pairwise scores.** Pairwise mode compares the human answer (text 0) with each generator's answer. Every verdict
  gives the winner 5 points, the loser 1, and 3 each for a tie; ``RowVerdict.ratings`` are the mean points (over
  orders, and for the human over all comparisons), on the same 1-5 scale as UltraFeedback, so the export rules
  (margin, ties, minimum rating) apply alike. ``RowVerdict.winners`` says per generator who won after averaging:
  ``"human"``, ``"model"`` or ``"tie"`` (a verdict that flipped between the orders averages to a tie).

``judge_messages`` / ``parse_judgement`` (the text format) are kept for the text fallback, the plan's token estimate
and the generated distilabel ``pipeline.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from pipeline.core import schema
from pipeline.inference import (
    Backend,
    ChatResult,
    GenParams,
    InferenceError,
    ResponseFormat,
    estimate_tokens,
    is_schema_refusal,
)

log = logging.getLogger(__name__)

ASPECTS: Final = ("overall-rating", "helpfulness", "honesty", "instruction-following", "truthfulness")
DEFAULT_ASPECT: Final = "overall-rating"
JUDGE_MODES: Final = ("ratings", "pairwise")  # ratings = UltraFeedback 1-5 per text; pairwise = A/B/tie
DEFAULT_MODE: Final = "ratings"
ORDER_POLICIES: Final = ("random", "both")  # random: one call per row, order seeded by the row id; both: two calls
DEFAULT_ORDER: Final = "random"
MIN_RATING: Final = 1
MAX_RATING: Final = 5
RATIONALE_MAX_CHARS: Final = 300  # "a short rationale": also bounds what a small model can ramble on in JSON
RAW_KEEP_CHARS: Final = 4000  # how much of an unparseable reply is kept in the row's ``error``
WINNERS: Final = ("A", "B", "tie")
WIN_POINTS: Final = {"win": 5.0, "tie": 3.0, "loss": 1.0}  # pairwise verdicts on the 1-5 rating scale
# RowVerdict.winners values (pairwise: per generator, who won against the human answer)
HUMAN_WON: Final = "human"
MODEL_WON: Final = "model"
TIE: Final = "tie"

_STEP_NAME = "dpo_studio_judge"
_tasks: dict[str, Any] = {}  # process-wide read-only cache: aspect -> loaded UltraFeedback task
_tasks_lock = threading.Lock()


# ---------------------------------------------------------------------------------------------------------------
# distilabel's UltraFeedback task: prompt and text-format parser
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Judgement:
    """The parsed judge reply for one row. ``ratings``/``rationales`` are aligned with the texts judged."""

    ratings: list[int | None]
    rationales: list[str | None]
    parsed: bool
    error: str = ""  # why it is unparseable, with the raw reply (truncated); "" when parsed
    raw: str = field(default="", repr=False)


def _task(aspect: str) -> Any:
    """The loaded distilabel ``UltraFeedback`` task for ``aspect`` (built once per process)."""
    if aspect not in ASPECTS:
        raise ValueError(f"Unknown UltraFeedback aspect {aspect!r}; choose one of {', '.join(ASPECTS)}.")
    with _tasks_lock:
        task = _tasks.get(aspect)
        if task is not None:
            return task
        with warnings.catch_warnings():
            # distilabel emits pydantic schema warnings that say nothing to our users
            warnings.simplefilter("ignore")
            task = _build_task(aspect)
        _tasks[aspect] = task
        return task


def _build_task(aspect: str) -> Any:
    from distilabel.models.llms.base import LLM
    from distilabel.steps.tasks import UltraFeedback

    class _PromptOnlyLLM(LLM):
        """Lets the task be built outside a distilabel pipeline: we only use its prompt and parser."""

        @property
        def model_name(self) -> str:
            return "dpo-studio-judge"

        def load(self) -> None:  # nothing to load
            pass

        def generate(self, inputs: Any, num_generations: int = 1, **kwargs: Any) -> Any:
            raise NotImplementedError("DPO Studio sends judge calls through pipeline.inference")

    # Built outside a `Pipeline` context on purpose; distilabel logs a warning about that on this logger.
    logging.getLogger(f"distilabel.step.{_STEP_NAME}").setLevel(logging.ERROR)
    # Our own JSON schema and parser are used (distilabel's default schema has no bounds on ratings or counts),
    # so the task's own structured output stays off here.
    task = UltraFeedback(name=_STEP_NAME, llm=_PromptOnlyLLM(), aspect=aspect, use_default_structured_output=False)
    task.load()
    return task


def judge_messages(instruction: str, texts: list[str], aspect: str = DEFAULT_ASPECT) -> list[dict]:
    """The chat messages (system + user) that ask the judge to rate each of ``texts`` for ``instruction``."""
    if not texts:
        raise ValueError("Nothing to judge: no texts.")
    return _task(aspect).format_input({"instruction": instruction, "generations": list(texts)})


def distilabel_schema(aspect: str = DEFAULT_ASPECT) -> dict:
    """distilabel's own UltraFeedback JSON schema for ``aspect`` (what ``use_default_structured_output`` sends; the
    generated distilabel ``pipeline.py`` uses it, bounded)."""
    return json.loads(json.dumps(_task(aspect).get_structured_output()))


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


def default_max_new_tokens(n_texts: int) -> int:
    """A generous reply budget for rating ``n_texts`` texts (a rating and a few sentences each)."""
    return 128 + 256 * max(1, n_texts)


# ---------------------------------------------------------------------------------------------------------------
# Structured output: schemas, prompts and validating parsers
# ---------------------------------------------------------------------------------------------------------------
def ratings_schema(n_texts: int) -> dict:
    """JSON schema of a ratings verdict: exactly ``n_texts`` items, each ``{"rating": 1-5, "rationale": "..."}``.

    Ratings are an ``enum`` (every grammar engine supports it; integer ``minimum``/``maximum`` are not universal).
    """
    item = {
        "type": "object",
        "properties": {
            "rating": {"type": "integer", "enum": list(range(MIN_RATING, MAX_RATING + 1))},
            "rationale": {"type": "string", "maxLength": RATIONALE_MAX_CHARS},
        },
        "required": ["rating", "rationale"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"ratings": {"type": "array", "items": item, "minItems": n_texts, "maxItems": n_texts}},
        "required": ["ratings"],
        "additionalProperties": False,
    }


def pairwise_schema() -> dict:
    """JSON schema of a pairwise verdict: ``{"reason": "...", "winner": "A" | "B" | "tie"}`` (reason first, so the
    verdict follows the judge's reasoning)."""
    return {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "maxLength": RATIONALE_MAX_CHARS},
            "winner": {"type": "string", "enum": list(WINNERS)},
        },
        "required": ["reason", "winner"],
        "additionalProperties": False,
    }


def _ratings_format(n_texts: int) -> ResponseFormat:
    return ResponseFormat.of("ultrafeedback_ratings", ratings_schema(n_texts))


_PAIRWISE_FORMAT: Final = ResponseFormat.of("pairwise_verdict", pairwise_schema())


def structured_ratings_messages(instruction: str, texts: list[str], aspect: str = DEFAULT_ASPECT) -> list[dict]:
    """UltraFeedback's messages, with the answer format switched from "Rating:/Rationale:" sections to JSON."""
    messages = judge_messages(instruction, texts, aspect)
    n = len(texts)
    example = ", ".join(f'{{"rating": <1-5 for text {i + 1}>, "rationale": "<one short sentence>"}}' for i in range(n))
    note = (
        f"\nAnswer with JSON only, one item per text in the order of the texts ({n} items):\n"
        f'{{"ratings": [{example}]}}\n'
    )
    return [messages[0], {**messages[1], "content": messages[1]["content"] + note}]


PAIRWISE_SYSTEM: Final = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user question displayed below. Choose the assistant that follows the user's instructions and answers the "
    "user's question better, in the language the user asked in. Consider helpfulness, relevance, accuracy, depth "
    "and level of detail. Avoid any position bias: the order in which the responses are presented must not "
    "influence your decision. Do not let the length of the responses or the names of the assistants influence "
    "you. Be as objective as possible."
)
_PAIRWISE_TEXT_FORMAT: Final = (
    'Begin with a short explanation, then give your final verdict strictly in this format: "[[A]]" if assistant A '
    'is better, "[[B]]" if assistant B is better, and "[[tie]]" for a tie.'
)
_PAIRWISE_JSON_FORMAT: Final = (
    'Answer with JSON only: {"reason": "<a short explanation>", "winner": "A" or "B" or "tie"}.'
)


def pairwise_messages(instruction: str, answer_a: str, answer_b: str, *, structured: bool = True) -> list[dict]:
    """The chat messages asking which of two answers is better for ``instruction``: A, B or tie."""
    user = (
        f"[User Question]\n{instruction}\n\n"
        f"[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
        f"[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]\n\n"
        + (_PAIRWISE_JSON_FORMAT if structured else _PAIRWISE_TEXT_FORMAT)
    )
    return [{"role": "system", "content": PAIRWISE_SYSTEM}, {"role": "user", "content": user}]


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


# ---------------------------------------------------------------------------------------------------------------
# Per-backend memory: structured output, or the text format after a refusal
# ---------------------------------------------------------------------------------------------------------------
class StructuredState:
    """Which backends are judged with structured output. Thread-safe; :data:`STRUCTURED` is the process's one.

    ``enabled=False`` judges everything with the text format (a baseline, or a user's choice).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._fallen: dict[tuple, str] = {}

    @staticmethod
    def _key(backend: Backend) -> tuple:
        return (*backend.key, backend.model)

    def use_structured(self, backend: Backend) -> bool:
        with self._lock:
            return self.enabled and self._key(backend) not in self._fallen

    def fall_back(self, backend: Backend, reason: str) -> None:
        """From now on ``backend`` is judged with the text format (for the rest of the process)."""
        with self._lock:
            if self._key(backend) in self._fallen:
                return
            self._fallen[self._key(backend)] = reason
        log.warning("judge %s: structured output off for the rest of the process: %s", backend.label, reason)

    def reason(self, backend: Backend) -> str | None:
        """Why ``backend`` fell back to the text format, or None while it uses structured output."""
        with self._lock:
            return self._fallen.get(self._key(backend))

    def notice(self, backend: Backend) -> str:
        """The sentence a run shows when ``backend`` fell back to text ("" when it did not)."""
        why = self.reason(backend)
        if why is None:
            return ""
        return (
            f"Judge {backend.model}: {why}, so it is judged with the plain UltraFeedback text format for the rest of "
            "this session (replies that do not parse stay judge_unparseable). A model or server with JSON-schema "
            "support parses more reliably."
        )

    def forget(self, backend: Backend | None = None) -> None:
        """Try structured output again (for ``backend``, or for every backend)."""
        with self._lock:
            if backend is None:
                self._fallen.clear()
            else:
                self._fallen.pop(self._key(backend), None)


STRUCTURED: Final = StructuredState()
TEXT_ONLY: Final = StructuredState(enabled=False)  # for runs (and baselines) that ask for the text format


def structured_state(use_structured: bool = True) -> StructuredState:
    """The process-wide state for runs that ask for structured output, or one that always uses text."""
    return STRUCTURED if use_structured else TEXT_ONLY


# ---------------------------------------------------------------------------------------------------------------
# Order
# ---------------------------------------------------------------------------------------------------------------
def presentation_order(row_id: str, n: int) -> list[int]:
    """Deterministic random permutation of ``range(n)`` seeded by ``row_id`` (same id -> same order)."""
    seed = int.from_bytes(hashlib.sha256(f"dpo-studio/judge-order/{row_id}".encode()).digest()[:8], "big")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def policy_orders(row_id: str, n: int, order: str) -> list[list[int]]:
    """The presentation order(s) of one judgement: one random order, or it and its reverse (``both``)."""
    if order not in ORDER_POLICIES:
        raise ValueError(f"Unknown judge order {order!r}; choose one of {', '.join(ORDER_POLICIES)}.")
    first = presentation_order(row_id, n)
    return [first, first[::-1]] if order == "both" else [first]


def preferred(ratings: list[float | None]) -> int | None:
    """The index of the single best-rated text, or None for a tie at the top (or no ratings)."""
    known = [(r, i) for i, r in enumerate(ratings) if r is not None]
    if not known:
        return None
    best = max(r for r, _ in known)
    top = [i for r, i in known if r == best]
    return top[0] if len(top) == 1 else None


def mean_ratings(per_order: list[list[float | None]]) -> list[float | None]:
    """Per text, the mean of its ratings over the orders (None where any order has none)."""
    out: list[float | None] = []
    for values in zip(*per_order):
        numbers = [v for v in values if v is not None]
        out.append(None if len(numbers) < len(values) else sum(numbers) / len(numbers))
    return out


def is_flip(per_order: list[list[float | None]]) -> bool | None:
    """Whether the preferred text changed between the orders (None when judged once)."""
    if len(per_order) < 2:
        return None
    prefs = {preferred(r) for r in per_order}
    return len(prefs) > 1


def flip_rate(inconsistent: list[bool | None]) -> float | None:
    """Share of rows judged in both orders whose preferred text flipped (None when no row was judged twice)."""
    judged = [x for x in inconsistent if x is not None]
    return sum(1 for x in judged if x) / len(judged) if judged else None


# ---------------------------------------------------------------------------------------------------------------
# One row
# ---------------------------------------------------------------------------------------------------------------
JudgeChat = Callable[[Backend, list[dict], GenParams], Awaitable[ChatResult]]  # one call; raises InferenceError


@dataclass(frozen=True)
class RowVerdict:
    """The judge's verdict on one row; ``ratings``/``rationales`` are aligned with the texts AS GIVEN."""

    status: str  # schema.STATUS_OK | STATUS_JUDGE_UNPARSEABLE | STATUS_JUDGE_FAILED
    error: str  # "" when ok; for unparseable it keeps the raw reply (clipped)
    ratings: list[float | None]  # mean over orders; pairwise: mean points (see the module docstring)
    rationales: list[str | None]
    orders: list[list[int]]  # the presentation order(s) used (ratings: permutations; pairwise: [i, j] per call)
    inconsistent: bool | None  # both orders: the preferred text changed between them; None when judged once
    structured: bool  # every call used structured output (False: at least one fell back to text)
    tokens: int
    latency_s: float
    winners: list[str] | None = None  # pairwise: per generator, "human" | "model" | "tie"; None for ratings

    @property
    def ok(self) -> bool:
        return self.status == schema.STATUS_OK


@dataclass
class _Ask:
    """One judgement to obtain (one order of one comparison), in both formats."""

    structured_messages: list[dict]
    text_messages: list[dict]
    response_format: ResponseFormat
    parse_structured: Callable[[str], Any]  # -> Judgement | PairVerdict
    parse_text: Callable[[str], Any]


@dataclass
class _Answer:
    verdict: Any  # Judgement | PairVerdict (``parsed`` says whether it is usable)
    structured: bool
    tokens: int


def _tokens(result: ChatResult, messages: list[dict]) -> int:
    prompt = result.prompt_tokens or sum(estimate_tokens(str(m.get("content") or "")) for m in messages)
    return prompt + (result.completion_tokens or estimate_tokens(result.text or ""))


def _retry_params(params: GenParams, result: ChatResult) -> GenParams:
    """A second try should not repeat the first reply: another seed; twice the budget if it was cut off."""
    seed = None if params.seed is None else params.seed + 1
    tokens = params.max_new_tokens * 2 if result.finish_reason == "length" else params.max_new_tokens
    return replace(params, seed=seed, max_new_tokens=tokens)


async def _ask(chat: JudgeChat, backend: Backend, params: GenParams, ask: _Ask, state: StructuredState) -> _Answer:
    tokens = 0
    if state.use_structured(backend):
        call_params = replace(params, response_format=ask.response_format)
        verdict = None
        for attempt in (1, 2):
            try:
                result = await chat(backend, ask.structured_messages, call_params)
            except InferenceError as exc:
                if not is_schema_refusal(exc):
                    raise
                # Only a refusal if the same call without the schema works (that call raises otherwise).
                text_result = await chat(backend, ask.text_messages, params)
                state.fall_back(backend, f"the server refused structured output ({exc.status or exc.kind})")
                return _Answer(ask.parse_text(text_result.text or ""), False, _tokens(text_result, ask.text_messages))
            tokens += _tokens(result, ask.structured_messages)
            reply = result.text or ""
            verdict = ask.parse_structured(reply)
            if verdict.parsed:
                return _Answer(verdict, True, tokens)
            if reply.strip() and not looks_like_json(reply):  # plain text: the server ignored the schema
                as_text = ask.parse_text(reply)
                if as_text.parsed or attempt == 2:
                    state.fall_back(backend, "its replies ignore the JSON schema")
                    return _Answer(as_text if as_text.parsed else verdict, False, tokens)
            if attempt == 1:
                call_params = _retry_params(call_params, result)
        assert verdict is not None  # both attempts returned a reply (a failed call raises)
        return _Answer(
            replace(verdict, error=verdict.error.replace("unparseable:", "unparseable (after a retry):", 1)),
            True,
            tokens,
        )
    result = await chat(backend, ask.text_messages, params)
    return _Answer(ask.parse_text(result.text or ""), False, _tokens(result, ask.text_messages))


async def _gather(coros: list[Awaitable[_Answer]]) -> list[_Answer]:
    """Run the calls of one row side by side; the first failure cancels the others and is raised as is."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _failed_verdict(n: int, orders: list[list[int]], answers: list[_Answer], started: float, mode: str) -> RowVerdict:
    bad = [a.verdict for a in answers if not a.verdict.parsed]
    error = bad[0].error
    if len(answers) > 1:
        error = f"{len(bad)} of {len(answers)} judge calls did not parse; first: {error}"
    return RowVerdict(
        status=schema.STATUS_JUDGE_UNPARSEABLE,
        error=error,
        ratings=[None] * n,
        rationales=[None] * n,
        orders=orders,
        inconsistent=None,
        structured=all(a.structured for a in answers),
        tokens=sum(a.tokens for a in answers),
        latency_s=time.perf_counter() - started,
        winners=None if mode == "ratings" else [],
    )


async def judge_row(
    chat: JudgeChat,
    backend: Backend,
    params: GenParams,
    *,
    prompt: str,
    texts: list[str],
    row_id: str,
    mode: str = DEFAULT_MODE,
    aspect: str = DEFAULT_ASPECT,
    order: str = DEFAULT_ORDER,
    structured: StructuredState | None = None,
) -> RowVerdict:
    """Judge one row (``texts[0]`` the human answer, then each generator's).

    Raises ``InferenceError`` for call failures the caller must classify (auth, 404, 402...); returns a
    ``RowVerdict`` with ``STATUS_JUDGE_UNPARSEABLE`` (raw reply kept) after one retry of an unparseable structured
    reply. ``structured`` defaults to the process-wide :data:`STRUCTURED`.
    """
    if mode not in JUDGE_MODES:
        raise ValueError(f"Unknown judge mode {mode!r}; choose one of {', '.join(JUDGE_MODES)}.")
    if order not in ORDER_POLICIES:
        raise ValueError(f"Unknown judge order {order!r}; choose one of {', '.join(ORDER_POLICIES)}.")
    if not texts:
        raise ValueError("Nothing to judge: no texts.")
    state = STRUCTURED if structured is None else structured
    started = time.perf_counter()
    n = len(texts)
    if mode == "ratings":
        return await _judge_ratings(chat, backend, params, prompt, texts, row_id, aspect, order, state, started)
    if n < 2:
        raise ValueError("A pairwise judgement needs the human answer and at least one model answer.")
    return await _judge_pairwise(chat, backend, params, prompt, texts, row_id, order, state, started)


async def _judge_ratings(
    chat: JudgeChat,
    backend: Backend,
    params: GenParams,
    prompt: str,
    texts: list[str],
    row_id: str,
    aspect: str,
    order: str,
    state: StructuredState,
    started: float,
) -> RowVerdict:
    n = len(texts)
    orders = policy_orders(row_id, n, order)
    asks = []
    for perm in orders:
        shown = [texts[i] for i in perm]
        asks.append(
            _Ask(
                structured_messages=structured_ratings_messages(prompt, shown, aspect),
                text_messages=judge_messages(prompt, shown, aspect),
                response_format=_ratings_format(n),
                parse_structured=lambda raw: parse_structured_ratings(raw, n),
                parse_text=lambda raw: parse_judgement(raw, n, aspect),
            )
        )
    answers = await _gather([_ask(chat, backend, params, a, state) for a in asks])
    if not all(a.verdict.parsed for a in answers):
        return _failed_verdict(n, orders, answers, started, "ratings")
    per_order: list[list[float | None]] = []
    rationales: list[str | None] = [None] * n
    for perm, answer in zip(orders, answers):
        ratings: list[float | None] = [None] * n
        for shown_at, source in enumerate(perm):
            ratings[source] = float(answer.verdict.ratings[shown_at])
            if rationales[source] is None:  # the first order's rationale (the one seeded by the row id)
                rationales[source] = answer.verdict.rationales[shown_at]
        per_order.append(ratings)
    return RowVerdict(
        status=schema.STATUS_OK,
        error="",
        ratings=mean_ratings(per_order),
        rationales=rationales,
        orders=orders,
        inconsistent=is_flip(per_order),
        structured=all(a.structured for a in answers),
        tokens=sum(a.tokens for a in answers),
        latency_s=time.perf_counter() - started,
    )


def _points(winner: str) -> tuple[float, float]:
    """(points of answer A, points of answer B) for one verdict."""
    if winner == "A":
        return WIN_POINTS["win"], WIN_POINTS["loss"]
    if winner == "B":
        return WIN_POINTS["loss"], WIN_POINTS["win"]
    return WIN_POINTS["tie"], WIN_POINTS["tie"]


async def _judge_pairwise(
    chat: JudgeChat,
    backend: Backend,
    params: GenParams,
    prompt: str,
    texts: list[str],
    row_id: str,
    order: str,
    state: StructuredState,
    started: float,
) -> RowVerdict:
    n = len(texts)
    calls: list[tuple[int, list[int]]] = []  # (generator index, [shown as A, shown as B]) in source indices
    for gen in range(1, n):
        for perm in policy_orders(f"{row_id}/{gen}", 2, order):
            calls.append((gen, [(0, gen)[p] for p in perm]))
    asks = [
        _Ask(
            structured_messages=pairwise_messages(prompt, texts[a], texts[b], structured=True),
            text_messages=pairwise_messages(prompt, texts[a], texts[b], structured=False),
            response_format=_PAIRWISE_FORMAT,
            parse_structured=parse_structured_pair,
            parse_text=parse_text_pair,
        )
        for _, (a, b) in calls
    ]
    answers = await _gather([_ask(chat, backend, params, ask, state) for ask in asks])
    shown_orders = [pair for _, pair in calls]
    if not all(a.verdict.parsed for a in answers):
        return _failed_verdict(n, shown_orders, answers, started, "pairwise")
    # per generator: per order, [human points, model points]
    per_gen: dict[int, list[list[float | None]]] = {gen: [] for gen in range(1, n)}
    reasons: dict[int, str | None] = {}
    for (gen, (a, b)), answer in zip(calls, answers):
        pa_, pb_ = _points(answer.verdict.winner)
        points = {a: pa_, b: pb_}
        per_gen[gen].append([points[0], points[gen]])
        reasons.setdefault(gen, answer.verdict.reason)
    ratings: list[float | None] = [None] * n
    winners: list[str] = []
    flips: list[bool | None] = []
    human_points: list[float] = []
    for gen in range(1, n):
        human, model = mean_ratings(per_gen[gen])
        ratings[gen] = model
        human_points.append(human)  # type: ignore[arg-type]
        winners.append(HUMAN_WON if human > model else MODEL_WON if model > human else TIE)  # type: ignore[operator]
        flips.append(is_flip(per_gen[gen]))
    ratings[0] = sum(human_points) / len(human_points)
    rationales: list[str | None] = [None] * n
    for gen in range(1, n):
        rationales[gen] = reasons.get(gen)
    inconsistent = None if all(f is None for f in flips) else any(bool(f) for f in flips)
    return RowVerdict(
        status=schema.STATUS_OK,
        error="",
        ratings=ratings,
        rationales=rationales,
        orders=shown_orders,
        inconsistent=inconsistent,
        structured=all(a.structured for a in answers),
        tokens=sum(a.tokens for a in answers),
        latency_s=time.perf_counter() - started,
        winners=winners,
    )


def verdict_columns(mode: str, verdict: RowVerdict | None) -> dict[str, Any]:
    """The raw row's ``schema.JUDGE_COLUMNS`` for ``verdict`` (None: the row was not judged)."""
    if verdict is None:
        return {
            "judge_mode": mode,
            "judge_orders": None,
            "judge_inconsistent": None,
            "judge_structured": None,
            "judge_winners": None,
        }
    return {
        "judge_mode": mode,
        "judge_orders": [list(o) for o in verdict.orders] or None,
        "judge_inconsistent": verdict.inconsistent,
        "judge_structured": verdict.structured,
        "judge_winners": list(verdict.winners) if verdict.winners else None,
    }


def judge_calls_per_row(n_texts: int, mode: str = DEFAULT_MODE, order: str = DEFAULT_ORDER) -> int:
    """How many judge calls one row costs (before retries): for the run's and the judge check's estimates."""
    per = 2 if order == "both" else 1
    return per if mode == "ratings" else per * max(1, n_texts - 1)


_OVERHEAD: dict[tuple[str, int], int] = {}


def prompt_overhead(aspect: str, n_texts: int) -> int:
    """Estimated tokens of the judge prompt's template around the prompt and the ``n_texts`` answers (computed once
    per shape): what a run's and a judge check's estimates add per judge call."""
    key = (aspect, n_texts)
    if key not in _OVERHEAD:
        messages = judge_messages("", [""] * n_texts, aspect)
        _OVERHEAD[key] = sum(estimate_tokens(m["content"]) for m in messages)
    return _OVERHEAD[key]
