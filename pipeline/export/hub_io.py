"""Export: the Hub side. Push an export with its card (:func:`push_export`), load raw results someone pushed
(:func:`load_raw_from_hub`, with the run's metadata from its ``dpo_studio.json``, else from its card and rows),
and a default name for the export repo (:func:`default_repo_name`). Every call goes through :mod:`pipeline.core.hub`
with the caller's token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from pipeline.core import hub, schema
from pipeline.core.schema import MetaError, ModelRef, Provenance, RunMeta
from pipeline.export.build import ExportResult
from pipeline.export.card import as_run_meta, render_export_card
from pipeline.export.rules import ExportError, missing_columns, split_annotation_columns


def push_export(
    result: ExportResult,
    repo_id: str,
    token: str | None,
    *,
    private: bool = True,
    meta: RunMeta | Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> str:
    """Push every split of ``result`` with its card to ``repo_id`` in one commit; returns the dataset's URL.

    :func:`pipeline.core.hub.push_dataset` refuses (``HubError``) before uploading anything when you are not signed in,
    cannot write to the namespace, or the repo exists and ``overwrite`` is False. The Parquet files keep each
    split's provenance in their schema metadata.
    """
    repo_id = hub.validate_repo_id(repo_id)
    card = render_export_card(result, meta, repo_id)
    return hub.push_dataset(
        dict(result.splits),
        repo_id,
        token,
        private=private,
        card=card,
        overwrite=overwrite,
        commit_message=f"DPO Studio export: {result.num_rows} preference pairs ({result.format})",
    )


def load_raw_from_hub(
    dataset_id: str, token: str | None, split: str = "train"
) -> tuple[pa.Table, pa.Table | None, RunMeta]:
    """Load raw pipeline results from the Hub: (raw, annotations found in the same table or None, the run's
    metadata for the card).

    Raises ``pipeline.core.hub.HubError`` for a dataset that cannot be loaded and :class:`ExportError` naming the
    columns a raw-results dataset needs but this one lacks. The metadata is the Pipeline's ``dpo_studio.json``
    when the dataset has one, else what the table's schema metadata records, else it comes from the card
    (``source_datasets``, ``license``) and the rows (judge model, system prompt). ``raw_dataset`` is set to
    ``dataset_id``.
    """
    table = hub.load_dataset_table(dataset_id, split, token)
    missing = missing_columns(table, schema.REQUIRED_RAW_COLUMNS)
    if missing:
        raise ExportError(
            f"'{dataset_id}' is not a DPO Studio raw-results dataset: it lacks the column"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}. Load the dataset pushed by the Pipeline step "
            "(columns: " + ", ".join(schema.REQUIRED_RAW_COLUMNS) + ")."
        )
    raw, ann = split_annotation_columns(table)
    meta: RunMeta | None = None
    try:  # DPO Studio's Pipeline step pushes its metadata as dpo_studio.json next to the data
        meta = RunMeta.from_json(hub.download_file(dataset_id, "dpo_studio.json", token))
    except (hub.HubError, MetaError):  # not a DPO Studio push, or an older one: the card below says less
        meta = schema.run_meta_of(table)
    if meta is not None and meta.source.known:
        return raw, ann, meta.replace(raw_dataset=dataset_id)
    try:
        from huggingface_hub import DatasetCard

        card = DatasetCard(hub.download_file(dataset_id, "README.md", token).decode("utf-8")).data.to_dict()
    except Exception:  # noqa: BLE001 - a dataset without a (valid) card still exports; the card just says less
        card = {}
    sources = card.get("source_datasets") or []
    sources = [sources] if isinstance(sources, str) else sources
    lic = card.get("license") or ""
    source = Provenance(
        dataset=str(sources[0]) if sources else "", license=", ".join(lic) if isinstance(lic, list) else str(lic)
    )
    first = (raw.slice(0, 1).to_pylist() or [{}])[0]
    meta = meta or RunMeta()
    return (
        raw,
        ann,
        meta.replace(
            source=source,
            raw_dataset=dataset_id,
            judge=meta.judge if meta.judge_model else ModelRef(model=str(first.get("judge_model") or "")),
            system_prompt=meta.system_prompt or str(first.get("system_prompt") or ""),
        ),
    )


def default_repo_name(target_language: str, meta: RunMeta | Mapping[str, Any] | None = None) -> str:
    """A repo name for the export from the language: ``aya-dutch-dpo`` (the raw set being ``aya-dutch-dpo-raw``);
    the language code when no name is known; the source's name instead of ``aya`` for other sources (``demo`` for
    the demo data).

    Example:

    ```python
    >>> default_repo_name("nld", RunMeta(language="Dutch", source=Provenance(dataset="CohereForAI/aya_dataset")))
    'aya-dutch-dpo'
    >>> default_repo_name("swh", RunMeta(source=Provenance(dataset="me/Swahili_Prompts")))
    'swahili-prompts-swh-dpo'

    ```
    """
    meta = as_run_meta(meta)
    source = meta.source.dataset
    if meta.source.demo:
        base = "demo"
    else:
        base = source.split("/")[-1].lower() if source else "aya"
        base = "aya" if "aya" in base else re.sub(r"[^a-z0-9]+", "-", base).strip("-")[:40]
    name = meta.language_name
    if name.lower() == (target_language or "").lower():
        name = ""
    lang = re.sub(r"[^a-z0-9]+", "-", (name or target_language or "").lower()).strip("-")[:40]
    return "-".join(part for part in (base, lang, "dpo") if part)
