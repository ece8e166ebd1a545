"""The run's metadata: :class:`pipeline.core.schema.RunMeta` built from a run's settings and source
(:func:`build_raw_meta`), completed with a raw table's results (:func:`with_results`) and stored in the table's
Arrow schema metadata (:func:`tag_raw`), plus the default dataset name from the run's language
(:func:`default_repo_name`) and a filtered set's provenance (:func:`source_from_filtered`).

Every raw table carries its provenance and run metadata in its schema metadata (``schema.with_provenance``), so the
cards (:mod:`pipeline.generate.card`) name the real source: the Hub dataset the rows were filtered from, the demo data
as demo data, or "not recorded" when nobody said (never a guess). No token anywhere; no I/O.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pyarrow as pa

from pipeline.core import schema
from pipeline.core.schema import ModelRef, Provenance, RunMeta, Sampling
from pipeline.generate import results
from pipeline.judge import report


def build_raw_meta(
    settings: Any, raw: pa.Table | None, source: Provenance | None = None, language: str = "", language_code: str = ""
) -> RunMeta:
    """The run's metadata for the Argilla and Export tabs and for cards (no token anywhere).

    ``settings`` is a ``pipeline.generate.settings.RunSettings``; ``source`` the provenance of the rows (``None``: not
    known, and the cards say so); ``language``/``language_code`` their language (default: the source's, else the
    raw table's only ``target_language``).
    """
    d = settings.describe()
    source = source or Provenance()
    codes = set(raw.column("target_language").to_pylist()) if raw is not None and raw.num_rows else set()
    language_code = language_code or source.language_code or (next(iter(codes)) if len(codes) == 1 else "")
    return RunMeta(
        source=source,
        language=language or source.language,
        language_code=language_code,
        generators=tuple(ModelRef.from_dict(g) for g in d["generators"]),
        judge=ModelRef.from_dict(d["judge"]),
        system_prompt=d["system_prompt"],
        aspect=d["aspect"],
        generation=Sampling.from_dict(d["generation"]),
        judge_generation=Sampling.from_dict(d["judge_generation"]),
        concurrency=d.get("concurrency"),
        max_rows=d.get("max_rows"),
        max_tokens=d.get("max_tokens"),
        judge_mode=d.get("judge_mode") or "",
        judge_order=d.get("judge_order") or "",
        judge_structured=d.get("judge_structured"),
        fingerprint=settings.fingerprint(),
        rows=raw.num_rows if raw is not None else 0,
        counts=results.counts_by_status(raw),
        created_at=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"),
    )


def with_results(meta: RunMeta, raw: pa.Table, **changes: Any) -> RunMeta:
    """``meta`` with the rows, counts and judge figures of ``raw`` (and ``changes``)."""
    return meta.replace(
        rows=raw.num_rows, counts=results.counts_by_status(raw), judge_stats=report.judge_stats(raw), **changes
    )


def tag_raw(raw: pa.Table, meta: RunMeta) -> pa.Table:
    """``raw`` with ``meta`` and its provenance in the Arrow schema metadata (kept by every file written from it)."""
    return schema.with_provenance(raw, meta.source if meta.source.known else None, meta)


def default_repo_name(language: str, language_code: str = "", kind: str = "raw") -> str:
    """A default dataset name from the language, e.g. ``aya-dutch-dpo-raw``."""
    base = (language or language_code or "language").lower()
    slug = "".join(ch if ch.isalnum() else "-" for ch in base).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"aya-{slug or 'language'}-dpo-{kind}"


def source_from_filtered(filtered: Any) -> tuple[Provenance, str, str]:
    """(provenance, language name, language code) of a ``pipeline.filter.filtered.FilteredSet``: its own provenance (source
    dataset or demo data, config, split, filters, language); an empty ``Provenance`` when there is none."""
    provenance = filtered.provenance() if hasattr(filtered, "provenance") else Provenance()
    language = getattr(filtered, "language", "") or provenance.language
    code = getattr(filtered, "language_code", "") or provenance.language_code
    return provenance, language, code
