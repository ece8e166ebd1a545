"""The one package that talks to LLM inference: everything else calls the names this facade re-exports.

Three backend kinds behind one interface, all through ``huggingface_hub``'s ``(Async)InferenceClient``:

- ``serverless``: Hugging Face Inference Providers through the HF router, with the signed-in user's token
  (``provider="auto"`` lets the router choose; or a named provider such as ``"together"``).
- ``endpoint``: a dedicated Inference Endpoint (or any TGI) URL, with the user's token.
- ``openai``: any OpenAI-compatible base URL (vLLM, TGI, Ollama, llama.cpp, ...) with an optional API key.

What differs by kind is answered by one table, ``kinds.KINDS`` (a frozen ``KindSpec`` per kind). Calls:

- ``await achat(backend, messages, params, token)`` -> ``ChatResult`` (one reply; retries; concurrency-limited).
  ``AsyncChat`` does the same but keeps one HTTP connection pool open for many calls (the pipeline uses it).
- ``stream_chat(backend, messages, params, token)`` -> iterator of ``StreamEvent`` (sync; for Gradio
  generator handlers): text deltas, then one final event with time to first token and tokens per second.

Every failure is an ``InferenceError`` with a human message naming the model, the backend and what to do.
Transient failures are retried under one ``RetryPolicy`` for streaming and non-streaming calls alike (429 and
"overloaded" 503 are waits within the call's wait budget, Retry-After honoured and capped; 5xx, time-outs,
dropped connections and malformed replies are attempts); 400/401/403/404/422 surface at once; a 402 or "out of
credits / quota" is kind ``out_of_credit``. A process-wide controller per backend key (``ratecontrol``; per user
for serverless) caps concurrent requests for every caller and adapts the cap to throttling.

Tokens are passed per call and never logged, stored or put into messages. When no key is given for a URL kind no
``Authorization`` header is sent (the machine's own HF token is never sent to a third-party URL), and
``serverless`` refuses to run without the user's token.

The modules, one job each:

- ``kinds``: the kind table (``KindSpec``, ``KINDS``, ``BACKEND_KINDS``), providers, URLs as shown;
- ``backends``: the data types (``Backend``, ``GenParams``, ``ResponseFormat``, ``ChatResult``, ``StreamEvent``),
  ``backend_from``, ``estimate_tokens``, messages;
- ``errors``: ``InferenceError`` and the translation of HTTP statuses and client exceptions; Retry-After;
- ``dialects``: ``response_format`` per kind, and the detection of a backend refusing structured output;
- ``limits``: the registry of rate controllers per backend key; ``ratecontrol``: the controller itself;
- ``retry``: the one retry policy and its wait rules; ``clients``: one function per HTTP client, request bodies;
- ``chat``: the async (and blocking) call; ``stream``: streaming with time to first token; ``pool``: the chat
  clients of one run (``ChatPool``, imported as ``pipeline.inference.pool``).
"""

from __future__ import annotations

from pipeline.inference import ratecontrol
from pipeline.inference.backends import (
    SUGGESTED_MODELS,
    Backend,
    ChatResult,
    GenParams,
    ResponseFormat,
    StreamEvent,
    backend_from,
    build_messages,
    check_messages,
    estimate_tokens,
)
from pipeline.inference.chat import AsyncChat, achat, chat
from pipeline.inference.clients import list_models
from pipeline.inference.dialects import (
    SCHEMA_DIALECTS,
    is_schema_refusal,
    refused_schema,
    response_format_payload,
    schema_dialect,
)
from pipeline.inference.errors import (
    InferenceError,
    http_error,
    is_throttle,
    out_of_credit_error,
    parse_retry_after,
    to_inference_error,
)
from pipeline.inference.kinds import (
    BACKEND_KINDS,
    DEFAULT_KIND,
    KINDS,
    PROVIDERS,
    BackendKind,
    KindSpec,
    display_url,
    kind_spec,
)
from pipeline.inference.limits import (
    ConcurrencyLimiter,
    ControllerState,
    concurrency_limit,
    controller_key,
    controller_state,
    limiter_for,
    set_concurrency_limit,
)
from pipeline.inference.retry import DEFAULT_RETRY, INTERACTIVE_RETRY, NO_RETRY, RetryPolicy
from pipeline.inference.stream import stream_chat

__all__ = [
    "BACKEND_KINDS",
    "DEFAULT_KIND",
    "DEFAULT_RETRY",
    "INTERACTIVE_RETRY",
    "KINDS",
    "NO_RETRY",
    "PROVIDERS",
    "SCHEMA_DIALECTS",
    "SUGGESTED_MODELS",
    "AsyncChat",
    "Backend",
    "BackendKind",
    "ChatResult",
    "ConcurrencyLimiter",
    "ControllerState",
    "GenParams",
    "InferenceError",
    "KindSpec",
    "ResponseFormat",
    "RetryPolicy",
    "StreamEvent",
    "achat",
    "backend_from",
    "build_messages",
    "chat",
    "check_messages",
    "concurrency_limit",
    "controller_key",
    "controller_state",
    "display_url",
    "estimate_tokens",
    "http_error",
    "is_schema_refusal",
    "is_throttle",
    "kind_spec",
    "limiter_for",
    "list_models",
    "out_of_credit_error",
    "parse_retry_after",
    "ratecontrol",
    "refused_schema",
    "response_format_payload",
    "schema_dialect",
    "set_concurrency_limit",
    "stream_chat",
    "to_inference_error",
]
