"""Tables on disk: Parquet or JSON Lines, chosen by the file's suffix. Every step's files (filtered sets, raw
results, annotations, exports) go through these two functions, so they read and write the same way everywhere.

Writes are atomic: the table goes to a temporary file beside the target, renamed at the end, so a failed or
interrupted write never leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET = (".parquet",)
JSON_LINES = (".jsonl", ".json", ".ndjson")


class TableFileError(ValueError):
    """A file that cannot be read or written as a table; the message says which file and what to do."""


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PARQUET:
        return "parquet"
    if suffix in JSON_LINES:
        return "jsonl"
    raise TableFileError(f"{path}: use a .parquet or .jsonl file.")


def read_table(path: str | Path) -> pa.Table:
    """Read a Parquet (``.parquet``) or JSON Lines (``.jsonl``, one JSON object per line) file as a table."""
    path = Path(path)
    kind = _kind(path)
    if not path.exists():
        raise TableFileError(f"{path} does not exist.")
    if kind == "parquet":
        try:
            return pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise TableFileError(f"{path}: not a readable Parquet file ({exc}).") from None
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise TableFileError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from None
    return pa.Table.from_pylist(rows)


def write_table(table: pa.Table, path: str | Path) -> Path:
    """Write ``table`` as Parquet (zstd) or JSON Lines by the suffix of ``path``, atomically. Returns ``path``."""
    path = Path(path)
    kind = _kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        if kind == "parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            with tmp.open("w", encoding="utf-8") as fh:
                for row in table.to_pylist():
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
