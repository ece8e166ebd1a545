"""The data contracts between the steps (Filter → Pipeline → Argilla → Export).

Every step reads and writes plain ``pyarrow`` tables with the columns below, so each step can be run, saved,
pushed and resumed on its own (in the app, in the CLI, or from a dataset on the Hub).

Filtered set (output of Filter, input of Pipeline)
    ``FILTERED_COLUMNS``: one row per prompt with its human-written response.

Raw results (output of Pipeline, input of Argilla and Export)
    ``RAW_COLUMNS``: one row per prompt. ``responses`` holds the human response first, then one response per
    generator model, in the order of ``response_sources`` (``"human"`` or the model id). ``ratings``,
    ``rationales``, ``detected_languages``, ``language_confidences`` and ``language_match`` are aligned with
    ``responses``. ``status`` is one of ``STATUSES``.

Annotations (output of Argilla pull, input of Export)
    ``ANNOTATION_COLUMNS``: one row per record id that has at least one submitted response. ``human_ratings`` is
    aligned with the raw row's ``responses`` (mean over annotators, ``None`` where nobody rated);
    ``human_preference`` is the index (into ``responses``) of the majority's best response, ``-1`` for a tie,
    ``None`` if nobody said; ``improved_response`` is an annotator's rewrite of the preferred response.
"""

from __future__ import annotations

import hashlib
from typing import Final

# --- Filtered set -------------------------------------------------------------------------------------------
FILTERED_COLUMNS: Final = (
    "id",  # stable content id, see row_id()
    "prompt",
    "response",  # the human-written answer
    "language",  # e.g. "Dutch"
    "language_code",  # ISO 639-3 as in Aya, e.g. "nld"
    "annotation_type",  # Aya: original-annotations / re-annotations / ... ("" when the source has none)
    "user_id",  # Aya annotator id ("" when the source has none)
)

# --- Raw pipeline results -----------------------------------------------------------------------------------
HUMAN: Final = "human"

STATUS_OK: Final = "ok"
STATUS_GENERATION_FAILED: Final = "generation_failed"
STATUS_JUDGE_FAILED: Final = "judge_failed"
STATUS_JUDGE_UNPARSEABLE: Final = "judge_unparseable"
STATUSES: Final = (STATUS_OK, STATUS_GENERATION_FAILED, STATUS_JUDGE_FAILED, STATUS_JUDGE_UNPARSEABLE)

RAW_COLUMNS: Final = (
    "id",
    "prompt",
    "system_prompt",
    "target_language",  # ISO 639-3 code of the filtered language
    "responses",  # list[str]; index 0 is the human response
    "response_sources",  # list[str]; "human" or the generator's model id
    "ratings",  # list[int | None]; UltraFeedback rating 1-5 per response
    "rationales",  # list[str | None]
    "detected_languages",  # list[str | None]; ISO 639-3, None where undetectable
    "language_confidences",  # list[float | None]
    "language_match",  # list[bool | None]; None = language unsupported by the detector
    "judge_model",
    "aspect",  # UltraFeedback aspect, e.g. "overall-rating"
    "status",  # one of STATUSES
    "error",  # human-readable reason, "" when status == ok
)

# --- Human annotations pulled from Argilla ------------------------------------------------------------------
ANNOTATION_COLUMNS: Final = (
    "id",
    "n_annotators",
    "human_ratings",  # list[float | None], aligned with the raw row's responses
    "human_preference",  # int | None; index into responses, -1 = tie
    "agreement",  # float in [0, 1]: share of annotators that agree with the majority preference
    "improved_response",  # str | None
)


def row_id(prompt: str, response: str) -> str:
    """A stable id for a (prompt, human response) pair: the same text always gets the same id.

    Used for resuming runs, de-duplicating Argilla records and joining annotations back to raw rows.
    """
    digest = hashlib.sha256()
    digest.update(prompt.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(response.encode("utf-8"))
    return digest.hexdigest()[:16]
