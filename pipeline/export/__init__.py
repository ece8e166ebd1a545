"""Step 5, Export: turn raw pipeline results (and, optionally, human annotations) into a DPO/ORPO preference
dataset that TRL's ``DPOTrainer`` and ``ORPOTrainer`` take as it is.

One job per module; this package re-exports the step's public API (``from pipeline import export as ex``):

- :mod:`pipeline.export.rules` and :mod:`pipeline.export.pairs`: the selection rules (:class:`ExportRules`, :func:`select_pairs`, the per-rule
  counters). Every input row is kept or dropped by exactly one rule, and counted.
- :mod:`pipeline.export.formats`: the TRL formats (``standard``, ``conversational``, ``recipe``):
  :func:`format_pair`, :func:`check_trl_example`, :func:`pairs_to_table`; the Arrow schemas are in
  :data:`pipeline.core.schema.EXPORT_SCHEMAS`.
- :mod:`pipeline.export.build`: :func:`build_export` (select, format, split train/test by prompt), the files
  (:func:`write_export`) and :func:`input_summary`. Provenance of the raw results goes into every export table.
- :mod:`pipeline.export.card`: the dataset card, naming the real source of the prompts.
- :mod:`pipeline.export.hub_io`: the Hub side (:func:`push_export`, :func:`load_raw_from_hub`,
  :func:`default_repo_name`), through :mod:`pipeline.core.hub`.

Only ``hub_io`` touches the network; nothing here imports Gradio.
"""

from pipeline.export.build import (
    ExportResult,
    build_export,
    input_summary,
    read_table,
    split_pairs,
    split_paths,
    write_export,
    write_table,
)
from pipeline.export.card import (
    as_run_meta,
    card_body,
    card_metadata,
    export_source,
    language_name,
    render_export_card,
    size_category,
)
from pipeline.export.formats import (
    EXTRA_COLUMNS,
    FORMAT_CONVERSATIONAL,
    FORMAT_LABELS,
    FORMAT_RECIPE,
    FORMAT_STANDARD,
    FORMATS,
    check_trl_example,
    extract_prompt,
    format_pair,
    is_conversational,
    output_schema,
    pairs_to_table,
)
from pipeline.export.hub_io import default_repo_name, load_raw_from_hub, push_export
from pipeline.export.pairs import judge_human_agreement, resolve_target_language, select_pairs
from pipeline.export.rules import (
    DROP_RULES,
    IMPROVED_SOURCE,
    INFO_COUNTERS,
    PAIRING_ALL,
    PAIRING_BEST_WORST,
    PAIRING_LABELS,
    PAIRINGS,
    PREFERENCE_SOURCE_LABELS,
    PREFERENCE_SOURCES,
    RULE_LABELS,
    SOURCE_HUMAN,
    SOURCE_HUMAN_THEN_JUDGE,
    SOURCE_JUDGE,
    ExportError,
    ExportRules,
    PreferencePair,
    Selection,
    check_columns,
    counts_table,
    missing_columns,
    no_rows_message,
    normalize_prompt,
    split_annotation_columns,
    target_languages,
)

__all__ = [
    "DROP_RULES",
    "EXTRA_COLUMNS",
    "FORMATS",
    "FORMAT_CONVERSATIONAL",
    "FORMAT_LABELS",
    "FORMAT_RECIPE",
    "FORMAT_STANDARD",
    "IMPROVED_SOURCE",
    "INFO_COUNTERS",
    "PAIRINGS",
    "PAIRING_ALL",
    "PAIRING_BEST_WORST",
    "PAIRING_LABELS",
    "PREFERENCE_SOURCES",
    "PREFERENCE_SOURCE_LABELS",
    "RULE_LABELS",
    "SOURCE_HUMAN",
    "SOURCE_HUMAN_THEN_JUDGE",
    "SOURCE_JUDGE",
    "ExportError",
    "ExportResult",
    "ExportRules",
    "PreferencePair",
    "Selection",
    "as_run_meta",
    "build_export",
    "card_body",
    "card_metadata",
    "check_columns",
    "check_trl_example",
    "counts_table",
    "default_repo_name",
    "export_source",
    "extract_prompt",
    "format_pair",
    "input_summary",
    "is_conversational",
    "judge_human_agreement",
    "language_name",
    "load_raw_from_hub",
    "missing_columns",
    "no_rows_message",
    "normalize_prompt",
    "output_schema",
    "pairs_to_table",
    "push_export",
    "read_table",
    "render_export_card",
    "resolve_target_language",
    "select_pairs",
    "size_category",
    "split_annotation_columns",
    "split_pairs",
    "split_paths",
    "target_languages",
    "write_export",
    "write_table",
]
