"""Streaming chat (blocking, for Gradio generator handlers and threads): :func:`stream_chat` yields text deltas,
then one final event with the time to first token and the decode speed.

Owns reading a stream: failures before the first text are retried under the same policy object and wait rules
as non-streaming calls (``pipeline.inference.retry.CallRetry``: throttles are waits within the wait budget,
other failures attempts); after the first text a stream cannot be replayed, so a dropped, malformed or truncated
stream raises with what arrived already yielded. The backend's controller slot is held while streaming and given
back when the generator ends or is closed; every wait (a slot, a back-off) ends early when ``cancel`` is set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from huggingface_hub import InferenceClient

from pipeline.inference.backends import Backend, GenParams, StreamEvent, check_messages
from pipeline.inference.clients import request_kwargs, sync_client
from pipeline.inference.errors import InferenceError, to_inference_error
from pipeline.inference.limits import limiter_for
from pipeline.inference.retry import INTERACTIVE_RETRY, CallRetry, RetryPolicy

__all__ = ["stream_chat"]


@dataclass
class _OpenStream:
    client: InferenceClient  # keep it referenced while streaming, or the stream closes
    chunks: Iterator[Any]
    first: list[str] = field(default_factory=list)
    first_at: float | None = None
    finish_reason: str | None = None
    completion_tokens: int | None = None
    ended: bool = False  # the stream ended (with a finish reason) before any text


def _delta_of(chunk: Any) -> tuple[str, str | None, int | None]:
    """(text, finish_reason, completion_tokens from usage) of one stream chunk."""
    usage = getattr(chunk, "usage", None)
    completion_tokens = getattr(usage, "completion_tokens", None) if usage is not None else None
    choices = chunk.choices
    if not choices:  # usage-only chunk
        return "", None, completion_tokens
    choice = choices[0]
    delta = choice.delta
    text = getattr(delta, "content", None) if delta is not None else None
    if text is not None and not isinstance(text, str):
        raise TypeError("delta content is not text")
    return text or "", choice.finish_reason, completion_tokens


def _open(
    backend: Backend,
    messages: list[dict],
    params: GenParams,
    token: str | None,
    timeout: float,
    calls: CallRetry,
    cancel: threading.Event | None,
) -> _OpenStream:
    """One request, read up to its first text (so that early failures can be retried); holds a controller slot
    when it returns, none when it raises."""
    limiter = calls.limiter
    began = time.monotonic()
    granted_at = limiter.admit(timeout=calls.slot_timeout(), cancel=cancel)
    if granted_at is None and cancel is not None and cancel.is_set():
        raise calls.cancelled()
    # admitted: when the slot was granted; a cut after this moment is news to this call, one before it is not
    admitted = calls.slot_taken(began, granted_at)
    client = None
    try:
        client = sync_client(backend, token, timeout)
        request = request_kwargs(backend, params)
        stream = _OpenStream(client, iter(client.chat_completion(messages=messages, stream=True, **request)))
        for chunk in stream.chunks:  # read up to the first text, so early failures can be retried
            text, finish, completion_tokens = _delta_of(chunk)
            stream.completion_tokens = completion_tokens or stream.completion_tokens
            if finish:
                stream.finish_reason = finish
            if text:
                stream.first.append(text)
                stream.first_at = time.perf_counter()
                break
            if finish:
                stream.ended = True
                break
        else:  # the body ended before any text and without a finish reason
            raise InferenceError(
                f"{backend.label}: the reply ended before any text, without a finish signal. The server "
                "failed to generate; with llama.cpp this usually means the prompt is longer than the model's "
                "context: shorten the prompt or lower 'max new tokens'.",
                kind="bad_response",
                retryable=True,
            )
        limiter.succeeded(admitted)
        return stream
    except BaseException as exc:
        if client is not None:
            client.close()  # closes a failed response still held by the client
        limiter.release()
        if isinstance(exc, Exception):
            error = to_inference_error(exc, backend, signed_in=bool(token), timeout=timeout)
            calls.report(admitted, error)
            raise error from exc
        raise


def stream_chat(
    backend: Backend,
    messages: list[dict],
    params: GenParams,
    token: str | None,
    *,
    retry: RetryPolicy = INTERACTIVE_RETRY,
    timeout: float = 60.0,
    cancel: threading.Event | None = None,
) -> Generator[StreamEvent, None, None]:
    """Stream a chat completion: ``StreamEvent(kind="delta")`` per text piece, then one ``kind="done"``.

    Failures before the first token are retried like ``achat`` (the same ``RetryPolicy`` rules); after that the
    stream cannot be replayed, so a dropped, malformed or truncated stream raises ``InferenceError`` (the text so
    far was already yielded). The backend's concurrency slot is held while streaming and given back when the
    generator ends or is closed. ``cancel``: set it to end any wait before the first token at once (kind
    ``cancelled``)."""
    check_messages(messages)
    calls = CallRetry(retry, limiter_for(backend, token), backend.label)
    started = time.perf_counter()
    while True:
        calls.sent()
        try:
            stream = _open(backend, messages, params, token, timeout, calls, cancel)
            break
        except InferenceError as error:
            delay = calls.after(error)
        if cancel is None:
            time.sleep(delay)
        elif cancel.wait(delay):
            raise calls.cancelled()

    # From here on we own one concurrency slot.
    limiter = calls.limiter
    try:
        text = "".join(stream.first)
        pieces = 1 if text else 0
        finish = stream.finish_reason
        completion_tokens = stream.completion_tokens
        if text and stream.first_at is not None:  # first_at is set with the first text
            yield StreamEvent("delta", delta=text, text=text, elapsed_s=stream.first_at - started)
        if not stream.ended:
            try:
                for chunk in stream.chunks:
                    delta, chunk_finish, usage_tokens = _delta_of(chunk)
                    completion_tokens = usage_tokens or completion_tokens
                    if chunk_finish:
                        finish = chunk_finish
                    if delta:
                        text += delta
                        pieces += 1
                        yield StreamEvent("delta", delta=delta, text=text, elapsed_s=time.perf_counter() - started)
            except Exception as exc:
                broke = to_inference_error(exc, backend, signed_in=bool(token), timeout=timeout)
                raise broke.with_message(
                    f"{broke.message} (The reply broke off after {pieces} chunk(s) of text; what arrived is shown.)",
                    retryable=False,
                ) from exc
        if finish is None and not stream.ended:
            raise InferenceError(
                f"{backend.label}: the reply stream ended without finishing (truncated after {pieces} chunk(s) of "
                "text; what arrived is shown). The server or a proxy cut it off: try again.",
                kind="bad_response",
            )
        elapsed = time.perf_counter() - started
        tokens = completion_tokens or pieces
        ttft = (stream.first_at - started) if stream.first_at is not None else None
        decode_time = elapsed - ttft if ttft is not None else 0.0
        tps = (tokens - 1) / decode_time if ttft is not None and tokens > 1 and decode_time > 0 else None
        yield StreamEvent(
            "done",
            text=text,
            ttft_s=ttft,
            tokens_per_s=tps,
            completion_tokens=tokens,
            finish_reason=finish,
            elapsed_s=elapsed,
        )
    finally:
        try:
            stream.client.close()
        finally:
            limiter.release()
