"""The LLM judge: UltraFeedback ratings or a pairwise A/B/tie verdict, asked for as JSON, in a bias-aware order.

What this package owns and promises (``prompts``: the prompts and schemas; ``parsing``: reading replies;
``verdicts``: judging a row; ``check``: the judge check; ``agreement``: people's answers and Cohen's kappa;
``report``: what the judge did, for the app and the cards). This module re-exports the API the steps use:

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

from pipeline.judge.parsing import (
    RAW_KEEP_CHARS,
    Judgement,
    PairVerdict,
    looks_like_json,
    parse_judgement,
    parse_structured_pair,
    parse_structured_ratings,
    parse_text_pair,
)
from pipeline.judge.prompts import (
    ASPECTS,
    DEFAULT_ASPECT,
    DEFAULT_MODE,
    DEFAULT_ORDER,
    JUDGE_MODES,
    MAX_RATING,
    MIN_RATING,
    ORDER_POLICIES,
    PAIRWISE_SYSTEM,
    RATIONALE_MAX_CHARS,
    WINNERS,
    default_max_new_tokens,
    distilabel_schema,
    judge_messages,
    pairwise_messages,
    pairwise_schema,
    prompt_overhead,
    ratings_schema,
    structured_ratings_messages,
)
from pipeline.judge.verdicts import (
    HUMAN_WON,
    MODEL_WON,
    STRUCTURED,
    TEXT_ONLY,
    TIE,
    WIN_POINTS,
    JudgeChat,
    RowVerdict,
    StructuredState,
    flip_rate,
    is_flip,
    judge_calls_per_row,
    judge_row,
    mean_ratings,
    policy_orders,
    preferred,
    presentation_order,
    structured_state,
    verdict_columns,
)

__all__ = [
    "ASPECTS",
    "DEFAULT_ASPECT",
    "DEFAULT_MODE",
    "DEFAULT_ORDER",
    "JUDGE_MODES",
    "MAX_RATING",
    "MIN_RATING",
    "ORDER_POLICIES",
    "PAIRWISE_SYSTEM",
    "RATIONALE_MAX_CHARS",
    "default_max_new_tokens",
    "distilabel_schema",
    "judge_messages",
    "pairwise_messages",
    "pairwise_schema",
    "prompt_overhead",
    "ratings_schema",
    "structured_ratings_messages",
    "Judgement",
    "PairVerdict",
    "RAW_KEEP_CHARS",
    "WINNERS",
    "looks_like_json",
    "parse_judgement",
    "parse_structured_pair",
    "parse_structured_ratings",
    "parse_text_pair",
    "HUMAN_WON",
    "JudgeChat",
    "MODEL_WON",
    "RowVerdict",
    "STRUCTURED",
    "StructuredState",
    "TEXT_ONLY",
    "TIE",
    "WIN_POINTS",
    "flip_rate",
    "is_flip",
    "judge_calls_per_row",
    "judge_row",
    "mean_ratings",
    "policy_orders",
    "preferred",
    "presentation_order",
    "structured_state",
    "verdict_columns",
]
