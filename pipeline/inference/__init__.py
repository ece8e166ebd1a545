"""The one module that talks to LLM inference (everything else calls these functions).

Three backends behind one interface, all through ``huggingface_hub``'s ``(Async)InferenceClient.chat_completion``:

- ``serverless``: Hugging Face Inference Providers through the HF router, with the signed-in user's token
  (``provider="auto"`` lets the router choose; or a named provider such as ``"together"``).
- ``endpoint``: a dedicated Inference Endpoint (or any TGI) URL, with the user's token.
- ``openai``: any OpenAI-compatible base URL (vLLM, TGI, Ollama, llama.cpp, ...) with an optional API key.

Calls:

- ``await achat(backend, messages, params, token)`` -> ``ChatResult`` (one reply; retries; concurrency-limited).
  ``AsyncChat`` does the same but keeps one HTTP connection pool open for many calls (the pipeline uses it).
- ``stream_chat(backend, messages, params, token)`` -> iterator of ``StreamEvent`` (sync; for Gradio
  generator handlers): text deltas, then one final event with time to first token and tokens per second.

Every failure is an ``InferenceError`` with a human message naming the model, the backend and what to do.
Transient failures (429 honouring Retry-After, 503 model loading, other 5xx, time-outs, dropped connections,
malformed replies) are retried with exponential backoff and jitter, bounded in attempts and in time;
400/401/403/404/422 surface at once; a 402 or "out of credits / quota" is kind ``out_of_credit``. A process-wide
controller per backend key (``pipeline.inference.ratecontrol``; per user for serverless) caps concurrent requests for every
caller (asyncio tasks on any event loop and threads alike; see ``set_concurrency_limit``) and adapts the cap to
throttling: a 429 or an "overloaded" 503 is a wait (up to ``RetryPolicy.max_wait_s``), not a failed attempt.

Tokens are passed per call and never logged, stored or put into messages. When no key is given for an
``openai``/``endpoint`` backend, no ``Authorization`` header is sent (the machine's own HF token is never sent
to a third-party URL), and ``serverless`` refuses to run without the user's token.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any, Literal, cast
from urllib.parse import urlparse

import httpx2
from huggingface_hub import AsyncInferenceClient, InferenceClient
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, TextGenerationError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

from pipeline.core import netguard
from pipeline.inference import ratecontrol

log = logging.getLogger(__name__)
# When the app serves the public, every request huggingface_hub's clients send is checked against private addresses
# and connects to the checked address (pipeline.core.netguard); Backend.validate checks a typed URL before any work.
# Locally both allow everything.
netguard.install_hf_guard()

BackendKind = Literal["serverless", "endpoint", "openai"]
BACKEND_KINDS: tuple[str, ...] = ("serverless", "endpoint", "openai")
BACKEND_LABELS: dict[str, str] = {
    "serverless": "HF Inference Providers (serverless)",
    "endpoint": "HF Inference Endpoint (dedicated URL)",
    "openai": "OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp)",
}
# Providers the HF router knows (``auto`` = let the router pick, by your preference order on hf.co/settings).
PROVIDERS: tuple[str, ...] = (
    "auto",
    "cerebras",
    "cohere",
    "featherless-ai",
    "fireworks-ai",
    "groq",
    "hf-inference",
    "hyperbolic",
    "nebius",
    "novita",
    "nscale",
    "ovhcloud",
    "publicai",
    "sambanova",
    "scaleway",
    "together",
)
# Popular instruction models that serve many languages on Inference Providers (suggestions, not a whitelist).
SUGGESTED_MODELS: tuple[str, ...] = (
    "meta-llama/Llama-3.3-70B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "Qwen/Qwen3-32B",
    "google/gemma-3-27b-it",
    "CohereLabs/aya-expanse-32b",
    "CohereLabs/aya-expanse-8b",
    "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
    "deepseek-ai/DeepSeek-V3-0324",
    "openai/gpt-oss-120b",
    "HuggingFaceTB/SmolLM3-3B",
)

_NO_KEY = "no-key"  # placeholder so huggingface_hub does not fall back to the machine's token; header is dropped


# ---------------------------------------------------------------------------------------------------------------
# Public data types
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backend:
    """Where a model runs. ``base_url`` is for ``endpoint``/``openai``; ``provider`` for ``serverless``."""

    kind: BackendKind
    model: str
    base_url: str = ""
    provider: str = "auto"

    @property
    def label(self) -> str:
        """Short human description, e.g. ``Qwen/Qwen2.5-72B-Instruct via HF Inference Providers (auto)``."""
        if self.kind == "serverless":
            return f"{self.model} via HF Inference Providers ({self.provider or 'auto'})"
        if self.kind == "endpoint":
            return f"{self.model or 'the endpoint model'} on Inference Endpoint {display_url(self.base_url)}"
        return f"{self.model} on {display_url(self.base_url)}"

    @property
    def key(self) -> tuple[str, ...]:
        """Identity used for the concurrency limit: one server (or one serverless model/provider)."""
        if self.kind == "serverless":
            return ("serverless", self.provider or "auto", self.model)
        return (self.kind, _norm_url(self.base_url))

    def validate(self) -> None:
        """Raise ``InferenceError`` (kind ``bad_request``) if the backend is not usable as given."""
        if self.kind not in BACKEND_KINDS:
            raise InferenceError(
                f"Unknown backend {self.kind!r}: pick one of {', '.join(BACKEND_KINDS)}.", kind="bad_request"
            )
        if self.kind in ("serverless", "openai") and not self.model.strip():
            raise InferenceError(
                "No model given: type a model id (e.g. Qwen/Qwen2.5-72B-Instruct).", kind="bad_request"
            )
        if self.kind == "serverless" and self.provider and self.provider not in PROVIDERS:
            raise InferenceError(
                f"Unknown inference provider {self.provider!r}: pick one of {', '.join(PROVIDERS)}.",
                kind="bad_request",
            )
        if self.kind in ("endpoint", "openai"):
            parsed = urlparse(self.base_url.strip())
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise InferenceError(
                    f"{BACKEND_LABELS[self.kind]}: {self.base_url!r} is not a URL. Give the server's base URL, "
                    "e.g. http://localhost:8000/v1 or https://xyz.endpoints.huggingface.cloud.",
                    kind="bad_request",
                )
            try:
                netguard.check_url(self.base_url, what=f"{BACKEND_LABELS[self.kind]} {display_url(self.base_url)}")
            except netguard.AddressRefused as exc:
                raise InferenceError(exc.message, kind="bad_request") from None


@dataclass(frozen=True)
class GenParams:
    max_new_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int | None = None
    response_format: ResponseFormat | None = None  # ask for JSON that fits a schema (structured output)


@dataclass(frozen=True)
class ResponseFormat:
    """A request for JSON that fits a JSON schema, independent of the backend: each backend gets it in its own
    dialect (see ``SCHEMA_DIALECTS``). The schema is kept as JSON text so that ``GenParams`` stays hashable, in
    the caller's key order (grammar engines such as llama.cpp emit properties in that order)."""

    name: str
    schema_json: str

    @classmethod
    def of(cls, name: str, schema: dict) -> ResponseFormat:
        return cls(name, json.dumps(schema, ensure_ascii=False))

    @property
    def schema(self) -> dict:
        return json.loads(self.schema_json)


@dataclass(frozen=True)
class ChatResult:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    elapsed_s: float
    attempts: int = 1


@dataclass(frozen=True)
class StreamEvent:
    """``kind="delta"``: ``delta`` is new text, ``text`` all text so far. ``kind="done"``: the final event, with
    ``ttft_s`` (time to first token, from the call), ``tokens_per_s`` (decode speed after the first token),
    ``completion_tokens`` and ``finish_reason`` (``"length"`` = cut by max new tokens)."""

    kind: Literal["delta", "done"]
    delta: str = ""
    text: str = ""
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    elapsed_s: float = 0.0


class InferenceError(Exception):
    """A failed inference call, with a message for people.

    ``kind`` is one of ``auth, forbidden, not_found, bad_request, too_long, rate_limited, unavailable, server,
    timeout, connection, bad_response, schema_refused`` (a ``response_format`` refused in every dialect);
    ``status`` the HTTP status if any; ``retryable`` whether trying again
    later may help; ``retry_after`` the server's Retry-After in seconds, if it sent one."""

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


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most ``max_attempts`` tries and ``max_total_s`` seconds (a wait that would cross the
    budget is not started). Waits grow exponentially from ``base_backoff_s`` up to ``max_backoff_s`` with full
    jitter; a 429's Retry-After is honoured (waited exactly, if it fits the budget)."""

    max_attempts: int = 5
    max_total_s: float = 120.0
    base_backoff_s: float = 1.0
    max_backoff_s: float = 20.0
    # Throttling (429, "overloaded" 503) is a wait, not a failed attempt: a call may wait this long for the
    # provider in total (None: max_total_s) before it gives up with kind "throttled". Off when adaptive
    # concurrency is off (pipeline.inference.ratecontrol.set_adaptive): then a 429 is one more attempt, as before.
    max_wait_s: float | None = None

    @property
    def wait_budget_s(self) -> float:
        return self.max_total_s if self.max_wait_s is None else self.max_wait_s

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (1-based)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        cap = min(self.max_backoff_s, self.base_backoff_s * (2 ** (attempt - 1)))
        return random.uniform(cap / 2, cap)  # "equal jitter": never hammer, never sync up


DEFAULT_RETRY = RetryPolicy()
# The Playground wants a quick answer: fewer, shorter retries.
INTERACTIVE_RETRY = RetryPolicy(max_attempts=3, max_total_s=30.0, base_backoff_s=0.5, max_backoff_s=5.0)
NO_RETRY = RetryPolicy(max_attempts=1)


# ---------------------------------------------------------------------------------------------------------------
# Concurrency limit per backend, shared by every thread and event loop in the process
# ---------------------------------------------------------------------------------------------------------------
# The controller (AIMD, pause on Retry-After, FIFO slots for threads and event loops) lives in pipeline.inference.ratecontrol.
ConcurrencyLimiter = ratecontrol.RateController
ControllerState = ratecontrol.ControllerState


def _default_limit(kind: str) -> int:
    env = os.environ.get("DPO_STUDIO_MAX_CONCURRENCY", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    # Serverless calls spend each user's own quota (the router answers 429 per token, and we retry), so the
    # process-wide cap is only a safety net and each run's own concurrency governs; a shared endpoint or
    # OpenAI-compatible server is one machine for everyone, so it gets a tighter cap.
    return 64 if kind == "serverless" else 32


_LIMITERS: dict[tuple[str, ...], ConcurrencyLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def controller_key(backend: Backend, token: str | None = None) -> tuple[str, ...]:
    """Whose limits a call spends. Serverless: the user's account on that model and provider (a sha256 of the
    token, never the token), so one user's 429s never slow another's run. An OpenAI-compatible URL called with an
    API key: that key's account on that server (hosted APIs limit each key; users sharing one key share one
    controller). A shared server (an endpoint, a keyless OpenAI-compatible URL): one controller per URL."""
    if backend.kind == "serverless" or (backend.kind == "openai" and token):
        return (*backend.key, ratecontrol.credential_key(token))
    return backend.key


def limiter_for(backend: Backend, token: str | None = None) -> ConcurrencyLimiter:
    """The process-wide controller of ``backend`` for ``token`` (made with the default limit on first use)."""
    key = controller_key(backend, token)
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = ConcurrencyLimiter(_default_limit(backend.kind))
        return limiter


def set_concurrency_limit(backend: Backend, limit: int, token: str | None = None) -> None:
    """At most ``limit`` requests in flight to ``backend`` (for ``token`` on serverless) at once, across the whole
    process: the ceiling the adaptive controller starts at and grows back to.

    Defaults: 64 per serverless model and user, 32 per endpoint/OpenAI-compatible server
    (``DPO_STUDIO_MAX_CONCURRENCY`` overrides both). The pipeline sets its own concurrency here before a run."""
    limiter_for(backend, token).set_limit(limit)


def concurrency_limit(backend: Backend, token: str | None = None) -> int:
    return limiter_for(backend, token).limit


def controller_state(backend: Backend, token: str | None = None) -> ControllerState:
    """What the controller of ``backend`` (for ``token``) allows now, has in flight and waits for."""
    return limiter_for(backend, token).state()


# ---------------------------------------------------------------------------------------------------------------
# Errors: from whatever the client raised to one InferenceError with a message that says what to do
# ---------------------------------------------------------------------------------------------------------------
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


def display_url(url: str) -> str:
    """``url`` without user info, query or fragment (where credentials could hide), for messages and labels."""
    parts = urlparse((url or "").strip())
    if not parts.scheme or not parts.hostname:
        return (url or "").strip()
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname + (f":{port}" if port else "")
    return f"{parts.scheme}://{host}{parts.path}".rstrip("/")


def _norm_url(url: str) -> str:
    return url.strip().rstrip("/")


def _is_loopback(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


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
    value = None
    try:
        value = response.headers.get("retry-after")
    except Exception:  # noqa: BLE001
        return None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _where(backend: Backend) -> str:
    return backend.label


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


def out_of_credit_error(backend: Backend, status: str = "402", said: str = "") -> InferenceError:
    """The ``InferenceError`` (kind ``out_of_credit``) for an account without credit or quota left."""
    if backend.kind == "serverless":
        todo = (
            "Add credits (hf.co/settings/billing) or subscribe to PRO, bill an organisation you belong to "
            "(hf.co/settings/inference-providers), or pick another provider or model; then resume the run."
        )
    else:
        todo = "Add credits or raise the quota of this account or key, or pick another server; then resume the run."
    return InferenceError(
        f"{_where(backend)}: out of credits or quota ({status}). {todo}{said}",
        kind="out_of_credit",
        status=int(status) if status.isdigit() else None,
    )


def is_throttle(error: BaseException) -> bool:
    """A refusal for load that waiting fixes: a 429 (not out of credit) or an "overloaded" 503."""
    return isinstance(error, InferenceError) and error.kind in ("rate_limited", "overloaded")


def http_error(
    status: int, backend: Backend, server_text: str = "", retry_after: float | None = None, *, signed_in: bool = True
) -> InferenceError:
    """The ``InferenceError`` for an HTTP error ``status`` from ``backend`` (public for tests and other callers)."""
    who = _where(backend)
    said = f" The server said: {server_text}" if server_text else ""
    model = backend.model or "the model"
    low = server_text.lower()
    if status == 401:
        if backend.kind == "serverless":
            todo = (
                "Sign in with Hugging Face (button at the top)."
                if not signed_in
                else "Your sign-in may have expired: sign out and in again."
            )
        elif backend.kind == "endpoint":
            todo = "Sign in with a Hugging Face account that can use this endpoint."
        else:
            todo = "Check the API key for this server (leave it empty if the server needs none)."
        return InferenceError(f"{who}: not authorized (401). {todo}{said}", kind="auth", status=401)
    if status == 403:
        todo = (
            f"If {model} is gated, request access on https://huggingface.co/{model} and try again; check that "
            "your account may use Inference Providers (and has credits)."
            if backend.kind == "serverless"
            else "Check that your account or key may use this server and model."
        )
        return InferenceError(f"{who}: access denied (403). {todo}{said}", kind="forbidden", status=403)
    if status in (404, 405):
        if backend.kind == "serverless":
            todo = (
                f"Check the model id (exact 'owner/name', e.g. Qwen/Qwen2.5-72B-Instruct) and that a provider "
                f"serves {model} for chat (see its model page, 'Inference Providers'); or try provider 'auto'."
            )
        elif backend.kind == "endpoint":
            todo = "Check the endpoint URL and that the endpoint is running a chat (TGI/vLLM) model."
        else:
            todo = (
                f"Check the model name ({model!r}; the server's /v1/models lists them) and the base URL: it must "
                "point at an OpenAI-compatible server, usually ending in /v1."
            )
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
    exc: BaseException, backend: Backend, *, signed_in: bool = True, timeout: float | None = None
) -> InferenceError:
    """Map any exception raised while calling ``backend`` to an ``InferenceError``."""
    if isinstance(exc, InferenceError):
        return exc
    who = _where(backend)
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


# ---------------------------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------------------------
def _client_kwargs(backend: Backend, token: str | None, timeout: float) -> dict[str, Any]:
    """Arguments for ``(Async)InferenceClient``. Never sends a machine token to a URL the user typed."""
    backend.validate()
    if backend.kind == "serverless":
        if not token:
            raise InferenceError(
                f"{_where(backend)}: sign in with Hugging Face (button at the top) to use serverless inference: it "
                "runs on your account. Or use a local OpenAI-compatible server.",
                kind="auth",
            )
        return {"provider": backend.provider or "auto", "api_key": token, "timeout": timeout}
    kwargs: dict[str, Any] = {"base_url": _norm_url(backend.base_url), "timeout": timeout}
    if (
        backend.kind == "endpoint"
        and token
        and not (backend.base_url.startswith("https://") or _is_loopback(backend.base_url))
    ):
        raise InferenceError(
            f"{_where(backend)}: endpoint URLs must start with https:// (your token would travel unencrypted).",
            kind="bad_request",
        )
    if token:
        kwargs["api_key"] = token
    else:
        kwargs["api_key"] = _NO_KEY
        kwargs["headers"] = {"authorization": None}  # dropped by huggingface_hub: no Authorization header at all
    return kwargs


def _request_kwargs(backend: Backend, params: GenParams) -> dict[str, Any]:
    out: dict[str, Any] = {
        "max_tokens": int(params.max_new_tokens),
        "temperature": float(params.temperature),
        "top_p": float(params.top_p),
    }
    if params.seed is not None:
        out["seed"] = int(params.seed)
    if backend.model:
        out["model"] = backend.model
    elif backend.kind == "endpoint":
        out["model"] = "tgi"
    if params.response_format is not None:
        refused = refused_schema(backend)
        if refused is not None:  # checked as the request is about to go: calls that waited for a slot send nothing
            raise refused
        out["response_format"] = response_format_payload(backend, params.response_format)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Structured output: one ResponseFormat, each backend's dialect
# ---------------------------------------------------------------------------------------------------------------
# Dialects in the order they are tried; a 400/422 to one moves the backend (for the whole process) to the next:
# - "json_schema": OpenAI's {"type": "json_schema", "json_schema": {"name", "schema"}}. For serverless calls
#   huggingface_hub translates it into each provider's form. For a base URL (endpoint/openai) huggingface_hub 2.x
#   sends it as TGI's {"type": "json_object", "value": schema}.
# - "json_object": {"type": "json_object", "schema": schema}: llama-cpp-python's and llama.cpp's servers follow the
#   schema; vLLM and Ollama take it as JSON mode (valid JSON, schema not enforced: the judge validates and retries).
# - "json": TGI's {"type": "json", "value": schema} (dedicated Inference Endpoints).
SCHEMA_DIALECTS: dict[str, tuple[str, ...]] = {
    "serverless": ("json_schema",),
    "endpoint": ("json", "json_schema"),
    "openai": ("json_object", "json_schema"),
}
_DIALECT_AT: dict[tuple[str, ...], int] = {}  # (backend key..., model) -> index into its SCHEMA_DIALECTS
_REFUSED: dict[tuple[str, ...], InferenceError] = {}  # backends that refused every dialect: no more asking
_DIALECT_LOCK = threading.Lock()


def _dialect_key(backend: Backend) -> tuple[str, ...]:
    return (*backend.key, backend.model)


def schema_dialect(backend: Backend) -> str:
    """The dialect ``backend`` is asked in now (the first one, or the one that a refusal moved it to)."""
    dialects = SCHEMA_DIALECTS[backend.kind]
    with _DIALECT_LOCK:
        return dialects[min(_DIALECT_AT.get(_dialect_key(backend), 0), len(dialects) - 1)]


def _next_dialect(backend: Backend, refused: str) -> bool:
    """After ``refused`` was refused, move ``backend`` to its next dialect; False when there is none left."""
    dialects = SCHEMA_DIALECTS[backend.kind]
    with _DIALECT_LOCK:
        at = min(_DIALECT_AT.get(_dialect_key(backend), 0), len(dialects) - 1)
        if dialects[at] != refused:  # another call moved it already
            return True
        if at + 1 >= len(dialects):
            return False  # the caller records the refusal (_schema_refused)
        _DIALECT_AT[_dialect_key(backend)] = at + 1
        log.info("%s refused response_format %r; trying %r", backend.label, refused, dialects[at + 1])
        return True


def response_format_payload(backend: Backend, fmt: ResponseFormat, dialect: str | None = None) -> dict[str, Any]:
    """``fmt`` in ``dialect`` (default: the backend's current one), as sent in ``response_format``."""
    dialect = dialect or schema_dialect(backend)
    if dialect == "json":
        return {"type": "json", "value": fmt.schema}
    if dialect == "json_object":
        return {"type": "json_object", "schema": fmt.schema}
    return {"type": "json_schema", "json_schema": {"name": fmt.name, "schema": fmt.schema}}


def is_schema_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is a backend refusing structured output (every dialect got a 400/422)."""
    return isinstance(exc, InferenceError) and exc.kind == "schema_refused"


def _schema_refused(error: InferenceError, backend: Backend, dialect: str) -> InferenceError | None:
    """For a structured call that failed with ``error`` in ``dialect``: None to try the backend's next dialect,
    else the error to raise (kind ``schema_refused`` once every dialect got a 400/422)."""
    if error.status not in (400, 422) or error.kind != "bad_request":
        return error
    if _next_dialect(backend, dialect):
        return None
    refusal = error.with_message(
        f"{_where(backend)}: structured output (a JSON schema in response_format) was refused ({error.status}). "
        f"{error.message}",
        kind="schema_refused",
    )
    with _DIALECT_LOCK:
        _REFUSED.setdefault(_dialect_key(backend), refusal)
    return refusal


def refused_schema(backend: Backend) -> InferenceError | None:
    """The refusal of a backend that refused structured output in every dialect (asked no more), else None."""
    with _DIALECT_LOCK:
        return _REFUSED.get(_dialect_key(backend))


def check_messages(messages: list[dict]) -> None:
    """Raise ``InferenceError`` (``bad_request``) for an empty conversation or an empty last user message."""
    if not messages:
        raise InferenceError(
            "Nothing to send: the prompt is empty. Type a prompt or pick one from the data.", kind="bad_request"
        )
    for message in messages:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise InferenceError("Each message needs a 'role' and a 'content'.", kind="bad_request")
    last_user = next((m for m in reversed(messages) if m["role"] == "user"), None)
    if last_user is None or not str(last_user["content"] or "").strip():
        raise InferenceError(
            "Nothing to send: the prompt is empty. Type a prompt or pick one from the data.", kind="bad_request"
        )


def build_messages(prompt: str, system_prompt: str = "") -> list[dict]:
    """``[{"role": "system", ...}, {"role": "user", ...}]`` (no system message when it is blank)."""
    messages = []
    if system_prompt and system_prompt.strip():
        messages.append({"role": "system", "content": system_prompt.strip()})
    messages.append({"role": "user", "content": prompt})
    return messages


def _parse_output(output: Any) -> tuple[str, str | None, int | None, int | None]:
    choices = output.choices
    if not choices:
        raise IndexError("no choices in the reply")
    choice = choices[0]
    message = choice.message
    text = message.content if message is not None else None
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise TypeError("content is not text")
    usage = getattr(output, "usage", None)
    prompt_tokens = getattr(usage, "prompt_tokens", None) if usage is not None else None
    completion_tokens = getattr(usage, "completion_tokens", None) if usage is not None else None
    return text, choice.finish_reason, prompt_tokens, completion_tokens


def _stop(policy: RetryPolicy):
    return stop_after_attempt(max(1, policy.max_attempts)) | stop_before_delay(policy.max_total_s)


def _wait(policy: RetryPolicy):
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(exc, "retry_after", None) if isinstance(exc, InferenceError) else None
        return policy.backoff(state.attempt_number, retry_after)

    return wait


_RETRYABLE = retry_if_exception(lambda e: isinstance(e, InferenceError) and e.retryable)


def _gave_up(error: InferenceError, attempts: int, started: float) -> InferenceError:
    if attempts <= 1 or not error.retryable:
        return error
    took = time.monotonic() - started
    return error.with_message(f"{error.message} (gave up after {attempts} attempts in {took:.0f} s)", attempts=attempts)


def _log_retry(backend: Backend):
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        kind = getattr(exc, "kind", type(exc).__name__)
        log.info(
            "retrying %s after %s (attempt %d, waiting %.1f s)",
            backend.label,
            kind,
            state.attempt_number,
            state.upcoming_sleep,
        )

    return before_sleep


# The caller's own slot (``AsyncChat.__call__(gate=...)``), seen by ``_once`` inside the same task.
_GATE: contextvars.ContextVar[Callable[[], AbstractAsyncContextManager] | None] = contextvars.ContextVar(
    "dpo_studio_gate", default=None
)


def _secs(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"


def _throttled_out(error: InferenceError, requests: int, waited: float, budget: float) -> InferenceError:
    """A call that waited its whole budget for a provider that kept refusing (kind ``throttled``)."""
    return error.with_message(
        f"{error.message} The provider kept refusing for load: this call waited {_secs(waited)} s in total, and "
        f"the next wait would pass the limit of {_secs(budget)} s ('longest wait for the provider').",
        kind="throttled",
        retryable=False,
        attempts=requests,
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
        self._client = AsyncInferenceClient(**_client_kwargs(backend, token, timeout))
        self._limiter = limiter_for(backend, token)

    async def __aenter__(self) -> AsyncChat:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.close()

    async def _once(self, messages: list[dict], params: GenParams) -> ChatResult:
        gate = _GATE.get()
        async with self._limiter.aslot():
            sent = time.monotonic()  # admitted: a cut after this moment is news to this call, one before it is not
            async with gate() if gate is not None else nullcontext():
                started = time.perf_counter()
                try:
                    output = await self._client.chat_completion(
                        messages=messages, **_request_kwargs(self.backend, params)
                    )
                    text, finish, prompt_tokens, completion_tokens = _parse_output(output)
                except Exception as exc:
                    error = to_inference_error(exc, self.backend, signed_in=self._signed_in, timeout=self.timeout)
                    if is_throttle(error):
                        self._limiter.throttled(sent, error.retry_after, certain=error.kind == "overloaded")
                    raise error from exc
                self._limiter.succeeded(sent)
                return ChatResult(text, finish, prompt_tokens, completion_tokens, time.perf_counter() - started)

    async def _once_in_dialect(self, messages: list[dict], params: GenParams) -> ChatResult:
        """``_once``; with a ``response_format``, a 400/422 moves the backend to its next schema dialect and asks
        again, and raises ``schema_refused`` when none is left."""
        while True:
            dialect = schema_dialect(self.backend) if params.response_format is not None else ""
            if dialect and (refused := refused_schema(self.backend)) is not None:
                raise refused  # refused before in this process: no request
            try:
                return await self._once(messages, params)
            except InferenceError as error:
                if not dialect:
                    raise
                refusal = _schema_refused(error, self.backend, dialect)
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
        """One reply, retried (see ``RetryPolicy``). ``gate``: the caller's own slot (e.g. a run's concurrency
        limit), entered for each request while it is on the wire and left while the call waits to retry.

        A throttle (429 / "overloaded" 503) is a wait, not a failed attempt: the call waits for the provider's
        Retry-After (or a backoff) holding no slot, up to ``retry.wait_budget_s`` in total, then gives up with kind
        ``throttled``. Other retryable failures count as attempts (``max_attempts``, ``max_total_s``)."""
        check_messages(messages)
        policy = self.retry
        started = time.monotonic()
        requests = strikes = throttles = 0
        waited = 0.0
        reset = _GATE.set(gate)
        try:
            while True:
                requests += 1
                try:
                    result = await self._once_in_dialect(messages, params)
                    return replace(result, attempts=requests)
                except InferenceError as error:
                    if not error.retryable:
                        raise  # already final (after earlier retries it still says what to do)
                    if is_throttle(error) and ratecontrol.adaptive():
                        throttles += 1
                        delay = max(policy.backoff(throttles, error.retry_after), self._limiter.paused_for())
                        if waited + delay > policy.wait_budget_s:
                            raise _throttled_out(error, requests, waited, policy.wait_budget_s) from error
                        waited += delay
                    else:
                        strikes += 1
                        delay = policy.backoff(strikes, error.retry_after)
                        spent = time.monotonic() - started - waited
                        if strikes >= policy.max_attempts or spent + delay > policy.max_total_s:
                            raise _gave_up(error, requests, started) from error
                    log.info(
                        "retrying %s after %s (request %d, waiting %.1f s)",
                        self.backend.label,
                        error.kind,
                        requests,
                        delay,
                    )
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


# ---------------------------------------------------------------------------------------------------------------
# Streaming (sync, for Gradio generator handlers)
# ---------------------------------------------------------------------------------------------------------------
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


def stream_chat(
    backend: Backend,
    messages: list[dict],
    params: GenParams,
    token: str | None,
    *,
    retry: RetryPolicy = INTERACTIVE_RETRY,
    timeout: float = 60.0,
) -> Generator[StreamEvent, None, None]:
    """Stream a chat completion: ``StreamEvent(kind="delta")`` per text piece, then one ``kind="done"``.

    Failures before the first token are retried like ``achat``; after that the stream cannot be replayed, so a
    dropped, malformed or truncated stream raises ``InferenceError`` (the text so far was already yielded).
    The backend's concurrency slot is held while streaming and given back when the generator ends or is closed."""
    check_messages(messages)
    kwargs = _client_kwargs(backend, token, timeout)
    request = _request_kwargs(backend, params)
    signed_in = bool(token)
    limiter = limiter_for(backend, token)
    started = time.perf_counter()
    started_mono = time.monotonic()

    def open_once() -> _OpenStream:
        limiter.acquire()
        sent = time.monotonic()
        client = None
        try:
            client = InferenceClient(**kwargs)
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
                    f"{_where(backend)}: the reply ended before any text, without a finish signal. The server "
                    "failed to generate; with llama.cpp this usually means the prompt is longer than the model's "
                    "context: shorten the prompt or lower 'max new tokens'.",
                    kind="bad_response",
                    retryable=True,
                )
            return stream
        except BaseException as exc:
            if client is not None:
                client.close()  # closes a failed response still held by the client
            limiter.release()
            if isinstance(exc, Exception):
                error = to_inference_error(exc, backend, signed_in=signed_in, timeout=timeout)
                if is_throttle(error):
                    limiter.throttled(sent, error.retry_after, certain=error.kind == "overloaded")
                raise error from exc
            raise

    retrying = Retrying(
        stop=_stop(retry), wait=_wait(retry), retry=_RETRYABLE, reraise=True, before_sleep=_log_retry(backend)
    )
    try:
        stream = retrying(open_once)
    except InferenceError as error:
        raise _gave_up(error, retrying.statistics.get("attempt_number", 1), started_mono) from error

    # From here on we own one concurrency slot.
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
                broke = to_inference_error(exc, backend, signed_in=signed_in, timeout=timeout)
                raise broke.with_message(
                    f"{broke.message} (The reply broke off after {pieces} chunk(s) of text; what arrived is shown.)",
                    retryable=False,
                ) from exc
        if finish is None and not stream.ended:
            raise InferenceError(
                f"{_where(backend)}: the reply stream ended without finishing (truncated after {pieces} chunk(s) of "
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


def list_models(backend: Backend, token: str | None, *, timeout: float = 10.0) -> list[str]:
    """Model names an OpenAI-compatible server offers (``GET {base_url}/models``); ``[]`` if it does not say."""
    if backend.kind != "openai":
        return []
    backend.validate()
    url = _norm_url(backend.base_url)
    if not url.endswith("/v1"):
        url += "/v1"
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx2.Client(
            timeout=timeout,
            transport=netguard.httpx2_transport(),  # a public app: connects only to a checked address
            event_hooks={"request": [netguard.check_request]},
        ) as http:
            response = http.get(f"{url}/models", headers=headers)
        response.raise_for_status()
        data = response.json().get("data", [])
        return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]
    except Exception:  # noqa: BLE001 - a hint for the UI only
        return []


# --- Building a backend and estimating tokens (one owner for the app, the CLI and the judge check) -------------
def estimate_tokens(text: str) -> int:
    """A conservative token estimate (about 3 UTF-8 bytes per token; non-Latin scripts use more tokens per char).

    >>> estimate_tokens("hello world")
    4
    """
    return len(text.encode("utf-8")) // 3 + 1


def backend_from(spec: Any, *, kind: str | None = None) -> Backend:
    """A validated :class:`Backend` from a Backend or a mapping with ``model`` and optionally ``kind`` (or
    ``backend``), ``base_url`` and ``provider``. Without a kind: ``openai`` if a base URL is given, else
    ``serverless``. Raises :class:`InferenceError` with a message for the user."""
    if isinstance(spec, Backend):
        backend = spec
    else:
        spec = dict(spec or {})
        base_url = str(spec.get("base_url") or "").strip()
        kind = spec.get("kind") or spec.get("backend") or kind or ("openai" if base_url else "serverless")
        backend = Backend(
            cast(BackendKind, kind), str(spec.get("model") or "").strip(), base_url, spec.get("provider") or "auto"
        )
    backend.validate()
    return backend
