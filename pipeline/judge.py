"""The UltraFeedback LLM judge: distilabel's ``UltraFeedback`` task builds the prompt and parses the reply.

Only distilabel's *task* is used (its Jinja templates, system prompt and output parser), never its runner or its
LLM clients: the calls themselves go through :mod:`pipeline.inference` like every other call of the app. The task
needs an ``llm`` attribute to be constructed; :class:`_PromptOnlyLLM` is a minimal, documented stand-in that is
never called.

The texts are shown to the judge in the order of the row's ``response_sources`` (the human response first, then
each generator's); UltraFeedback rates each text on its own and the prompt does not say which text is human, and
the order is recorded in the raw dataset (``response_sources``) and in its card.

A reply is accepted only when distilabel's parser finds exactly one rating (an integer 1-5) per text; anything else
is reported as unparseable, with the raw reply kept so that people can see what the judge said.
"""

from __future__ import annotations

import logging
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Final

ASPECTS: Final = ("overall-rating", "helpfulness", "honesty", "instruction-following", "truthfulness")
DEFAULT_ASPECT: Final = "overall-rating"
MIN_RATING: Final = 1
MAX_RATING: Final = 5
RAW_KEEP_CHARS: Final = 4000  # how much of an unparseable reply is kept in the row's ``error``

_STEP_NAME = "dpo_studio_judge"
_tasks: dict[str, Any] = {}  # process-wide read-only cache: aspect -> loaded UltraFeedback task
_tasks_lock = threading.Lock()


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
    task = UltraFeedback(name=_STEP_NAME, llm=_PromptOnlyLLM(), aspect=aspect, use_default_structured_output=False)
    task.load()
    return task


def judge_messages(instruction: str, texts: list[str], aspect: str = DEFAULT_ASPECT) -> list[dict]:
    """The chat messages (system + user) that ask the judge to rate each of ``texts`` for ``instruction``."""
    if not texts:
        raise ValueError("Nothing to judge: no texts.")
    return _task(aspect).format_input({"instruction": instruction, "generations": list(texts)})


def _clip(text: str, limit: int = RAW_KEEP_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


def _as_rating(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if int(value) != value or not MIN_RATING <= value <= MAX_RATING:
        return None
    return int(value)


def parse_judgement(raw: str | None, n_texts: int, aspect: str = DEFAULT_ASPECT) -> Judgement:
    """Parse a judge reply with distilabel's UltraFeedback parser and check it rates every text exactly once.

    Sections of the reply that distilabel cannot read at all (a preamble, a closing remark) are ignored; the
    reply is accepted only if what remains is exactly ``n_texts`` ratings, each an integer from 1 to 5.
    """
    text = raw or ""
    empty = [None] * n_texts

    def unparseable(why: str) -> Judgement:
        shown = _clip(text.strip()) if text.strip() else "(empty reply)"
        return Judgement(list(empty), list(empty), False, f"judge output unparseable: {why}. Raw reply: {shown}", text)

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
        return unparseable(f"ratings must be integers from {MIN_RATING} to {MAX_RATING}, got {[r for r, _, _ in sections]}")
    reasons: list[str | None] = []
    for _, why, why2 in sections:
        parts = [p.strip() for p in (why, why2) if isinstance(p, str) and p.strip()]
        reasons.append("\n".join(parts) if parts else None)
    return Judgement(parsed, reasons, True, "", text)


def default_max_new_tokens(n_texts: int) -> int:
    """A generous reply budget for rating ``n_texts`` texts (a rating and a few sentences each)."""
    return 128 + 256 * max(1, n_texts)
