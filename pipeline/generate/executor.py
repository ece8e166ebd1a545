"""The executor of step 3, the row pipeline: per row, generate second responses, judge them and check their language,
continuously.

For each row of the filtered set, the executor asks every generator model for a response (system prompt + prompt),
and as soon as *that row's* generations are done it starts the row's judge (``pipeline.judge.judge_row``: UltraFeedback
ratings or pairwise A/B/tie, in one order or both) and, in parallel, the language check of every response (the human
one too). There are no batch barriers, so a slow call only holds up its own row.

What this module owns is the row: what to call, what to reuse from the checkpoint, and the raw row it writes
(``schema.raw_row``). How calls are run is not here: every call goes through one
:class:`pipeline.core.scheduler.Scheduler` (the run's bounded concurrency, generations before judge calls, backup
requests for stragglers at the tail) on pooled clients (:class:`pipeline.inference.pool.ChatPool`); rows are written
by :class:`pipeline.generate.checkpoint.RowWriter`; which errors end the run is :mod:`pipeline.generate.stops`.

Results are appended to a JSON Lines checkpoint as rows finish (one line per row, ``schema.RAW_COLUMNS`` exactly;
the last line for an id wins). Running again with the same checkpoint resumes: rows already ``ok`` are never re-run,
missing rows are run, and failed rows are re-run *cheaply* (a row whose judge failed keeps its responses and is only
re-judged; a row where one generator failed only re-asks that generator). The final table has every id exactly once.

A run stops early, keeping every finished row, when it is cancelled, when the token is rejected (401/403: the run is
*paused* with a message saying why), when a model does not exist (404), or when the token budget is spent.

The run executes in a background thread with its own event loop (:func:`start_run`) and reports through a
:class:`~pipeline.generate.runhandle.RunHandle` that Gradio handlers and the CLI poll. Settings live in
:mod:`pipeline.generate.settings`, credentials in :mod:`pipeline.core.credentials`. Tokens are passed per run and
live only in the running coroutine: they are never written to the checkpoint, the handle, the logs or the screen.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipeline import judge as judge_mod
from pipeline.core import schema
from pipeline.core.background import start_thread
from pipeline.core.credentials import Credentials
from pipeline.core.errors import RunError
from pipeline.core.scheduler import PRIORITY_GENERATION, PRIORITY_JUDGE, Gate, Scheduler
from pipeline.generate import stops
from pipeline.generate.checkpoint import Checkpoint, Entry, RowWriter
from pipeline.generate.runhandle import (
    STATE_CANCELLED,
    STATE_DONE,
    STATE_FAILED,
    STATE_STOPPED,
    CallStats,
    RunHandle,
    prepare_run,
)
from pipeline.generate.settings import RunSettings
from pipeline.inference import estimate_tokens
from pipeline.inference.pool import ChatPool

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.inference import Backend, ChatResult, GenParams

log = logging.getLogger(__name__)

__all__ = ["ChatFn", "execute", "run_async", "start_run"]


class ChatFn(Protocol):
    """What the executor calls for every model call; the default is :class:`pipeline.inference.pool.ChatPool`
    (which also takes ``gate=``, the run's slot per request)."""

    def __call__(
        self, backend: Backend, messages: list[dict], params: GenParams, token: str | None
    ) -> Awaitable[ChatResult]: ...


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
        self._secrets = secrets
        self.out = RowWriter(
            checkpoint,
            None if on_checkpoint is None else lambda: on_checkpoint(handle),
            checkpoint_every,
            self._synced,
        )
        self.detect = detect
        # rows in flight: twice the concurrency, so generations can run ahead of judge calls
        self.row_slots = asyncio.Semaphore(2 * settings.concurrency)
        planned = sum(len(settings.generators) + 1 for _ in rows)
        self.scheduler = Scheduler(
            settings.concurrency,
            # at most one backup per slot (one tail's worth), or 2.5% of the calls for long runs
            hedge_cap=max(settings.concurrency, planned // 40) if hedge else 0,
            # no backup requests to a provider that is throttling the run
            throttled=getattr(chat_fn, "cut_recently", None),
            on_hedge=handle.count_hedge,
        )
        self.loading: asyncio.Future | None = None  # the thread loading the judge templates and language check
        # what rows need after their generations, loaded in a worker thread as the run starts (see execute)
        self.judge_loaded: asyncio.Future = asyncio.get_running_loop().create_future()
        self.language_loaded: asyncio.Future = asyncio.get_running_loop().create_future()
        self.gen_params = settings.gen_params()
        self.judge_params = settings.judge_params()
        self.budget_hit = False
        self.max_failures_in_a_row = max(10, 2 * settings.concurrency)
        self._failed_in_a_row = 0

    # --- calls ---
    def call_stats(self) -> CallStats:
        """The run's calls now (thread-safe enough for snapshots: it only reads)."""
        allowed, throttled, waiting, refused = (
            self.chat.limits() if hasattr(self.chat, "limits") else (None, False, 0.0, 0)
        )
        concurrency = self.s.concurrency
        return CallStats(
            in_flight=self.scheduler.in_flight,
            concurrency=concurrency,
            allowed=concurrency if allowed is None else min(concurrency, allowed),
            calls_per_s=self.scheduler.calls_per_s(),
            throttled=throttled,
            waiting_s=waiting,
            refused=refused,
        )

    async def _call(self, backend: Any, messages: list[dict], params: Any, kind: str = "generation") -> tuple[Any, int]:
        """One model call through the run's scheduler: (result, tokens used)."""
        key = self._secrets.for_backend(backend)

        def request(gate: Gate | None) -> Awaitable[Any]:
            if gate is None:
                return self.chat(backend, messages, params, key)
            return self.chat(backend, messages, params, key, gate=gate)  # type: ignore[call-arg]

        result = await self.scheduler.call(
            request,
            kind=kind,
            priority=PRIORITY_GENERATION if kind == "generation" else PRIORITY_JUDGE,
            gated=self._gated,
        )
        used = (getattr(result, "prompt_tokens", None) or sum(estimate_tokens(m["content"]) for m in messages)) + (
            getattr(result, "completion_tokens", None) or estimate_tokens(getattr(result, "text", "") or "")
        )
        return result, used

    def _fatal(self, exc: BaseException, backend: Any, what: str) -> None:
        """Raise :class:`~pipeline.generate.stops.RunStop` when ``exc`` ends the whole run (auth, 404, credit)."""
        stop = stops.stop_for(exc, backend.model, what, self._secrets.scrub)
        if stop is not None:
            raise stop from None

    async def _generate(self, backend: Any, messages: list[dict]) -> tuple[str | None, str, int]:
        """(text or None, failure reason, tokens used)."""
        try:
            result, used = await self._call(backend, messages, self.gen_params)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes an explicit row status
            self._fatal(exc, backend, "generation")
            kind, status, message = stops.error_kind(exc)
            message = self._secrets.scrub(message)
            if kind == "too_long":
                return None, f"{backend.model}: the prompt is longer than the model's context window ({message})", 0
            return None, stops.named(backend.model, message), 0
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

        rec = schema.raw_row(
            id=row["id"],
            prompt=prompt,
            system_prompt=s.system_prompt,
            target_language=target,
            responses=texts,
            response_sources=s.sources,
            ratings=verdict.ratings if verdict is not None else [None] * len(texts),
            rationales=verdict.rationales if verdict is not None else [None] * len(texts),
            detected_languages=[getattr(c, "detected", None) for c in langs],
            language_confidences=[
                None if getattr(c, "confidence", None) is None else float(c.confidence) for c in langs
            ],
            language_match=[getattr(c, "match", None) for c in langs],
            judge_model=s.judge.model,
            aspect=s.aspect,
            status=status,
            error=self._secrets.scrub(error),
            **judge_mod.verdict_columns(s.judge_mode, verdict),
        )
        self.out.write(rec)
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
            kind, status, message = stops.error_kind(exc)
            message = self._secrets.scrub(message)
            if kind == "too_long":
                message = f"the judge prompt is longer than the judge model's context window ({message})"
            verdict = judge_mod.RowVerdict(
                status=schema.STATUS_JUDGE_FAILED,
                error=stops.named(s.judge.model, message, "judge "),
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
    def _synced(self, error: Exception | None) -> None:
        """After each checkpoint sync (a Hub push): the problem for the progress line, or "" when it worked."""
        self.handle.hub_message = "" if error is None else self._secrets.scrub(f"Hub checkpoint failed: {error}")

    def _after_row(self, rec: dict) -> None:
        if self.s.max_tokens is not None and self.handle.tokens_used >= self.s.max_tokens:
            self.budget_hit = True
        if rec["status"] in (schema.STATUS_GENERATION_FAILED, schema.STATUS_JUDGE_FAILED):
            self._failed_in_a_row += 1
        else:
            self._failed_in_a_row = 0
        if self._failed_in_a_row >= self.max_failures_in_a_row:
            raise stops.RunStop(
                STATE_STOPPED,
                f"Stopped: {self._failed_in_a_row} rows in a row failed, so the run stopped instead of spending more "
                f"calls. Last error: {rec['error']} Fix the cause, then resume the run; finished rows are kept.",
            )

    # --- main loop ---
    async def run(self) -> tuple[str, str]:
        stop: stops.RunStop | None = None
        try:
            async with self.scheduler.running(), asyncio.TaskGroup() as group:
                for row, prior in self.rows:
                    await self.row_slots.acquire()
                    if self.budget_hit:
                        self.row_slots.release()
                        break
                    group.create_task(self._row(row, prior))
                self.scheduler.tail = True
        except* stops.RunStop as group_error:
            stop = _first_leaf(group_error)  # type: ignore[assignment]
        finally:
            await self.out.close()
        if stop is not None:
            return stop.state, stop.message
        if self.budget_hit:
            return (
                STATE_STOPPED,
                f"Stopped: the token budget ({self.s.max_tokens:,}) is spent ({self.handle.tokens_used:,} used). "
                "Raise the budget and resume the run; finished rows are kept.",
            )
        return STATE_DONE, ""


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
    ``hedge`` allows backup requests for stragglers at the very end of the run (see :class:`pipeline.core.scheduler.Hedger`).
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
    pooled = ChatPool(settings.concurrency, _with_wait_limit(retry, settings), timeout) if chat_fn is None else None
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

    def crashed(exc: BaseException | None) -> None:
        handle.end(STATE_FAILED, "The run ended unexpectedly; finished rows are kept.")

    handle.on_end(release)
    start_thread(handle, lambda: execute(handle, **kwargs), name="dpo-studio-run", crashed=crashed)
    return handle
