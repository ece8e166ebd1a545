"""The judge check: candidate judge models against people's preferences, before the run (step 3, Pipeline).

Owns the run of a judge check, the same for the app (``ui/judge_check.py``) and the CLI
(``python -m pipeline judge-check``); the rows it checks against (people's labels or an Argilla pull, as
:class:`~pipeline.judge.labels.CheckItem`) come from :mod:`pipeline.judge.labels`, and its table text from
:mod:`pipeline.judge.report`.

- **The settings** (:class:`CheckSettings`: up to :data:`MAX_JUDGES` judges on any backend, the run's judge mode and
  aspect) and **the estimate** (:func:`plan_check`), shown before any call, like the run's Estimate.
- **The check** (:func:`run_check`, or :func:`start_check` in a background thread for the app, reporting through a
  :class:`CheckHandle`): the judges side by side, every row judged in both orders through
  ``pipeline.judge.judge_row``. It runs on a run's machinery, not a copy of it: each judge's calls go through a
  ``pipeline.core.scheduler.Scheduler`` of its own on a shared ``pipeline.inference.pool.ChatPool`` with the secret
  each backend may see (``pipeline.core.credentials``: the HF token to serverless/endpoint only, an API key per
  OpenAI-compatible URL), and the handle's lifecycle is ``pipeline.core.background.TaskHandle``'s.
- **The figures** per judge (:func:`score_judge` -> ``schema.JudgeScore``, collected in ``schema.JudgeCheck``):
  parse rate, flip rate, agreement with the people and Cohen's kappa (``pipeline.judge.agreement``), mean latency and
  tokens per row; :func:`for_run` / :func:`read_check` carry them into a run's metadata.

Bad input raises :class:`~pipeline.judge.labels.JudgeCheckError` with a message that says what to do (no labelled
rows, rows of another language than the run's, bad judge settings). A judge whose calls are refused (a model id that
does not exist or does not chat, a schema the server rejects, a bad key) stops with a message in its
``JudgeScore.error``; the other judges go on and every row already judged is kept and counted. No Gradio here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

from pipeline import inference
from pipeline import judge as judge_mod
from pipeline.core import schema
from pipeline.core.background import TaskHandle, start_thread
from pipeline.core.credentials import Credentials, public_url, sign_in_refusal
from pipeline.core.scheduler import PRIORITY_JUDGE, Request, Scheduler
from pipeline.inference import Backend, GenParams, InferenceError
from pipeline.inference.pool import ChatPool
from pipeline.judge import JudgeChat, agreement
from pipeline.judge.labels import NO_LABELS, SOURCE_LABELS, CheckItem, JudgeCheckError, check_items

log = logging.getLogger(__name__)

MAX_JUDGES: Final = 3
DEFAULT_CONCURRENCY: Final = 4  # rows in flight per judge (each row's two orders are asked at once)
ORDERS: Final = 2  # every row is judged in both orders
JUDGE_TEMPERATURE: Final = 0.1  # as the run's judge (settings.DEFAULTS["judge_temperature"])


NOT_RUN: Final = "not_run"  # a row a stopped or cancelled judge never judged (not counted anywhere)

# Errors after which a judge cannot go on (every further call would fail the same way).
_FATAL_KINDS: Final = ("auth", "forbidden", "not_found", "bad_request", "connection")


# --------------------------------------------------------------------------------------------------------------
# Settings and estimate
# --------------------------------------------------------------------------------------------------------------
def judges_from(specs: Iterable[Mapping[str, Any] | Backend]) -> tuple[Backend, ...]:
    """Validated judge backends from mappings (``model``, ``kind``/``backend``, ``base_url``, ``provider``), blank
    model ids skipped. Raises :class:`JudgeCheckError` with the backend's message."""
    out = []
    for spec in specs:
        model = spec.model if isinstance(spec, Backend) else str(dict(spec).get("model") or "").strip()
        if not model:
            continue
        try:
            out.append(inference.backend_from(spec))
        except InferenceError as exc:
            raise JudgeCheckError(exc.message) from None
    return tuple(out)


@dataclass(frozen=True)
class CheckSettings:
    """What a judge check runs: the candidate judges and how they judge (the run's judge settings)."""

    judges: tuple[Backend, ...]
    mode: str = "ratings"  # pipeline.judge.JUDGE_MODES
    aspect: str = judge_mod.DEFAULT_ASPECT
    max_new_tokens: int | None = None  # None: judge.default_max_new_tokens(number of texts)
    temperature: float = JUDGE_TEMPERATURE
    concurrency: int = DEFAULT_CONCURRENCY  # rows in flight per judge (2 calls each: both orders at once)

    def __post_init__(self) -> None:
        if not self.judges:
            raise JudgeCheckError(f"Give at least one judge model to check (up to {MAX_JUDGES}).")
        if len(self.judges) > MAX_JUDGES:
            raise JudgeCheckError(
                f"At most {MAX_JUDGES} judges at once ({len(self.judges)} given): drop some, or "
                "check them in two rounds."
            )
        keys = [(*b.key, b.model) for b in self.judges]
        if len(set(keys)) != len(keys):
            raise JudgeCheckError("The same judge is listed twice: list each judge once.")
        for backend in self.judges:
            try:
                backend.validate()
            except InferenceError as exc:
                raise JudgeCheckError(exc.message) from None
        modes = getattr(judge_mod, "JUDGE_MODES", ("ratings", "pairwise"))
        if self.mode not in modes:
            raise JudgeCheckError(f"Unknown judge mode {self.mode!r}: choose one of {', '.join(modes)}.")
        if self.aspect not in judge_mod.ASPECTS:
            raise JudgeCheckError(f"Unknown aspect {self.aspect!r}: choose one of {', '.join(judge_mod.ASPECTS)}.")
        if not 1 <= int(self.concurrency) <= 64:
            raise JudgeCheckError("Concurrency must be between 1 and 64.")

    def params(self, n_texts: int) -> GenParams:
        tokens = self.max_new_tokens or judge_mod.default_max_new_tokens(n_texts)
        return GenParams(max_new_tokens=tokens, temperature=self.temperature, top_p=1.0)

    def serverless_models(self) -> list[str]:
        """Judges that run on the signed-in user's HF account (they need a token)."""
        return [b.model for b in self.judges if b.spec.needs_token]

    def require_sign_in(self, token: str | None, how: str) -> None:
        """Raise :class:`JudgeCheckError` when a judge runs on serverless inference and there is no token; ``how``
        says how to get one where the user is (the app: sign in; the CLI: set HF_TOKEN)."""
        roles = [("candidate judge", b) for b in self.judges]
        message = sign_in_refusal(roles, token, how, instead="check judges on an OpenAI-compatible server")
        if message:
            raise JudgeCheckError(message)


@dataclass(frozen=True)
class CheckPlan:
    """What a judge check will cost, counted before any call."""

    rows: int
    judges: tuple[str, ...]
    calls_per_judge: int
    tokens_per_judge: int  # upper bound: prompts + max new tokens, both orders

    @property
    def calls(self) -> int:
        return self.calls_per_judge * len(self.judges)

    @property
    def est_tokens(self) -> int:
        return self.tokens_per_judge * len(self.judges)

    def summary(self) -> str:
        if not self.rows:
            return NO_LABELS
        return (
            f"{self.rows} rows × {len(self.judges)} judge(s) × {ORDERS} orders: about {self.calls} calls "
            f"({self.calls_per_judge} per judge), at most ~{self.est_tokens:,} tokens "
            f"(~{self.tokens_per_judge:,} per judge). A reply that does not parse is asked once more (one more call "
            "for that row and order)."
        )


def plan_check(items: Sequence[CheckItem], settings: CheckSettings) -> CheckPlan:
    """The estimate of a check of ``items`` with ``settings`` (the same count as the run's Estimate)."""
    per_row = 0
    for item in items:
        n = len(item.texts)
        body = inference.estimate_tokens(item.prompt) + sum(inference.estimate_tokens(t) for t in item.texts)
        per_row += ORDERS * (judge_mod.prompt_overhead(settings.aspect, n) + body + settings.params(n).max_new_tokens)
    return CheckPlan(len(items), tuple(b.model for b in settings.judges), ORDERS * len(items), per_row)


# --------------------------------------------------------------------------------------------------------------
# Running the check
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowOutcome:
    """One judge's verdict on one row, reduced to what the figures need (kept in the report, for the JSON)."""

    model: str
    id: str
    status: str  # schema.STATUS_OK | STATUS_JUDGE_UNPARSEABLE | STATUS_JUDGE_FAILED
    human: int  # the people's preference (raw index, -1 = tie)
    judge: int | None = None  # the judge's preferred answer (raw index, -1 = tie); None when unparsed
    inconsistent: bool | None = None  # the preferred answer changed with the order; None when judged once
    structured: bool | None = None
    tokens: int = 0
    latency_s: float = 0.0
    error: str = ""


def outcome_of(model: str, item: CheckItem, verdict: Any) -> RowOutcome:
    """A :class:`RowOutcome` from a ``pipeline.judge.RowVerdict`` (ratings aligned with ``item.texts``)."""
    pref = None
    if verdict.status == schema.STATUS_OK:
        local = agreement.preference_from_ratings(list(verdict.ratings))
        pref = local if local in (None, agreement.TIE) else item.indices[local]
    return RowOutcome(
        model,
        item.id,
        verdict.status,
        item.human,
        pref,
        verdict.inconsistent,
        verdict.structured,
        int(verdict.tokens or 0),
        float(verdict.latency_s or 0.0),
        verdict.error or "",
    )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def score_judge(backend: Backend, outcomes: Iterable[RowOutcome], error: str = "") -> schema.JudgeScore:
    """One judge's figures from its row outcomes (pure). Agreement, kappa and flips count parsed rows only (the
    parse rate says how many those are); latency and tokens count every row the judge answered."""
    ran = [o for o in outcomes if o.status != NOT_RUN]
    parsed = [o for o in ran if o.status == schema.STATUS_OK]
    answered = [o for o in ran if o.status != schema.STATUS_JUDGE_FAILED]
    ag = agreement.judge_human_agreement((o.judge, o.human) for o in parsed)
    structured = [o.structured for o in answered if o.structured is not None]
    return schema.JudgeScore(
        model=backend.model,
        backend=backend.kind,
        base_url=public_url(backend.base_url) if backend.spec.needs_url else "",
        provider=(backend.provider or "auto") if backend.spec.has_provider else "",
        rows=len(ran),
        parsed=len(parsed),
        flips=sum(1 for o in parsed if o.inconsistent),
        flip_rows=sum(1 for o in parsed if o.inconsistent is not None),
        compared=ag["rows"],
        agree=ag["agree"],
        kappa=ag["kappa"],
        mean_latency_s=_mean([o.latency_s for o in answered]),
        tokens_per_row=_mean([float(o.tokens) for o in answered]),
        structured=all(structured) if structured else None,
        error=error,
    )


def stop_message(exc: BaseException, done: int, total: int, credentials: Credentials | None = None) -> str:
    """Why a judge's check stopped, and what to do (the inference message plus a hint for the judge check)."""
    kind = getattr(exc, "kind", "") or ""
    status = getattr(exc, "status", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if credentials is not None:
        message = credentials.scrub(message)
    low = message.lower()
    hint = ""
    if status in (400, 422) and any(w in low for w in ("response_format", "schema", "grammar", "json")):
        hint = (
            " The server rejected the JSON schema of the structured verdict and the plain-text fallback failed "
            "too: pick another judge model or server."
        )
    elif kind == "bad_request" or status == 400:
        hint = (
            " If the model does not chat (a base, embedding or reward model), pick an instruction (chat) model as"
            " the judge."
        )
    elif kind == "not_found":
        hint = " A judge must be a chat model the backend serves: check the id, or pick another judge."
    if hint and message and message[-1] not in ".!?":
        message += "."
    return f"Stopped after {done} of {total} rows: {message}{hint}"


def _check_retry() -> Any:
    from pipeline.inference import RetryPolicy

    # People wait for the check in the app: fewer, shorter retries than a run's.
    return RetryPolicy(max_attempts=3, max_total_s=60.0, base_backoff_s=1.0, max_backoff_s=10.0)


CHECK_RETRY = _check_retry()


class CheckHandle(TaskHandle):
    """A judge check's progress (per judge: rows judged, or stopped) and, once it ends, its :attr:`report` (or
    :attr:`error`, a message for people). Thread-safe: the app polls it while the check runs in another thread.

    ``cancel()`` (:class:`pipeline.core.background.TaskHandle`) starts no new row; the calls in flight finish and
    every row judged so far is kept in the report."""

    abandon_on_cancel = False

    def __init__(self, models: Sequence[str], total: int) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.total = total
        self._done = {m: 0 for m in models}
        self._stopped = {m: "" for m in models}
        self.report: CheckReport | None = None
        self.error = ""

    def advance(self, model: str) -> None:
        with self._lock:
            self._done[model] = self._done.get(model, 0) + 1

    def stop(self, model: str, message: str) -> None:
        with self._lock:
            self._stopped[model] = self._stopped.get(model) or message

    @property
    def cancelled(self) -> bool:
        return self.cancel_requested

    def done(self, model: str) -> int:
        with self._lock:
            return self._done.get(model, 0)

    def line(self) -> str:
        """e.g. ``judge-a: 12/20 · judge-b: stopped · judge-c: 20/20``."""
        with self._lock:
            parts = [f"{m}: {'stopped' if self._stopped[m] else f'{d}/{self.total}'}" for m, d in self._done.items()]
        return " · ".join(parts) + (" · cancelling…" if self.cancelled else "")


@dataclass(frozen=True)
class CheckReport:
    """A finished (or cancelled) check: the figures (``check``) and every judge's row outcomes."""

    check: schema.JudgeCheck
    rows: tuple[RowOutcome, ...] = ()
    cancelled: bool = False

    def to_dict(self) -> dict:
        return {"check": self.check.to_dict(), "cancelled": self.cancelled, "rows": [asdict(r) for r in self.rows]}


def _requests(chat: JudgeChat | None, pool: ChatPool | None, credentials: Credentials) -> Callable[..., Request]:
    """``request_for(backend, messages, params)``: one call as the scheduler takes it (``Request``). Through the
    pool, gated, with the secret that backend may see; through a caller's ``chat``, ungated."""

    def request_for(backend: Backend, messages: list[dict], params: GenParams) -> Request:
        if pool is not None:
            token = credentials.for_backend(backend)
            return lambda gate: pool(backend, messages, params, token, gate=gate)
        return lambda _gate: chat(backend, messages, params)  # type: ignore[misc]

    return request_for


async def _check_one_judge(
    backend: Backend,
    items: Sequence[CheckItem],
    settings: CheckSettings,
    request_for: Callable[..., Request],
    gated: bool,
    handle: CheckHandle,
    credentials: Credentials | None,
) -> tuple[list[RowOutcome], str]:
    # The run's scheduler: ``concurrency`` rows in flight, both orders of each at once. No backup requests: the
    # estimate counts every call, and a check is short.
    scheduler = Scheduler(int(settings.concurrency) * ORDERS)
    rows = asyncio.Semaphore(int(settings.concurrency))
    stopped: list[str] = []

    async def judged(b: Backend, messages: list[dict], params: GenParams) -> Any:
        request = request_for(b, messages, params)
        return await scheduler.call(request, kind="judge", priority=PRIORITY_JUDGE, gated=gated)

    async def one(item: CheckItem) -> RowOutcome:
        not_run = RowOutcome(backend.model, item.id, NOT_RUN, item.human)
        async with rows:
            if stopped or handle.cancel_requested:
                return not_run
            started = time.perf_counter()
            try:
                verdict = await judge_mod.judge_row(
                    judged,
                    backend,
                    settings.params(len(item.texts)),
                    prompt=item.prompt,
                    texts=list(item.texts),
                    row_id=item.id,
                    mode=settings.mode,
                    aspect=settings.aspect,
                    order="both",
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below; never crash the other judges
                kind = getattr(exc, "kind", "") or ""
                if not isinstance(exc, InferenceError) or kind in _FATAL_KINDS:
                    if not stopped:
                        stopped.append(stop_message(exc, handle.done(backend.model), len(items), credentials))
                        handle.stop(backend.model, stopped[0])
                        log.info("judge check of %s stopped: %s", backend.label, kind or type(exc).__name__)
                    return not_run
                message = getattr(exc, "message", str(exc))
                message = credentials.scrub(message) if credentials is not None else message
                handle.advance(backend.model)
                return RowOutcome(
                    backend.model,
                    item.id,
                    schema.STATUS_JUDGE_FAILED,
                    item.human,
                    error=message,
                    latency_s=time.perf_counter() - started,
                )
        handle.advance(backend.model)
        return outcome_of(backend.model, item, verdict)

    async with scheduler.running():
        scheduler.tail = True  # every row is queued at once
        outcomes = await asyncio.gather(*(one(item) for item in items))
    return list(outcomes), (stopped[0] if stopped else "")


async def run_check(
    items: Sequence[CheckItem],
    settings: CheckSettings,
    credentials: Credentials | None = None,
    *,
    language: str = "",
    source: str = SOURCE_LABELS,
    chat: JudgeChat | None = None,
    handle: CheckHandle | None = None,
    timeout: float = 120.0,
) -> CheckReport:
    """Judge ``items`` with every judge of ``settings``, side by side, each row in both orders; returns the report.

    Raises :class:`JudgeCheckError` for bad input (see :func:`check_items`) before any call. ``chat(backend,
    messages, params)`` defaults to pooled ``inference.AsyncChat`` clients (``pipeline.inference.pool.ChatPool``)
    with ``credentials`` routed per backend. Every judge's calls go through a ``pipeline.core.scheduler.Scheduler``
    of its own, as a run's do. A judge whose calls are refused stops with a message in its score; cancelling
    (``handle.cancel()``) keeps the rows already judged."""
    check_items(items, language, source=source)
    credentials = credentials or Credentials()
    handle = handle or CheckHandle([b.model for b in settings.judges], len(items))
    pool = ChatPool(int(settings.concurrency) * ORDERS, CHECK_RETRY, timeout) if chat is None else None
    request_for = _requests(chat, pool, credentials)
    try:
        results = await asyncio.gather(
            *(
                _check_one_judge(b, items, settings, request_for, pool is not None, handle, credentials)
                for b in settings.judges
            )
        )
    finally:
        if pool is not None:
            await pool.aclose()
    scores = tuple(score_judge(b, outs, err) for b, (outs, err) in zip(settings.judges, results))
    langs = {i.language for i in items if i.language}
    check = schema.JudgeCheck(
        rows=len(items),
        source=source,
        language=language or (next(iter(langs)) if len(langs) == 1 else ""),
        mode=settings.mode,
        aspect=settings.aspect,
        judges=scores,
    )
    rows = tuple(o for outs, _ in results for o in outs)
    return CheckReport(check, rows, cancelled=handle.cancelled)


def start_check(
    items: Sequence[CheckItem], settings: CheckSettings, credentials: Credentials | None = None, **kwargs: Any
) -> CheckHandle:
    """Validate, then run :func:`run_check` in a background thread with its own event loop
    (``pipeline.core.background.start_thread``); returns its handle at once. Raises :class:`JudgeCheckError` for
    bad input (nothing is started)."""
    check_items(items, kwargs.get("language", ""), source=kwargs.get("source", SOURCE_LABELS))
    handle = kwargs.pop("handle", None) or CheckHandle([b.model for b in settings.judges], len(items))

    async def work() -> None:
        try:
            handle.report = await run_check(items, settings, credentials, handle=handle, **kwargs)
        except JudgeCheckError as exc:
            handle.error = str(exc)
        handle.finish()

    def crashed(exc: BaseException | None) -> None:
        text = f"The judge check failed: {type(exc).__name__}: {exc}"
        handle.error = credentials.scrub(text) if credentials is not None else text

    start_thread(handle, work, name="dpo-studio-judge-check", crashed=crashed)
    return handle


def for_run(check: schema.JudgeCheck | None, judge: Backend) -> schema.JudgeCheck | None:
    """The check to record in a run's metadata (``RunMeta.judge_check``): ``check`` when it scored the run's
    ``judge`` (same model id and backend kind), with ``chosen`` set to it; ``None`` when no check scored that judge
    (the cards then say no judge check was run for it)."""
    if check is None:
        return None
    score = next((j for j in check.judges if j.model == judge.model and j.backend == judge.kind and j.rows), None)
    return None if score is None else replace(check, chosen=score.model)


def read_check(path: str) -> schema.JudgeCheck:
    """A check from the JSON that ``python -m pipeline judge-check --output`` wrote (for a run's metadata)."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return schema.JudgeCheck.from_dict(data["check"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise JudgeCheckError(
            f"{path}: not a judge check result ({type(exc).__name__}); write one with "
            "python -m pipeline judge-check ... --output check.json."
        ) from None
