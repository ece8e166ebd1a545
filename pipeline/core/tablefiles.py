"""Tables on disk: Parquet or JSON Lines, chosen by the file's suffix. Every step's files (filtered sets, raw
results, annotations, exports) go through these two functions, so they read and write the same way everywhere.

Writes are atomic: the table goes to a temporary file beside the target, renamed at the end, so a failed or
interrupted write never leaves a half-written file under the final name.

The table's Arrow schema travels with it, metadata included (the provenance of :mod:`pipeline.core.schema`, see
``schema.with_provenance``):

- Parquet keeps the schema and its metadata in the file itself.
- JSON Lines has nowhere to put them without breaking other readers (a header line would be read as a row by
  ``datasets``, pandas and ``jq``), so they go to a **sidecar** file beside it, ``<name>.jsonl.schema.json``:
  ``{"arrow_schema": <base64 Arrow IPC schema>, "metadata": {key: value}}`` (values that are JSON are stored as
  JSON, so a person can read the provenance). :func:`read_table` applies it when it is there (the column types
  come back exactly, e.g. a list column that is all null); a JSON Lines file without one reads as before, its
  types inferred. Writing a table without metadata removes a stale sidecar.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET = (".parquet",)
JSON_LINES = (".jsonl", ".json", ".ndjson")
SIDECAR_SUFFIX = ".schema.json"


class TableFileError(ValueError):
    """A file that cannot be read or written as a table; the message says which file and what to do."""


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PARQUET:
        return "parquet"
    if suffix in JSON_LINES:
        return "jsonl"
    raise TableFileError(f"{path}: use a .parquet or .jsonl file.")


def sidecar_path(path: str | Path) -> Path:
    """Where the schema of the JSON Lines file ``path`` is kept: ``<name>.schema.json`` beside it."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _sidecar_text(schema: pa.Schema) -> str:
    metadata = {}
    for key, value in (schema.metadata or {}).items():
        text = value.decode("utf-8", errors="replace")
        try:
            metadata[key.decode("utf-8", errors="replace")] = {"json": json.loads(text)}
        except ValueError:
            metadata[key.decode("utf-8", errors="replace")] = {"text": text}
    blob = base64.b64encode(schema.remove_metadata().serialize().to_pybytes()).decode("ascii")
    return json.dumps({"arrow_schema": blob, "metadata": metadata}, ensure_ascii=False, indent=1)


def _read_sidecar(path: Path) -> tuple[pa.Schema | None, dict[bytes, bytes]]:
    """(the stored schema or None, its metadata) from a sidecar; a broken sidecar counts as none."""
    side = sidecar_path(path)
    if not side.exists():
        return None, {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(data["arrow_schema"])))
        metadata = {}
        for key, value in (data.get("metadata") or {}).items():
            text = json.dumps(value["json"], ensure_ascii=False) if "json" in value else str(value["text"])
            metadata[key.encode("utf-8")] = text.encode("utf-8")
        return schema, metadata
    except (ValueError, KeyError, TypeError, pa.ArrowException):
        return None, {}


def read_table(path: str | Path) -> pa.Table:
    """Read a Parquet (``.parquet``) or JSON Lines (``.jsonl``, one JSON object per line) file as a table, with its
    schema metadata (for JSON Lines, from its sidecar when there is one)."""
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
    schema, metadata = _read_sidecar(path)
    table = None
    if schema is not None and (not rows or set(rows[0]) == set(schema.names)):
        try:
            table = pa.Table.from_pylist(rows, schema=schema)
        except (pa.ArrowException, TypeError, ValueError):
            table = None  # edited by hand since: infer the types as for any JSON Lines file
    if table is None:
        table = pa.Table.from_pylist(rows)
    return table.replace_schema_metadata(metadata) if metadata else table


def write_table(table: pa.Table, path: str | Path) -> Path:
    """Write ``table`` as Parquet (zstd) or JSON Lines by the suffix of ``path``, atomically, with its schema
    metadata (JSON Lines: in the sidecar, see the module's docstring). Returns ``path``."""
    path = Path(path)
    kind = _kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    side, side_tmp = sidecar_path(path), path.with_name(f".{path.name}{SIDECAR_SUFFIX}.part")
    try:
        if kind == "parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            with tmp.open("w", encoding="utf-8") as fh:
                for row in table.to_pylist():
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            if table.schema.metadata:
                side_tmp.write_text(_sidecar_text(table.schema), encoding="utf-8")
                os.replace(side_tmp, side)
            else:
                side.unlink(missing_ok=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        side_tmp.unlink(missing_ok=True)
    return path
