"""Judging one row: the order the answers are shown in, the calls with one retry for an unparseable reply, the
fall-back to text per backend, and the row's verdict.

Owns :class:`StructuredState` (which backends are judged with structured output, or with the text format after a
refusal; :data:`STRUCTURED` is the process's one), the order policies (:func:`presentation_order` seeded by the row
id, :func:`policy_orders`, flips: :func:`preferred`, :func:`is_flip`, :func:`flip_rate`), :func:`judge_row` (one
row's calls through an injected chat function, never a client of its own) and its :class:`RowVerdict`, and the raw
table's judge columns (:func:`verdict_columns`)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
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
from pipeline.judge.parsing import (
    looks_like_json,
    parse_judgement,
    parse_structured_pair,
    parse_structured_ratings,
    parse_text_pair,
)
from pipeline.judge.prompts import (
    _PAIRWISE_FORMAT,
    DEFAULT_ASPECT,
    DEFAULT_MODE,
    DEFAULT_ORDER,
    JUDGE_MODES,
    ORDER_POLICIES,
    _ratings_format,
    judge_messages,
    pairwise_messages,
    structured_ratings_messages,
)

log = logging.getLogger(__name__)


WIN_POINTS: Final = {"win": 5.0, "tie": 3.0, "loss": 1.0}  # pairwise verdicts on the 1-5 rating scale


# RowVerdict.winners values (pairwise: per generator, who won against the human answer)
HUMAN_WON: Final = "human"


MODEL_WON: Final = "model"


TIE: Final = "tie"


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
