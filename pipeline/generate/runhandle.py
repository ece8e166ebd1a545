"""The run handle: the app's and the CLI's view of one run, and its lifecycle.

Owns :class:`Progress` (a snapshot for the UI/CLI), :class:`RunHandle` (thread-safe snapshots, the latest rows,
live plot data and the final table) and :func:`prepare_run` (check the checkpoint, list the rows still to run,
return a handle ready to execute). The generic part, ``cancel()`` (which abandons the calls in flight), ``wait()``
and ``running``, is :class:`pipeline.core.background.TaskHandle`'s, shared with the judge check's handle. The
handle's lifecycle is public and one-way: ``prepare_run`` → ``attach`` (the executor's loop and task) → ``begin``
→ ``record`` per row → ``end``. Holds no token, and no per-row data beyond the rows still to run and the last few
previews.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.core import schema
from pipeline.core.background import TaskHandle
from pipeline.core.errors import RunError
from pipeline.generate.checkpoint import Checkpoint, Entry, check_checkpoint
from pipeline.generate.settings import Plan, RunSettings, plan_run, scope_rows

__all__ = [
    "CallStats",
    "Progress",
    "RunHandle",
    "RUNNING_STATES",
    "STATE_CANCELLED",
    "STATE_DONE",
    "STATE_FAILED",
    "STATE_PAUSED",
    "STATE_STOPPED",
    "duration",
    "prepare_run",
]

LATEST_ROWS = 20  # rows kept in memory for the live table
PREVIEW_CHARS = 300

RUNNING_STATES = ("starting", "running", "stopping")
STATE_DONE, STATE_CANCELLED, STATE_PAUSED, STATE_STOPPED, STATE_FAILED = (
    "done",
    "cancelled",
    "paused",
    "stopped",
    "failed",
)


@dataclass(frozen=True)
class CallStats:
    """The run's calls right now, for the progress line: in flight, allowed by the providers' limits, finished per
    second, and whether a provider is throttling (``waiting_s``: until its Retry-After ends)."""

    in_flight: int = 0
    allowed: int = 0  # calls the run may have in flight now: its concurrency, or less while a provider throttles
    concurrency: int = 0  # the user's setting
    calls_per_s: float = 0.0  # calls answered per second, over the last few seconds
    throttled: bool = False  # a provider refused calls for load lately and the allowed concurrency is cut
    waiting_s: float = 0.0  # the run waits this long for a provider's Retry-After
    refused: int = 0  # calls refused for load (429 / overloaded) in this run

    def line(self) -> str:
        """E.g. "12 calls in flight · 24 of 64 allowed now · 18.3 calls/s · throttled by the provider, waiting 3 s"
        (the throttling part only while it happens)."""
        allowed = (
            f"{self.allowed} allowed now"
            if self.allowed >= self.concurrency
            else (f"{self.allowed} of {self.concurrency} allowed now")
        )
        calls = "call" if self.in_flight == 1 else "calls"
        text = f"{self.in_flight} {calls} in flight · {allowed} · {self.calls_per_s:.1f} calls/s"
        if self.waiting_s >= 0.5:
            text += f" · throttled by the provider, waiting {self.waiting_s:.0f} s"
        elif self.throttled:
            text += " · throttled by the provider"
        return text


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
    judged_both: int = 0  # rows of this run judged (and parsed) in both orders
    flips: int = 0  # of which: the preferred answer changed with the order ("inconsistent")
    notices: tuple[str, ...] = ()  # things the user should know while it runs (e.g. the judge fell back to text)
    calls: CallStats = CallStats()  # calls in flight, allowed concurrency, calls/s, throttling
    failure_groups: tuple = ()  # results.FailureGroup per (status, reason), biggest first; set when the run ends

    @property
    def flip_rate(self) -> float | None:
        """Share of rows judged in both orders whose preferred answer flipped (None before any)."""
        return self.flips / self.judged_both if self.judged_both else None

    @property
    def failures(self) -> int:
        return sum(v for k, v in self.counts.items() if k != schema.STATUS_OK)

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    def line(self) -> str:
        """One human line: "120/500 rows · 3 failed · 4.2 rows/s · ETA 1m30s"."""
        eta = "" if self.eta_s is None else f" · ETA {duration(self.eta_s)}"
        fails = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in self.counts.items() if k != "ok" and v)
        return (
            f"{self.done}/{self.total} rows · {self.counts.get(schema.STATUS_OK, 0)} ok"
            + (f" · {fails}" if fails else "")
            + (f" · flip rate {self.flip_rate:.0%} ({self.flips} inconsistent)" if self.judged_both else "")
            + f" · {self.rows_per_s:.2f} rows/s{eta} · {self.state}"
        )


def duration(seconds: float) -> str:
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


class RunHandle(TaskHandle):
    """The UI's view of one run: thread-safe snapshots, the latest rows, cancel() and the final table.

    ``cancel()`` stops quickly: in-flight calls are abandoned, finished rows stay in the checkpoint. Holds no token,
    and no per-row data beyond the rows still to run and the last few previews.
    """

    def __init__(
        self,
        settings: RunSettings,
        checkpoint: Checkpoint,
        plan: Plan,
        order: list[str],
        todo: list[tuple[dict, Entry | None]],
        counts: dict[str, int],
        done: int,
    ) -> None:
        super().__init__()
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
        self._judged_both = 0  # rows judged in both orders, this run
        self._flips = 0  # of which inconsistent
        self._notices: list[str] = []
        self._ratings: collections.Counter = collections.Counter()  # (source, rating) -> rows, this run
        self._languages: dict[str, list[int]] = {}  # source -> [checked, matched], this run
        self._sources: list[str] = []
        self._started = time.monotonic()
        self._ended: float | None = None
        self._latest: collections.deque[dict] = collections.deque(maxlen=LATEST_ROWS)
        self._call_stats: Callable[[], CallStats] | None = None
        self._last_calls = CallStats(allowed=settings.concurrency, concurrency=settings.concurrency)
        self._failure_groups: tuple = ()
        self.hub_message = ""  # the last Hub checkpoint problem, "" when fine

    # -- the lifecycle, driven by the executor (pipeline.generate.executor) --
    @property
    def todo(self) -> list[tuple[dict, Entry | None]]:
        """The rows still to run, with what the checkpoint held for each (emptied when the run ends)."""
        return self._todo

    def begin(self) -> None:
        with self._lock:
            self._state = "running"
            self._started = time.monotonic()

    def set_failures(self, groups: tuple) -> None:
        """The run's failed rows grouped by reason (``results.failure_reasons``), shown at the end of a run."""
        with self._lock:
            self._failure_groups = tuple(groups)

    def watch_calls(self, stats: Callable[[], CallStats] | None) -> None:
        """Where snapshots read the live call numbers (the executor's; thread-safe); None freezes the last ones."""
        if stats is None and self._call_stats is not None:
            self._last_calls = self._call_stats()
        self._call_stats = stats

    def record(self, rec: dict, prior_status: str | None, tokens: int) -> None:
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
            if rec.get("judge_inconsistent") is not None:
                self._judged_both += 1
                self._flips += 1 if rec["judge_inconsistent"] else 0
            for source, rating, match in zip(rec["response_sources"], rec["ratings"], rec["language_match"]):
                if rating is not None:  # a mean over both orders (x.5) counts in the bar above
                    self._ratings[(source, int(float(rating) + 0.5))] += 1
                if match is not None:
                    checked = self._languages.setdefault(source, [0, 0])
                    checked[0] += 1
                    checked[1] += 1 if match else 0
                if source not in self._sources:
                    self._sources.append(source)

    def count_hedge(self) -> None:
        with self._lock:
            self._hedges += 1

    def notify(self, notice: str) -> None:
        """Add a sentence for the user to the run's notices (each once), e.g. "the judge fell back to text"."""
        with self._lock:
            if notice and notice not in self._notices:
                self._notices.append(notice)

    def end(self, state: str, message: str) -> None:
        with self._lock:
            self._state = state
            self._message = message
            self._ended = time.monotonic()
            self._todo = []
        self.finish()  # e.g. free the checkpoint for the next run before anyone is told this one ended

    # -- called by the UI / CLI --
    @property
    def tokens_used(self) -> int:
        with self._lock:
            return self._tokens

    def snapshot(self) -> Progress:
        stats = self._call_stats
        calls = stats() if stats is not None else self._last_calls
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
                judged_both=self._judged_both,
                flips=self._flips,
                notices=tuple(self._notices),
                calls=calls,
                failure_groups=self._failure_groups,
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

    def table(self) -> pa.Table:
        """The raw results so far (every id once, input order), read from the checkpoint."""
        return self.checkpoint.table(order=self._order)


def prepare_run(rows: Any, settings: RunSettings, checkpoint: Checkpoint, *, restart: bool = False) -> RunHandle:
    """Check ``checkpoint`` against ``settings``, list the rows to run and return a handle ready to execute.

    ``restart`` discards the checkpoint first. Raises :class:`RunError` with a message for the user when the input
    has no rows or the checkpoint holds results of other settings.
    """
    if restart:
        checkpoint.delete()
    check_checkpoint(settings, checkpoint)
    index = checkpoint.index()
    plan = plan_run(rows, settings, {rid: entry.status for rid, entry in index.items()})
    if plan.total == 0:
        raise RunError("The filtered set has no rows: filter a language with data first.")
    todo: list[tuple[dict, Entry | None]] = []
    order: list[str] = []
    counts = dict.fromkeys(schema.STATUSES, 0)
    done = 0
    for _, row in scope_rows(rows, settings):
        order.append(row["id"])
        prior = index.get(row["id"])
        if prior is not None:
            counts[prior.status] = counts.get(prior.status, 0) + 1
            done += 1
        if prior is None or prior.status != schema.STATUS_OK:
            todo.append(({k: row.get(k) or "" for k in ("id", "prompt", "response", "language_code")}, prior))
    return RunHandle(settings, checkpoint, plan, order, todo, counts, done)
