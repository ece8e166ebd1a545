"""One chat reply, with retries: :class:`AsyncChat` (one connection pool for many calls in one event loop),
:func:`achat` (one call) and :func:`chat` (blocking, for scripts and threads without a loop).

Owns the request loop of a non-streaming call: a slot of the backend's rate controller (its wait bounded by the
call's wait budget), the caller's own gate while a request is on the wire, the schema dialect fall-back
(``pipeline.inference.dialects``), and the retries of ``pipeline.inference.retry`` (the same policy object and
wait rules as streaming). Each outcome is reported to the controller with the moment the call was admitted, so a
refusal or a success is judged against the controller's last cut.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import replace

from pipeline.inference.backends import Backend, ChatResult, GenParams, check_messages
from pipeline.inference.clients import async_client, parse_output, request_kwargs
from pipeline.inference.dialects import refused_schema, schema_dialect, schema_refused
from pipeline.inference.errors import InferenceError, to_inference_error
from pipeline.inference.limits import limiter_for
from pipeline.inference.retry import DEFAULT_RETRY, CallRetry, RetryPolicy

__all__ = ["AsyncChat", "achat", "chat"]

# The caller's own slot (``AsyncChat.__call__(gate=...)``), seen by ``_once`` inside the same task.
_GATE: contextvars.ContextVar[Callable[[], AbstractAsyncContextManager] | None] = contextvars.ContextVar(
    "dpo_studio_gate", default=None
)


class AsyncChat:
    """Chat with one backend many times over one connection pool (use in one event loop)::

    async with AsyncChat(backend, token) as chat:
        result = await chat(messages, params)
    """

    def __init__(
        self, backend: Backend, token: str | None, *, retry: RetryPolicy = DEFAULT_RETRY, timeout: float = 120.0
    ) -> None:
        self.backend = backend
        self.retry = retry
        self.timeout = timeout
        self._signed_in = bool(token)
        self._client = async_client(backend, token, timeout)
        self._limiter = limiter_for(backend, token)

    async def __aenter__(self) -> AsyncChat:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.close()

    async def _once(self, messages: list[dict], params: GenParams, retry: CallRetry) -> ChatResult:
        gate = _GATE.get()
        began = time.monotonic()
        # admitted: when the slot was granted; a cut after this moment is news to this call, one before it is not
        admitted = retry.slot_taken(began, await self._limiter.admit_async(timeout=retry.slot_timeout()))
        try:
            async with gate() if gate is not None else nullcontext():
                started = time.perf_counter()
                try:
                    output = await self._client.chat_completion(
                        messages=messages, **request_kwargs(self.backend, params)
                    )
                    text, finish, prompt_tokens, completion_tokens = parse_output(output)
                except Exception as exc:
                    error = to_inference_error(exc, self.backend, signed_in=self._signed_in, timeout=self.timeout)
                    retry.report(admitted, error)
                    raise error from exc
                self._limiter.succeeded(admitted)
                return ChatResult(text, finish, prompt_tokens, completion_tokens, time.perf_counter() - started)
        finally:
            self._limiter.release()

    async def _once_in_dialect(self, messages: list[dict], params: GenParams, retry: CallRetry) -> ChatResult:
        """``_once``; with a ``response_format``, a 400/422 moves the backend to its next schema dialect and asks
        again, and raises ``schema_refused`` when none is left."""
        while True:
            dialect = schema_dialect(self.backend) if params.response_format is not None else ""
            if dialect and (refused := refused_schema(self.backend)) is not None:
                raise refused  # refused before in this process: no request
            try:
                return await self._once(messages, params, retry)
            except InferenceError as error:
                if not dialect:
                    raise
                refusal = schema_refused(error, self.backend, dialect)
                if refusal is error:
                    raise
                if refusal is not None:
                    raise refusal from error

    async def __call__(
        self,
        messages: list[dict],
        params: GenParams = GenParams(),
        *,
        gate: Callable[[], AbstractAsyncContextManager] | None = None,
    ) -> ChatResult:
        """One reply, retried (see ``pipeline.inference.retry``). ``gate``: the caller's own slot (e.g. a run's
        concurrency limit), entered for each request while it is on the wire and left while the call waits.

        A throttle (429 / "overloaded" 503) is a wait, not a failed attempt: the call waits for the provider's
        Retry-After (or a backoff) holding no slot, up to ``retry.wait_budget_s`` in total (slot waits included),
        then gives up with kind ``throttled``. Other retryable failures count as attempts (``max_attempts``,
        ``max_total_s``). Cancelling the task ends any wait at once."""
        check_messages(messages)
        retry = CallRetry(self.retry, self._limiter, self.backend.label)
        reset = _GATE.set(gate)
        try:
            while True:
                retry.sent()
                try:
                    result = await self._once_in_dialect(messages, params, retry)
                    return replace(result, attempts=retry.requests)
                except InferenceError as error:
                    delay = retry.after(error)
                await asyncio.sleep(delay)
        finally:
            _GATE.reset(reset)


async def achat(
    backend: Backend,
    messages: list[dict],
    params: GenParams,
    token: str | None,
    *,
    retry: RetryPolicy = DEFAULT_RETRY,
    timeout: float = 120.0,
) -> ChatResult:
    """One chat completion from ``backend`` (with retries, within the backend's concurrency limit).

    Raises ``InferenceError``. ``token``: the signed-in user's HF token (serverless/endpoint) or the server's API key
    (openai); ``None`` is fine for servers without auth. Each call opens its own HTTP client (about 70 ms of TLS
    set-up on this machine): for many calls use one ``AsyncChat`` (~1.5 ms a call on loopback)."""
    async with AsyncChat(backend, token, retry=retry, timeout=timeout) as chat:
        return await chat(messages, params)


def chat(
    backend: Backend,
    messages: list[dict],
    params: GenParams,
    token: str | None,
    *,
    retry: RetryPolicy = DEFAULT_RETRY,
    timeout: float = 120.0,
) -> ChatResult:
    """Blocking ``achat`` for scripts and threads without an event loop."""
    return asyncio.run(achat(backend, messages, params, token, retry=retry, timeout=timeout))
