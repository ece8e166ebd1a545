"""Inference errors: :class:`InferenceError`, and the translation of whatever a client raised (an HTTP status with
the server's message, a time-out, a dropped connection, a malformed reply) into one, with a message for people
that names the model and the backend and says what to do.

Owns the error kinds (``auth, forbidden, not_found, bad_request, too_long, rate_limited, overloaded,
unavailable, server, timeout, connection, bad_response, out_of_credit, schema_refused, throttled, cancelled``),
which of them are retryable, and the reading of ``Retry-After`` (:func:`parse_retry_after`: seconds or an HTTP
date; anything not finite, negative or unreadable is no value, so the caller's back-off applies). The per-kind
advice comes from the kind table (``pipeline.inference.kinds``). A token never reaches a message: the server's
text is quoted, the request's headers never are.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx2
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, TextGenerationError

from pipeline.core import netguard
from pipeline.inference.kinds import KINDS, display_url

__all__ = [
    "InferenceError",
    "Target",
    "http_error",
    "is_throttle",
    "out_of_credit_error",
    "parse_retry_after",
    "to_inference_error",
]


class Target(Protocol):
    """What error translation needs of the backend that was called (a ``pipeline.inference.Backend``)."""

    @property
    def kind(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    @property
    def label(self) -> str: ...


class InferenceError(Exception):
    """A failed inference call, with a message for people.

    ``kind`` is one of the kinds in the module docstring (``schema_refused``: a ``response_format`` refused in
    every dialect; ``throttled``: the call waited its whole budget for a provider that kept refusing for load);
    ``status`` the HTTP status if any; ``retryable`` whether trying again later may help; ``retry_after`` the
    server's Retry-After in seconds, if it sent a usable one."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message

    def with_message(self, message: str, **changes: Any) -> InferenceError:
        fields: dict[str, Any] = dict(
            kind=self.kind,
            status=self.status,
            retryable=self.retryable,
            retry_after=self.retry_after,
            attempts=self.attempts,
        )
        fields.update(changes)
        return InferenceError(message, **fields)


_TOO_LONG_HINTS = (
    "context length",
    "context window",
    "maximum context",
    "too long",
    "exceed",
    "max_new_tokens",
    "input validation error: `inputs` tokens",
    "reduce the length",
)
# A provider's "you are out of credit" (HF: 402 "exceeded your monthly included credits"; OpenAI-style: 429
# "insufficient_quota" / "exceeded your current quota"): waiting does not help, paying or switching does.
_CREDIT_HINTS = (
    "credits",
    "credit balance",
    "insufficient_quota",
    "exceeded your current quota",
    "quota exceeded",
    "out of credit",
    "payment required",
    "billing",
)
_OVERLOAD_HINTS = ("overload", "too many requests", "capacity")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: a number of seconds, or an HTTP date (seconds until then,
    0 if it has passed). ``None`` for a missing, unreadable, negative or not finite value (``inf``, ``nan``):
    then the caller's own back-off applies. A huge but finite value is returned as sent; callers cap it at their
    longest wait (``RetryPolicy.wait_budget_s``, ``ratecontrol.MAX_PAUSE_S``).

    >>> parse_retry_after("1.5"), parse_retry_after("inf"), parse_retry_after("-3"), parse_retry_after("soon")
    (1.5, None, None, None)
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0)
    60.0
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = max(0.0, when - (time.time() if now is None else now))
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _server_text(response: Any) -> str:
    """The server's own error message, short (never includes request headers)."""
    try:
        text = response.text or ""
    except Exception:  # noqa: BLE001 - streaming responses may not be readable any more
        return ""
    try:
        obj = json.loads(text)
        if isinstance(obj, dict):
            err = obj.get("error", obj.get("message", obj.get("detail", text)))
            if isinstance(err, dict):
                err = err.get("message", err)
            text = str(err)
    except ValueError:
        pass
    text = " ".join(text.split())
    return text[:300] + ("…" if len(text) > 300 else "")


def _retry_after(response: Any) -> float | None:
    try:
        return parse_retry_after(response.headers.get("retry-after"))
    except Exception:  # noqa: BLE001 - a response without readable headers
        return None


def out_of_credit_error(backend: Target, status: str = "402", said: str = "") -> InferenceError:
    """The ``InferenceError`` (kind ``out_of_credit``) for an account without credit or quota left."""
    todo = KINDS[backend.kind].out_of_credit
    return InferenceError(
        f"{backend.label}: out of credits or quota ({status}). {todo}{said}",
        kind="out_of_credit",
        status=int(status) if status.isdigit() else None,
    )


def is_throttle(error: BaseException) -> bool:
    """A refusal for load that waiting fixes: a 429 (not out of credit) or an "overloaded" 503."""
    return isinstance(error, InferenceError) and error.kind in ("rate_limited", "overloaded")


def http_error(
    status: int, backend: Target, server_text: str = "", retry_after: float | None = None, *, signed_in: bool = True
) -> InferenceError:
    """The ``InferenceError`` for an HTTP error ``status`` from ``backend`` (public for tests and other callers)."""
    who = backend.label
    spec = KINDS[backend.kind]
    said = f" The server said: {server_text}" if server_text else ""
    model = backend.model or "the model"
    low = server_text.lower()
    if status == 401:
        todo = spec.unauthorized if signed_in else spec.signed_out
        return InferenceError(f"{who}: not authorized (401). {todo}{said}", kind="auth", status=401)
    if status == 403:
        todo = spec.forbidden.format(model=model)
        return InferenceError(f"{who}: access denied (403). {todo}{said}", kind="forbidden", status=403)
    if status in (404, 405):
        todo = spec.not_found.format(model=model)
        return InferenceError(f"{who}: not found ({status}). {todo}{said}", kind="not_found", status=status)
    if status in (400, 413, 422):
        if status == 413 or any(hint in low for hint in _TOO_LONG_HINTS):
            return InferenceError(
                f"{who}: the prompt is too long for {model} with this many new tokens ({status}). Lower "
                f"'max new tokens' or shorten the prompt.{said}",
                kind="too_long",
                status=status,
            )
        return InferenceError(
            f"{who}: the server rejected the request ({status}). Check the generation settings (max new tokens, "
            f"temperature, top-p) and the model id.{said}",
            kind="bad_request",
            status=status,
        )
    if status == 402 or (status in (403, 429) and any(hint in low for hint in _CREDIT_HINTS)):
        return out_of_credit_error(backend, f"{status}", said)
    if status == 429:
        wait = f" It asked to wait {retry_after:g} s." if retry_after is not None else ""
        return InferenceError(
            f"{who}: rate limited (429).{wait} Wait a bit, lower the concurrency, or check your Inference "
            f"Providers quota.{said}",
            kind="rate_limited",
            status=429,
            retryable=True,
            retry_after=retry_after,
        )
    if status == 503 and any(hint in low for hint in _OVERLOAD_HINTS):
        return InferenceError(
            f"{who}: the provider is overloaded (503). The run slows down and tries again.{said}",
            kind="overloaded",
            status=503,
            retryable=True,
            retry_after=retry_after,
        )
    if status == 503:
        return InferenceError(
            f"{who}: the model is loading or the service is unavailable (503). Try again in a minute.{said}",
            kind="unavailable",
            status=503,
            retryable=True,
            retry_after=retry_after,
        )
    if status >= 500:
        return InferenceError(
            f"{who}: server error ({status}). Try again later or pick another model/provider.{said}",
            kind="server",
            status=status,
            retryable=True,
            retry_after=retry_after,
        )
    return InferenceError(f"{who}: the request failed ({status}).{said}", kind="bad_request", status=status)


def to_inference_error(
    exc: BaseException, backend: Target, *, signed_in: bool = True, timeout: float | None = None
) -> InferenceError:
    """Map any exception raised while calling ``backend`` to an ``InferenceError``."""
    if isinstance(exc, InferenceError):
        return exc
    who = backend.label
    if isinstance(exc, netguard.AddressRefused):  # refused as the request was sent (pipeline.core.netguard)
        return InferenceError(f"{who}: {exc.message}", kind="bad_request")
    if isinstance(exc, HfHubHTTPError) and getattr(exc, "response", None) is not None:
        response = exc.response
        return http_error(
            response.status_code, backend, _server_text(response), _retry_after(response), signed_in=signed_in
        )
    if isinstance(exc, (InferenceTimeoutError, httpx2.TimeoutException, TimeoutError, asyncio.TimeoutError)):
        limit = f" after {timeout:g} s" if timeout else ""
        return InferenceError(
            f"{who}: no answer{limit} (time-out). The server may be overloaded or the model loading; try again, or "
            "lower 'max new tokens'.",
            kind="timeout",
            retryable=True,
        )
    if isinstance(exc, httpx2.ConnectError):
        where = display_url(backend.base_url) or "the Hugging Face router"
        return InferenceError(
            f"{who}: cannot connect to {where}. Check the URL and that the server is running.",
            kind="connection",
            retryable=True,
        )
    if isinstance(exc, (httpx2.TransportError, ConnectionError)):
        return InferenceError(
            f"{who}: the connection dropped before the reply was complete ({type(exc).__name__}). Try again.",
            kind="connection",
            retryable=True,
        )
    if isinstance(exc, TextGenerationError):  # an error event inside a stream
        text = " ".join(str(exc).split())[:300]
        kind = "too_long" if any(h in text.lower() for h in _TOO_LONG_HINTS) else "server"
        return InferenceError(
            f"{who}: the model reported an error while generating: {text}", kind=kind, retryable=kind == "server"
        )
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, AttributeError, TypeError)):
        return InferenceError(
            f"{who}: the server's reply was not a valid chat completion ({type(exc).__name__}). Check that the URL "
            "points at an OpenAI-compatible chat server.",
            kind="bad_response",
            retryable=True,
        )
    if isinstance(exc, ValueError):  # raised by huggingface_hub before sending (unknown provider, model mapping...)
        text = str(exc)
        kind = "not_found" if "not supported" in text or "not found" in text.lower() else "bad_request"
        return InferenceError(f"{who}: {text}", kind=kind)
    return InferenceError(f"{who}: unexpected error ({type(exc).__name__}: {exc}).", kind="server", retryable=False)
