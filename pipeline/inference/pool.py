"""The chat clients of one run: one :class:`pipeline.inference.AsyncChat` (one connection pool) per backend and
secret, for a generation run (``pipeline.generate.executor``) and a judge check (``pipeline.judge.check``) alike.

Owns :class:`ChatPool`: it raises each backend's process-wide concurrency limit to the run's own concurrency,
passes the caller's ``gate`` (its slot in ``pipeline.core.scheduler.Scheduler``) through to every request, and
reports the providers' rate controllers (what they allow now, whether they throttle the run) for the progress
line. Use inside the run's event loop and close it with :meth:`ChatPool.aclose`; tokens are passed per call and kept
only inside the clients.
"""

from __future__ import annotations

from typing import Any

from pipeline.inference.chat import AsyncChat
from pipeline.inference.limits import concurrency_limit, limiter_for, set_concurrency_limit
from pipeline.inference.retry import DEFAULT_RETRY

__all__ = ["ChatPool"]


class ChatPool:
    """Pooled chat for a run: ``await pool(backend, messages, params, token, gate=...)``."""

    gated = True  # takes ``gate=``: the run's slot is held only while a request is on the wire

    def __init__(self, concurrency: int, retry: Any = None, timeout: float = 120.0) -> None:
        self._chats: dict[tuple[Any, str | None], Any] = {}
        self._controllers: dict[int, Any] = {}  # the backends' rate controllers (inference.ratecontrol), by id
        self._refused_before: dict[int, int] = {}  # their refusal counts when this run began using them
        self._concurrency = concurrency
        self._retry = retry
        self._timeout = timeout

    async def __call__(
        self, backend: Any, messages: list[dict], params: Any, token: str | None, gate: Any = None
    ) -> Any:
        chat = self._chats.get((backend, token))
        if chat is None:
            if concurrency_limit(backend, token) < self._concurrency:
                set_concurrency_limit(backend, self._concurrency, token)
            controller = limiter_for(backend, token)
            self._refused_before.setdefault(id(controller), controller.state().refused)
            self._controllers[id(controller)] = controller
            chat = self._chats[(backend, token)] = AsyncChat(
                backend, token, retry=self._retry or DEFAULT_RETRY, timeout=self._timeout
            )
        return await chat(messages, params, gate=gate)

    def limits(self) -> tuple[int | None, bool, float, int]:
        """(calls the providers allow now, or None before any call; throttled: a provider's limit holds the run
        below its concurrency (a key still in its slow start is not throttled); seconds of Retry-After left; calls refused for load in this run), over the run's
        backends."""
        states = [(key, c.state()) for key, c in list(self._controllers.items())]
        if not states:
            return None, False, 0.0, 0
        return (
            sum(st.allowed for _, st in states),
            any(st.throttled and st.allowed < min(st.limit, self._concurrency) for _, st in states),
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
