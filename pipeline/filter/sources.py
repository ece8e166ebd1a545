"""Filter, part 1: the sources. Load a prompt/response source once per process and share it read-only
(:mod:`pipeline.filter.filtered` keeps one language of it, cleans it and hands a ``FilteredSet`` on).

Sources: the human-written Aya dataset (default), any Hub dataset with a column mapping (prompt, response and an
optional language column), or the bundled demo data (``pipeline/filter/demo_data``, labelled as demo everywhere).

The loaded source is normalised once per process to ``schema.FILTERED_COLUMNS`` (+ two length columns), sorted by
language so that one language is a zero-copy slice, and cached read-only for every session. A cached dataset that
is private or gated is only served again after the Hub confirms the new caller's token can read it.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core import hub, languages, schema
from pipeline.core.languages import Language
from pipeline.core.schema import row_id

if TYPE_CHECKING:  # pragma: no cover
    pass


__all__ = [
    "AYA_ID",
    "DEMO_ID",
    "DEMO_LABEL",
    "DataError",
    "SourceSpec",
    "SourceInfo",
    "Source",
    "load_source",
    "demo_source",
    "normalize",
    "language_table",
    "clear_cache",
]


AYA_ID = "CohereForAI/aya_dataset"


AYA_LICENSE = "apache-2.0"


DEMO_ID = "dpo-studio/demo"  # not a Hub repo: the bundled demo data


DEMO_LABEL = schema.DEMO_LABEL


DEMO_FILE = Path(__file__).resolve().parent / "demo_data" / "aya_demo.jsonl"


PROMPT_CHARS, RESPONSE_CHARS = "_prompt_chars", "_response_chars"


PROMPT_KEY, IS_REPEAT = "_prompt_key", "_is_repeat"  # helper columns of a Source table (see _sort_for_filtering)


_CACHE_SIZE = 4


class DataError(ValueError):
    """Bad input about the data (column mapping, language, filters); the message says what to do."""


# --- sources ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceSpec:
    """Where the prompts come from and which columns hold what.

    ``language_col`` may hold names or codes; leave it "" when the dataset has no language column and give the
    language of all its rows in ``language``. ``language_code_col`` is an optional second column with codes (Aya).
    """

    kind: str = "aya"  # "aya" | "hub" | "demo"
    dataset_id: str = AYA_ID
    split: str = "train"
    config: str | None = None
    prompt_col: str = "inputs"
    response_col: str = "targets"
    language_col: str = "language"
    language_code_col: str = "language_code"
    language: str = ""

    @classmethod
    def aya(cls) -> SourceSpec:
        return cls()

    @classmethod
    def demo(cls) -> SourceSpec:
        return cls(kind="demo", dataset_id=DEMO_ID)

    @classmethod
    def hub_dataset(
        cls,
        dataset_id: str,
        split: str = "train",
        *,
        prompt_col: str = "prompt",
        response_col: str = "response",
        language_col: str = "",
        language: str = "",
        config: str | None = None,
        language_code_col: str = "",
    ) -> SourceSpec:
        dataset_id = (dataset_id or "").strip()
        if dataset_id == AYA_ID and (prompt_col, response_col) == ("inputs", "targets"):
            return replace(cls(), split=split or "train", config=config or None)
        return cls(
            kind="hub",
            dataset_id=dataset_id,
            split=(split or "train").strip(),
            config=config or None,
            prompt_col=prompt_col.strip(),
            response_col=response_col.strip(),
            language_col=(language_col or "").strip(),
            language_code_col=(language_code_col or "").strip(),
            language=(language or "").strip(),
        )


@dataclass(frozen=True)
class SourceInfo:
    """What was actually loaded (shown in the UI and written into cards)."""

    dataset_id: str
    split: str
    config: str | None
    license: str
    is_demo: bool
    rows: int
    mapping: dict = field(default_factory=dict)  # {"prompt": col, "response": col, "language": col}
    dropped_empty: int = 0  # rows dropped because the prompt or the response was empty
    note: str = ""  # e.g. why the demo data is shown instead of the requested dataset
    private: bool = False

    @property
    def label(self) -> str:
        if self.is_demo:
            return DEMO_LABEL
        cfg = f" ({self.config})" if self.config else ""
        return f"{self.dataset_id}{cfg}, split '{self.split}'"

    @property
    def short_name(self) -> str:
        if self.is_demo:
            return "demo"
        if self.dataset_id == AYA_ID:
            return "aya"
        name = self.dataset_id.split("/")[-1].lower()
        return re.sub(r"[^a-z0-9]+", "-", name).strip("-")[:60] or "dataset"


@dataclass
class Source:
    """A normalised, language-sorted, read-only table shared by all sessions."""

    table: pa.Table  # FILTERED_COLUMNS + PROMPT_CHARS + RESPONSE_CHARS, sorted by language_code
    info: SourceInfo
    offsets: dict[str, tuple[int, int, int]]  # language_code -> (start, rows, rows without repeated prompts)
    names: dict[str, str]  # language_code -> language name
    _language_table: pa.Table | None = None

    def languages(self) -> list[tuple[str, str]]:
        """(name, code) of every language, most rows first."""
        return sorted(((self.names[c], c) for c in self.offsets), key=lambda nc: -self.offsets[nc[1]][1])

    def resolve_language(self, text: str) -> Language:
        """A language of this source from a name or code the user typed (DataError listing close matches)."""
        try:
            return languages.resolve(text, self.languages())
        except languages.UnknownLanguage as e:
            raise DataError(str(e)) from e

    def annotation_types(self) -> list[str]:
        values = pc.unique(self.table["annotation_type"]).to_pylist()
        return sorted(v for v in values if v)

    def language_table(self) -> pa.Table:
        if self._language_table is None:
            self._language_table = language_table(self.table)
        return self._language_table


def _read_demo_raw() -> pa.Table:
    rows = [json.loads(line) for line in DEMO_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return pa.Table.from_pylist(rows)


def _string_column(raw: pa.Table, col: str, role: str) -> pa.ChunkedArray:
    if col not in raw.column_names:
        raise DataError(
            f"The dataset has no column '{col}' for the {role}. Its columns are: {', '.join(raw.column_names)}. "
            f"Set the {role} column to one of them."
        )
    arr = raw[col]
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type):
            arr = pc.cast(arr, pa.string())
        else:
            raise DataError(
                f"Column '{col}' holds {arr.type}, not text, so it cannot be the {role}. "
                f"Pick a text column: {', '.join(c for c in raw.column_names if _is_text(raw[c].type))}."
            )
    if pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return pc.fill_null(arr, "")


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def normalize(raw: pa.Table, spec: SourceSpec) -> tuple[pa.Table, int]:
    """Map ``raw``'s columns to FILTERED_COLUMNS (+ lengths), drop rows with an empty prompt or response and sort
    by language. Returns (table, number of dropped rows). DataError on a column mapping that does not match."""
    prompt = _string_column(raw, spec.prompt_col, "prompt")
    response = _string_column(raw, spec.response_col, "response")
    n = raw.num_rows
    if spec.language_col:
        lang_values = _string_column(raw, spec.language_col, "language")
        if spec.language_code_col and spec.language_code_col in raw.column_names:
            names = lang_values
            codes = _string_column(raw, spec.language_code_col, "language code")
        else:
            names, codes = _names_and_codes(lang_values)
    else:
        if not spec.language:
            raise DataError(
                "This dataset has no language column set: choose its language column, or say which language all "
                "its rows are in."
            )
        try:
            lang = languages.resolve(spec.language)
        except languages.UnknownLanguage as e:
            raise DataError(str(e)) from e
        names = pa.chunked_array([pa.array([lang.name] * n, pa.string())])
        codes = pa.chunked_array([pa.array([lang.code] * n, pa.string())])

    def optional(col: str) -> pa.ChunkedArray:
        if col in raw.column_names and _is_text(raw[col].type):
            return pc.cast(pc.fill_null(raw[col], ""), pa.string())
        return pa.chunked_array([pa.array([""] * n, pa.string())])

    prompt_chars = pc.utf8_length(pc.utf8_trim_whitespace(prompt))
    response_chars = pc.utf8_length(pc.utf8_trim_whitespace(response))
    table = pa.table(
        {
            "prompt": prompt,
            "response": response,
            "language": names,
            "language_code": codes,
            "annotation_type": optional("annotation_type"),
            "user_id": optional("user_id"),
            PROMPT_CHARS: pc.cast(prompt_chars, pa.int32()),
            RESPONSE_CHARS: pc.cast(response_chars, pa.int32()),
        }
    )
    keep = pc.and_(pc.greater(table[PROMPT_CHARS], 0), pc.greater(table[RESPONSE_CHARS], 0))
    dropped = n - pc.sum(keep).as_py() if n else 0
    if dropped:
        table = table.filter(keep)
    table = _sort_for_filtering(table)
    ids = pa.array(
        [row_id(p, r) for p, r in zip(table["prompt"].to_pylist(), table["response"].to_pylist())], pa.string()
    )
    table = table.add_column(0, "id", ids).combine_chunks()
    return table, dropped


def _sort_for_filtering(table: pa.Table) -> pa.Table:
    """Sort rows by language and, within a language, put the first occurrence of every prompt before repeated
    prompts (stable, so rows keep their order otherwise). Adds PROMPT_KEY (an integer per distinct stripped prompt)
    and IS_REPEAT. Then one language is a slice, and one language without duplicate prompts is a shorter slice."""
    import numpy as np

    if table.num_rows == 0:
        return table.append_column(PROMPT_KEY, pa.array([], pa.int32())).append_column(
            IS_REPEAT, pa.array([], pa.bool_())
        )
    lang = pc.dictionary_encode(table["language_code"].combine_chunks())
    lang_rank = np.argsort(np.argsort(np.array(lang.dictionary.to_pylist(), dtype=object), kind="stable"))
    lang_idx = lang_rank[lang.indices.to_numpy(zero_copy_only=False)].astype(np.int64)
    key = pc.dictionary_encode(pc.utf8_trim_whitespace(table["prompt"]).combine_chunks()).indices
    key_np = key.to_numpy(zero_copy_only=False).astype(np.int64)
    _, first = np.unique(lang_idx * (int(key_np.max()) + 1) + key_np, return_index=True)
    repeat = np.ones(table.num_rows, dtype=bool)
    repeat[first] = False
    order = np.lexsort((repeat, lang_idx))  # by language, then firsts before repeats; stable
    table = table.append_column(PROMPT_KEY, pc.cast(key, pa.int32())).append_column(IS_REPEAT, pa.array(repeat))
    return table.take(pa.array(order))


def _names_and_codes(values: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """A column holding names or codes → (names, ISO 639-3 codes). Unknown values stay as they are."""
    encoded = pc.dictionary_encode(values).combine_chunks()
    names, codes = [], []
    for v in encoded.dictionary.to_pylist():
        found = languages.lookup(v) if v else None
        names.append(found.name if found else (v or "unknown"))
        codes.append(found.code if found else (v.casefold() if v else "und"))
    idx = encoded.indices
    return (
        pa.chunked_array([pc.take(pa.array(names, pa.string()), idx)]),
        pa.chunked_array([pc.take(pa.array(codes, pa.string()), idx)]),
    )


def _build_source(table: pa.Table, info: SourceInfo) -> Source:
    offsets: dict[str, tuple[int, int, int]] = {}
    names: dict[str, str] = {}
    start = 0
    if table.num_rows:
        counts = pc.value_counts(table["language_code"]).to_pylist()  # sorted table → runs
        order = {c["values"]: c["counts"] for c in counts}
        repeats = table[IS_REPEAT]
        for code in sorted(order):
            n = order[code]
            unique = n - pc.sum(repeats.slice(start, n)).as_py()
            offsets[code] = (start, n, unique)
            names[code] = table["language"][start].as_py() or code
            start += n
    return Source(table=table, info=info, offsets=offsets, names=names)


# --- the process-wide cache ---------------------------------------------------------------------------------------
@dataclass
class _Entry:
    source: Source
    public: bool


_cache: OrderedDict[tuple, _Entry] = OrderedDict()


_cache_lock = threading.Lock()


_key_locks: dict[tuple, threading.Lock] = {}


def clear_cache() -> None:
    """Forget every cached source (tests; or to free memory)."""
    with _cache_lock:
        _cache.clear()
        _key_locks.clear()


def _cache_get(key: tuple) -> _Entry | None:
    with _cache_lock:
        entry = _cache.get(key)
        if entry is not None:
            _cache.move_to_end(key)
        return entry


def _cache_put(key: tuple, entry: _Entry) -> None:
    with _cache_lock:
        _cache[key] = entry
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def _key_lock(key: tuple) -> threading.Lock:
    with _cache_lock:
        return _key_locks.setdefault(key, threading.Lock())


def demo_source(note: str = "") -> Source:
    """The bundled demo data (cached)."""
    key = ("demo",)
    entry = _cache_get(key)
    if entry is None:
        spec = SourceSpec.demo()
        table, dropped = normalize(_read_demo_raw(), spec)
        info = SourceInfo(
            DEMO_ID,
            "train",
            None,
            AYA_LICENSE,
            True,
            table.num_rows,
            {"prompt": "inputs", "response": "targets", "language": "language"},
            dropped,
        )
        entry = _Entry(_build_source(table, info), public=True)
        _cache_put(key, entry)
    if note:
        src = entry.source
        return Source(src.table, replace(src.info, note=note), src.offsets, src.names, src._language_table)
    return entry.source


def load_source(spec: SourceSpec, token: str | None, *, fallback_to_demo: bool = True) -> Source:
    """Load (or reuse) a source for the caller with ``token``.

    Raises hub.HubError (not found, gated, needs a token, ...) or DataError (bad column mapping). When the Hub
    cannot be reached and ``fallback_to_demo``, returns the demo data with ``info.note`` saying so.
    """
    if spec.kind == "demo":
        return demo_source()
    dataset_id = hub.validate_repo_id(spec.dataset_id)
    mapping = (spec.prompt_col, spec.response_col, spec.language_col, spec.language_code_col, spec.language)
    key = (dataset_id, spec.split, spec.config, mapping)
    try:
        entry = _cache_get(key)
        if entry is not None:
            if not entry.public:  # private/gated: the caller's token must be allowed to read it
                hub.check_dataset_access(dataset_id, token)
            return entry.source
        with _key_lock(key):  # one load per dataset even when sessions ask at once
            entry = _cache_get(key)
            if entry is None:
                access = hub.check_dataset_access(dataset_id, token)
                raw = _load_raw(dataset_id, spec, token)
                table, dropped = normalize(raw, spec)
                info = SourceInfo(
                    dataset_id=dataset_id,
                    split=spec.split,
                    config=spec.config,
                    license=access["license"] or (AYA_LICENSE if dataset_id == AYA_ID else ""),
                    is_demo=False,
                    rows=table.num_rows,
                    mapping={
                        "prompt": spec.prompt_col,
                        "response": spec.response_col,
                        "language": spec.language_col or f"(all rows: {spec.language})",
                    },
                    dropped_empty=dropped,
                    private=access["private"],
                )
                entry = _Entry(_build_source(table, info), public=not (access["private"] or access["gated"]))
                _cache_put(key, entry)
            elif not entry.public:
                hub.check_dataset_access(dataset_id, token)
            return entry.source
    except hub.HubUnreachable as e:
        if not fallback_to_demo:
            raise
        return demo_source(note=f"{e} Showing the bundled demo data instead of {dataset_id}.")


_RAW_CACHE: OrderedDict[tuple, pa.Table] = OrderedDict()


def _load_raw(dataset_id: str, spec: SourceSpec, token: str | None) -> pa.Table:
    """The raw split, cached so that fixing a column mapping does not download again (access checked by caller)."""
    key = (dataset_id, spec.split, spec.config)
    with _cache_lock:
        raw = _RAW_CACHE.get(key)
    if raw is None:
        raw = hub.load_dataset_table(dataset_id, spec.split, token, config=spec.config)
        with _cache_lock:
            _RAW_CACHE[key] = raw
            while len(_RAW_CACHE) > 2:
                _RAW_CACHE.popitem(last=False)
    return raw


# --- language table -----------------------------------------------------------------------------------------------
def language_table(table: pa.Table) -> pa.Table:
    """language, code, rows, mean prompt and response length (characters); most rows first."""
    if PROMPT_CHARS not in table.column_names:
        table = table.append_column(PROMPT_CHARS, pc.utf8_length(table["prompt"]))
        table = table.append_column(RESPONSE_CHARS, pc.utf8_length(table["response"]))
    grouped = table.group_by(["language_code", "language"], use_threads=False).aggregate(
        [([], "count_all"), (PROMPT_CHARS, "mean"), (RESPONSE_CHARS, "mean")]
    )
    out = pa.table(
        {
            "language": grouped["language"],
            "code": grouped["language_code"],
            "rows": pc.cast(grouped["count_all"], pa.int64()),
            "mean_prompt_chars": pc.round(grouped[f"{PROMPT_CHARS}_mean"], 0),
            "mean_response_chars": pc.round(grouped[f"{RESPONSE_CHARS}_mean"], 0),
        }
    )
    return out.sort_by([("rows", "descending"), ("language", "ascending")])
