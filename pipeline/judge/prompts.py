"""The judge's prompts and output schemas (no calls, no parsing).

Owns the judge's settings (aspects, modes, order policies, the rating scale), distilabel's ``UltraFeedback`` task
used only for its prompt templates (never its runner or LLM clients; :class:`_PromptOnlyLLM` lets the task be built
and is never called), the structured-output schemas (:func:`ratings_schema`, :func:`pairwise_schema`) and the
messages of each mode (:func:`judge_messages` for the text format, :func:`structured_ratings_messages`,
:func:`pairwise_messages`), the reply budget (:func:`default_max_new_tokens`) and the prompt's token overhead for
estimates (:func:`prompt_overhead`)."""

from __future__ import annotations

import json
import logging
import threading
import warnings
from typing import Any, Final

from pipeline.inference import (
    ResponseFormat,
    estimate_tokens,
)

ASPECTS: Final = ("overall-rating", "helpfulness", "honesty", "instruction-following", "truthfulness")


DEFAULT_ASPECT: Final = "overall-rating"


JUDGE_MODES: Final = ("ratings", "pairwise")  # ratings = UltraFeedback 1-5 per text; pairwise = A/B/tie


DEFAULT_MODE: Final = "ratings"


ORDER_POLICIES: Final = ("random", "both")  # random: one call per row, order seeded by the row id; both: two calls


DEFAULT_ORDER: Final = "random"


MIN_RATING: Final = 1


MAX_RATING: Final = 5


RATIONALE_MAX_CHARS: Final = 300  # "a short rationale": also bounds what a small model can ramble on in JSON
WINNERS: Final = ("A", "B", "tie")  # a pairwise verdict's winner


_STEP_NAME = "dpo_studio_judge"


_tasks: dict[str, Any] = {}  # process-wide read-only cache: aspect -> loaded UltraFeedback task


_tasks_lock = threading.Lock()


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


def default_max_new_tokens(n_texts: int) -> int:
    """A generous reply budget for rating ``n_texts`` texts (a rating and a few sentences each)."""
    return 128 + 256 * max(1, n_texts)


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


_OVERHEAD: dict[tuple[str, int], int] = {}


def prompt_overhead(aspect: str, n_texts: int) -> int:
    """Estimated tokens of the judge prompt's template around the prompt and the ``n_texts`` answers (computed once
    per shape): what a run's and a judge check's estimates add per judge call."""
    key = (aspect, n_texts)
    if key not in _OVERHEAD:
        messages = judge_messages("", [""] * n_texts, aspect)
        _OVERHEAD[key] = sum(estimate_tokens(m["content"]) for m in messages)
    return _OVERHEAD[key]
