"""Run checkpoints on disk: a JSON Lines file of raw rows, appended as rows finish (the last line per id wins),
plus a small ``.meta.json`` with the settings fingerprint that produced them.

Owns :class:`Checkpoint` (append-safe reading, the raw table in input order, compaction, replace from a table),
:class:`RowWriter` (a run's output: rows appended as they finish, and a sync such as a Hub push every N rows),
:func:`check_checkpoint` (refuse to mix results of other settings) and :func:`default_data_dir` (where the app
and the CLI keep checkpoints: a Space's persistent storage when there is one). Never holds a token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa

from pipeline.core import schema
from pipeline.core.errors import RunError

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.generate.settings import RunSettings

__all__ = ["Checkpoint", "Entry", "RowWriter", "SPACE_PERSISTENT_DIR", "check_checkpoint", "default_data_dir"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    status: str
    offset: int


class Checkpoint:
    """A JSON Lines file of raw rows plus a small ``.meta.json`` with the settings that produced them.

    Appending is crash-safe enough for our purpose: a torn last line (a crash mid-write) is ignored on read.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.meta_path = self.path.with_name(self.path.name + ".meta.json")

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def statuses(self) -> dict[str, str]:
        """id -> status of the last valid line for each id (what ``settings.plan_run`` counts)."""
        return {rid: entry.status for rid, entry in self.index().items()}

    def index(self) -> dict[str, Entry]:
        """id -> (status, byte offset) of the last valid line for each id."""
        out: dict[str, Entry] = {}
        if not self.path.exists():
            return out
        with self.path.open("rb") as fh:
            offset = 0
            for line in fh:
                start, offset = offset, offset + len(line)
                if not line.endswith(b"\n"):
                    break  # a torn last line
                try:
                    rec = json.loads(line)
                    out[rec["id"]] = Entry(rec["status"], start)
                except (ValueError, KeyError, TypeError):
                    continue
        return out

    def read_meta(self) -> dict:
        try:
            return json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def write_meta(self, meta: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.meta_path.with_name(self.meta_path.name + ".tmp")
        tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(self.meta_path)

    def read_at(self, offset: int) -> dict:
        with self.path.open("rb") as fh:
            fh.seek(offset)
            return json.loads(fh.readline())

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(schema.STATUSES, 0)
        for entry in self.index().values():
            counts[entry.status] = counts.get(entry.status, 0) + 1
        return counts

    def table(self, order: Iterable[str] | None = None, chunk: int = 1000) -> pa.Table:
        """The raw table, one row per id (the last line wins), in ``order`` (ids) if given, else file order.

        Rows are read back by offset and converted in chunks, so memory stays close to the table's own size.
        """
        idx = self.index()
        ids = [i for i in order if i in idx] if order is not None else list(idx)
        # ids missing from `order` (e.g. rows of a larger earlier scope) come last, in file order
        if order is not None:
            listed = set(ids)
            ids += [i for i in idx if i not in listed]
        sch = schema.raw_schema()
        batches = []
        if not ids:
            return sch.empty_table()
        with self.path.open("rb") as fh:
            rows: list[dict] = []
            for rid in ids:
                fh.seek(idx[rid].offset)
                rows.append(json.loads(fh.readline()))
                if len(rows) >= chunk:
                    batches.append(pa.RecordBatch.from_pylist(rows, schema=sch))
                    rows = []
            if rows:
                batches.append(pa.RecordBatch.from_pylist(rows, schema=sch))
        return pa.Table.from_batches(batches, schema=sch)

    def write_table(self, table: pa.Table) -> None:
        """Replace the checkpoint with ``table`` (e.g. restored from a Hub checkpoint)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for batch in schema.conform_raw(table).select(list(schema.RAW_COLUMNS)).to_batches():
                for rec in batch.to_pylist():
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        tmp.replace(self.path)

    def compact(self) -> None:
        """Rewrite the file with one line per id (drops superseded lines of re-run rows)."""
        if self.exists():
            self.write_table(self.table())

    def delete(self) -> None:
        for p in (self.path, self.meta_path):
            p.unlink(missing_ok=True)


SPACE_PERSISTENT_DIR = Path("/data")  # a Space's persistent storage, when the owner has enabled it


class RowWriter:
    """A run's output: each finished row appended to ``checkpoint`` at once (flushed), and every ``every`` rows, and
    once at the end, ``sync()`` called in a worker thread (e.g. to push the checkpoint to the Hub), one at a time.

    A sync that raises never stops the run: ``synced(exc)`` is told (``None`` after a sync that worked). Use in the
    run's event loop, and :meth:`close` it when the run ends (it waits for the last sync, even when cancelled).
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        sync: Callable[[], None] | None = None,
        every: int = 100,
        synced: Callable[[Exception | None], None] | None = None,
    ) -> None:
        self.checkpoint = checkpoint
        self._sync_fn = sync
        self._synced = synced
        self.every = max(1, every)
        self._fh: IO[str] | None = None
        self._since_sync = 0
        self._sync_task: asyncio.Task | None = None

    def write(self, rec: Mapping[str, Any]) -> None:
        """Append ``rec`` (one JSON line); start a sync when ``every`` rows were written since the last one."""
        if self._fh is None:
            self.checkpoint.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.checkpoint.path.open("a", encoding="utf-8")
        self._fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._fh.flush()
        self._since_sync += 1
        if self._sync_fn is not None and self._since_sync >= self.every:
            self._start_sync()

    def _start_sync(self) -> None:
        if self._sync_task is not None and not self._sync_task.done():
            return  # a sync is still going; the next row will try again
        self._since_sync = 0
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        self._sync_task = asyncio.ensure_future(self._sync())

    async def _sync(self) -> None:
        try:
            await asyncio.to_thread(self._sync_fn)  # type: ignore[arg-type]
            error: Exception | None = None
        except Exception as exc:  # noqa: BLE001 - a failed sync (Hub push) must not stop the run
            log.warning("checkpoint sync failed: %s", type(exc).__name__)
            error = exc
        if self._synced is not None:
            self._synced(error)

    async def close(self) -> None:
        """Close the file, wait for a sync in progress, then sync the rows written since the last one."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._sync_task is not None and not self._sync_task.done():
            try:
                await asyncio.shield(self._sync_task)
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self._sync_fn is not None and self._since_sync > 0:
            self._since_sync = 0
            try:
                await asyncio.shield(asyncio.ensure_future(self._sync()))
            except asyncio.CancelledError:
                pass


def default_data_dir() -> Path:
    """Where the app and CLI keep run checkpoints: ``DPO_STUDIO_DATA_DIR``; else, on a Space with persistent
    storage, ``/data/dpo-studio`` (so checkpoints survive a restart); else ``~/.cache/dpo-studio/data``."""
    if os.environ.get("DPO_STUDIO_DATA_DIR"):
        return Path(os.environ["DPO_STUDIO_DATA_DIR"])
    if (
        os.environ.get("SYSTEM") == "spaces"
        and SPACE_PERSISTENT_DIR.is_dir()
        and os.access(SPACE_PERSISTENT_DIR, os.W_OK)
    ):
        return SPACE_PERSISTENT_DIR / "dpo-studio"
    return Path.home() / ".cache" / "dpo-studio" / "data"


def check_checkpoint(settings: RunSettings, checkpoint: Checkpoint) -> None:
    """Raise :class:`RunError` if ``checkpoint`` holds results made with other settings (resuming would mix them)."""
    meta = checkpoint.read_meta()
    if checkpoint.exists() and meta.get("fingerprint") not in (None, settings.fingerprint()):
        raise RunError(
            f"{checkpoint.path.parent.name}/{checkpoint.path.name} holds results of a run with other settings "
            "(models, system prompt, judge or sampling). Choose another output, or start over (--restart in the "
            "CLI) to discard them."
        )
