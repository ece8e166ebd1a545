"""Scheduling the calls of one run: a concurrency limit with priorities, calls in flight, and backup requests for
stragglers at the run's tail.

Owns :class:`Scheduler` (what a run calls for every model call) and its parts: :class:`Slots` (at most ``n`` calls
in flight, granted by priority, then first come first served), :class:`Flight` (one logical call: its request and
at most one hedge copy) and :class:`Hedger` ("The Tail at Scale": a duplicate request for a call that is much slower
than its kind's median, only when the run has nothing else to do). Used by the generation executor
(``pipeline.generate.executor``: generations before judge calls) and the judge check (``pipeline.judge.check``).

Generic on purpose: a call is any ``request(gate)`` returning an awaitable, so this module knows nothing of models,
backends or tokens and sits in ``core`` (which every package may import; the chat clients it usually schedules are
``pipeline.inference.pool.ChatPool``). A *gated* request takes its slot itself, per HTTP request, through the
``gate`` it is given (``inference.AsyncChat(gate=...)``), and gives it back while it waits to retry; an ungated one
holds a slot for the whole call. Use in one event loop.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "PRIORITY_GENERATION",
    "PRIORITY_HEDGE",
    "PRIORITY_JUDGE",
    "Flight",
    "Gate",
    "Hedger",
    "Request",
    "Scheduler",
    "Slots",
]

T = TypeVar("T")
Gate = Callable[[], AbstractAsyncContextManager[None]]
"""A slot for one request, entered while it is on the wire (what ``inference.AsyncChat`` takes as ``gate=``)."""
Request = Callable[[Gate | None], Awaitable[Any]]
"""One attempt at a call: given a :data:`Gate` when the call is gated, ``None`` when its slot is already held."""

PRIORITY_GENERATION, PRIORITY_JUDGE, PRIORITY_HEDGE = 0, 1, 2  # generations first: a row's chain is longest


class Slots:
    """The run's concurrency limit: at most ``n`` calls in flight, granted by priority (then FIFO).

    Generations go before judge calls (the critical-path rule: start the longest remaining chains first), which
    shortens the run's tail. ``preempt`` (set by the :class:`Hedger`) may free a slot held by a hedge copy when
    real work is waiting.
    """

    def __init__(self, n: int) -> None:
        self.n = n
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
class Flight:
    """One logical call in flight: its primary request and, at the run's tail, at most one hedge copy."""

    kind: str  # e.g. "generation" | "judge": latencies are compared within a kind
    started: float
    call: Callable[[], Awaitable[Any]]
    result: asyncio.Future
    tasks: list = field(default_factory=list)
    hedge: asyncio.Task | None = None
    errors: list = field(default_factory=list)
    gated: bool = False  # each request takes a slot through the gate; nothing is held while a call waits
    hedge_call: Callable[[], Awaitable[Any]] | None = None  # a gated flight's backup request (lowest priority)
    on_wire: int = 0  # a gated flight's requests on the wire now (0 while it waits to retry: not a straggler)


class Hedger:
    """Backup requests for stragglers at the end of a run ("The Tail at Scale").

    Only when the run has nothing else to do (a slot is free and no call is waiting), a call that has been running
    for more than ``factor`` × the median latency of its kind gets ONE duplicate request; whichever answers first
    is used and the other is cancelled. Hedge copies give their slot back at once when real work arrives, and
    at most ``cap`` copies are made per run, so they cost a few calls at the very end of a run and nothing else.
    """

    def __init__(self, slots: Slots, cap: int, factor: float = 1.5, min_samples: int = 8) -> None:
        self.slots = slots
        self.cap = cap
        self.factor = factor
        self.min_samples = min_samples
        self.used = 0
        self.flights: set[Flight] = set()
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
            flight.hedge = start_request(self, flight, name=f"hedge-{self.used:06d}", hedge=True)
            if self.on_hedge is not None:
                self.on_hedge()

    async def run(self, interval: float = 0.02) -> None:
        while True:
            await asyncio.sleep(interval)
            self.tick()


def start_request(hedger: Hedger, flight: Flight, name: str, *, hedge: bool = False) -> asyncio.Task:
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


class Scheduler:
    """Every call of one run goes through :meth:`call`: a slot by priority, hedging at the tail, and the numbers a
    progress line shows (:attr:`in_flight`, :meth:`calls_per_s`).

    ``hedge_cap``: backup requests allowed in the whole run (0: none). ``throttled()``: a provider is throttling
    the run now (no backup requests then). ``on_hedge()``: called for each backup request sent. Run the hedger
    with ``async with scheduler.running():`` around the run's work, and set :attr:`tail` once all work is started.
    """

    def __init__(
        self,
        concurrency: int,
        *,
        hedge_cap: int = 0,
        throttled: Callable[[], bool] | None = None,
        on_hedge: Callable[[], None] | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.slots = Slots(concurrency)
        self.hedger = Hedger(self.slots, cap=hedge_cap)
        self.hedger.enabled = hedge_cap > 0
        self.hedger.throttled = throttled
        self.hedger.on_hedge = on_hedge
        self._answered: collections.deque[float] = collections.deque(maxlen=4096)  # when calls were answered
        self._began = time.monotonic()

    @property
    def tail(self) -> bool:
        """Every piece of the run's work has started: idle slots are really idle (hedging may begin)."""
        return self.hedger.tail

    @tail.setter
    def tail(self, value: bool) -> None:
        self.hedger.tail = value

    @property
    def in_flight(self) -> int:
        return max(0, self.concurrency - self.slots.free)

    def calls_per_s(self, window_s: float = 10.0) -> float:
        """Calls answered per second over the last ``window_s`` seconds (thread-safe enough: it only reads)."""
        now = time.monotonic()
        answered = [t for t in list(self._answered) if t >= now - window_s]
        return len(answered) / min(window_s, max(1.0, now - self._began))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Scheduler]:
        """Run the hedger for the duration of the block."""
        hedging = asyncio.ensure_future(self.hedger.run())
        try:
            yield self
        finally:
            hedging.cancel()

    def _gate(self, flight: Flight, priority: int) -> Gate:
        """The run's slot for one request of ``flight`` (entered per request by the request itself)."""

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

    async def call(self, request: Request, *, kind: str, priority: int, gated: bool = False) -> Any:
        """The result of ``request`` (its first answer when a backup copy was sent); its exception otherwise.
        Cancelling the caller cancels every copy."""
        loop = asyncio.get_running_loop()
        flight: Flight
        if gated:  # the request takes the run's slot itself, and gives it back while it waits to retry
            flight = Flight(kind, time.monotonic(), lambda: request(None), loop.create_future(), gated=True)
            flight.call = lambda: request(self._gate(flight, priority))
            flight.hedge_call = lambda: request(self._gate(flight, PRIORITY_HEDGE))
            start_request(self.hedger, flight, name="primary")
        else:
            flight = Flight(kind, 0.0, lambda: request(None), loop.create_future())
            await self.slots.acquire(priority)
            try:
                flight.started = time.monotonic()
                start_request(self.hedger, flight, name="primary")  # from here on the request owns the slot
            except BaseException:
                self.slots.release()
                raise
        self.hedger.flights.add(flight)
        try:
            result = await flight.result
        finally:
            self.hedger.flights.discard(flight)
            for task in flight.tasks:
                task.cancel()  # the slower copy, or everything when the caller is cancelled
            if not flight.result.done():
                flight.result.cancel()
            elif not flight.result.cancelled():
                flight.result.exception()  # retrieved: no "never retrieved" warning
        self._answered.append(time.monotonic())
        return result
