"""Step 3: generate second responses, judge them with UltraFeedback and check their language — continuously.

For each row of the filtered set, the executor asks every generator model for a response (system prompt + prompt),
and as soon as *that row's* generations are done it starts the row's judge call and, in parallel, the language check
of every response (the human one too). One bounded concurrency limit covers every call of the run; there are no
batch barriers, so a slow call only holds up its own row.

Results are appended to a JSON Lines checkpoint as rows finish (one line per row, ``schema.RAW_COLUMNS`` exactly;
the last line for an id wins). Running again with the same checkpoint resumes: rows already ``ok`` are never re-run,
missing rows are run, and failed rows are re-run *cheaply* (a row whose judge failed keeps its responses and is only
re-judged; a row where one generator failed only re-asks that generator). The final table has every id exactly once.

A run stops early, keeping every finished row, when it is cancelled, when the token is rejected (401/403: the run is
*paused* with a message saying why), when a model does not exist (404), or when the token budget is spent.

The run executes in a background thread with its own event loop (:func:`start_run`) and reports through a
:class:`RunHandle` that Gradio handlers and the CLI poll. Tokens are passed per run and live only in the running
coroutine: they are never written to the checkpoint, the handle, the logs or the screen.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import heapq
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

from pipeline import judge as judge_mod
from pipeline import schema

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.inference import Backend, ChatResult, GenParams

log = logging.getLogger(__name__)

__all__ = [
    "ChatFn",
    "Checkpoint",
    "Plan",
    "Progress",
    "RunError",
    "RunHandle",
    "RunSettings",
    "default_data_dir",
    "plan_run",
    "raw_schema",
    "execute",
    "prepare_run",
    "run_async",
    "start_run",
]

LATEST_ROWS = 20  # rows kept in memory for the live table
PREVIEW_CHARS = 300


class ChatFn(Protocol):
    """What the executor calls for every model call; the default is :func:`pipeline.inference.achat`."""

    def __call__(
        self, backend: Backend, messages: list[dict], params: GenParams, token: str | None
    ) -> Awaitable[ChatResult]: ...


class RunError(Exception):
    """A run that cannot start (bad settings, nothing to do, a checkpoint from other settings, a run already going)."""


# --------------------------------------------------------------------------------------------------------------
# Settings, plan and estimate
# --------------------------------------------------------------------------------------------------------------


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment (where credentials could hide), for cards and checkpoints."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _backend_dict(backend: Any) -> dict:
    return {
        "kind": getattr(backend, "kind", ""),
        "model": getattr(backend, "model", ""),
        "base_url": public_url(getattr(backend, "base_url", "") or ""),
        "provider": getattr(backend, "provider", "auto") or "auto",
    }


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides what a run produces, plus its limits. Holds no token."""

    generators: tuple  # tuple[Backend, ...]: one or several generator models
    judge: Any  # Backend of the judge model (may differ from the generators)
    system_prompt: str = ""
    aspect: str = judge_mod.DEFAULT_ASPECT
    max_new_tokens: int = 512  # per generated response
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int | None = None
    judge_max_new_tokens: int | None = None  # None: judge.default_max_new_tokens(number of texts)
    judge_temperature: float = 0.1
    concurrency: int = 8  # calls in flight at once, across generation and judging
    max_rows: int | None = None  # use only the first max_rows rows of the input
    max_tokens: int | None = None  # token budget (prompt + completion) of this run; None: no budget

    def __post_init__(self) -> None:
        if not self.generators:
            raise RunError("Choose at least one generator model.")
        models = [getattr(g, "model", "") for g in self.generators]
        if any(not m.strip() for m in models) or not getattr(self.judge, "model", "").strip():
            raise RunError("Every generator and the judge need a model id.")
        if len(set(models)) != len(models):
            raise RunError("The same generator model is listed twice; list each model once.")
        if schema.HUMAN in models:
            raise RunError(f"'{schema.HUMAN}' is reserved for the human responses; it cannot be a model id.")
        if self.aspect not in judge_mod.ASPECTS:
            raise RunError(f"Unknown aspect {self.aspect!r}; choose one of {', '.join(judge_mod.ASPECTS)}.")
        if not 1 <= int(self.concurrency) <= 256:
            raise RunError("Concurrency must be between 1 and 256.")
        if self.max_new_tokens < 1:
            raise RunError("Max new tokens must be at least 1.")
        if self.max_rows is not None and self.max_rows < 1:
            raise RunError("The row limit must be at least 1 (or empty for no limit).")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise RunError("The token budget must be at least 1 (or empty for no budget).")

    @property
    def sources(self) -> list[str]:
        """``response_sources`` of every row: ``"human"`` then each generator's model id."""
        return [schema.HUMAN, *(g.model for g in self.generators)]

    @property
    def n_texts(self) -> int:
        return 1 + len(self.generators)

    @property
    def judge_tokens(self) -> int:
        return self.judge_max_new_tokens or judge_mod.default_max_new_tokens(self.n_texts)

    def describe(self) -> dict:
        """A JSON-able description for checkpoints, cards and ``raw_meta`` (no token anywhere)."""
        return {
            "generators": [_backend_dict(g) for g in self.generators],
            "judge": _backend_dict(self.judge),
            "system_prompt": self.system_prompt,
            "aspect": self.aspect,
            "generation": {
                "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature,
                "top_p": self.top_p,
                "seed": self.seed,
            },
            "judge_generation": {"max_new_tokens": self.judge_tokens, "temperature": self.judge_temperature},
            "concurrency": self.concurrency,
            "max_rows": self.max_rows,
            "max_tokens": self.max_tokens,
        }

    def fingerprint(self) -> str:
        """A short hash of what decides the *content* of rows (models, prompts, judge, sampling), not the limits.

        Base URLs are left out on purpose: the same model behind a moved endpoint or a restarted local server is
        the same run.
        """
        d = self.describe()
        key = {
            "generators": [(g["kind"], g["model"], g["provider"]) for g in d["generators"]],
            "judge": (d["judge"]["kind"], d["judge"]["model"], d["judge"]["provider"]),
            "system_prompt": d["system_prompt"],
            "aspect": d["aspect"],
            "generation": d["generation"],
            "judge_generation": d["judge_generation"],
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]

    def gen_params(self) -> GenParams:
        from pipeline.inference import GenParams

        return GenParams(
            max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p, seed=self.seed
        )

    def judge_params(self) -> GenParams:
        from pipeline.inference import GenParams

        return GenParams(
            max_new_tokens=self.judge_tokens, temperature=self.judge_temperature, top_p=1.0, seed=self.seed
        )


def estimate_tokens(text: str) -> int:
    """A conservative token estimate (about 3 UTF-8 bytes per token; non-Latin scripts use more tokens per char)."""
    return len(text.encode("utf-8")) // 3 + 1


_JUDGE_TEMPLATE_TOKENS: dict[tuple[str, int], int] = {}


def _judge_overhead(aspect: str, n_texts: int) -> int:
    key = (aspect, n_texts)
    if key not in _JUDGE_TEMPLATE_TOKENS:
        msgs = judge_mod.judge_messages("", [""] * n_texts, aspect)
        _JUDGE_TEMPLATE_TOKENS[key] = sum(estimate_tokens(m["content"]) for m in msgs)
    return _JUDGE_TEMPLATE_TOKENS[key]


@dataclass(frozen=True)
class Plan:
    """What a run will do, computed before it starts (for the estimate shown to the user)."""

    total: int  # rows in scope (the input, cut to max_rows)
    already_ok: int  # rows in scope already ok in the checkpoint (never re-run)
    to_run: int  # rows this run will process
    retried: int  # of which: rows that failed before
    generation_calls: int
    judge_calls: int
    est_tokens: int  # upper bound: prompts + max_new_tokens for every call
    budget: int | None

    @property
    def calls(self) -> int:
        return self.generation_calls + self.judge_calls

    def summary(self) -> str:
        """One short paragraph for the UI and the CLI."""
        if self.total == 0:
            return "The filtered set has no rows: filter a language with data first."
        if self.to_run == 0:
            return f"All {self.total} rows are already done; nothing to run."
        parts = [f"{self.to_run} of {self.total} rows to run"]
        if self.already_ok:
            parts.append(f"{self.already_ok} already done")
        if self.retried:
            parts.append(f"{self.retried} retried after a failure")
        text = (
            ", ".join(parts)
            + f": about {self.calls} calls ({self.generation_calls} generations + {self.judge_calls} judge calls),"
            + f" at most ~{self.est_tokens:,} tokens."
        )
        if self.budget is not None and self.est_tokens > self.budget:
            share = max(0, int(self.to_run * self.budget / max(1, self.est_tokens)))
            text += f" The token budget ({self.budget:,}) may stop the run after roughly {share} rows or more."
        return text


def _iter_rows(rows: Any) -> Iterator[dict]:
    """Rows of the filtered set as dicts, from a pyarrow table, a ``FilteredSet`` (``.table``) or dicts."""
    table = getattr(rows, "table", rows)
    if isinstance(table, pa.Table):
        for batch in table.to_batches(max_chunksize=1024):
            yield from batch.to_pylist()
    else:
        yield from table


def _scope(rows: Any, settings: RunSettings) -> Iterator[tuple[int, dict]]:
    seen: set[str] = set()
    for index, row in enumerate(_iter_rows(rows)):
        if settings.max_rows is not None and index >= settings.max_rows:
            return
        rid = row.get("id") or schema.row_id(row.get("prompt", ""), row.get("response", ""))
        if rid in seen:  # a duplicate (prompt, response) pair: same id, one row
            continue
        seen.add(rid)
        yield index, {**row, "id": rid}


def plan_run(
    rows: Any, settings: RunSettings, checkpoint: Checkpoint | None = None, *, index: dict | None = None
) -> Plan:
    """Count what a run of ``rows`` with ``settings`` would do, given what ``checkpoint`` already holds."""
    if index is None:
        index = checkpoint.index() if checkpoint is not None else {}
    total = already = to_run = retried = gen_calls = judge_calls = tokens = 0
    sys_tokens = estimate_tokens(settings.system_prompt) if settings.system_prompt else 0
    overhead = _judge_overhead(settings.aspect, settings.n_texts)
    n_gen = len(settings.generators)
    for _, row in _scope(rows, settings):
        total += 1
        prior = index.get(row["id"])
        if prior is not None and prior.status == schema.STATUS_OK:
            already += 1
            continue
        to_run += 1
        if prior is not None:
            retried += 1
        prompt_t = estimate_tokens(row.get("prompt", ""))
        human_t = estimate_tokens(row.get("response", ""))
        # A rough upper bound for failed rows too (their cheaper resume is not counted here).
        gen_calls += n_gen
        judge_calls += 1
        tokens += n_gen * (sys_tokens + prompt_t + settings.max_new_tokens)
        tokens += overhead + prompt_t + human_t + n_gen * settings.max_new_tokens + settings.judge_tokens
    return Plan(total, already, to_run, retried, gen_calls, judge_calls, tokens, settings.max_tokens)


# --------------------------------------------------------------------------------------------------------------
# Checkpoint: JSON Lines, appended as rows finish, last line per id wins
# --------------------------------------------------------------------------------------------------------------


def raw_schema() -> pa.Schema:
    """The Arrow schema of the raw results table (``schema.RAW_COLUMNS``, in order)."""
    s, i, f, b = pa.string(), pa.int64(), pa.float64(), pa.bool_()
    types = {
        "id": s,
        "prompt": s,
        "system_prompt": s,
        "target_language": s,
        "responses": pa.list_(s),
        "response_sources": pa.list_(s),
        "ratings": pa.list_(i),
        "rationales": pa.list_(s),
        "detected_languages": pa.list_(s),
        "language_confidences": pa.list_(f),
        "language_match": pa.list_(b),
        "judge_model": s,
        "aspect": s,
        "status": s,
        "error": s,
    }
    return pa.schema([(name, types[name]) for name in schema.RAW_COLUMNS])


@dataclass(frozen=True)
class _Entry:
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

    def index(self) -> dict[str, _Entry]:
        """id -> (status, byte offset) of the last valid line for each id."""
        out: dict[str, _Entry] = {}
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
                    out[rec["id"]] = _Entry(rec["status"], start)
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
        sch = raw_schema()
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
            for batch in table.select(list(schema.RAW_COLUMNS)).to_batches():
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


def default_data_dir() -> Path:
    """Where the app and CLI keep run checkpoints: ``DPO_STUDIO_DATA_DIR``; else, on a Space with persistent
    storage, ``/data/dpo-studio`` (so checkpoints survive a restart); else ``~/.cache/dpo-studio/data``."""
    if os.environ.get("DPO_STUDIO_DATA_DIR"):
        return Path(os.environ["DPO_STUDIO_DATA_DIR"])
    if os.environ.get("SYSTEM") == "spaces" and SPACE_PERSISTENT_DIR.is_dir() and os.access(SPACE_PERSISTENT_DIR, os.W_OK):
        return SPACE_PERSISTENT_DIR / "dpo-studio"
    return Path.home() / ".cache" / "dpo-studio" / "data"


# --------------------------------------------------------------------------------------------------------------
# Progress and the run handle
# --------------------------------------------------------------------------------------------------------------

RUNNING_STATES = ("starting", "running", "stopping")
STATE_DONE, STATE_CANCELLED, STATE_PAUSED, STATE_STOPPED, STATE_FAILED = (
    "done",
    "cancelled",
    "paused",
    "stopped",
    "failed",
)


@dataclass(frozen=True)
class Progress:
    """A snapshot of a run for the UI/CLI."""

    state: str  # starting | running | stopping | done | cancelled | paused | stopped | failed
    message: str
    total: int  # rows in scope
    done: int  # rows finished with any status (incl. ok rows from before)
    counts: dict  # status -> rows, over the whole scope
    finished_this_run: int
    elapsed_s: float
    rows_per_s: float
    eta_s: float | None
    tokens_used: int
    hedged_calls: int = 0  # backup requests sent for stragglers at the end of the run

    @property
    def failures(self) -> int:
        return sum(v for k, v in self.counts.items() if k != schema.STATUS_OK)

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    def line(self) -> str:
        """One human line: "120/500 rows · 3 failed · 4.2 rows/s · ETA 1m30s"."""
        eta = "" if self.eta_s is None else f" · ETA {_duration(self.eta_s)}"
        fails = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in self.counts.items() if k != "ok" and v)
        return (
            f"{self.done}/{self.total} rows · {self.counts.get(schema.STATUS_OK, 0)} ok"
            + (f" · {fails}" if fails else "")
            + f" · {self.rows_per_s:.2f} rows/s{eta} · {self.state}"
        )


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _preview(rec: dict) -> dict:
    def clip(text: Any) -> str:
        text = text or ""
        return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"

    return {
        "id": rec["id"],
        "status": rec["status"],
        "prompt": clip(rec["prompt"]),
        "responses": [clip(r) for r in rec["responses"]],
        "response_sources": list(rec["response_sources"]),
        "ratings": list(rec["ratings"]),
        "language_match": list(rec["language_match"]),
        "error": clip(rec["error"]),
    }


class RunHandle:
    """The UI's view of one run: thread-safe snapshots, the latest rows, cancel() and the final table.

    Holds no token, and no per-row data beyond the rows still to run and the last few previews.
    """

    def __init__(
        self,
        settings: RunSettings,
        checkpoint: Checkpoint,
        plan: Plan,
        order: list[str],
        todo: list[tuple[dict, _Entry | None]],
        counts: dict[str, int],
        done: int,
    ) -> None:
        self.settings = settings
        self.checkpoint = checkpoint
        self.plan = plan
        self._order = order  # ids in input order (for the final table)
        self._todo = todo
        self._lock = threading.Lock()
        self._state = "starting"
        self._message = ""
        self._counts = {**dict.fromkeys(schema.STATUSES, 0), **counts}
        self._done = done
        self._remaining = len(todo)
        self._finished = 0
        self._tokens = 0
        self._hedges = 0
        self._ratings: collections.Counter = collections.Counter()  # (source, rating) -> rows, this run
        self._languages: dict[str, list[int]] = {}  # source -> [checked, matched], this run
        self._sources: list[str] = []
        self._started = time.monotonic()
        self._ended: float | None = None
        self._latest: collections.deque[dict] = collections.deque(maxlen=LATEST_ROWS)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        self._cancel_requested = False
        self._finished_event = threading.Event()
        self._release: Callable[[], None] | None = None
        self.hub_message = ""  # the last Hub checkpoint problem, "" when fine

    # -- called by the executor --
    def _begin(self) -> None:
        with self._lock:
            self._state = "running"
            self._started = time.monotonic()

    def _record(self, rec: dict, prior_status: str | None, tokens: int) -> None:
        with self._lock:
            if prior_status is not None:
                self._counts[prior_status] -= 1
            else:
                self._done += 1
            self._counts[rec["status"]] = self._counts.get(rec["status"], 0) + 1
            self._finished += 1
            self._remaining -= 1
            self._tokens += tokens
            self._latest.appendleft(_preview(rec))
            for source, rating, match in zip(rec["response_sources"], rec["ratings"], rec["language_match"]):
                if rating is not None:
                    self._ratings[(source, int(rating))] += 1
                if match is not None:
                    checked = self._languages.setdefault(source, [0, 0])
                    checked[0] += 1
                    checked[1] += 1 if match else 0
                if source not in self._sources:
                    self._sources.append(source)

    def _hedged(self) -> None:
        with self._lock:
            self._hedges += 1

    def _end(self, state: str, message: str) -> None:
        with self._lock:
            self._state = state
            self._message = message
            self._ended = time.monotonic()
            self._todo = []
        release, self._release = self._release, None
        if release is not None:
            release()  # e.g. free the checkpoint for the next run before anyone is told this one ended
        self._finished_event.set()

    # -- called by the UI / CLI --
    @property
    def tokens_used(self) -> int:
        with self._lock:
            return self._tokens

    def snapshot(self) -> Progress:
        with self._lock:
            now = self._ended if self._ended is not None else time.monotonic()
            elapsed = max(1e-9, now - self._started)
            rate = self._finished / elapsed if self._finished else 0.0
            running = self._state in RUNNING_STATES
            eta = self._remaining / rate if rate > 0 and running else None
            return Progress(
                state=self._state,
                message=self._message,
                total=self.plan.total,
                done=self._done,
                counts=dict(self._counts),
                finished_this_run=self._finished,
                elapsed_s=elapsed,
                rows_per_s=rate,
                eta_s=eta,
                tokens_used=self._tokens,
                hedged_calls=self._hedges,
            )

    def live_stats(self) -> tuple[list[dict], list[dict]]:
        """Rows finished in this run, aggregated for the live plots: (rating counts, language-match rates) in the
        shapes of ``results.rating_distribution`` / ``results.language_match_rates`` (as records)."""
        with self._lock:
            ratings = [
                {"rating": str(r), "source": src, "count": self._ratings[(src, r)]}
                for r in range(1, 6)
                for src in self._sources
            ]
            langs = [
                {"source": src, "rate": (m / c if c else 0.0), "checked": c, "unsupported": 0}
                for src in self._sources
                for c, m in [self._languages.get(src, [0, 0])]
            ]
        return ratings, langs

    def latest_rows(self) -> list[dict]:
        with self._lock:
            return list(self._latest)

    @property
    def running(self) -> bool:
        return not self._finished_event.is_set()

    def cancel(self) -> None:
        """Stop quickly: in-flight calls are abandoned, finished rows stay in the checkpoint."""
        self._cancel_requested = True
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile: the run is over anyway
                pass

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (True) or ``timeout`` passes (False)."""
        return self._finished_event.wait(timeout)

    def table(self) -> pa.Table:
        """The raw results so far (every id once, input order), read from the checkpoint."""
        return self.checkpoint.table(order=self._order)


# --------------------------------------------------------------------------------------------------------------
# The executor
# --------------------------------------------------------------------------------------------------------------


class _Stop(Exception):
    """A condition that ends the whole run early (auth rejected, model not found)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


class _Secrets:
    """The run's credentials, kept only in the running coroutine: which one goes to which backend, and scrubbing.

    The HF ``token`` goes to ``serverless`` and ``endpoint`` backends only; an OpenAI-compatible server gets the
    API key given for its base URL (``api_keys``), or nothing, so the HF token never reaches a third-party URL.
    """

    __slots__ = ("_token", "_keys")

    def __init__(self, token: str | None, api_keys: dict[str, str] | None) -> None:
        self._token = token or None
        self._keys = {_url_key(u): k for u, k in (api_keys or {}).items() if k}

    def for_backend(self, backend: Any) -> str | None:
        if getattr(backend, "kind", "") == "openai":
            return self._keys.get(_url_key(getattr(backend, "base_url", "")))
        return self._token

    def scrub(self, text: str) -> str:
        for secret in (self._token, *self._keys.values()):
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return "_Secrets(***)"


def _url_key(url: str) -> str:
    return public_url((url or "").strip()).rstrip("/")


def _scrub(text: str, secrets: _Secrets | str | None) -> str:
    if isinstance(secrets, _Secrets):
        return secrets.scrub(text)
    if secrets and secrets in text:
        text = text.replace(secrets, "***")
    return text


def _error_kind(exc: BaseException) -> tuple[str, int | None, str]:
    """(kind, status, message) of an inference error; unknown exceptions are kind "error"."""
    kind = getattr(exc, "kind", None) or "error"
    status = getattr(exc, "status", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(kind), status, str(message)


def _is_auth(kind: str, status: int | None) -> bool:
    return kind in ("auth", "unauthorized", "forbidden") or status in (401, 403)


def _is_not_found(kind: str, status: int | None) -> bool:
    return kind in ("not_found", "model_not_found") or status == 404


class _PooledChat:
    """The default chat function: one ``pipeline.inference.AsyncChat`` (one connection pool) per backend for the
    whole run, inside the run's event loop. Raises the process-wide per-backend limit to the run's concurrency."""

    def __init__(self, concurrency: int, retry: Any = None, timeout: float = 120.0) -> None:
        self._chats: dict[Any, Any] = {}
        self._concurrency = concurrency
        self._retry = retry
        self._timeout = timeout

    async def __call__(self, backend: Any, messages: list[dict], params: Any, token: str | None) -> Any:
        from pipeline import inference

        chat = self._chats.get(backend)
        if chat is None:
            if inference.concurrency_limit(backend) < self._concurrency:
                inference.set_concurrency_limit(backend, self._concurrency)
            chat = self._chats[backend] = inference.AsyncChat(
                backend, token, retry=self._retry or inference.DEFAULT_RETRY, timeout=self._timeout
            )
        return await chat(messages, params)

    async def aclose(self) -> None:
        for chat in self._chats.values():
            try:
                await chat.aclose()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self._chats.clear()


PRIORITY_GENERATION, PRIORITY_JUDGE = 0, 1  # generations first: a row's chain is longest before it starts


class _Slots:
    """The run's concurrency limit: at most ``n`` calls in flight, granted by priority (then FIFO).

    Generations go before judge calls (the critical-path rule: start the longest remaining chains first), which
    shortens the run's tail. ``preempt`` (set by the executor) may free a slot held by a hedge copy when real work
    is waiting.
    """

    def __init__(self, n: int) -> None:
        self.free = n
        self._waiters: list[tuple[int, int, asyncio.Future]] = []
        self._seq = 0
        self.preempt: Callable[[], bool] | None = None

    @property
    def idle(self) -> bool:
        """A slot is free and nobody is waiting for one."""
        return self.free > 0 and not self._waiters

    def try_acquire(self) -> bool:
        if self.idle:
            self.free -= 1
            return True
        return False

    async def acquire(self, priority: int) -> None:
        if self.try_acquire():
            return
        future = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._waiters, (priority, self._seq, future))
        if self.free <= 0 and self.preempt is not None:
            self.preempt()
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release()  # granted while being cancelled: give it back
            else:
                self._waiters = [w for w in self._waiters if w[2] is not future]
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self.free += 1


@dataclass(eq=False)
class _Flight:
    """One logical call in flight: its primary request and, at the run's tail, at most one hedge copy."""

    kind: str  # "generation" | "judge"
    started: float
    call: Callable[[], Awaitable[Any]]
    result: asyncio.Future
    tasks: list = field(default_factory=list)
    hedge: asyncio.Task | None = None
    errors: list = field(default_factory=list)


class _Hedger:
    """Backup requests for stragglers at the end of a run ("The Tail at Scale").

    Only when the run has nothing else to do (a slot is free and no call is waiting), a call that has been running
    for more than ``factor`` × the median latency of its kind gets ONE duplicate request; whichever answers first
    is used and the other is cancelled. Hedge copies give their slot back at once when real work arrives, and
    at most ``cap`` copies are made per run, so they cost a few calls at the very end of a run and nothing else.
    """

    def __init__(self, slots: _Slots, cap: int, factor: float = 1.5, min_samples: int = 8) -> None:
        self.slots = slots
        self.cap = cap
        self.factor = factor
        self.min_samples = min_samples
        self.used = 0
        self.flights: set[_Flight] = set()
        self.latencies: dict[str, collections.deque] = {}
        self.enabled = True
        self.tail = False  # set once every row has been started: only then are idle slots really idle
        self.on_hedge: Callable[[], None] | None = None
        slots.preempt = self.preempt

    def observe(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, collections.deque(maxlen=200)).append(seconds)

    def threshold(self, kind: str) -> float | None:
        seen = self.latencies.get(kind)
        if not seen or len(seen) < self.min_samples:
            return None
        return self.factor * sorted(seen)[len(seen) // 2]

    def preempt(self) -> bool:
        """Cancel the newest hedge copy so its slot goes to real work. True if one was cancelled."""
        running = [f for f in self.flights if f.hedge is not None and not f.hedge.done()]
        if not running:
            return False
        newest = max(running, key=lambda f: f.hedge.get_name())
        newest.hedge.cancel()
        return True

    def tick(self) -> None:
        if not (self.enabled and self.tail) or self.used >= self.cap or not self.slots.idle:
            return
        now = time.monotonic()
        candidates = []
        for flight in self.flights:
            limit = self.threshold(flight.kind)
            if flight.hedge is None and not flight.result.done() and limit is not None:
                if now - flight.started >= limit:
                    candidates.append(flight)
        for flight in sorted(candidates, key=lambda f: f.started):
            if self.used >= self.cap or not self.slots.try_acquire():
                return
            self.used += 1
            flight.hedge = _start_request(self, flight, name=f"hedge-{self.used:06d}")
            if self.on_hedge is not None:
                self.on_hedge()

    async def run(self, interval: float = 0.02) -> None:
        while True:
            await asyncio.sleep(interval)
            self.tick()


def _start_request(hedger: _Hedger, flight: _Flight, name: str) -> asyncio.Task:
    """Start one request of ``flight`` (its slot is already held) and settle the flight when it ends."""
    task = asyncio.ensure_future(flight.call())
    task.set_name(name)
    flight.tasks.append(task)

    def done(t: asyncio.Task) -> None:
        hedger.slots.release()
        if flight.result.done():
            return
        if t.cancelled():
            if all(x.done() for x in flight.tasks) and not flight.result.done():
                flight.result.set_exception(flight.errors[0] if flight.errors else asyncio.CancelledError())
            return
        exc = t.exception()
        if exc is None:
            hedger.observe(flight.kind, time.monotonic() - flight.started)
            flight.result.set_result(t.result())
            return
        flight.errors.append(exc)
        if all(x.done() for x in flight.tasks):
            flight.result.set_exception(flight.errors[0])

    task.add_done_callback(done)
    return task


class _Executor:
    def __init__(
        self,
        rows: list[tuple[dict, _Entry | None]],
        settings: RunSettings,
        checkpoint: Checkpoint,
        handle: RunHandle,
        chat_fn: ChatFn,
        secrets: _Secrets,
        on_checkpoint: Callable[[RunHandle], None] | None,
        checkpoint_every: int,
        detect: Callable[[list[str], str], list[Any]] | None,
        hedge: bool = True,
    ) -> None:
        self.rows = rows
        self.s = settings
        self.ckpt = checkpoint
        self.handle = handle
        self.chat = chat_fn
        self._secrets = secrets
        self.on_checkpoint = on_checkpoint
        self.every = max(1, checkpoint_every)
        self.detect = detect
        self.slots = _Slots(settings.concurrency)
        # rows in flight: twice the concurrency, so generations can run ahead of judge calls
        self.row_slots = asyncio.Semaphore(2 * settings.concurrency)
        planned = sum(len(settings.generators) + 1 for _ in rows)
        # at most one backup per slot (one tail's worth), or 2.5% of the calls for long runs
        self.hedger = _Hedger(self.slots, cap=max(settings.concurrency, planned // 40))
        self.hedger.enabled = hedge
        self.hedger.on_hedge = handle._hedged
        self.gen_params = settings.gen_params()
        self.judge_params = settings.judge_params()
        self.budget_hit = False
        self.max_failures_in_a_row = max(10, 2 * settings.concurrency)
        self._failed_in_a_row = 0
        self._since_sync = 0
        self._sync_task: asyncio.Task | None = None
        self._fh: Any = None

    # --- calls ---
    async def _call(self, backend: Any, messages: list[dict], params: Any, kind: str = "generation") -> tuple[Any, int]:
        key = self._secrets.for_backend(backend)
        flight = _Flight(
            kind, 0.0, lambda: self.chat(backend, messages, params, key), asyncio.get_running_loop().create_future()
        )
        await self.slots.acquire(PRIORITY_GENERATION if kind == "generation" else PRIORITY_JUDGE)
        try:
            flight.started = time.monotonic()
            _start_request(self.hedger, flight, name="primary")  # from here on the request owns the slot
        except BaseException:
            self.slots.release()
            raise
        self.hedger.flights.add(flight)
        try:
            result = await flight.result
        finally:
            self.hedger.flights.discard(flight)
            for task in flight.tasks:
                task.cancel()  # the slower copy, or everything when this row is cancelled
            if not flight.result.done():
                flight.result.cancel()
            elif not flight.result.cancelled():
                flight.result.exception()  # retrieved: no "never retrieved" warning
        used = (getattr(result, "prompt_tokens", None) or sum(estimate_tokens(m["content"]) for m in messages)) + (
            getattr(result, "completion_tokens", None) or estimate_tokens(getattr(result, "text", "") or "")
        )
        return result, used

    def _fatal(self, exc: BaseException, backend: Any, what: str) -> None:
        kind, status, message = _error_kind(exc)
        message = self._secrets.scrub(message)
        if _is_auth(kind, status):
            raise _Stop(
                STATE_PAUSED,
                f"Paused: the {what} call to {backend.model} was refused ({status or kind}: {message}). Your token "
                "may have expired or lacks access: sign in again, then resume the run; finished rows are kept.",
            ) from None
        if _is_not_found(kind, status):
            raise _Stop(
                STATE_STOPPED,
                f"Stopped: the {what} model {backend.model!r} was not found ({message}). Check the model id and "
                "backend, then resume the run; finished rows are kept.",
            ) from None

    async def _generate(self, backend: Any, messages: list[dict]) -> tuple[str | None, str, int]:
        """(text or None, failure reason, tokens used)."""
        try:
            result, used = await self._call(backend, messages, self.gen_params)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes an explicit row status
            self._fatal(exc, backend, "generation")
            kind, status, message = _error_kind(exc)
            message = self._secrets.scrub(message)
            if kind == "too_long":
                return None, f"{backend.model}: the prompt is longer than the model's context window ({message})", 0
            return None, f"{backend.model}: {message}", 0
        text = (getattr(result, "text", "") or "").strip()
        if not text:
            reason = getattr(result, "finish_reason", None) or "unknown"
            return None, f"{backend.model}: the model returned an empty response (finish reason: {reason})", used
        return text, "", used

    # --- rows ---
    async def _row(self, row: dict, prior: _Entry | None) -> None:
        try:
            await self._process(row, prior)
        finally:
            self.row_slots.release()

    async def _process(self, row: dict, prior: _Entry | None) -> None:
        s = self.s
        n_gen = len(s.generators)
        human = row.get("response", "") or ""
        prompt = row.get("prompt", "") or ""
        target = row.get("language_code", "") or ""
        previous = self.ckpt.read_at(prior.offset) if prior is not None else None
        reusable = previous is not None and list(previous.get("response_sources") or []) == s.sources

        messages = ([{"role": "system", "content": s.system_prompt}] if s.system_prompt else []) + [
            {"role": "user", "content": prompt}
        ]
        responses: list[str | None] = [human] + [None] * n_gen
        jobs: dict[int, Awaitable] = {}
        for i, backend in enumerate(s.generators, start=1):
            if reusable and (previous["responses"][i] or "").strip():
                responses[i] = previous["responses"][i]
            else:
                jobs[i] = self._generate(backend, messages)
        tokens = 0
        reasons: list[str] = []
        if jobs:
            async with asyncio.TaskGroup() as group:  # a fatal error in one cancels the other generations
                tasks = {i: group.create_task(job) for i, job in jobs.items()}
            for i, task in tasks.items():
                text, reason, used = task.result()
                tokens += used
                responses[i] = text
                if text is None:
                    reasons.append(reason)

        texts = [r or "" for r in responses]
        ratings: list[int | None] = [None] * len(texts)
        rationales: list[str | None] = [None] * len(texts)
        # The language check runs while the judge works.
        lang_task = asyncio.ensure_future(self._languages(texts, target))
        try:
            if reasons:
                status, error = schema.STATUS_GENERATION_FAILED, "; ".join(reasons)
            else:
                status, error, ratings, rationales, used = await self._judge(prompt, texts)
                tokens += used
            try:
                langs = await lang_task
            except Exception as exc:  # noqa: BLE001 - a detector failure must not lose the row
                log.warning("language check failed: %s", type(exc).__name__)
                langs = [None] * len(texts)
        finally:
            lang_task.cancel()

        rec = {
            "id": row["id"],
            "prompt": prompt,
            "system_prompt": s.system_prompt,
            "target_language": target,
            "responses": texts,
            "response_sources": s.sources,
            "ratings": ratings,
            "rationales": rationales,
            "detected_languages": [getattr(c, "detected", None) for c in langs],
            "language_confidences": [
                None if getattr(c, "confidence", None) is None else float(c.confidence) for c in langs
            ],
            "language_match": [getattr(c, "match", None) for c in langs],
            "judge_model": s.judge.model,
            "aspect": s.aspect,
            "status": status,
            "error": self._secrets.scrub(error),
        }
        self._write(rec)
        self.handle._record(rec, prior.status if prior is not None else None, tokens)
        self._after_row(rec)

    async def _judge(self, prompt: str, texts: list[str]) -> tuple[str, str, list, list, int]:
        s = self.s
        n = len(texts)
        try:
            messages = judge_mod.judge_messages(prompt, texts, s.aspect)
            result, used = await self._call(s.judge, messages, self.judge_params, kind="judge")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            self._fatal(exc, s.judge, "judge")
            kind, status, message = _error_kind(exc)
            message = self._secrets.scrub(message)
            if kind == "too_long":
                message = f"the judge prompt is longer than the judge model's context window ({message})"
            return schema.STATUS_JUDGE_FAILED, f"judge {s.judge.model}: {message}", [None] * n, [None] * n, 0
        verdict = judge_mod.parse_judgement(getattr(result, "text", "") or "", n, s.aspect)
        if not verdict.parsed:
            return schema.STATUS_JUDGE_UNPARSEABLE, verdict.error, verdict.ratings, verdict.rationales, used
        return schema.STATUS_OK, "", verdict.ratings, verdict.rationales, used

    async def _languages(self, texts: list[str], target: str) -> list[Any]:
        if self.detect is None:
            return [None] * len(texts)
        nonempty = [i for i, t in enumerate(texts) if t.strip()]
        # inline: a check takes well under a millisecond (langdetect's sparse scorer); a thread hop costs more
        checks = self.detect([texts[i] for i in nonempty], target) if nonempty else []
        out: list[Any] = [None] * len(texts)
        for i, c in zip(nonempty, checks):
            out[i] = c
        return out

    # --- output ---
    def _write(self, rec: dict) -> None:
        if self._fh is None:
            self.ckpt.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.ckpt.path.open("a", encoding="utf-8")
        self._fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._fh.flush()

    def _after_row(self, rec: dict) -> None:
        if self.s.max_tokens is not None and self.handle.tokens_used >= self.s.max_tokens:
            self.budget_hit = True
        if rec["status"] in (schema.STATUS_GENERATION_FAILED, schema.STATUS_JUDGE_FAILED):
            self._failed_in_a_row += 1
        else:
            self._failed_in_a_row = 0
        if self._failed_in_a_row >= self.max_failures_in_a_row:
            raise _Stop(
                STATE_STOPPED,
                f"Stopped: {self._failed_in_a_row} rows in a row failed, so the run stopped instead of spending more "
                f"calls. Last error: {rec['error']} Fix the cause, then resume the run; finished rows are kept.",
            )
        self._since_sync += 1
        if self.on_checkpoint is not None and self._since_sync >= self.every:
            self._start_sync()

    def _start_sync(self) -> None:
        if self._sync_task is not None and not self._sync_task.done():
            return  # a push is still going; the next row will try again
        self._since_sync = 0
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        self._sync_task = asyncio.ensure_future(self._sync())

    async def _sync(self) -> None:
        try:
            await asyncio.to_thread(self.on_checkpoint, self.handle)  # type: ignore[arg-type]
            self.handle.hub_message = ""
        except Exception as exc:  # noqa: BLE001 - a failed checkpoint push must not stop the run
            self.handle.hub_message = self._secrets.scrub(f"Hub checkpoint failed: {exc}")
            log.warning("hub checkpoint failed: %s", type(exc).__name__)

    # --- main loop ---
    async def run(self) -> tuple[str, str]:
        stop: _Stop | None = None
        hedging = asyncio.ensure_future(self.hedger.run())
        try:
            async with asyncio.TaskGroup() as group:
                for row, prior in self.rows:
                    await self.row_slots.acquire()
                    if self.budget_hit:
                        self.row_slots.release()
                        break
                    group.create_task(self._row(row, prior))
                self.hedger.tail = True
        except* _Stop as group_error:
            stop = _first_leaf(group_error)  # type: ignore[assignment]
        finally:
            hedging.cancel()
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            await self._final_sync()
        if stop is not None:
            return stop.state, stop.message
        if self.budget_hit:
            return (
                STATE_STOPPED,
                f"Stopped: the token budget ({self.s.max_tokens:,}) is spent ({self.handle.tokens_used:,} used). "
                "Raise the budget and resume the run; finished rows are kept.",
            )
        return STATE_DONE, ""

    async def _final_sync(self) -> None:
        if self._sync_task is not None and not self._sync_task.done():
            try:
                await asyncio.shield(self._sync_task)
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self.on_checkpoint is not None and self._since_sync > 0:
            self._since_sync = 0
            try:
                await asyncio.shield(asyncio.ensure_future(self._sync()))
            except asyncio.CancelledError:
                pass


def _default_detect() -> Callable[[list[str], str], list[Any]]:
    from pipeline import langdetect

    return langdetect.check_many


def check_checkpoint(settings: RunSettings, checkpoint: Checkpoint) -> None:
    """Raise :class:`RunError` if ``checkpoint`` holds results made with other settings (resuming would mix them)."""
    meta = checkpoint.read_meta()
    if checkpoint.exists() and meta.get("fingerprint") not in (None, settings.fingerprint()):
        raise RunError(
            f"{checkpoint.path.parent.name}/{checkpoint.path.name} holds results of a run with other settings "
            "(models, system prompt, judge or sampling). Choose another output, or start over (--restart in the "
            "CLI) to discard them."
        )


def prepare_run(rows: Any, settings: RunSettings, checkpoint: Checkpoint, *, restart: bool = False) -> RunHandle:
    """Check ``checkpoint`` against ``settings``, list the rows to run and return a handle ready to execute.

    ``restart`` discards the checkpoint first. Raises :class:`RunError` with a message for the user when the input
    has no rows or the checkpoint holds results of other settings.
    """
    if restart:
        checkpoint.delete()
    check_checkpoint(settings, checkpoint)
    index = checkpoint.index()
    plan = plan_run(rows, settings, index=index)
    if plan.total == 0:
        raise RunError("The filtered set has no rows: filter a language with data first.")
    todo: list[tuple[dict, _Entry | None]] = []
    order: list[str] = []
    counts = dict.fromkeys(schema.STATUSES, 0)
    done = 0
    for _, row in _scope(rows, settings):
        order.append(row["id"])
        prior = index.get(row["id"])
        if prior is not None:
            counts[prior.status] = counts.get(prior.status, 0) + 1
            done += 1
        if prior is None or prior.status != schema.STATUS_OK:
            todo.append(({k: row.get(k) or "" for k in ("id", "prompt", "response", "language_code")}, prior))
    return RunHandle(settings, checkpoint, plan, order, todo, counts, done)


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


async def execute(
    handle: RunHandle,
    *,
    token: str | None = None,
    api_keys: dict[str, str] | None = None,
    chat_fn: ChatFn | None = None,
    detect: Callable[[list[str], str], list[Any]] | None | str = "default",
    on_checkpoint: Callable[[RunHandle], None] | None = None,
    checkpoint_every: int = 100,
    source: dict | None = None,
    retry: Any = None,
    timeout: float = 120.0,
    hedge: bool = True,
) -> RunHandle:
    """Execute a prepared run in the current event loop; returns the handle once the run has ended.

    ``token`` (the user's HF token) is sent to serverless/endpoint backends and nowhere else; ``api_keys`` maps an
    OpenAI-compatible base URL to its key. ``chat_fn(backend, messages, params, key)`` defaults to pooled
    :class:`pipeline.inference.AsyncChat` clients.
    ``detect(texts, target_code)`` is the language checker (default :func:`pipeline.langdetect.check_many`;
    ``None`` skips it). ``on_checkpoint(handle)`` (sync, run in a worker thread) is called every ``checkpoint_every``
    finished rows and once at the end, e.g. to push the checkpoint to the Hub; its failures never stop the run.
    ``retry`` (a ``pipeline.inference.RetryPolicy``) and ``timeout`` (seconds per call) tune the default client.
    ``hedge`` allows backup requests for stragglers at the very end of the run (see :class:`_Hedger`).
    """
    handle._loop = asyncio.get_running_loop()
    handle._task = asyncio.current_task()
    settings, checkpoint = handle.settings, handle.checkpoint
    checkpoint.write_meta(
        {"fingerprint": settings.fingerprint(), "settings": settings.describe(), "source": source or {}}
    )
    handle._begin()
    if handle._cancel_requested:
        handle._end(STATE_CANCELLED, "Cancelled before it started; nothing was run.")
        return handle
    detector = _default_detect() if detect == "default" else detect
    secrets = _Secrets(token, api_keys)
    pooled = _PooledChat(settings.concurrency, retry, timeout) if chat_fn is None else None
    executor = _Executor(
        handle._todo,
        settings,
        checkpoint,
        handle,
        chat_fn or pooled,  # type: ignore[arg-type]
        secrets,
        on_checkpoint,
        checkpoint_every,
        detector,  # type: ignore[arg-type]
        hedge,
    )
    try:
        try:
            state, message = await executor.run()
        finally:
            if pooled is not None:
                await pooled.aclose()
    except asyncio.CancelledError:
        kept = handle.snapshot().finished_this_run
        handle._end(STATE_CANCELLED, f"Cancelled: the {kept} rows finished in this run are kept; resume the run to continue.")
        return handle
    except Exception as exc:  # noqa: BLE001 - report, never crash the app
        leaf = _first_leaf(exc)
        log.error("run failed: %s", type(leaf).__name__)
        handle._end(STATE_FAILED, secrets.scrub(f"The run failed: {type(leaf).__name__}: {leaf}"))
        return handle
    if state == STATE_DONE:
        snap = handle.snapshot()
        fails = snap.failures
        message = f"Done: {snap.counts.get(schema.STATUS_OK, 0)} of {snap.total} rows ok" + (
            f", {fails} failed (resume the run to retry them)." if fails else "."
        )
    handle._end(state, message)
    return handle


async def run_async(rows: Any, settings: RunSettings, checkpoint: Checkpoint, *, restart: bool = False, **kwargs: Any) -> RunHandle:
    """:func:`prepare_run` then :func:`execute` in the current event loop (see there for ``kwargs``)."""
    return await execute(prepare_run(rows, settings, checkpoint, restart=restart), **kwargs)


# Process-wide guard: one running run per checkpoint file (two sessions must not append to the same file).
_active_paths: set[Path] = set()
_active_lock = threading.Lock()


def start_run(
    rows: Any,
    settings: RunSettings,
    checkpoint: Checkpoint,
    *,
    restart: bool = False,
    **kwargs: Any,
) -> RunHandle:
    """Start a run in a background thread with its own event loop and return its handle at once.

    ``kwargs`` go to :func:`execute` (``token``, ``chat_fn``, ``detect``, ``on_checkpoint``, ...). Raises
    :class:`RunError` (with a message for the user) if the run cannot start.
    """
    path = checkpoint.path.resolve()
    with _active_lock:
        if path in _active_paths:
            raise RunError("A run is already writing these results; wait for it to finish or cancel it first.")
        _active_paths.add(path)
    def release() -> None:
        with _active_lock:
            _active_paths.discard(path)

    try:
        handle = prepare_run(rows, settings, checkpoint, restart=restart)
    except BaseException:
        release()
        raise
    handle._release = release

    def target() -> None:
        try:
            asyncio.run(execute(handle, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - the handle reports it
            log.error("run thread failed: %s", type(exc).__name__)
        finally:
            if handle.running:
                handle._end(STATE_FAILED, "The run ended unexpectedly; finished rows are kept.")
            release()

    thread = threading.Thread(target=target, name="dpo-studio-run", daemon=True)
    handle._thread = thread
    thread.start()
    return handle


def replace_fields(settings: RunSettings, **changes: Any) -> RunSettings:
    """A copy of ``settings`` with ``changes`` (validated again)."""
    return dataclasses.replace(settings, **changes)
