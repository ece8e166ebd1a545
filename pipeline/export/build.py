"""Export, step 3: the whole export. :func:`build_export` selects pairs with the rules
(:mod:`pipeline.export.rules`), formats them (:mod:`pipeline.export.formats`), splits them train/test by prompt
with a seed (:func:`split_pairs`) and returns an :class:`ExportResult` (tables, counts, notes, agreement, source).

Each export table carries the provenance of its raw results (``schema.with_provenance``: the source dataset,
filters and language), so every file written from it names the real source. Files go through
:mod:`pipeline.core.tablefiles` (Parquet, or JSON Lines with its schema sidecar). No network, no Gradio.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.core import schema, tablefiles
from pipeline.core.schema import Provenance
from pipeline.export.formats import FORMAT_STANDARD, FORMATS, pairs_to_table
from pipeline.export.pairs import select_pairs
from pipeline.export.rules import (
    DROP_RULES,
    ExportError,
    ExportRules,
    PreferencePair,
    target_languages,
)


@dataclass
class ExportResult:
    """The finished export: one table per split, the counts behind it and what the card needs. ``source`` is the
    provenance of the raw results (also in each split table's schema metadata), ``None`` when it is not known."""

    splits: dict[str, pa.Table]
    pairs: list[PreferencePair]
    counts: dict[str, int]
    rules: ExportRules
    format: str
    target_language: str
    notes: list[str] = field(default_factory=list)
    agreement: dict[str, Any] = field(default_factory=dict)
    test_size: float | int | None = None
    seed: int | None = None
    source: Provenance | None = None
    judge: schema.JudgeStats | None = None  # what the judge did over the raw rows (for the card)

    @property
    def table(self) -> pa.Table:
        """All rows, splits concatenated (train first)."""
        return pa.concat_tables(list(self.splits.values()))

    @property
    def num_rows(self) -> int:
        return sum(t.num_rows for t in self.splits.values())

    def dropped(self) -> dict[str, int]:
        """Rows dropped by each rule that dropped any, in rule order."""
        return {rule: self.counts[rule] for rule in DROP_RULES if self.counts.get(rule)}


# --- Split ---------------------------------------------------------------------------------------------------
def split_pairs(
    pairs: Sequence[PreferencePair], test_size: float | int | None, seed: int = 42
) -> dict[str, list[PreferencePair]]:
    """Split pairs into ``train``/``test`` by prompt (pairs of one raw row never straddle the split).

    ``test_size``: a fraction in (0, 1) or a number of prompts ≥ 1; ``None``/0 = no split (only ``train``).
    The same pairs, size and seed always give the same split; rows keep their order within each split.

    Example:

    ```python
    >>> from pipeline.export.rules import PreferencePair
    >>> pairs = [PreferencePair(id=f"r{i}", prompt=f"p{i}", chosen="a", rejected="b") for i in range(10)]
    >>> split = split_pairs(pairs, 0.2, seed=1)
    >>> len(split["train"]), len(split["test"])
    (8, 2)
    >>> split == split_pairs(pairs, 0.2, seed=1)
    True

    ```
    """
    if not test_size:
        return {"train": list(pairs)}
    groups = list(dict.fromkeys(p.source_id for p in pairs))
    size = float(test_size)
    if 0 < size < 1:
        n_test = max(1, round(len(groups) * size))
    elif size >= 1 and size.is_integer():
        n_test = int(size)
    else:
        raise ExportError(
            f"The test size must be a fraction between 0 and 1 or a whole number of prompts (got {test_size})."
        )
    if n_test >= len(groups):
        raise ExportError(
            f"A test split of {n_test} prompts leaves nothing to train on ({len(groups)} prompts in total): "
            "use a smaller test size or no split."
        )
    shuffled = groups[:]
    random.Random(seed).shuffle(shuffled)
    test_groups = set(shuffled[:n_test])
    return {
        "train": [p for p in pairs if p.source_id not in test_groups],
        "test": [p for p in pairs if p.source_id in test_groups],
    }


# --- All together --------------------------------------------------------------------------------------------
def build_export(
    raw: pa.Table,
    annotations: pa.Table | None = None,
    rules: ExportRules | None = None,
    fmt: str = FORMAT_STANDARD,
    *,
    include_system: bool = False,
    test_size: float | int | None = None,
    seed: int = 42,
    target_language: str | None = None,
    source: Provenance | None = None,
) -> ExportResult:
    """Select pairs with ``rules``, format them as ``fmt`` and split them: the whole export, ready to push.

    ``source`` is the provenance of ``raw`` (default: what ``raw``'s schema metadata records); it goes into every
    split table's schema metadata and the result.

    Raises:
        ExportError: see :func:`select_pairs`, plus a bad format or test size. Nothing is written.

    Example:

    ```python
    >>> import pyarrow as pa
    >>> raw = pa.Table.from_pylist([{"id": "r1", "prompt": "Hoe gaat het?", "target_language": "nld",
    ...     "responses": ["Goed, dank je.", "Good, thanks."], "response_sources": ["human", "org/model"],
    ...     "ratings": [5, 2], "language_match": [True, False], "status": "ok"}])
    >>> result = build_export(raw, fmt="standard", source=Provenance(dataset="me/prompts"))
    >>> result.table.select(["prompt", "chosen", "rejected"]).to_pylist()
    [{'prompt': 'Hoe gaat het?', 'chosen': 'Goed, dank je.', 'rejected': 'Good, thanks.'}]
    >>> schema.provenance_of(result.splits["train"]).dataset
    'me/prompts'

    ```
    """
    rules = rules or ExportRules()
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    selection = select_pairs(raw, annotations, rules, target_language)
    split = split_pairs(selection.pairs, test_size, seed)
    source = source if source is not None else schema.provenance_of(raw)
    splits = {
        name: schema.with_provenance(pairs_to_table(ps, fmt, include_system), source) for name, ps in split.items()
    }
    return ExportResult(
        splits=splits,
        pairs=selection.pairs,
        counts=selection.counts,
        rules=rules,
        format=fmt,
        target_language=selection.target_language,
        notes=selection.notes,
        agreement=selection.agreement,
        test_size=test_size or None,
        seed=seed if test_size else None,
        source=source,
        judge=selection.judge,
    )


# --- Files ---------------------------------------------------------------------------------------------------
def read_table(path: str | Path) -> pa.Table:
    """Read a Parquet or JSON Lines file as a table (see :mod:`pipeline.core.tablefiles`); errors as ExportError."""
    try:
        return tablefiles.read_table(path)
    except tablefiles.TableFileError as e:
        raise ExportError(str(e)) from None


def write_table(table: pa.Table, path: str | Path) -> Path:
    """Write ``table`` as Parquet or JSON Lines by suffix, atomically; errors as ExportError."""
    try:
        return tablefiles.write_table(table, path)
    except tablefiles.TableFileError as e:
        raise ExportError(str(e)) from None


def split_paths(path: str | Path, split_names: Sequence[str]) -> dict[str, Path]:
    """Where each split is written: the path itself for one split, ``<stem>-<split><suffix>`` for several."""
    path = Path(path)
    if list(split_names) == ["train"]:
        return {"train": path}
    return {name: path.with_name(f"{path.stem}-{name}{path.suffix}") for name in split_names}


def write_export(result: ExportResult, path: str | Path) -> dict[str, Path]:
    """Write every split of ``result`` (see :func:`split_paths`); returns split → path."""
    paths = split_paths(path, list(result.splits))
    for name, table in result.splits.items():
        write_table(table, paths[name])
    return paths


def input_summary(raw: pa.Table | None, annotations: pa.Table | None = None) -> dict[str, Any]:
    """What an input holds, for the tab: rows, target languages, statuses and rows with human answers."""
    if raw is None:
        return {"rows": 0, "languages": {}, "statuses": {}, "annotated": 0}
    statuses = Counter(raw.column("status").to_pylist()) if "status" in raw.column_names else Counter()
    annotated = 0
    if annotations is not None and annotations.num_rows and "id" in annotations.column_names:
        ids = set(raw.column("id").to_pylist()) if "id" in raw.column_names else set()
        n_col = (
            annotations.column("n_annotators").to_pylist()
            if "n_annotators" in annotations.column_names
            else [1] * annotations.num_rows
        )
        annotated = len({i for i, n in zip(annotations.column("id").to_pylist(), n_col) if i in ids and (n or 0) > 0})
    return {
        "rows": raw.num_rows,
        "languages": dict(target_languages(raw).most_common()),
        "statuses": dict(statuses.most_common()),
        "annotated": annotated,
    }
