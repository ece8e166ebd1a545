"""The layout of a DPO Studio dataset in Argilla: its fields, questions, metadata and guidelines.

One record per raw row, record id = the raw ``id``:

- fields ``prompt`` and ``response_1`` .. ``response_N`` (N = the most responses a row has among the rows being
  sent, at least 2 and at most :data:`MAX_RESPONSES` = 4: the human answer plus up to three models; further model
  responses of a row are not sent). Text is shown as plain text (no markdown).
- questions ``rating_<k>`` (1-5, required for the first two responses), ``preference`` (``response_<k>`` or
  ``tie``, required) and ``improved_response`` (optional text).
- metadata for filtering: ``language_<k>``, ``language_confidence_<k>``, ``language_match_<k>``
  (yes/no/unsupported), ``judge_rating_<k>``, ``rating_margin``, ``all_in_language``, ``n_responses``,
  ``generator_model``, ``judge_model``, ``status``; hidden from annotators: ``source_index_<k>``, ``raw_responses``
  (length of the raw ``responses`` list) and ``order_seed``.
- guidelines from a template (``$language``, ``$n_responses``, ``$judge_model``): ``guidelines.<code>.md`` when one
  is written in the rows' language (e.g. ``guidelines.nld.md``), else the English ``guidelines.md``; or the caller's
  own (e.g. translated) text.

:func:`signature` says what must match for an existing dataset to be reused (names, types and options; not titles,
guidelines or the task distribution, which people edit in Argilla).
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from typing import Any, Final

MAX_RESPONSES: Final = 4
MIN_RESPONSES: Final = 2
PROMPT_FIELD: Final = "prompt"
PREFERENCE_QUESTION: Final = "preference"
IMPROVED_QUESTION: Final = "improved_response"
TIE_LABEL: Final = "tie"
GUIDELINES_TEMPLATE: Final = Path(__file__).with_name("guidelines.md")
GUIDELINES_MAX_CHARS: Final = 10_000  # Argilla's limit


def response_field(k: int) -> str:
    return f"response_{k}"


def rating_question(k: int) -> str:
    return f"rating_{k}"


def source_key(k: int) -> str:
    return f"source_index_{k}"


# --- Names and guidelines ----------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (text or "").lower()).strip("-")


def default_dataset_name(username: str | None, language: str | None) -> str:
    """``dpo-<language>-<user>`` (e.g. ``dpo-nld-alice``); parts that are unknown are left out."""
    parts = ["dpo", _slug(language or ""), _slug(username or "")]
    return "-".join(p for p in parts if p)


def guidelines_path(code: str | None = None) -> Path:
    """The template for the language with ISO 639-3 ``code``: ``guidelines.<code>.md`` when one is written in that
    language (like the Playground's per-language system prompts), else the English ``guidelines.md``."""
    if code and re.fullmatch(r"[a-z]{2,3}", code):
        own = GUIDELINES_TEMPLATE.with_name(f"guidelines.{code}.md")
        if own.exists():
            return own
    return GUIDELINES_TEMPLATE


def guidelines_languages() -> list[str]:
    """The language codes that have guidelines written in their own language."""
    return sorted(p.name.split(".")[1] for p in GUIDELINES_TEMPLATE.parent.glob("guidelines.*.md"))


def guidelines_template(code: str | None = None) -> str:
    """The guidelines template (markdown with ``$language``, ``$n_responses``, ``$judge_model``) for ``code``."""
    return guidelines_path(code).read_text(encoding="utf-8")


def render_guidelines(
    language: str | None,
    n_responses: int = 2,
    judge_model: str | None = None,
    template: str | None = None,
    code: str | None = None,
) -> str:
    """The guidelines for a language (in that language when a template for ``code`` exists); unknown placeholders
    are left as they are."""
    text = Template(template if template is not None else guidelines_template(code)).safe_substitute(
        language=language or "your language",
        n_responses=str(n_responses),
        judge_model=judge_model or "an LLM",
    )
    return text[:GUIDELINES_MAX_CHARS]


# --- Settings --------------------------------------------------------------------------------------------------
def build_settings(n_slots: int, guidelines: str | None = None, min_submitted: int = 1, client: Any = None) -> Any:
    """The Argilla ``Settings`` for ``n_slots`` responses per record (see the module docstring)."""
    import argilla as rg

    if not MIN_RESPONSES <= n_slots <= MAX_RESPONSES:
        raise ValueError(f"n_slots must be between {MIN_RESPONSES} and {MAX_RESPONSES}")
    slots = range(1, n_slots + 1)
    fields = [rg.TextField(name=PROMPT_FIELD, title="Prompt", use_markdown=False, client=client)]
    fields += [
        rg.TextField(
            name=response_field(k),
            title=f"Response {k}",
            required=k <= MIN_RESPONSES,
            use_markdown=False,
            client=client,
        )
        for k in slots
    ]
    questions: list[Any] = [
        rg.RatingQuestion(
            name=rating_question(k),
            values=[1, 2, 3, 4, 5],
            title=f"Rate response {k} (1 = very poor, 5 = excellent)",
            required=k <= MIN_RESPONSES,
            client=client,
        )
        for k in slots
    ]
    labels = {response_field(k): f"Response {k}" for k in slots}
    labels[TIE_LABEL] = "Tie"
    questions.append(
        rg.LabelQuestion(
            name=PREFERENCE_QUESTION, labels=labels, title="Which response is best?", required=True, client=client
        )
    )
    questions.append(
        rg.TextQuestion(
            name=IMPROVED_QUESTION,
            title="Optional: rewrite the best response to make it better",
            required=False,
            use_markdown=False,
            client=client,
        )
    )
    metadata: list[Any] = []
    for k in slots:
        metadata += [
            rg.TermsMetadataProperty(name=f"language_{k}", title=f"Detected language of response {k}", client=client),
            rg.FloatMetadataProperty(
                name=f"language_confidence_{k}", title=f"Language confidence of response {k}", client=client
            ),
            rg.TermsMetadataProperty(
                name=f"language_match_{k}", title=f"Response {k} in the target language", client=client
            ),
            rg.IntegerMetadataProperty(
                name=f"judge_rating_{k}", title=f"Judge's rating of response {k}", min=1, max=5, client=client
            ),
            rg.IntegerMetadataProperty(
                name=source_key(k),
                title=f"Raw index of response {k}",
                min=0,
                visible_for_annotators=False,
                client=client,
            ),
        ]
    metadata += [
        rg.IntegerMetadataProperty(
            name="rating_margin", title="Judge's rating margin (best - second best)", min=0, max=4, client=client
        ),
        rg.TermsMetadataProperty(name="all_in_language", title="All responses in the target language", client=client),
        rg.IntegerMetadataProperty(
            name="n_responses", title="Number of responses", min=MIN_RESPONSES, max=MAX_RESPONSES, client=client
        ),
        rg.TermsMetadataProperty(name="generator_model", title="Generator model", client=client),
        rg.TermsMetadataProperty(name="judge_model", title="Judge model", client=client),
        rg.TermsMetadataProperty(name="status", title="Pipeline status", client=client),
        rg.IntegerMetadataProperty(
            name="raw_responses", title="Responses in the raw row", min=0, visible_for_annotators=False, client=client
        ),
        rg.IntegerMetadataProperty(name="order_seed", title="Order seed", visible_for_annotators=False, client=client),
    ]
    return rg.Settings(
        fields=fields,
        questions=questions,
        metadata=metadata,
        guidelines=guidelines or None,
        distribution=rg.TaskDistribution(min_submitted=max(1, int(min_submitted))),
    )


def signature(settings: Any) -> tuple:
    """What must match for records to be appended: names, types and options of fields, questions and metadata.

    Titles, guidelines, descriptions, visibility and the task distribution may differ (people edit them in
    Argilla)."""

    def options(s: dict) -> Any:
        kind = s.get("type")
        if kind == "rating":
            return tuple(sorted(o.get("value") for o in s.get("options") or []))
        if kind == "label_selection":
            return tuple(sorted(o.get("value") for o in s.get("options") or []))
        return None

    fields = tuple(sorted((f["name"], f["settings"].get("type")) for f in settings.fields.serialize()))
    questions = tuple(
        sorted((q["name"], q["settings"].get("type"), options(q["settings"])) for q in settings.questions.serialize())
    )
    metadata = tuple(sorted((m["name"], (m.get("settings") or {}).get("type")) for m in settings.metadata.serialize()))
    return fields, questions, metadata


def slots_of(dataset: Any) -> int:
    names = {f.name for f in dataset.settings.fields}
    return sum(1 for k in range(1, MAX_RESPONSES + 1) if response_field(k) in names)
