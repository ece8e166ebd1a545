"""Adaptive concurrency per backend key: how many calls may be in flight to one provider account or server now.

Owns:

- :class:`Aimd`: the decision rule, pure and clock-driven (unit-testable without a server). A key with no history
  starts small (slow start: ``SLOW_START_AT`` calls in flight) and grows by a slot per success while calls queue,
  doubling each round, until the first throttle or the ceiling (the user's concurrency setting); a key with
  history (a throttle seen) starts from what it learned. A throttle the provider means (a 429 with Retry-After, an "overloaded"
  503, or refusals of most recent calls) cuts the allowed concurrency multiplicatively, once per congestion event,
  and each further refusal of that event takes one more slot off, so a burst that refused k of n calls ends near
  what the provider took, without a cascade of cuts. A Retry-After pauses the whole key until then, capped at
  ``MAX_PAUSE_S`` (callers cap it at their longest wait first). A bare 429 among successes (a busy provider
  refusing a call here and there) only takes half a slot off. Successes of calls admitted after the last cut grow
  the limit back by about one slot per round of calls up to 90% of what held in the last congestion event (the level
  it began at less the calls it refused), then probe slowly (a slot per ten rounds), up to the ceiling (a success admitted before the cut says nothing about the new level).
- :class:`RateController`: a FIFO counting semaphore usable from threads (``slot()``) and from any asyncio loop
  (``async with aslot()``) at the same time, whose limit is ``Aimd.allowed`` and which grants nothing while the key
  is paused. Every wait for a slot takes a time-out (the caller's wait budget) and is cancellable (a task's
  cancellation; a ``threading.Event`` for threads). One per backend key, process-wide (see
  ``pipeline.inference.limits``).
- :class:`ControllerState`: a snapshot for progress displays (allowed now, in flight, paused for, refused).
- :func:`credential_key`: a short sha256 of a credential, for keys; the credential itself is never stored.
- :func:`set_adaptive`: switch adaptation off (the fixed limit of before; benchmarks compare both). The environment
  variable ``DPO_STUDIO_ADAPTIVE_CONCURRENCY=0`` does the same at start.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

IDLE_RESET_S = 60.0  # a key unused this long forgets its recent outcomes (its learned level stays)
SLOW_START_AT = 4  # calls in flight a key with no history starts at (it doubles each round up to the ceiling)
MAX_PAUSE_S = 3600.0  # the longest a Retry-After may pause a key, whatever a server sends
CUT_RECENT_S = 10.0  # a certain cut this recent counts as "the provider is throttling now"

_adaptive = os.environ.get("DPO_STUDIO_ADAPTIVE_CONCURRENCY", "1").strip().lower() not in ("0", "false", "no", "off")


def set_adaptive(enabled: bool) -> None:
    """Adapt the concurrency to throttling (default) or keep every key at its fixed limit (the old behaviour)."""
    global _adaptive
    _adaptive = bool(enabled)


def adaptive() -> bool:
    return _adaptive


def credential_key(token: str | None) -> str:
    """A short, one-way fingerprint of a credential (16 hex digits of its sha256); ``""`` for none."""
    if not token:
        return ""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class ControllerState:
    """One backend key's controller, for progress displays."""

    limit: int  # the ceiling: the user's setting
    allowed: int  # calls allowed in flight now
    in_flight: int
    waiting: int  # calls queued for a slot
    paused_s: float  # seconds until the provider's Retry-After ends (0 when not paused)
    refused: int  # throttled calls seen since the controller was made
    throttled: bool  # cut below the ceiling by throttling (not merely starting slow)
    cut_recently: bool = False  # paused, or cut for a certain throttle (not a stray 429) in the last CUT_RECENT_S
    slow_start: bool = False  # a key with no history still growing from SLOW_START_AT towards the ceiling


class Aimd:
    """The additive-increase / multiplicative-decrease rule of one key (not thread-safe: the caller locks).

    - Slow start: a key with no history starts at ``start`` (default ``SLOW_START_AT``; a key created from what
      another learned passes it) and adds a slot per success while calls are queueing, doubling each round,
      until the first throttle or the ceiling.
    - A *certain* throttle (the provider sent a Retry-After, or said it is overloaded, or most recent calls were
      refused) from a call started after the last cut opens a congestion event: ``allowed`` is cut to
      ``decrease`` × itself (0.6: a cut to half left a token-bucket provider's refill unused after every pause,
      costing 10-20% of the throughput in ``bench/ratelimit.py``), and every refusal of the same event takes one more slot off the level the event began
      at (so a burst of k refusals out of n calls leaves about n − k: what the provider took). A Retry-After pauses
      the key until then.
    - A bare 429 among mostly successful calls may be noise (a busy provider refusing a call here and there):
      it takes ``soft_step`` slot off, no more.
    - A success of a call admitted after the last cut, while calls were queueing, adds ``increase / allowed`` (one
      slot per round of calls) up to
      ``recover`` × what held in the last congestion event (the level it began at less the calls it refused), then
      ``probe / allowed`` (a slow probe for more; a token bucket's burst makes the level a cut began at look higher
      than what lasts), up to the ceiling.
    """

    def __init__(
        self,
        ceiling: int,
        *,
        decrease: float = 0.6,
        increase: float = 1.0,
        probe: float = 0.1,
        soft_step: float = 0.5,
        dense_share: float = 0.3,
        recover: float = 0.9,
        start: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = max(1, int(ceiling))
        self.allowed = float(max(1.0, min(self.ceiling, SLOW_START_AT if start is None else start)))
        self.slow_start = start is None and self.allowed < self.ceiling  # doubling until a throttle or the ceiling
        self.decrease = decrease
        self.increase = increase
        self.probe = probe
        self.soft_step = soft_step
        self.dense_share = dense_share
        self.recover = recover
        self.clock = clock
        self.paused_until = 0.0
        self.last_cut = -math.inf
        self.cut_from = math.inf  # ``allowed`` when the last congestion event began: grow slowly near it
        self.event_refused = 0
        self.refused = 0
        self.last_used = clock()
        self._outcomes: collections.deque[bool] = collections.deque(maxlen=2 * self.ceiling + 8)  # True = refused

    @property
    def limit(self) -> int:
        """Calls allowed in flight now (at least 1; the ceiling when adaptation is off)."""
        return max(1, int(self.allowed)) if adaptive() else self.ceiling

    @property
    def history(self) -> bool:
        """Whether this key has seen a certain throttle (a cut): then it grows from what it learned."""
        return self.last_cut > -math.inf

    def set_ceiling(self, ceiling: int) -> None:
        """The user's setting changed: never more than it; a lower one cuts at once, a higher one is grown to
        (by slow start from at least ``SLOW_START_AT`` for a key with no history, else by the usual growth)."""
        ceiling = max(1, int(ceiling))
        if not self.history:  # a key with no history may always start at SLOW_START_AT
            self.allowed = max(self.allowed, float(SLOW_START_AT))
        self.allowed = min(self.allowed, float(ceiling))
        self.ceiling = ceiling
        self.slow_start = not self.history and self.allowed < ceiling
        self._outcomes = collections.deque(self._outcomes, maxlen=2 * ceiling + 8)

    def paused_for(self, now: float | None = None) -> float:
        now = self.clock() if now is None else now
        return max(0.0, self.paused_until - now)

    def touch(self, now: float) -> None:
        """A call is about to start: after a long idle time, forget the recent outcomes; a key with history starts
        again from the level it learned (near where its last cut began), one without continues its slow start."""
        if now - self.last_used > IDLE_RESET_S and now >= self.paused_until:
            if self.history:
                self.allowed = max(self.allowed, min(float(self.ceiling), self.recover * self.cut_from))
            self._outcomes.clear()
        self.last_used = now

    def refused_share(self) -> float:
        """The share of refusals among the last two rounds of calls (0 before any outcome)."""
        n = max(10, 2 * self.limit)  # fewer outcomes than that count as successes: one early 429 is no pattern
        recent = list(self._outcomes)[-n:]
        return sum(recent) / n

    def on_success(self, started: float, now: float, queued: bool) -> None:
        """A call admitted at ``started`` succeeded; ``queued``: other calls were waiting for a slot. Only a call
        admitted after the last cut counts toward growth (one admitted before it was sent at the old level)."""
        self.last_used = now
        self._outcomes.append(False)
        if not (queued and adaptive() and self.allowed < self.ceiling) or started < self.last_cut:
            return
        if self.slow_start:
            self.allowed = min(float(self.ceiling), self.allowed + 1.0)
            self.slow_start = self.allowed < self.ceiling
            return
        # fast growth up to near what the provider took in the last congestion event (the level it began at less
        # the calls it refused), then a slow probe: a token bucket's burst makes the level a cut began at look higher
        held = self.cut_from - self.event_refused
        step = self.increase if self.allowed < self.recover * held else self.probe
        self.allowed = min(float(self.ceiling), self.allowed + step / max(1.0, self.allowed))

    def on_throttle(self, started: float, now: float, retry_after: float | None = None, certain: bool = False) -> None:
        """A call started at ``started`` was refused for load (429 / overloaded 503). ``certain``: the provider
        said it is overloaded (a 503's message); a Retry-After makes it certain too."""
        self.refused += 1
        self.last_used = now
        self._outcomes.append(True)
        if not adaptive():
            return
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            self.paused_until = max(self.paused_until, now + min(retry_after, MAX_PAUSE_S))
            certain = True
        self.slow_start = False
        if not certain and self.refused_share() < self.dense_share:
            self.allowed = max(1.0, self.allowed - self.soft_step)
            return
        if started >= self.last_cut:  # a new congestion event
            self.cut_from = self.allowed
            self.event_refused = 0
            self.last_cut = now
            self.allowed = max(1.0, self.allowed * self.decrease)
        self.event_refused += 1
        self.allowed = max(1.0, min(self.allowed, self.cut_from - self.event_refused))


class _Waiter:
    __slots__ = ("event", "loop", "future", "granted", "granted_at")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop
        self.future: asyncio.Future | None = loop.create_future() if loop is not None else None
        self.event = threading.Event() if loop is None else None
        self.granted = False
        self.granted_at = 0.0  # the controller's clock when the slot was granted (the call's admission)

    def wake(self) -> bool:
        if self.event is not None:
            self.event.set()
            return True
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)  # type: ignore[union-attr, arg-type]
            return True
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            return False


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class RateController:
    """The process-wide gate of one backend key: FIFO slots for threads and event loops alike, at most
    ``Aimd.limit`` in use, none granted while the provider asked to wait (see the module docstring)."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._aimd = Aimd(limit, clock=clock)
        self._clock = clock
        self._used = 0
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._timer: threading.Timer | None = None
        self._timer_at = 0.0

    # --- the numbers ---
    @property
    def limit(self) -> int:
        """The ceiling: the user's setting (what ``set_limit`` gave)."""
        return self._aimd.ceiling

    @property
    def allowed(self) -> int:
        """Calls allowed in flight now (the ceiling unless throttling cut it)."""
        return self._aimd.limit if adaptive() else self._aimd.ceiling

    @property
    def in_use(self) -> int:
        return self._used

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def state(self) -> ControllerState:
        with self._lock:
            aimd = self._aimd
            paused = aimd.paused_for()
            return ControllerState(
                limit=aimd.ceiling,
                allowed=self.allowed,
                in_flight=self._used,
                waiting=len(self._waiters),
                paused_s=paused,
                refused=aimd.refused,
                throttled=self.allowed < aimd.ceiling and not aimd.slow_start,
                cut_recently=paused > 0 or self._clock() - aimd.last_cut < CUT_RECENT_S,
                slow_start=aimd.slow_start and adaptive(),
            )

    def paused_for(self) -> float:
        """Seconds until the key's pause (the provider's Retry-After) ends."""
        with self._lock:
            return self._aimd.paused_for()

    def set_limit(self, limit: int) -> None:
        with self._lock:
            self._aimd.set_ceiling(limit)
            self._grant_locked()

    # --- outcomes (call after a request returns) ---
    def succeeded(self, started: float) -> None:
        with self._lock:
            self._aimd.on_success(started, self._clock(), queued=bool(self._waiters))
            self._grant_locked()

    def throttled(self, started: float, retry_after: float | None, *, certain: bool = False) -> None:
        with self._lock:
            self._aimd.on_throttle(started, self._clock(), retry_after, certain)
            self._grant_locked()

    # --- slots ---
    def _free_locked(self) -> bool:
        if self._used >= self.allowed:
            return False
        wait = self._aimd.paused_for()
        if wait > 0:
            self._wake_at_locked(self._clock() + wait)
            return False
        return True

    def _wake_at_locked(self, when: float) -> None:
        if self._timer is not None and self._timer_at >= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        delay = min(max(0.0, when - self._clock()), MAX_PAUSE_S)  # finite, bounded: a timer never overflows
        self._timer = threading.Timer(delay + 0.001, self._on_timer)
        self._timer.daemon = True
        self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            self._grant_locked()

    def _grant_locked(self) -> None:
        while self._waiters and self._free_locked():
            waiter = self._waiters.popleft()
            self._used += 1
            waiter.granted = True
            waiter.granted_at = self._clock()
            if not waiter.wake():
                self._used -= 1
                waiter.granted = False

    def release(self) -> None:
        with self._lock:
            self._used -= 1
            self._grant_locked()

    def _try_locked(self) -> bool:
        self._aimd.touch(self._clock())
        if not self._waiters and self._free_locked():
            self._used += 1
            return True
        return False

    def _leave_locked(self, waiter: _Waiter) -> float | None:
        """A waiter stops waiting (granted, time-out or cancel): the time it was granted a slot (it keeps it), or
        None (it leaves the queue)."""
        if waiter.granted:
            return waiter.granted_at
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass
        return None

    def acquire(self, timeout: float | None = None, *, cancel: threading.Event | None = None) -> bool:
        """A slot for a thread: True when granted, False when ``timeout`` seconds passed or ``cancel`` was set
        first (then the caller holds no slot and has left the queue)."""
        return self.admit(timeout, cancel=cancel) is not None

    def admit(self, timeout: float | None = None, *, cancel: threading.Event | None = None) -> float | None:
        """:meth:`acquire`, returning when the slot was granted (the controller's clock: the call's admission, to
        report outcomes with), or None."""
        with self._lock:
            if self._try_locked():
                return self._clock()
            waiter = _Waiter()
            self._waiters.append(waiter)
        event = waiter.event
        assert event is not None
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            step = left if cancel is None else min(0.05, left if left is not None else 0.05)
            if event.wait(step) or (cancel is not None and cancel.is_set()):
                break
        with self._lock:
            return self._leave_locked(waiter)

    async def acquire_async(self, timeout: float | None = None) -> bool:
        """A slot for a task: True when granted, False when ``timeout`` seconds passed first. Cancelling the task
        leaves the queue (or gives back a slot granted meanwhile)."""
        return await self.admit_async(timeout) is not None

    async def admit_async(self, timeout: float | None = None) -> float | None:
        """:meth:`acquire_async`, returning when the slot was granted (the controller's clock), or None. The grant
        time, not the moment the task resumes, is the call's admission: a cut between the two is not news to it."""
        with self._lock:
            if self._try_locked():
                return self._clock()
            waiter = _Waiter(asyncio.get_running_loop())
            self._waiters.append(waiter)
        future = waiter.future
        assert future is not None
        try:
            await asyncio.wait((future,), timeout=None if timeout is None else max(0.0, timeout))
        except BaseException:  # cancelled: give the slot back, or leave the queue
            with self._lock:
                if waiter.granted:
                    self._used -= 1
                    self._grant_locked()
                else:
                    try:
                        self._waiters.remove(waiter)
                    except ValueError:
                        pass
            raise
        with self._lock:
            return self._leave_locked(waiter)

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    @asynccontextmanager
    async def aslot(self):
        await self.acquire_async()
        try:
            yield
        finally:
            self.release()
