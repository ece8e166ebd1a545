"""The executor of step 3: generate second responses, judge them with UltraFeedback and check their language — continuously.

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
:class:`~pipeline.generate.runhandle.RunHandle` that Gradio handlers and the CLI poll. Settings live in
:mod:`pipeline.generate.settings`, the checkpoint file in :mod:`pipeline.generate.checkpoint`, credentials in :mod:`pipeline.core.credentials`. Tokens are passed per run and live only in the running
coroutine: they are never written to the checkpoint, the handle, the logs or the screen.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipeline import judge as judge_mod
from pipeline.core import schema
from pipeline.core.credentials import Credentials
from pipeline.core.errors import RunError
from pipeline.generate.checkpoint import Checkpoint, Entry
from pipeline.generate.runhandle import (
    STATE_CANCELLED,
    STATE_DONE,
    STATE_FAILED,
    STATE_PAUSED,
    STATE_STOPPED,
    CallStats,
    RunHandle,
    prepare_run,
)
from pipeline.generate.settings import RunSettings
from pipeline.inference import estimate_tokens

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.inference import Backend, ChatResult, GenParams

log = logging.getLogger(__name__)

__all__ = ["ChatFn", "execute", "run_async", "start_run"]


class ChatFn(Protocol):
    """What the executor calls for every model call; the default is :func:`pipeline.inference.achat`."""

    def __call__(
        self, backend: Backend, messages: list[dict], params: GenParams, token: str | None
    ) -> Awaitable[ChatResult]: ...


class _Stop(Exception):
    """A condition that ends the whole run early (auth rejected, model not found)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


def _error_kind(exc: BaseException) -> tuple[str, int | None, str]:
    """(kind, status, message) of an inference error; unknown exceptions are kind "error"."""
    kind = getattr(exc, "kind", None) or "error"
    status = getattr(exc, "status", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(kind), status, str(message)


def _named(model: str, message: str, role: str = "") -> str:
    """``message`` led by the model it is about, naming the model once (inference messages already name it)."""
    return f"{role}{model}: {message}" if model not in message else (f"{role.strip()}: {message}" if role else message)


def _is_auth(kind: str, status: int | None) -> bool:
    return kind in ("auth", "unauthorized", "forbidden") or status in (401, 403)


def _is_not_found(kind: str, status: int | None) -> bool:
    return kind in ("not_found", "model_not_found") or status == 404


class _PooledChat:
    """The default chat function: one ``pipeline.inference.AsyncChat`` (one connection pool) per backend for the
    whole run, inside the run's event loop. Raises the process-wide per-backend limit to the run's concurrency."""

    gated = True  # takes ``gate=``: the run's slot is held only while a request is on the wire

    def __init__(self, concurrency: int, retry: Any = None, timeout: float = 120.0) -> None:
        self._chats: dict[Any, Any] = {}
        self._controllers: dict[int, Any] = {}  # the backends' rate controllers (pipeline.inference.ratecontrol), by id
        self._refused_before: dict[int, int] = {}  # their refusal counts when this run began using them
        self._concurrency = concurrency
        self._retry = retry
        self._timeout = timeout

    async def __call__(
        self, backend: Any, messages: list[dict], params: Any, token: str | None, gate: Any = None
    ) -> Any:
        from pipeline import inference

        chat = self._chats.get(backend)
        if chat is None:
            if inference.concurrency_limit(backend, token) < self._concurrency:
                inference.set_concurrency_limit(backend, self._concurrency, token)
            controller = inference.limiter_for(backend, token)
            self._refused_before.setdefault(id(controller), controller.state().refused)
            self._controllers[id(controller)] = controller
            chat = self._chats[backend] = inference.AsyncChat(
                backend, token, retry=self._retry or inference.DEFAULT_RETRY, timeout=self._timeout
            )
        return await chat(messages, params, gate=gate)

    def limits(self) -> tuple[int | None, bool, float, int]:
        """(calls the providers allow now, or None before any call; throttled: a provider's limit holds the run
        below its concurrency; seconds of Retry-After left; calls refused for load in this run), over the run's
        backends."""
        states = [(key, c.state()) for key, c in list(self._controllers.items())]
        if not states:
            return None, False, 0.0, 0
        return (
            sum(st.allowed for _, st in states),
            any(st.allowed < min(st.limit, self._concurrency) for _, st in states),
            max(st.paused_s for _, st in states),
            sum(st.refused - self._refused_before.get(key, 0) for key, st in states),
        )

    def cut_recently(self) -> bool:
        """A provider paused the run or refused it for load (not a stray 429) in the last seconds."""
        return any(c.state().cut_recently for c in list(self._controllers.values()))

    async def aclose(self) -> None:
        for chat in self._chats.values():
            try:
                await chat.aclose()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self._chats.clear()


PRIORITY_GENERATION, PRIORITY_JUDGE, PRIORITY_HEDGE = 0, 1, 2  # generations first: a row's chain is longest


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
    gated: bool = False  # each request takes a slot through the gate; nothing is held while a call waits
    hedge_call: Callable[[], Awaitable[Any]] | None = None  # a gated flight's backup request (lowest priority)
    on_wire: int = 0  # a gated flight's requests on the wire now (0 while it waits to retry: not a straggler)


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
        self.throttled: Callable[[], bool] | None = None  # a provider throttles: no backup requests then
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
        running = [f.hedge for f in self.flights if f.hedge is not None and not f.hedge.done()]
        if not running:
            return False
        max(running, key=lambda hedge: hedge.get_name()).cancel()
        return True

    def tick(self) -> None:
        if not (self.enabled and self.tail) or self.used >= self.cap or not self.slots.idle:
            return
        if self.throttled is not None and self.throttled():
            return
        free = self.slots.free  # gated hedges take their slot when their task starts: start at most this many
        now = time.monotonic()
        candidates = []
        for flight in self.flights:
            limit = self.threshold(flight.kind)
            if flight.gated and not flight.on_wire:
                continue  # waiting to retry, not slow: its retry comes soon enough
            if flight.hedge is None and not flight.result.done() and limit is not None:
                if now - flight.started >= limit:
                    candidates.append(flight)
        for flight in sorted(candidates, key=lambda f: f.started):
            if flight.gated:
                if self.used >= self.cap or free <= 0:
                    return
                free -= 1
            elif self.used >= self.cap or not self.slots.try_acquire():
                return
            self.used += 1
            flight.hedge = _start_request(self, flight, name=f"hedge-{self.used:06d}", hedge=True)
            if self.on_hedge is not None:
                self.on_hedge()

    async def run(self, interval: float = 0.02) -> None:
        while True:
            await asyncio.sleep(interval)
            self.tick()


def _start_request(hedger: _Hedger, flight: _Flight, name: str, *, hedge: bool = False) -> asyncio.Task:
    """Start one request of ``flight`` (its slot is already held, unless the flight is gated) and settle the
    flight when it ends."""
    call = flight.hedge_call if hedge and flight.hedge_call is not None else flight.call
    task = asyncio.ensure_future(call())
    task.set_name(name)
    flight.tasks.append(task)

    def done(t: asyncio.Task) -> None:
        if not flight.gated:
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
        rows: list[tuple[dict, Entry | None]],
        settings: RunSettings,
        checkpoint: Checkpoint,
        handle: RunHandle,
        chat_fn: ChatFn,
        secrets: Credentials,
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
        self._gated = bool(getattr(chat_fn, "gated", False))
        self._answered: collections.deque[float] = collections.deque(maxlen=4096)  # when calls were answered
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
        self.hedger.on_hedge = handle.count_hedge
        cut_recently = getattr(chat_fn, "cut_recently", None)
        if cut_recently is not None:  # no backup requests to a provider that is throttling the run
            self.hedger.throttled = cut_recently
        self._began = time.monotonic()
        self.loading: asyncio.Future | None = None  # the thread loading the judge templates and language check
        # what rows need after their generations, loaded in a worker thread as the run starts (see execute)
        self.judge_loaded: asyncio.Future = asyncio.get_running_loop().create_future()
        self.language_loaded: asyncio.Future = asyncio.get_running_loop().create_future()
        self.gen_params = settings.gen_params()
        self.judge_params = settings.judge_params()
        self.budget_hit = False
        self.max_failures_in_a_row = max(10, 2 * settings.concurrency)
        self._failed_in_a_row = 0
        self._since_sync = 0
        self._sync_task: asyncio.Task | None = None
        self._fh: Any = None

    # --- calls ---
    def _gate(self, flight: _Flight, priority: int) -> Callable[[], Any]:
        """The run's slot for one request of ``flight`` (entered per request by ``inference.AsyncChat``)."""

        @asynccontextmanager
        async def gate() -> AsyncIterator[None]:
            await self.slots.acquire(priority)
            flight.started = time.monotonic()
            flight.on_wire += 1
            try:
                yield
            finally:
                flight.on_wire -= 1
                self.slots.release()

        return gate

    def call_stats(self) -> CallStats:
        """The run's calls now (thread-safe enough for snapshots: it only reads)."""
        now = time.monotonic()
        answered = [t for t in list(self._answered) if t >= now - 10.0]
        span = min(10.0, max(1.0, now - self._began))
        allowed, throttled, waiting, refused = (
            self.chat.limits() if hasattr(self.chat, "limits") else (None, False, 0.0, 0)
        )
        concurrency = self.s.concurrency
        return CallStats(
            in_flight=max(0, concurrency - self.slots.free),
            concurrency=concurrency,
            allowed=concurrency if allowed is None else min(concurrency, allowed),
            calls_per_s=len(answered) / span,
            throttled=throttled,
            waiting_s=waiting,
            refused=refused,
        )

    async def _call(self, backend: Any, messages: list[dict], params: Any, kind: str = "generation") -> tuple[Any, int]:
        key = self._secrets.for_backend(backend)
        priority = PRIORITY_GENERATION if kind == "generation" else PRIORITY_JUDGE
        loop = asyncio.get_running_loop()
        if self._gated:  # the request takes the run's slot itself, and gives it back while it waits to retry
            flight = _Flight(kind, time.monotonic(), lambda: None, loop.create_future(), gated=True)  # type: ignore
            flight.call = lambda: self.chat(backend, messages, params, key, gate=self._gate(flight, priority))  # type: ignore[call-arg]
            flight.hedge_call = lambda: self.chat(
                backend, messages, params, key, gate=self._gate(flight, PRIORITY_HEDGE)
            )  # type: ignore[call-arg]
            _start_request(self.hedger, flight, name="primary")
        else:
            flight = _Flight(kind, 0.0, lambda: self.chat(backend, messages, params, key), loop.create_future())
            await self.slots.acquire(priority)
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
        self._answered.append(time.monotonic())
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
        if kind == "out_of_credit":  # the message says what to do: add credits, bill an organisation, switch
            raise _Stop(STATE_PAUSED, f"Paused: {message} Finished rows are kept.") from None
        if kind == "throttled":
            raise _Stop(
                STATE_PAUSED,
                f"Paused: {message} Resume the run later (finished rows are kept); or lower the concurrency, or "
                "allow a longer wait.",
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
            return None, _named(backend.model, message), 0
        text = (getattr(result, "text", "") or "").strip()
        if not text:
            reason = getattr(result, "finish_reason", None) or "unknown"
            return None, f"{backend.model}: the model returned an empty response (finish reason: {reason})", used
        return text, "", used

    # --- rows ---
    async def _row(self, row: dict, prior: Entry | None) -> None:
        try:
            await self._process(row, prior)
        finally:
            self.row_slots.release()

    async def _process(self, row: dict, prior: Entry | None) -> None:
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
        jobs: dict[int, Coroutine[Any, Any, tuple[str | None, str, int]]] = {}
        for i, backend in enumerate(s.generators, start=1):
            if previous is not None and reusable and (previous["responses"][i] or "").strip():
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
        await self.judge_loaded  # the judge's templates (loading in a thread while the first generations ran)
        verdict: judge_mod.RowVerdict | None = None
        # The language check runs while the judge works.
        lang_task = asyncio.ensure_future(self._languages(texts, target))
        try:
            if reasons:
                status, error = schema.STATUS_GENERATION_FAILED, "; ".join(reasons)
            else:
                verdict = await self._judge(row["id"], prompt, texts)
                status, error = verdict.status, verdict.error
                tokens += verdict.tokens
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
            "ratings": verdict.ratings if verdict is not None else [None] * len(texts),
            "rationales": verdict.rationales if verdict is not None else [None] * len(texts),
            "detected_languages": [getattr(c, "detected", None) for c in langs],
            "language_confidences": [
                None if getattr(c, "confidence", None) is None else float(c.confidence) for c in langs
            ],
            "language_match": [getattr(c, "match", None) for c in langs],
            "judge_model": s.judge.model,
            "aspect": s.aspect,
            "status": status,
            "error": self._secrets.scrub(error),
            **judge_mod.verdict_columns(s.judge_mode, verdict),
        }
        self._write(rec)
        self.handle.record(rec, prior.status if prior is not None else None, tokens)
        self._after_row(rec)

    async def _judge_chat(self, backend: Any, messages: list[dict], params: Any) -> Any:
        """One judge call through the run's slots and hedging (``judge.JudgeChat``)."""
        result, _ = await self._call(backend, messages, params, kind="judge")
        return result

    async def _judge(self, row_id: str, prompt: str, texts: list[str]) -> judge_mod.RowVerdict:
        """The row's verdict (``judge.judge_row``: mode, order policy, structured output); a failed call becomes a
        ``judge_failed`` verdict, or stops the run (auth, model not found)."""
        s = self.s
        n = len(texts)
        state = judge_mod.structured_state(s.judge_structured)
        started = time.monotonic()
        try:
            verdict = await judge_mod.judge_row(
                self._judge_chat,
                s.judge,
                self.judge_params,
                prompt=prompt,
                texts=texts,
                row_id=row_id,
                mode=s.judge_mode,
                aspect=s.aspect,
                order=s.judge_order,
                structured=state,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            self._fatal(exc, s.judge, "judge")
            kind, status, message = _error_kind(exc)
            message = self._secrets.scrub(message)
            if kind == "too_long":
                message = f"the judge prompt is longer than the judge model's context window ({message})"
            verdict = judge_mod.RowVerdict(
                status=schema.STATUS_JUDGE_FAILED,
                error=_named(s.judge.model, message, "judge "),
                ratings=[None] * n,
                rationales=[None] * n,
                orders=[],
                inconsistent=None,
                structured=state.use_structured(s.judge),
                tokens=0,
                latency_s=time.monotonic() - started,
            )
        if state.enabled and not verdict.structured:
            self.handle.notify(state.notice(s.judge))
        return verdict

    async def _languages(self, texts: list[str], target: str) -> list[Any]:
        if self.detect is None:
            return [None] * len(texts)
        await self.language_loaded
        nonempty = [i for i, t in enumerate(texts) if t.strip()]
        # inline: a check takes well under a millisecond (langcheck's sparse scorer); a thread hop costs more
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
    from pipeline import langcheck

    return langcheck.check_many


def _load_for_judging(
    settings: RunSettings,
    language_check: bool | list[str],
    loop: asyncio.AbstractEventLoop,
    judge_loaded: asyncio.Future,
    language_loaded: asyncio.Future,
) -> None:
    """Load what rows need after their generations, in a worker thread while the first generations run: the
    judge's prompt templates (about a second in a fresh process), then the language check's detectors for the
    rows' languages (``language_check``: their codes; a few seconds, a Hub model starts in the background). Loaded
    inside the run's event loop, they stalled every call at the start. A failure is logged and the first judge
    call or language check loads (and reports) it itself."""

    def done(future: asyncio.Future) -> None:
        if not future.done():
            future.set_result(None)

    try:
        try:
            judge_mod.judge_messages("warm-up", ["a", "b"], settings.aspect)
        finally:
            loop.call_soon_threadsafe(done, judge_loaded)
        if language_check:
            from pipeline import langcheck

            for code in language_check if isinstance(language_check, list) else [None]:
                langcheck.warm_up(code)
    except Exception as exc:  # noqa: BLE001
        log.warning("loading the judge templates or the language model failed: %s", type(exc).__name__)
    finally:
        loop.call_soon_threadsafe(done, language_loaded)


def _with_wait_limit(retry: Any, settings: RunSettings) -> Any:
    """The retry policy of the run's calls (default: ``inference.DEFAULT_RETRY`` with backoffs from 0.5 s up to
    8 s, as the OpenAI client's: a row waiting out a long backoff at the end of a run is the run's tail), with the
    user's longest wait for a throttling provider."""
    from pipeline import inference

    policy = retry or replace(inference.DEFAULT_RETRY, base_backoff_s=0.5, max_backoff_s=8.0)
    return replace(policy, max_wait_s=float(settings.max_wait_s))


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


async def execute(
    handle: RunHandle,
    *,
    credentials: Credentials | None = None,
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

    ``credentials`` (:class:`~pipeline.core.credentials.Credentials`; or ``token`` and ``api_keys`` to build one) route
    the user's HF token to serverless/endpoint backends and nowhere else, and an API key to its OpenAI-compatible
    base URL. ``chat_fn(backend, messages, params, key)`` defaults to pooled
    :class:`pipeline.inference.AsyncChat` clients.
    ``detect(texts, target_code)`` is the language checker (default :func:`pipeline.langcheck.check_many`;
    ``None`` skips it). ``on_checkpoint(handle)`` (sync, run in a worker thread) is called every ``checkpoint_every``
    finished rows and once at the end, e.g. to push the checkpoint to the Hub; its failures never stop the run.
    ``retry`` (a ``pipeline.inference.RetryPolicy``) and ``timeout`` (seconds per call) tune the default client.
    ``hedge`` allows backup requests for stragglers at the very end of the run (see :class:`_Hedger`).
    """
    handle.attach(asyncio.get_running_loop(), asyncio.current_task())
    settings, checkpoint = handle.settings, handle.checkpoint
    checkpoint.write_meta(
        {"fingerprint": settings.fingerprint(), "settings": settings.describe(), "source": source or {}}
    )
    handle.begin()
    if handle.cancel_requested:
        handle.end(STATE_CANCELLED, "Cancelled before it started; nothing was run.")
        return handle
    detector = _default_detect() if detect == "default" else detect
    secrets = credentials or Credentials(token, api_keys)
    pooled = _PooledChat(settings.concurrency, _with_wait_limit(retry, settings), timeout) if chat_fn is None else None
    executor = _Executor(
        handle.todo,
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
    executor.loading = asyncio.ensure_future(
        asyncio.to_thread(
            _load_for_judging,
            settings,
            sorted({str(row.get("language_code") or "") for row, _ in handle.todo} - {""})
            if detect == "default"
            else False,
            asyncio.get_running_loop(),
            executor.judge_loaded,
            executor.language_loaded,
        )
    )
    handle.watch_calls(executor.call_stats)
    try:
        try:
            state, message = await executor.run()
        finally:
            handle.watch_calls(None)
            if pooled is not None:
                await pooled.aclose()
    except asyncio.CancelledError:
        kept = handle.snapshot().finished_this_run
        handle.end(
            STATE_CANCELLED, f"Cancelled: the {kept} rows finished in this run are kept; resume the run to continue."
        )
        return handle
    except Exception as exc:  # noqa: BLE001 - report, never crash the app
        leaf = _first_leaf(exc)
        log.error("run failed: %s", type(leaf).__name__)
        handle.end(STATE_FAILED, secrets.scrub(f"The run failed: {type(leaf).__name__}: {leaf}"))
        return handle
    if state == STATE_DONE:
        snap = handle.snapshot()
        fails = snap.failures
        message = f"Done: {snap.counts.get(schema.STATUS_OK, 0)} of {snap.total} rows ok" + (
            f", {fails} failed (resume the run to retry them)." if fails else "."
        )
    if handle.snapshot().failures:
        try:  # the failed rows grouped by reason, for the end of the run (app and CLI)
            from pipeline.generate import results

            handle.set_failures(tuple(results.failure_reasons(handle.table())))
        except Exception as exc:  # noqa: BLE001 - a courtesy: the counts are already in the message
            log.warning("grouping the failed rows failed: %s", type(exc).__name__)
    handle.end(state, message)
    return handle


async def run_async(
    rows: Any, settings: RunSettings, checkpoint: Checkpoint, *, restart: bool = False, **kwargs: Any
) -> RunHandle:
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

    def target() -> None:
        try:
            asyncio.run(execute(handle, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - the handle reports it
            log.error("run thread failed: %s", type(exc).__name__)
        finally:
            if handle.running:
                handle.end(STATE_FAILED, "The run ended unexpectedly; finished rows are kept.")
            release()

    thread = threading.Thread(target=target, name="dpo-studio-run", daemon=True)
    handle.on_end(release, thread)
    thread.start()
    return handle
