"""Filter, part 2: the filtered set. Owns :class:`FilterSpec` (what the user asked for: language, lengths,
annotation type, duplicate prompts, a sample), :func:`apply_filters` (pyarrow filters over a loaded
:class:`~pipeline.filter.sources.Source`, milliseconds on Aya), :class:`FilteredSet` (the rows, their language and
provenance: what the next steps read) and its card, files and push to the Hub (with the caller's token).
Filtering is pyarrow compute on the source's language slice (milliseconds on Aya's 202k rows): annotation type,
min/max prompt and response length in characters, drop duplicate prompts, and a seeded random sample of at most N
rows.
"""

from __future__ import annotations

__all__ = [
    "FilterSpec",
    "FilteredSet",
    "apply_filters",
    "filter_source",
    "filter_card",
    "push_filtered",
    "preview_frame",
    "write_parquet",
    "write_jsonl",
]

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core import hub, languages, schema, tablefiles
from pipeline.core.schema import FILTERED_COLUMNS
from pipeline.filter.sources import (
    AYA_ID,
    DEMO_LABEL,
    PROMPT_CHARS,
    PROMPT_KEY,
    RESPONSE_CHARS,
    DataError,
    Source,
    SourceInfo,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


# --- filters ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FilterSpec:
    """What to keep. Lengths are in characters of the stripped text; 0 means "no limit"."""

    language: str  # a name or code; resolved against the source
    annotation_types: tuple[str, ...] = ()  # empty = all
    min_prompt_chars: int = 0
    max_prompt_chars: int = 0
    min_response_chars: int = 0
    max_response_chars: int = 0
    dedup: bool = True
    sample: int = 0  # at most this many rows (seeded random sample); 0 = all
    seed: int = 42

    def check(self) -> None:
        for name in ("min_prompt_chars", "max_prompt_chars", "min_response_chars", "max_response_chars", "sample"):
            if int(getattr(self, name) or 0) < 0:
                raise DataError(f"{name.replace('_', ' ')} cannot be negative.")
        for lo, hi, what in (
            (self.min_prompt_chars, self.max_prompt_chars, "prompt"),
            (self.min_response_chars, self.max_response_chars, "response"),
        ):
            if hi and lo and lo > hi:
                raise DataError(f"The minimum {what} length ({lo}) is above the maximum ({hi}): lower it.")

    def describe(self) -> list[str]:
        """Human-readable list of the filters (for cards and the UI)."""
        out = []
        if self.annotation_types:
            out.append(f"annotation type: {', '.join(self.annotation_types)}")
        for what, lo, hi in (
            ("prompt", self.min_prompt_chars, self.max_prompt_chars),
            ("response", self.min_response_chars, self.max_response_chars),
        ):
            if lo and hi:
                out.append(f"{what} length {lo}–{hi} characters")
            elif lo:
                out.append(f"{what} length at least {lo} characters")
            elif hi:
                out.append(f"{what} length at most {hi} characters")
        if self.dedup:
            out.append("duplicate prompts dropped (first kept)")
        if self.sample:
            out.append(f"random sample of at most {self.sample} rows (seed {self.seed})")
        return out


def apply_filters(source: Source, spec: FilterSpec, language: languages.Language | None = None) -> pa.Table:
    """The rows of ``source`` that pass ``spec``, with FILTERED_COLUMNS. Fast: the language is a zero-copy slice."""
    spec.check()
    lang = language or source.resolve_language(spec.language)
    start, length, unique = source.offsets.get(lang.code, (0, 0, 0))
    only_dedup = not (
        spec.annotation_types
        or spec.min_prompt_chars
        or spec.max_prompt_chars
        or spec.min_response_chars
        or spec.max_response_chars
    )
    if spec.dedup and only_dedup:  # the common case is a zero-copy slice: repeats sit after the firsts
        t = source.table.slice(start, unique)
        return _sample(t, spec).select(list(FILTERED_COLUMNS))
    t = source.table.slice(start, length)
    mask = None

    def add(cond: pa.ChunkedArray) -> None:
        nonlocal mask
        mask = cond if mask is None else pc.and_(mask, cond)

    if spec.annotation_types:
        add(pc.is_in(t["annotation_type"], value_set=pa.array(list(spec.annotation_types), pa.string())))
    if spec.min_prompt_chars:
        add(pc.greater_equal(t[PROMPT_CHARS], int(spec.min_prompt_chars)))
    if spec.max_prompt_chars:
        add(pc.less_equal(t[PROMPT_CHARS], int(spec.max_prompt_chars)))
    if spec.min_response_chars:
        add(pc.greater_equal(t[RESPONSE_CHARS], int(spec.min_response_chars)))
    if spec.max_response_chars:
        add(pc.less_equal(t[RESPONSE_CHARS], int(spec.max_response_chars)))
    if mask is not None:
        t = t.filter(mask)
    if spec.dedup and t.num_rows > 1:
        t = _drop_duplicate_prompts(t)
    return _sample(t, spec).select(list(FILTERED_COLUMNS))


def _sample(t: pa.Table, spec: FilterSpec) -> pa.Table:
    if not spec.sample or t.num_rows <= spec.sample:
        return t
    import numpy as np

    idx = np.sort(np.random.default_rng(int(spec.seed)).choice(t.num_rows, size=int(spec.sample), replace=False))
    return t.take(pa.array(idx))


def _drop_duplicate_prompts(t: pa.Table) -> pa.Table:
    """Keep the first row of every prompt (first occurrences in the source come before repeats)."""
    import numpy as np

    keys = t[PROMPT_KEY].to_numpy()
    _, first = np.unique(keys, return_index=True)
    if len(first) == t.num_rows:
        return t
    return t.take(pa.array(np.sort(first)))


@dataclass
class FilteredSet:
    """The output of Filter and the input of the Pipeline tab (``session.filtered``). ``table`` carries
    :meth:`provenance` in its Arrow schema metadata (``schema.with_provenance``), so every file written from it
    (Parquet, JSON Lines with its sidecar, a Hub push) names its source, filters and language."""

    table: pa.Table  # schema.FILTERED_COLUMNS
    source: SourceInfo
    spec: FilterSpec
    language: str  # e.g. "Dutch"
    language_code: str  # e.g. "nld"
    pushed_to: str = ""  # repo id, once pushed

    @property
    def rows(self) -> int:
        return self.table.num_rows

    @property
    def is_demo(self) -> bool:
        return self.source.is_demo

    def default_repo_name(self, namespace: str) -> str:
        """e.g. ``alice/aya-nld`` (``alice/demo-nld`` for demo data, ``alice/<dataset>-nld`` otherwise)."""
        return f"{namespace}/{self.source.short_name}-{self.language_code}"

    def summary(self) -> str:
        return f"{self.rows:,} {self.language} rows from {self.source.label}"

    def provenance(self) -> schema.Provenance:
        """Where these rows come from: the source dataset (or the demo data), the filters and the language."""
        src = self.source
        return schema.Provenance(
            dataset="" if src.is_demo else src.dataset_id,
            config=src.config or "",
            split=src.split,
            license=src.license,
            demo=src.is_demo,
            columns=dict(src.mapping),
            filters=asdict(self.spec),
            filter_notes=tuple(self.spec.describe()),
            language=self.language,
            language_code=self.language_code,
            rows=self.rows,
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything but the table (for cards, checkpoints and logs)."""
        return {
            "source": asdict(self.source),
            "filters": asdict(self.spec),
            "language": self.language,
            "language_code": self.language_code,
            "rows": self.rows,
        }


def filter_source(source: Source, spec: FilterSpec) -> FilteredSet:
    """Filter and wrap the result with its provenance (also in the table's schema metadata). DataError for an
    unknown language or bad filters."""
    lang = source.resolve_language(spec.language)
    table = apply_filters(source, spec, lang)
    fs = FilteredSet(
        table=table,
        source=source.info,
        spec=replace(spec, language=lang.code),
        language=lang.name,
        language_code=lang.code,
    )
    fs.table = schema.with_provenance(table, fs.provenance())
    return fs


# --- cards and files ----------------------------------------------------------------------------------------------
def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M"


def filter_card(fs: FilteredSet, repo_id: str = "") -> str:
    """The dataset card of a filtered set: source, filters, row count and language tag."""
    src = fs.source
    repo_id = repo_id or fs.pushed_to or "<this-repo>"
    meta: dict[str, Any] = {
        "language": [languages.hub_tag(fs.language_code)],
        "license": src.license or "other",
        "task_categories": ["text-generation"],
        "size_categories": [_size_category(fs.rows)],
        "tags": ["dpo-studio", "dpo", "orpo", "preference", "human-written"] + (["demo"] if src.is_demo else []),
        "pretty_name": f"{fs.language} prompts and human responses ({'demo' if src.is_demo else src.short_name})",
    }
    if not src.is_demo:
        meta["source_datasets"] = [src.dataset_id]
    if src.is_demo:
        source_line = (
            f"**{DEMO_LABEL}.** These rows were written for DPO Studio's demo and tests; they are NOT from Aya. "
            "Do not use them to train a model."
        )
    else:
        cfg = f", configuration `{src.config}`" if src.config else ""
        source_line = f"[{src.dataset_id}](https://huggingface.co/datasets/{src.dataset_id}), split `{src.split}`{cfg}"
        if src.mapping and src.dataset_id != AYA_ID:
            source_line += (
                f" (prompt column `{src.mapping.get('prompt')}`, response column `{src.mapping.get('response')}`, "
                f"language column `{src.mapping.get('language')}`)"
            )
    filters = fs.spec.describe()
    body = "\n".join(
        [
            f"# {fs.language} ({fs.language_code}) prompts and human-written responses",
            "",
            f"{fs.rows:,} prompts in **{fs.language}** (`{fs.language_code}`), each with its human-written response, "
            "filtered with DPO Studio as the first step of building a DPO/ORPO preference dataset for this "
            "language (following the data-is-better-together recipe).",
            "",
            "## Source",
            "",
            source_line,
            "",
            "## Filters",
            "",
            f"- language: {fs.language} (`{fs.language_code}`)",
            *[f"- {f}" for f in filters],
            "",
            f"Rows: **{fs.rows:,}**"
            + (
                f" ({src.dropped_empty:,} source rows with an empty prompt or response were skipped)"
                if src.dropped_empty
                else ""
            ),
            "",
            "## Columns",
            "",
            "- `id`: stable id of the (prompt, response) pair",
            "- `prompt`, `response`: the prompt and its human-written response",
            "- `language`, `language_code`: language name and ISO 639-3 code",
            "- `annotation_type`, `user_id`: from the source when it has them, else empty",
            "",
            "## Use",
            "",
            "```python",
            "from datasets import load_dataset",
            "",
            f'ds = load_dataset("{repo_id}", split="train")',
            "```",
        ]
    )
    return hub.render_card(meta, body)


def push_filtered(fs: FilteredSet, repo_id: str, token: str | None, *, private: bool, overwrite: bool = False) -> str:
    """Push a filtered set with its card to the Hub (one commit). Refuses an empty set, an invalid name, a missing
    token, a namespace you cannot write and an existing repo without ``overwrite``, all before uploading."""
    repo_id = hub.validate_repo_id(repo_id)
    if fs.rows == 0:
        raise DataError("The filters leave 0 rows, so there is nothing to push: loosen the filters first.")
    url = hub.push_dataset(
        fs.table,
        repo_id,
        token,
        private=private,
        card=filter_card(fs, repo_id),
        overwrite=overwrite,
        commit_message=f"Filtered {fs.language} ({fs.language_code}) set: {fs.rows} rows (DPO Studio)",
    )
    fs.pushed_to = repo_id
    return url


def preview_frame(table: pa.Table, n: int = 50) -> pd.DataFrame:
    """The first ``n`` rows for display (text columns only; render as plain text)."""
    cols = [c for c in ("prompt", "response", "language_code", "annotation_type", "id") if c in table.column_names]
    return table.slice(0, n).select(cols).to_pandas()


def write_parquet(table: pa.Table, path: str | Path) -> Path:
    """Write the table as Parquet, atomically (see :mod:`pipeline.core.tablefiles`)."""
    return tablefiles.write_table(table, Path(path).with_suffix(".parquet"))


def write_jsonl(table: pa.Table, path: str | Path) -> Path:
    """Write the table as JSON Lines, atomically (see :mod:`pipeline.core.tablefiles`)."""
    return tablefiles.write_table(table, Path(path).with_suffix(".jsonl"))
