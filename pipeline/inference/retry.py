"""One retry policy for every inference call, streaming or not: how often and how long a call may try again, and
how long it waits between tries.

Owns :class:`RetryPolicy` (the budgets: ``max_attempts`` and ``max_total_s`` for failures, ``max_wait_s`` for
waiting on a provider that refuses for load) with the app's presets, and :class:`CallRetry`, one call's
bookkeeping under a policy, used by both ``pipeline.inference.chat`` (async) and ``pipeline.inference.stream``
(sync): after each failure :meth:`CallRetry.after` says how long to wait or raises the error to give up with,
and :meth:`CallRetry.slot_budget` bounds the wait for a slot of the backend's rate controller. The loops only
sleep (``asyncio.sleep``, or a cancellable ``threading.Event.wait``).

The rules, the same for both paths:

- A throttle (429, "overloaded" 503) is a wait, not an attempt, while adaptive concurrency is on (or the policy
  says ``throttle_wait=True``): the call waits the provider's Retry-After, or a back-off, or until the key's pause
  ends, whichever is longest, holding no slot; every wait of the call, including the wait for a slot,
  counts toward ``max_wait_s``, and a wait that would pass it is not started (kind ``throttled``).
- Any other retryable failure is an attempt: exponential back-off with jitter, a server's Retry-After honoured;
  at most ``max_attempts`` tries and ``max_total_s`` seconds of trying (waits for the provider not counted).
- A Retry-After is capped at the call's longest wait; a value that is not finite, negative or unreadable was
  already dropped when the reply was read (``errors.parse_retry_after``), so the back-off applies.

Hand-written rather than ``tenacity``: the two budgets (attempts and waits), the key's pause and the slot wait
need state across tries that tenacity's stop/wait callbacks do not share; this keeps it in one small class.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.inference import ratecontrol
from pipeline.inference.errors import InferenceError, is_throttle

__all__ = ["DEFAULT_RETRY", "INTERACTIVE_RETRY", "NO_RETRY", "CallRetry", "RetryPolicy"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most ``max_attempts`` tries and ``max_total_s`` seconds (a wait that would cross the
    budget is not started). Waits grow exponentially from ``base_backoff_s`` up to ``max_backoff_s`` with equal
    jitter; a server's Retry-After is honoured (waited exactly, capped at ``wait_budget_s``)."""

    max_attempts: int = 5
    max_total_s: float = 120.0
    base_backoff_s: float = 1.0
    max_backoff_s: float = 20.0
    # Throttling (429, "overloaded" 503) is a wait, not a failed attempt: a call may wait this long for the
    # provider in total (None: max_total_s) before it gives up with kind "throttled".
    max_wait_s: float | None = None
    # Whether a throttle is a wait (True) or one more attempt (False); None: a wait while adaptive concurrency is
    # on (pipeline.inference.ratecontrol.set_adaptive), an attempt when it is off (the behaviour before it).
    throttle_wait: bool | None = None

    @property
    def wait_budget_s(self) -> float:
        """The longest a call may wait for the provider in total (``max_wait_s``, else ``max_total_s``)."""
        return self.max_total_s if self.max_wait_s is None else self.max_wait_s

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (1-based): the Retry-After (capped at ``wait_budget_s``), else
        an exponential back-off with equal jitter (never hammer, never sync up)."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.wait_budget_s)
        cap = min(self.max_backoff_s, self.base_backoff_s * (2 ** (attempt - 1)))
        return random.uniform(cap / 2, cap)


DEFAULT_RETRY = RetryPolicy()
# The Playground wants a quick answer: fewer, shorter retries.
INTERACTIVE_RETRY = RetryPolicy(max_attempts=3, max_total_s=30.0, base_backoff_s=0.5, max_backoff_s=5.0)
NO_RETRY = RetryPolicy(max_attempts=1)


def _secs(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"


class CallRetry:
    """One call's tries under ``policy`` against the controller ``limiter`` (see the module docstring).

    The caller counts each request with :meth:`sent`, waits for a slot at most :meth:`slot_timeout` and reports
    it with :meth:`slot_taken`, reports a refusal to the controller with :meth:`report`, and after each failure
    sleeps what :meth:`after` returns."""

    def __init__(
        self,
        policy: RetryPolicy,
        limiter: ratecontrol.RateController,
        label: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.limiter = limiter
        self.label = label
        self._clock = clock
        self.started = clock()
        self.requests = 0
        self.strikes = 0  # failed attempts (not throttles)
        self.throttles = 0
        self.waited = 0.0  # seconds waited for the provider: throttle waits and slot waits

    @property
    def throttle_waits(self) -> bool:
        """Whether a throttle is a wait (not an attempt) for this call."""
        wait = self.policy.throttle_wait
        return ratecontrol.adaptive() if wait is None else wait

    def sent(self) -> int:
        """Count one more request; returns how many this call has sent."""
        self.requests += 1
        return self.requests

    def slot_budget(self) -> float:
        """Seconds this call may still wait for a slot of its key: what is left of its wait budget."""
        return max(0.0, self.policy.wait_budget_s - self.waited)

    def slot_timeout(self) -> float:
        """How long the call may wait for a slot now; raises at once (kind ``throttled``) when the key is paused
        for longer than that (a wait that would pass the budget is not started)."""
        budget = self.slot_budget()
        paused = self.limiter.paused_for()
        if paused > budget:
            raise self.slot_refused(paused)
        return budget

    def slot_taken(self, began: float, admitted: float | None) -> float:
        """Count the wait for a slot that began at ``began`` (``clock`` time); ``admitted``: when the controller
        granted it (``RateController.admit``), returned; raises kind ``throttled`` when it was not granted
        within :meth:`slot_timeout`."""
        self.waited += max(0.0, self._clock() - began)
        if admitted is None:
            raise self.slot_refused(self.limiter.paused_for())
        return admitted

    def report(self, admitted: float, error: InferenceError) -> None:
        """Tell the controller that this call, admitted at ``admitted``, was refused for load (a no-op for other
        errors); the pause a Retry-After asks for is capped at the call's longest wait."""
        if is_throttle(error):
            pause = None if error.retry_after is None else min(error.retry_after, self.policy.wait_budget_s)
            self.limiter.throttled(admitted, pause, certain=error.kind == "overloaded")

    def slot_refused(self, paused_s: float) -> InferenceError:
        """The error (kind ``throttled``) of a call whose wait for a slot would pass its wait budget: the key is
        paused for ``paused_s`` more seconds (0: all slots stayed busy)."""
        why = (
            f"the provider asked every call on this key to wait {_secs(paused_s)} s more (Retry-After)"
            if paused_s > 0
            else "every slot the provider allows now stayed busy"
        )
        return InferenceError(
            f"{self.label}: throttled: {why}. This call waited {_secs(self.waited)} s in total, and waiting on "
            f"would pass the limit of {_secs(self.policy.wait_budget_s)} s ('longest wait for the provider'). "
            "Try again later, or raise that limit.",
            kind="throttled",
            attempts=max(1, self.requests),
        )

    def after(self, error: InferenceError) -> float:
        """Seconds to wait before the next request after ``error``; raises the error to give up with (``error``
        itself when it is final, else one that says how long the call tried)."""
        if not error.retryable:
            raise error  # already final (after earlier retries it still says what to do)
        policy = self.policy
        if is_throttle(error) and self.throttle_waits:
            self.throttles += 1
            delay = max(policy.backoff(self.throttles, error.retry_after), self.limiter.paused_for())
            if self.waited + delay > policy.wait_budget_s:
                raise self._throttled_out(error) from error
            self.waited += delay
        else:
            self.strikes += 1
            delay = policy.backoff(self.strikes, error.retry_after)
            spent = self._clock() - self.started - self.waited
            if self.strikes >= policy.max_attempts or spent + delay > policy.max_total_s:
                raise self._gave_up(error) from error
        log.info("retrying %s after %s (request %d, waiting %.1f s)", self.label, error.kind, self.requests, delay)
        return delay

    def cancelled(self) -> InferenceError:
        """The error of a call its caller cancelled while it waited (kind ``cancelled``)."""
        return InferenceError(f"{self.label}: cancelled.", kind="cancelled", attempts=max(1, self.requests))

    def _gave_up(self, error: InferenceError) -> InferenceError:
        if self.requests <= 1:
            return error
        took = self._clock() - self.started
        return error.with_message(
            f"{error.message} (gave up after {self.requests} attempts in {took:.0f} s)", attempts=self.requests
        )

    def _throttled_out(self, error: InferenceError) -> InferenceError:
        """A call that waited its whole budget for a provider that kept refusing (kind ``throttled``)."""
        return error.with_message(
            f"{error.message} The provider kept refusing for load: this call waited {_secs(self.waited)} s in "
            f"total, and the next wait would pass the limit of {_secs(self.policy.wait_budget_s)} s ('longest "
            "wait for the provider').",
            kind="throttled",
            retryable=False,
            attempts=self.requests,
        )
